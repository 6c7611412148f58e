#!/bin/bash
# The demo (`make demo`, which first installs the deps and builds dlc and the runtime):
# build both images, make a small dataset, train with `dlc train`, ship the images through
# a local registry, pull one into a fresh store, serve the trained model and ask it for a
# prediction. Everything goes under $DEMO_OUT (default ./demo-out); whatever the demo starts
# is stopped when it ends, also on failure or Ctrl-C.
#
#   DLC_BUILD  where make put dlc and the runtime (default ./build)
#   DEMO_OUT   the demo's directory, emptied first (default ./demo-out)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${DLC_BUILD:-$PWD/build}
OUT=${DEMO_OUT:-$PWD/demo-out}
DLC=$BUILD_DIR/dlc
IMAGE=tensor-runtime:1.0.0
PYTHON=/usr/bin/python3 # Debian's, with python3-numpy (make deps)
START=$SECONDS
N_STEPS=8
STEP=0
REGISTRY_PID=""
SERVE_PID=""

step() {
    STEP=$((STEP + 1))
    printf '\n==> [%d/%d] %s\n' "$STEP" "$N_STEPS" "$*"
}

die() {
    printf '\ndemo: step %d failed: %s\n' "$STEP" "$*" >&2
    exit 1
}

# Prints a command as one would type it (single quotes where the shell needs them).
show() {
    local line='$' a
    for a in "$@"; do
        if [[ $a =~ ^[][A-Za-z0-9_./:=@%+,-]+$ && $a != *[* ]]; then
            line+=" $a"
        else
            line+=" '${a//\'/\'\\\'\'}'"
        fi
    done
    printf '%s\n' "$line"
}

# Runs a command, shown first; on failure says which step broke.
run() {
    show "$@"
    "$@" || die "'$*' exited with status $?"
}

stop_pid() { # PID NAME: SIGTERM, then wait for it
    local pid=$1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    printf 'demo: stopping %s (pid %s)\n' "$2" "$pid"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    stop_pid "$SERVE_PID" "dlc serve"
    stop_pid "$REGISTRY_PID" "dlc registry serve"
    if [ $rc -eq 0 ]; then
        printf '\ndemo: done in %d s; everything it made is in %s\n' $((SECONDS - START)) "$OUT"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until URL answers 2xx, or PID exits (status 1 then), up to SECONDS_MAX.
wait_http() {
    local url=$1 pid=$2 max=$3
    for _ in $(seq 1 $((max * 10))); do
        curl -fs -o /dev/null "$url" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

[ -x "$DLC" ] || die "$DLC is not built: run 'make demo' (or 'make' first)"
[ -x "$BUILD_DIR/runtime/cpu/tensor" ] && [ -x "$BUILD_DIR/runtime/gpu/tensor" ] ||
    die "the tensor runtime is not built under $BUILD_DIR/runtime: run 'make'"
rm -rf "$OUT"
mkdir -p "$OUT"
export DLC_ROOT=$OUT/store

step "Build the CPU and GPU images of the tensor runtime"
run "$DLC" build -f images/tensor-runtime.json --build-dir "$BUILD_DIR"
run "$DLC" images

step "Make a small dataset (two interleaved half-moons, 2 classes)"
run "$PYTHON" scripts/make-sample-data.py "$OUT/data"

step "Train in a container, the SageMaker way (model.tar.gz out)"
"$DLC" help train >/dev/null 2>&1 ||
    die "this dlc has no 'train' command yet (the runner, issue 5): nothing to train with"
run "$DLC" train --rm --channel training="$OUT/data/training" \
    --channel validation="$OUT/data/validation" --output "$OUT" \
    --hp hidden_units='[16, 16]' --hp loss=sparse_categorical_crossentropy \
    --hp epochs=20 --hp learning_rate=0.01 --hp batch_size=64 --hp seed=1 "$IMAGE-cpu"
[ -s "$OUT/model.tar.gz" ] || die "dlc train wrote no $OUT/model.tar.gz"
run tar -tzvf "$OUT/model.tar.gz"

step "Start a local registry (dlc registry serve) on a free loopback port"
REGISTRY_PORT=$(free_port)
REGISTRY=127.0.0.1:$REGISTRY_PORT
printf '$ %s registry serve --listen %s --root %s &\n' "$DLC" "$REGISTRY" "$OUT/registry"
"$DLC" registry serve --listen "$REGISTRY" --root "$OUT/registry" --access-log none \
    >"$OUT/registry.log" 2>&1 &
REGISTRY_PID=$!
wait_http "http://$REGISTRY/v2/" "$REGISTRY_PID" 30 ||
    die "the registry did not come up: $(tail -5 "$OUT/registry.log")"
echo "registry up at http://$REGISTRY"

step "Push both variants"
run "$DLC" push "$IMAGE-cpu" "$REGISTRY/$IMAGE-cpu"
run "$DLC" push "$IMAGE-gpu" "$REGISTRY/$IMAGE-gpu"

step "Pull the CPU variant back into a fresh store"
export DLC_ROOT=$OUT/store-pulled
run "$DLC" pull "$REGISTRY/$IMAGE-cpu" "$IMAGE-cpu"
run "$DLC" images

step "Serve the trained model from the pulled image (dlc serve)"
SERVE_PORT=$(free_port)
printf '$ %s serve %s --model %s -p 127.0.0.1:%s:8080 &\n' "$DLC" "$IMAGE-cpu" \
    "$OUT/model.tar.gz" "$SERVE_PORT"
"$DLC" serve "$IMAGE-cpu" --model "$OUT/model.tar.gz" -p "127.0.0.1:$SERVE_PORT:8080" \
    >"$OUT/serve.url" 2>"$OUT/serve.log" &
SERVE_PID=$!
for _ in $(seq 1 600); do
    [ -s "$OUT/serve.url" ] && break
    kill -0 "$SERVE_PID" 2>/dev/null || break
    sleep 0.1
done
URL=$(head -1 "$OUT/serve.url" 2>/dev/null || true)
[ -n "$URL" ] || die "dlc serve did not get ready:
$(cat "$OUT/serve.log")"
echo "serving at $URL"

step "Ask it for predictions (POST /invocations)"
echo "request: $(cat "$OUT/data/request.json")"
printf '$ curl -s -H "Content-Type: application/json" --data @%s %s/invocations\n' \
    "$OUT/data/request.json" "$URL"
ANSWER=$(curl -fsS -H 'Content-Type: application/json' --data @"$OUT/data/request.json" \
    "$URL/invocations") || die "the request failed"
echo "answer:  $ANSWER"
"$PYTHON" - "$ANSWER" "$OUT/data/request-labels.json" <<'EOF' || die "the predictions are wrong"
import json, sys
probs = json.loads(sys.argv[1])["predictions"]
labels = json.load(open(sys.argv[2]))
classes = [max(range(len(p)), key=p.__getitem__) for p in probs]
right = sum(c == l for c, l in zip(classes, labels))
print(f"predicted classes {classes}, true classes {labels}: {right}/{len(labels)} right")
sys.exit(0 if right >= len(labels) - 1 else 1)
EOF
