#!/usr/bin/python3
"""make bench-run: container start-up, `dlc run --rm IMG /bin/true`, against crun and runc
running the same rootfs (a bundle from `dlc export-bundle`, so the same process settings,
capabilities, masked paths and seccomp profile), with hyperfine.

  warm:  layers unpacked and the seccomp filter compiled already (the common case)
  cold:  a fresh layer cache and seccomp cache every run (unpack + verify included)
  floor: `dlc version` and `crun --version` (loading the binaries) and the wrapper crun
         needs on a hybrid cgroup host (unshare -m + umount /sys/fs/cgroup/unified)
  run-only: the same `dlc run` from a dlc linked with the runner's libraries only (the full
         binary also loads libcurl, libmicrohttpd, gnutls, ... for other commands)

Prints medians and ratios; --json FILE keeps hyperfine's raw results."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("DLC_BUILD", REPO / "build"))
DLC = BUILD / "dlc"
RUN_ONLY = BUILD / "bench" / "dlc-run-only"  # dlc linked with the runner's libraries only
sys.path.insert(0, str(REPO / "tests" / "integration"))
from helpers_run import busybox_entries, write_image  # noqa: E402


def need(tool):
    path = shutil.which(tool)
    if not path:
        sys.exit(f"bench-run: {tool} is not installed (make deps)")
    return path


def hyperfine(cmds, runs, warmup, prepare=None, export=None):
    args = ["hyperfine", "-N", "--style", "none", "--runs", str(runs), "--warmup", str(warmup)]
    if prepare:
        args += ["--prepare", prepare]
    out = export or tempfile.mktemp(suffix=".json")
    args += ["--export-json", out] + [c for _, c in cmds]
    for name, c in cmds:
        print(f"  {name:<28} {c}", flush=True)
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    res = json.loads(Path(out).read_text())["results"]
    return {name: r for (name, _), r in zip(cmds, res)}


def report(title, res, base):
    print(f"\n{title}")
    b = res[base]["median"]
    for name, r in res.items():
        cpu = (r["user"] + r["system"]) * 1000
        print(f"  {name:<28} median {r['median'] * 1000:7.1f} ms  mean {r['mean'] * 1000:7.1f}"
              f" ± {r['stddev'] * 1000:5.1f} ms  cpu {cpu:5.1f} ms  x{r['median'] / b:5.2f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--json", help="write the raw results here")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench-run: run as root (crun and runc need it for the comparison)")
    for t in ("hyperfine", "crun", "runc", "skopeo"):
        need(t)
    assert DLC.exists() and RUN_ONLY.exists(), "run it through `make bench-run`"
    tmp = Path(tempfile.mkdtemp(prefix="dlc-bench-run-"))
    try:
        layout = tmp / "layout"
        write_image(layout, "b", [busybox_entries()], {"Cmd": ["/bin/true"]})
        root = tmp / "root"
        root.mkdir()
        env = dict(os.environ, DLC_ROOT=str(root))
        subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", f"oci:{layout}:b",
                        f"oci:{root}/images:bench:1"], check=True)
        bundle = tmp / "bundle"
        subprocess.run([DLC, "export-bundle", "bench:1", bundle, "/bin/true"], env=env,
                       check=True)
        os.environ["DLC_ROOT"] = str(root)
        crun = (f"unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; "
                f"exec crun run -b {bundle} dlc-bench-crun'")
        wrapper = "unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec true'"
        results = {}
        print(f"warm start ({a.runs} runs each)")
        results["warm"] = hyperfine([("dlc run --rm", f"{DLC} run --rm bench:1 /bin/true"),
                                     ("dlc-run-only run --rm",
                                      f"{RUN_ONLY} run --rm bench:1 /bin/true"),
                                     ("crun run (+ wrapper)", crun),
                                     ("runc run", f"runc run -b {bundle} dlc-bench-runc")],
                                    a.runs, 3)
        report("warm", results["warm"], "crun run (+ wrapper)")
        print(f"\nfloors ({a.runs} runs each)")
        results["floor"] = hyperfine([("dlc version", f"{DLC} version"),
                                      ("dlc-run-only version", f"{RUN_ONLY} version"),
                                      ("crun --version", "crun --version"),
                                      ("crun wrapper only", wrapper)], a.runs, 3)
        report("floors", results["floor"], "crun --version")
        cold_runs = max(5, a.runs // 4)
        print(f"\ncold start ({cold_runs} runs: layer cache and seccomp cache removed first)")
        results["cold"] = hyperfine([("dlc run --rm (cold)",
                                      f"{DLC} run --rm bench:1 /bin/true")], cold_runs, 0,
                                    prepare=f"rm -rf {root}/layers {root}/cache")
        report("cold", results["cold"], "dlc run --rm (cold)")
        w, f = results["warm"], results["floor"]
        crun_alone = w["crun run (+ wrapper)"]["median"] - f["crun wrapper only"]["median"]
        for name in ("dlc run --rm", "dlc-run-only run --rm"):
            m = w[name]["median"]
            print(f"\nwarm {name}: x{m / w['crun run (+ wrapper)']['median']:.2f} of crun with "
                  f"its wrapper, x{m / crun_alone:.2f} of crun alone (medians; goal <= 1.0)")
        if a.json:
            Path(a.json).write_text(json.dumps(results, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
