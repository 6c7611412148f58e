# dlc: the CLI links every library (those that exist), top component first.
CLI_SRCS := $(wildcard cli/*.c)
CLI_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(CLI_SRCS))
CLI_LIBNAMES := builder runner registry oci common
CLI_LINK = $(foreach c,$(CLI_LIBNAMES),$($(c)_LIB))
CLI_LDLIBS = $(sort $(foreach c,$(CLI_LIBNAMES),$($(c)_LDLIBS)))
DLC_VERSION := $(shell cat runtime/VERSION 2>/dev/null || echo 0.0.0)
$(BUILD)/obj/cli/main.o: CPPFLAGS += -DDLC_VERSION='"$(DLC_VERSION)"'
$(BUILD)/dlc: $(CLI_OBJS) $(CLI_LINK)
	@mkdir -p $(@D)
	$(call say,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $(CLI_OBJS) $(CLI_LINK) $(ALL_LDFLAGS) $(CLI_LDLIBS) -lm
BINARIES += $(BUILD)/dlc
