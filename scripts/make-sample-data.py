#!/usr/bin/python3
"""Writes the demo's dataset: two interleaved half-moons (scikit-learn's make_moons, redone
with numpy so the demo needs nothing beyond Debian's python3-numpy).

    scripts/make-sample-data.py OUTDIR [--rows N] [--seed S]

OUTDIR/training/{train,labels}.npy and OUTDIR/validation/{train,labels}.npy are SageMaker
channels in the layout `tensor train` reads (features float32 (n, 2), labels the class
index (n, 1)); OUTDIR/request.json holds a few validation rows as an /invocations body
({"instances": [[x, y], ...]}) and OUTDIR/request-labels.json their true classes.
The same seed gives the same bytes.
"""
import argparse
import json
import os

import numpy as np


def moons(n, rng, noise=0.1):
    """n points, half on each moon, shuffled; labels 0 (upper) and 1 (lower)."""
    upper = n // 2
    lower = n - upper
    t_up = rng.uniform(0.0, np.pi, upper)
    t_lo = rng.uniform(0.0, np.pi, lower)
    x = np.concatenate([
        np.stack([np.cos(t_up), np.sin(t_up)], axis=1),
        np.stack([1.0 - np.cos(t_lo), 0.5 - np.sin(t_lo)], axis=1),
    ])
    x += rng.normal(0.0, noise, x.shape)
    y = np.concatenate([np.zeros(upper), np.ones(lower)])
    order = rng.permutation(n)
    return x[order].astype(np.float32), y[order].astype(np.float32).reshape(-1, 1)


def write_channel(outdir, name, x, y):
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, "train.npy"), x)
    np.save(os.path.join(d, "labels.npy"), y)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("--rows", type=int, default=2000, help="training rows (default 2000)")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    if a.rows < 10:
        ap.error("--rows must be at least 10")
    rng = np.random.default_rng(a.seed)
    x, y = moons(a.rows, rng)
    vx, vy = moons(max(a.rows // 5, 10), rng)
    write_channel(a.outdir, "training", x, y)
    write_channel(a.outdir, "validation", vx, vy)
    rows = [[round(float(v), 4) for v in r] for r in vx[:4]]
    with open(os.path.join(a.outdir, "request.json"), "w") as f:
        json.dump({"instances": rows}, f)
        f.write("\n")
    with open(os.path.join(a.outdir, "request-labels.json"), "w") as f:
        json.dump([int(v) for v in vy[:4, 0]], f)
        f.write("\n")
    print(f"{a.outdir}: {len(x)} training and {len(vx)} validation rows of 2 features, "
          f"2 classes (two moons)")


if __name__ == "__main__":
    main()
