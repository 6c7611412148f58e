#!/bin/bash
# bench/gpu/run.sh BENCH_GPU: `make bench-gpu`. SGEMM GFLOP/s of the OpenCL backend's kernels
# for square sizes beside OpenBLAS, the cuBLAS ratio when nvcc and an NVIDIA GPU are
# present, then the training benchmark (bench-runtime's MLP) on the OpenCL device and on the
# CPU. SIZES, BUDGET (seconds a size may take), ROWS and EPOCHS override the defaults.
set -euo pipefail
bin=$1
sizes=${SIZES:-256,512,1024,2048,4096}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== bench-gpu: SGEMM C = A B, square, operands resident on the device (best of runs) =="
"$bin" gemm --sizes "$sizes" --budget "${BUDGET:-45}" | tee "$tmp/gemm" | grep -v '^GEMM '

if command -v nvcc >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "== cuBLAS on $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1) =="
    nvcc -O2 -o "$tmp/cublas_sgemm" bench/gpu/cublas_sgemm.cu -lcublas
    "$tmp/cublas_sgemm" ${sizes//,/ } | tee "$tmp/cublas"
    /usr/bin/python3 - "$tmp/gemm" "$tmp/cublas" <<'PY'
import re, sys
def read(path, key):
    out = {}
    for line in open(path):
        m = re.match(r"(GEMM|CUBLAS) n=(\d+) (.*)", line)
        if m:
            kv = dict(x.split("=") for x in m.group(3).split())
            out[int(m.group(2))] = kv.get(key)
    return out
ocl, cub = read(sys.argv[1], "opencl"), read(sys.argv[2], "gflops")
print("%6s  %14s  %14s  %s" % ("n", "opencl GFLOP/s", "cuBLAS GFLOP/s", "opencl/cuBLAS"))
for n in sorted(cub):
    o = ocl.get(n)
    if o in (None, "skipped"):
        print("%6d  %14s  %14.1f  -" % (n, "skipped", float(cub[n])))
    else:
        print("%6d  %14.1f  %14.1f  %5.0f%%" % (n, float(o), float(cub[n]), 100 * float(o) / float(cub[n])))
PY
else
    echo "(cuBLAS ratio: needs nvcc and an NVIDIA GPU; none here)"
fi

echo
echo "== bench-gpu: training, MLP 784-256-128-10, adam, batch 128 (bench-runtime's workload) =="
"$bin" train --rows "${ROWS:-60000}" --epochs "${EPOCHS:-2}" | tee "$tmp/train" | grep -v '^TRAIN '
awk '/^TRAIN /{split($3,s,"=");split($4,g,"=");split($5,l,"=");sub("backend=","",$2);
     printf "%-8s %8.3f s/epoch  %8.2f GFLOP/s  final loss %s\n", $2, s[2], g[2], l[2]}' "$tmp/train"
