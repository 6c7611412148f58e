# runtime/opencl.mk: the GPU variant of the tensor runtime (included at the end of
# runtime/build.mk).
#
# The same runtime sources compiled with -DTENSOR_WITH_OPENCL into $(BUILD)/obj-gpu (so
# they never mix with the CPU build's objects), plus the OpenCL backend
# (runtime/src/backend-opencl*.c, empty in the CPU build) and its kernels, embedded from
# runtime/src/kernels/*.cl into a generated C file: nothing is read from disk at run time.
# $(BUILD)/runtime/gpu/tensor links the OpenCL ICD loader (ocl-icd's libOpenCL.so.1) on
# top of the CPU build's libraries, so the GPU image still has the CPU backend.
#
#   make BUILD=... $(BUILD)/runtime/gpu/tensor   the program
#   make bench-gpu                               GEMM GFLOP/s and training, OpenCL vs CPU

OPENCL_LDLIBS := $(or $(call pc,OpenCL),-lOpenCL)
OPENCL_KERNELS := $(addprefix runtime/src/kernels/,common.cl gemm.cl elementwise.cl \
	reduce.cl loss.cl optim.cl)
OPENCL_SELFTEST_KERNEL := runtime/src/kernels/selftest.cl
OPENCL_EMBED := $(BUILD)/gen/runtime/opencl-kernels.c
OPENCL_EMBED_OBJ := $(BUILD)/obj-gpu/gen/opencl-kernels.o

RUNTIME_GPU_OBJS := $(patsubst %.c,$(BUILD)/obj-gpu/%.o,$(runtime_SRCS)) $(OPENCL_EMBED_OBJ)
RUNTIME_GPU_LIB := $(BUILD)/libruntime-gpu.a
TENSOR_CMD_GPU_OBJS := $(patsubst %.c,$(BUILD)/obj-gpu/%.o,$(TENSOR_CMD_SRCS))
RUNTIME_GPU_LDLIBS = $(RUNTIME_LDLIBS) $(OPENCL_LDLIBS) $(common_LDLIBS)

$(RUNTIME_GPU_OBJS) $(TENSOR_CMD_GPU_OBJS): ALL_CPPFLAGS += $(RUNTIME_CPPFLAGS) -DTENSOR_WITH_OPENCL
$(RUNTIME_GPU_OBJS): ALL_CFLAGS += -O3 -fno-math-errno
$(TENSOR_CMD_GPU_OBJS): ALL_CPPFLAGS += -DTENSOR_VERSION='"$(TENSOR_VERSION)"'
$(TENSOR_CMD_GPU_OBJS): runtime/VERSION

$(BUILD)/obj-gpu/%.o: %.c
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(OPENCL_EMBED): $(OPENCL_KERNELS) $(OPENCL_SELFTEST_KERNEL) runtime/src/kernels/embed.sh
	@mkdir -p $(@D)
	$(call say,EMBED,$@)
	$(Q)runtime/src/kernels/embed.sh $@ tensor__ocl_program $(OPENCL_KERNELS) \
		-- tensor__ocl_selftest $(OPENCL_SELFTEST_KERNEL)

$(OPENCL_EMBED_OBJ): $(OPENCL_EMBED)
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(RUNTIME_GPU_LIB): $(RUNTIME_GPU_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	$(call say,AR,$@)
	$(Q)$(AR) rcs $@ $^

$(BUILD)/runtime/gpu/tensor: $(TENSOR_CMD_GPU_OBJS) $(RUNTIME_GPU_LIB) $(common_LIB)
	@mkdir -p $(@D)
	$(call say,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $(TENSOR_CMD_GPU_OBJS) $(RUNTIME_GPU_LIB) $(common_LIB) \
		$(ALL_LDFLAGS) -Wl,--as-needed $(TENSOR_SERVE_LINK) $(RUNTIME_GPU_LDLIBS)
ifneq ($(TENSOR_CMD_SRCS),)
BINARIES += $(BUILD)/runtime/gpu/tensor
endif

# The backend's unit tests (tests/unit/runtime/test_opencl*.c, also in `make test-unit`)
# link the GPU library instead of the CPU one the generic rule of add_lib would use.
OPENCL_TESTS := $(patsubst tests/unit/runtime/%.c,$(BUILD)/tests/unit/runtime/%,\
	$(wildcard tests/unit/runtime/test_opencl*.c))
$(OPENCL_TESTS): $(BUILD)/tests/unit/runtime/%: tests/unit/runtime/%.c $(RUNTIME_GPU_LIB) \
		$(common_LIB)
	@mkdir -p $(@D)
	$(call say,LINK,$@)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(RUNTIME_CPPFLAGS) -DTENSOR_WITH_OPENCL -Iruntime/src -Itests/unit \
		$(ALL_CFLAGS) -o $@ $< $(RUNTIME_GPU_LIB) $(common_LIB) $(ALL_LDFLAGS) \
		$(RUNTIME_GPU_LDLIBS) -lcmocka -lm

# make bench-gpu: SGEMM and training on the OpenCL device beside OpenBLAS (bench/gpu/run.sh).
BENCH_GPU := $(BUILD)/bench/gpu/bench_gpu
$(BENCH_GPU): bench/gpu/bench_gpu.c bench/synthetic.h $(RUNTIME_GPU_LIB) $(common_LIB)
	@mkdir -p $(@D)
	$(call say,LINK,$@)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(RUNTIME_CPPFLAGS) -DTENSOR_WITH_OPENCL -Iruntime/src \
		$(ALL_CFLAGS) -o $@ $< $(RUNTIME_GPU_LIB) $(common_LIB) $(ALL_LDFLAGS) \
		$(RUNTIME_GPU_LDLIBS)

.PHONY: bench-gpu
bench-gpu: $(BENCH_GPU)
	@bench/gpu/run.sh $(BENCH_GPU)
bench: bench-gpu
