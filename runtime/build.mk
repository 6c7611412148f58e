# runtime: libruntime (the tensor runtime) and the in-image program `tensor`.
#
# The program ships inside images with a size budget, so it links only libc, libm,
# libopenblas, libjansson and libz (gzip'd npy/csv): nothing else may join its closure.
# A GPU variant ($(BUILD)/runtime/gpu/tensor) compiles the same sources with
# -DTENSOR_WITH_OPENCL plus backend-opencl.c, which adds the backend to backend.c's list.
# `tensor serve` (tensor_serve_main, in libruntime) is referenced weakly by main.c; -u pulls
# it out of the archive when it is there.

RUNTIME_CPPFLAGS := $(shell $(PKG_CONFIG) --cflags openblas 2>/dev/null)
RUNTIME_LDLIBS := $(call pc,openblas zlib) -lm -lpthread
# tensor serve (issue 8, runtime/src/serve*.c): SageMaker's HTTP contract.
RUNTIME_LDLIBS += $(call pc,libmicrohttpd)

$(eval $(call add_lib,runtime,common,$(RUNTIME_LDLIBS)))

# Hot loops: -O3 vectorises more of them, -fno-math-errno lets sqrtf become one
# instruction, -ffp-contract=off keeps a*b+c two roundings (TENSOR_KERNEL also says so
# per function, for builds with other flags). None changes results (no fast-math).
RUNTIME_CFLAGS := -O3 -fno-math-errno -ffp-contract=off
$(runtime_OBJS): ALL_CPPFLAGS += $(RUNTIME_CPPFLAGS)
$(runtime_OBJS): ALL_CFLAGS += $(RUNTIME_CFLAGS)

TENSOR_VERSION := $(shell cat runtime/VERSION 2>/dev/null || echo 0.0.0)
TENSOR_CMD_SRCS := $(wildcard runtime/cmd/*.c)
TENSOR_CMD_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(TENSOR_CMD_SRCS))
$(TENSOR_CMD_OBJS): ALL_CPPFLAGS += -DTENSOR_VERSION='"$(TENSOR_VERSION)"'
$(TENSOR_CMD_OBJS): runtime/VERSION

comma := ,
TENSOR_SERVE_LINK := $(if $(filter %/serve-cmd.c,$(runtime_SRCS)),-Wl$(comma)-u$(comma)tensor_serve_main)
$(BUILD)/runtime/cpu/tensor: $(TENSOR_CMD_OBJS) $(runtime_LIB) $(common_LIB)
	@mkdir -p $(@D)
	$(call say,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $(TENSOR_CMD_OBJS) $(runtime_LIB) $(common_LIB) \
		$(ALL_LDFLAGS) -Wl,--as-needed $(TENSOR_SERVE_LINK) $(RUNTIME_LDLIBS) $(common_LDLIBS)
ifneq ($(TENSOR_CMD_SRCS),)
BINARIES += $(BUILD)/runtime/cpu/tensor
endif

include runtime/opencl.mk

# make bench-runtime: MLP training vs the sgemm bound and PyTorch (README, benchmarks).
BENCH_RUNTIME := $(BUILD)/bench/runtime/bench_mlp
$(BENCH_RUNTIME): bench/runtime/bench_mlp.c bench/synthetic.h $(runtime_LIB) $(common_LIB)
	@mkdir -p $(@D)
	$(call say,LINK,$@)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(RUNTIME_CPPFLAGS) $(ALL_CFLAGS) -o $@ $< $(runtime_LIB) \
		$(common_LIB) $(ALL_LDFLAGS) $(RUNTIME_LDLIBS) $(common_LDLIBS)

.PHONY: bench-runtime
bench-runtime: $(BENCH_RUNTIME)
	@bench/runtime/run.sh $(BENCH_RUNTIME)
bench: bench-runtime

# make bench-predict: a prediction call planned per call (tensor_predict) against a reused
# tensor_predictor (what tensor serve's batcher keeps), microseconds per call.
BENCH_PREDICT := $(BUILD)/bench/runtime/bench_predict
$(BENCH_PREDICT): bench/runtime/bench_predict.c $(runtime_LIB) $(common_LIB)
	@mkdir -p $(@D)
	$(call say,LINK,$@)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(RUNTIME_CPPFLAGS) $(ALL_CFLAGS) -o $@ $< $(runtime_LIB) \
		$(common_LIB) $(ALL_LDFLAGS) $(RUNTIME_LDLIBS) $(common_LDLIBS)

.PHONY: bench-predict
bench-predict: $(BENCH_PREDICT)
	@$(BENCH_PREDICT) $(BENCH_PREDICT_ARGS)
bench: bench-predict
