# Benchmarks that belong to no single component (the Makefile includes this file).

# make bench-serve [BENCH_SERVE_ARGS="--duration 10 --connections 32"]: POST /invocations
# through `dlc serve`'s published port and straight to `tensor serve`, with wrk
# (bench/serve/run.py).
.PHONY: bench-serve
bench-serve: $(BUILD)/dlc $(BUILD)/runtime/cpu/tensor
	@DLC_BUILD=$(abspath $(BUILD)) $(PYTHON) bench/serve/run.py $(BENCH_SERVE_ARGS)
bench: bench-serve
