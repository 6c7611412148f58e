#!/usr/bin/python3
"""Build benchmark: `dlc build images/tensor-runtime.json`.

cold     every variant built into a fresh store (nothing cached), median of --rounds
rebuild  the same build again with nothing changed (every layer from the build cache),
         median of --rounds
sizes    compressed image sizes (config + layers, what `dlc images` shows)

for gzip (the default) and zstd. The variants are those whose runtime binary is built
($DLC_BUILD/runtime/<variant>/tensor). Goals: cold <= 3 s, rebuild <= 0.3 s,
cpu image <= 15 MB, gpu image <= 20 MB (MB = 10^6 bytes).

Usage: run.py [--dlc build/dlc] [--build-dir build] [--rounds 3] [--json FILE]
"""
import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GOALS = {"cold": 3.0, "rebuild": 0.3, "cpu": 15e6, "gpu": 20e6}


def dlc_build(dlc, build_dir, root, variant, compress):
    env = dict(os.environ, DLC_ROOT=str(root))
    args = [dlc, "build", "--build-dir", build_dir, "--variant", variant, "--compress", compress]
    t0 = time.monotonic()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env,
                       cwd=REPO)
    took = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if p.returncode != 0:
        raise SystemExit(f"dlc build failed ({p.returncode}):\n{p.stderr}")
    sizes = {}
    cur = None
    for line in p.stdout.splitlines():
        if not line.startswith(" "):
            cur = line.split(":", 1)[0]
        elif m := re.match(r"\s+size\s+.*\((\d+) bytes compressed\)$", line):
            sizes[cur] = int(m.group(1))
    return took, cpu, sizes, p.stdout


def measure(dlc, build_dir, variant, compress, rounds):
    cold, cold_cpu, rebuild, sizes = [], [], [], {}
    with tempfile.TemporaryDirectory(prefix="dlc-bench-build-") as tmp:
        for r in range(rounds):
            root = Path(tmp) / f"root{r}"
            took, cpu, sizes, _ = dlc_build(dlc, build_dir, root, variant, compress)
            cold.append(took)
            cold_cpu.append(cpu)
            took, _, _, out = dlc_build(dlc, build_dir, root, variant, compress)
            assert "built" not in out, f"a no-change rebuild wrote a layer:\n{out}"
            rebuild.append(took)
            shutil.rmtree(root)
    return {"cold_s": statistics.median(cold), "cold_cpu_s": statistics.median(cold_cpu),
            "rebuild_s": statistics.median(rebuild), "cold_all": cold, "rebuild_all": rebuild,
            "sizes": sizes}


def fmt_goal(ok):
    return "ok" if ok else "MISSED"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dlc", default=os.environ.get("DLC_BUILD", "build") + "/dlc")
    ap.add_argument("--build-dir", default=os.environ.get("DLC_BUILD", "build"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    build_dir = Path(a.build_dir)
    # Layers are stamped with the last commit's time: pin it, so that a commit landing
    # between a build and its rebuild does not turn the rebuild into a cold build.
    if "SOURCE_DATE_EPOCH" not in os.environ:
        ct = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%ct"],
                            capture_output=True, text=True).stdout.strip()
        os.environ["SOURCE_DATE_EPOCH"] = ct or "0"
    variants = [v for v in ("cpu", "gpu") if (build_dir / "runtime" / v / "tensor").exists()]
    if not variants:
        raise SystemExit(f"no runtime built under {build_dir}/runtime: run `make` first")
    variant = "all" if variants == ["cpu", "gpu"] else variants[0]
    load = os.getloadavg()[0]
    print(f"dlc build images/tensor-runtime.json --variant {variant} "
          f"({os.cpu_count()} CPUs, load {load:.1f}, median of {a.rounds})")
    results = {}
    for compress in ("gzip", "zstd"):
        r = measure(a.dlc, build_dir, variant, compress, a.rounds)
        results[compress] = r
        print(f"  {compress}: cold {r['cold_s']:.2f} s [{fmt_goal(r['cold_s'] <= GOALS['cold'])}]"
              f" ({r['cold_cpu_s']:.2f} s CPU), no-change rebuild {r['rebuild_s']:.3f} s "
              f"[{fmt_goal(r['rebuild_s'] <= GOALS['rebuild'])}]")
        for v, size in sorted(r["sizes"].items()):
            goal = GOALS.get(v)
            mark = f" [{fmt_goal(size <= goal)}, goal {goal / 1e6:.0f} MB]" if goal else ""
            print(f"    {v} image {size / 1e6:.2f} MB ({size} bytes){mark}")
    if len(variants) < 2:
        print(f"  (only {variants[0]}: the other runtime variant is not built)")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
