# builder: dlc build (image definitions -> reproducible OCI images), dlc history.
$(eval $(call add_lib,builder,oci common,$(call pc,libarchive zlib libzstd) -lpthread))

# make bench-build [BENCH_BUILD_ARGS="--rounds 5"]: cold build of every variant of
# images/tensor-runtime.json into a fresh store, then a rebuild with nothing changed, gzip
# and zstd; seconds and compressed image sizes (bench/build/run.py).
.PHONY: bench-build
bench-build: all
	@$(PYTHON) bench/build/run.py --dlc $(abspath $(BUILD))/dlc --build-dir $(abspath $(BUILD)) \
		$(BENCH_BUILD_ARGS)
bench: bench-build
