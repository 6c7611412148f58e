#!/bin/bash
# make bench-runtime: the tensor runtime's MLP benchmark, then the same model in PyTorch
# when it can be imported. Usage: run.sh BENCH_BINARY [--rows N] [--epochs N] [--threads N]
set -euo pipefail
bin=$1
shift
out=$("$bin" "$@")
printf '%s\n' "$out" | grep -v '^RESULT '
secs=$(printf '%s\n' "$out" | sed -n 's/^RESULT s_per_epoch=\([0-9.]*\).*/\1/p')
/usr/bin/python3 "$(dirname "$0")/torch_mlp.py" "$@" --tensor-seconds "$secs"
