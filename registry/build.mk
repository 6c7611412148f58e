# registry: the distribution-spec server (libmicrohttpd) and the push/pull client (libcurl).
$(eval $(call add_lib,registry,oci common,$(call pc,libmicrohttpd) $(call pc,libcurl) -lcrypt -lpthread))

# make bench-registry [BENCH_REGISTRY_ARGS="--size-mib 512 --rounds 3"]: skopeo and dlc
# push/pull against `dlc registry serve` and Debian's docker-registry (bench/registry/run.py).
.PHONY: bench-registry
bench-registry: $(BUILD)/dlc
	@DLC_BUILD=$(abspath $(BUILD)) $(PYTHON) bench/registry/run.py $(BENCH_REGISTRY_ARGS)
bench: bench-registry
