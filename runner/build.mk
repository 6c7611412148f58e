# runner: namespaces, rootfs, mounts, SageMaker channels, seccomp, caps, cgroups.
$(eval $(call add_lib,runner,oci common,$(call pc,libarchive) $(call pc,libseccomp) $(call pc,libcap)))

# The static probe the isolation tests copy into fixture images.
RUNNER_PROBE := $(BUILD)/tests/runner/probe
$(RUNNER_PROBE): tests/integration/run_probe.c
	@mkdir -p $(@D)
	$(call say,LINK,$@)
	$(Q)$(CC) -std=gnu11 $(WARN) $(OPT) -D_GNU_SOURCE -static -o $@ $<
BINARIES += $(RUNNER_PROBE)

# make bench-run [BENCH_RUN_ARGS="--runs 40"]: warm and cold `dlc run --rm IMG /bin/true`
# against crun and runc on the same rootfs and settings (bench/run/run.py, hyperfine).
# bench/dlc-run-only is dlc linked with the runner's libraries only (no libcurl,
# libmicrohttpd, ...): it shows what the full binary's start-up costs a container run.
RUN_ONLY_OBJS := $(BUILD)/obj/cli/main.o $(BUILD)/obj/cli/cmd-run.o $(BUILD)/obj/cli/cmd-gpu.o
$(BUILD)/bench/dlc-run-only: $(RUN_ONLY_OBJS) $(runner_LIB) $(oci_LIB) $(common_LIB)
	@mkdir -p $(@D)
	$(call say,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $(RUN_ONLY_OBJS) $(runner_LIB) $(oci_LIB) $(common_LIB) \
		$(ALL_LDFLAGS) $(runner_LDLIBS) $(oci_LDLIBS) $(common_LDLIBS) -lm
.PHONY: bench-run
bench-run: $(BUILD)/dlc $(BUILD)/bench/dlc-run-only
	@DLC_BUILD=$(abspath $(BUILD)) $(PYTHON) bench/run/run.py $(BENCH_RUN_ARGS)
bench: bench-run
