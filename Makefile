# dlc: one non-recursive Makefile. Each component adds itself from <component>/build.mk.
#
#   make                build build/dlc and the tensor runtime (cpu and gpu)
#   make deps           install the Debian packages (idempotent)
#   make test           deps + build + unit tests + integration tests
#   make test-unit      cmocka unit tests       (SANITIZE=address,undefined for sanitizers)
#   make test-integration  pytest integration tests (/usr/bin/python3)
#   make demo           the end-to-end demo
#   make bench          every benchmark under bench/
#   make lint | format | format-check | clean

.DEFAULT_GOAL := all
SHELL := /bin/bash

CC      ?= gcc
AR      ?= ar
PYTHON  := /usr/bin/python3
PKG_CONFIG ?= pkg-config

ifneq ($(strip $(SANITIZE)),)
BUILD   ?= build/sanitize
SAN_FLAGS := -fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer
else
BUILD   ?= build
SAN_FLAGS :=
endif

WERROR  ?= 1
WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wold-style-definition -Wpointer-arith -Wvla -Wwrite-strings -Wundef \
        -Wimplicit-fallthrough -Wno-missing-field-initializers -fno-common
ifeq ($(WERROR),1)
WARN += -Werror
endif

OPT ?= -O2
CFLAGS ?= $(OPT) -g
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) $(SAN_FLAGS) -MMD -MP -fPIC
ALL_CPPFLAGS = -D_GNU_SOURCE $(foreach c,$(COMPONENTS),-I$(c)/include) $(CPPFLAGS)
ALL_LDFLAGS = $(SAN_FLAGS) $(LDFLAGS)

pc = $(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null)

COMPONENTS := common oci builder runner registry runtime
LIBS :=
UNIT_TESTS :=
BINARIES :=

# add_lib NAME, DEPS (lower libraries, in link order), LDLIBS
# Builds $(BUILD)/libNAME.a from NAME/src/*.c and one test binary per
# tests/unit/NAME/test_*.c, linked against libNAME.a, its DEPS and cmocka.
define add_lib
$(1)_SRCS := $$(wildcard $(1)/src/*.c)
$(1)_OBJS := $$(patsubst %.c,$$(BUILD)/obj/%.o,$$($(1)_SRCS))
$(1)_LIB := $$(BUILD)/lib$(1).a
$(1)_DEPS := $(2)
$(1)_LDLIBS := $(3)
LIBS += $$($(1)_LIB)
$$($(1)_LIB): $$($(1)_OBJS)
	@mkdir -p $$(@D)
	@rm -f $$@
	$$(call say,AR,$$@)
	$$(Q)$$(AR) rcs $$@ $$^
$(1)_TESTS := $$(patsubst tests/unit/$(1)/%.c,$$(BUILD)/tests/unit/$(1)/%,$$(wildcard tests/unit/$(1)/test_*.c))
UNIT_TESTS += $$($(1)_TESTS)
$$(BUILD)/tests/unit/$(1)/%: tests/unit/$(1)/%.c $$($(1)_LIB) $$(foreach d,$(2),$$($$(d)_LIB))
	@mkdir -p $$(@D)
	$$(call say,LINK,$$@)
	$$(Q)$$(CC) $$(ALL_CPPFLAGS) -Itests/unit $$(ALL_CFLAGS) -o $$@ $$< $$($(1)_LIB) \
		$$(foreach d,$(2),$$($$(d)_LIB)) $$(ALL_LDFLAGS) $$($(1)_LDLIBS) \
		$$(foreach d,$(2),$$($$(d)_LDLIBS)) -lcmocka -lm
endef

V ?= 0
ifeq ($(V),1)
Q :=
say = @true
else
Q := @
say = @printf '  %-6s %s\n' $(1) $(2)
endif

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

-include $(wildcard $(addsuffix /build.mk,$(COMPONENTS)) cli/build.mk bench/build.mk)

all: $(BINARIES)

.PHONY: all deps test test-unit test-integration lint format format-check clean demo bench

deps:
	@./scripts/deps.sh

unit: $(UNIT_TESTS)

test-unit: $(UNIT_TESTS)
	@./scripts/run-unit-tests.sh $(UNIT_TESTS)

test-integration: all
	@DLC_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q -ra tests/integration $(PYTEST_ARGS)

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory test-unit
	@$(MAKE) --no-print-directory test-integration

# The README's first command: scripts/demo.sh (DEMO_OUT=DIR puts its files elsewhere).
demo: deps
	@$(MAKE) --no-print-directory all
	@DLC_BUILD=$(abspath $(BUILD)) ./scripts/demo.sh

BANNED := sprintf|strcpy|strcat|strncpy|strtok|gets|atoi|atol|system|popen|alloca
SRC_DIRS := $(wildcard $(COMPONENTS) cli tests/unit bench)
C_FILES = $(shell find $(SRC_DIRS) -name '*.[ch]' -not -path '*/build/*' 2>/dev/null)

lint:
	@! grep -nE '(^|[^_a-zA-Z0-9.>])($(BANNED))[[:space:]]*\(' $(C_FILES) \
		|| { echo "lint: banned function used (see STYLE.md)"; exit 1; }
	cppcheck --quiet --error-exitcode=1 --std=c11 --inline-suppr \
		--suppress=missingIncludeSystem --suppress=unusedFunction --suppress=unmatchedSuppression \
		-i runtime/src/kernels $(foreach c,$(COMPONENTS),-I$(c)/include) $(SRC_DIRS)
	clang-tidy --quiet $(filter %.c,$(C_FILES)) -- $(ALL_CPPFLAGS) $(foreach c,$(COMPONENTS),-I$(c)/src) -Itests/unit -std=gnu11 -DTENSOR_WITH_OPENCL

format:
	clang-format -i $(C_FILES)

format-check:
	clang-format --dry-run --Werror $(C_FILES)

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
