# builder: dlc build (image definitions -> reproducible OCI images), dlc history.
$(eval $(call add_lib,builder,oci common,$(call pc,libarchive zlib libzstd) -lpthread))

# make bench-build: cold build of every variant of images/tensor-runtime.json into a fresh
# store, then a rebuild with nothing changed; seconds and compressed sizes.
.PHONY: bench-build
bench-build: $(BUILD)/dlc $(wildcard $(BUILD)/runtime/cpu/tensor $(BUILD)/runtime/gpu/tensor)
	@DLC_BUILD=$(abspath $(BUILD)) ./bench/build/bench.sh $(abspath $(BUILD)/dlc)
