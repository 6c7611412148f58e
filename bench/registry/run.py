#!/usr/bin/python3
"""Registry benchmark: `dlc registry serve` against Debian's docker-registry (distribution
2.8.2), both on loopback, in one run.

A random-layer image (default 512 MiB in 4 uncompressed tar layers) is copied by skopeo
into each registry and pulled back into a fresh layout, then pushed and pulled with
`dlc push` / `dlc pull`. Every round starts both registries with empty storage on new ports
(so no client can skip or mount a blob) and the median of the rounds is reported as MB/s
and as the ratio dlc/docker-registry (higher is better for dlc). The two registries take turns
going first.

Usage: run.py [--dlc build/dlc] [--size-mib 512] [--layers 4] [--rounds 3] [--json FILE]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests/integration"))
os.environ.setdefault("DLC_BUILD", str(HERE.parents[1] / "build"))

from helpers_registry import (MT_LAYER_TAR, DockerRegistry, Layout,  # noqa: E402
                              RegistryServer, big_tar_layer)


def sh(*args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=e)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}")
    return p


def timed(*args, env=None):
    os.sync()  # write back what earlier steps left dirty, so it is not billed to this one
    t0 = time.perf_counter()
    sh(*args, env=env)
    return time.perf_counter() - t0


def make_image(tmp, size_mib, layers):
    lay = Layout(tmp / "layout")
    descs, diff_ids = [], []
    per = size_mib * (1 << 20) // layers
    for i in range(layers):
        path = tmp / f"layer{i}.tar"
        big_tar_layer(path, per, None)
        d, size = lay.put_file_blob(path)
        descs.append({"mediaType": MT_LAYER_TAR, "digest": d, "size": size})
        diff_ids.append(d)
    return lay.path, lay.add_manifest("bench", descs, diff_ids)


def one_round(dlc, layout, tmp, skopeo, store, ours_first):
    res = {}
    servers = [("dlc", lambda: RegistryServer(tmp / "ours", "--access-log", "none").start()),
               ("docker-registry", lambda: DockerRegistry(tmp / "theirs").start())]
    if not ours_first:  # alternate, so neither always runs on a warmer or busier machine
        servers.reverse()
    for name, start in servers:
        srv = start()
        try:
            ref = f"docker://{srv.host}/bench/image:1"
            out = tmp / "pulled"
            res[(name, "skopeo push")] = timed(*skopeo, "copy", "--dest-tls-verify=false",
                                               f"oci:{layout}:bench", ref)
            res[(name, "skopeo pull")] = timed(*skopeo, "copy", "--src-tls-verify=false",
                                               ref, f"oci:{out}:bench")
            shutil.rmtree(out)
            env = {"DLC_ROOT": str(store)}
            res[(name, "dlc push")] = timed(dlc, "push", "bench:1", f"{srv.host}/bench/dlc:1",
                                            env=env)
            fresh = {"DLC_ROOT": str(tmp / "fresh")}
            res[(name, "dlc pull")] = timed(dlc, "pull", f"{srv.host}/bench/dlc:1", env=fresh)
            shutil.rmtree(tmp / "fresh")
        finally:
            srv.stop()
            shutil.rmtree(tmp / "ours", ignore_errors=True)
            shutil.rmtree(tmp / "theirs", ignore_errors=True)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dlc", default=os.environ["DLC_BUILD"] + "/dlc")
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    for tool in ("skopeo", "docker-registry"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed: run `make deps`")
    skopeo = ["skopeo", "--insecure-policy"]
    with tempfile.TemporaryDirectory(prefix="dlc-bench-registry-") as t:
        tmp = Path(t)
        print(f"registry benchmark: {a.size_mib} MiB image in {a.layers} random layers, "
              f"median of {a.rounds} rounds", flush=True)
        layout, digest = make_image(tmp, a.size_mib, a.layers)
        (tmp / "store/images").mkdir(parents=True)
        sh(*skopeo, "copy", f"oci:{layout}:bench", f"oci:{tmp}/store/images:bench:1")
        rounds = []
        for i in range(a.rounds):
            # skopeo keeps a blob-info cache; fresh registries on new ports defeat it
            (tmp / f"r{i}").mkdir()
            rounds.append(one_round(a.dlc, layout, tmp / f"r{i}", skopeo, tmp / "store",
                                    i % 2 == 0))
    mb = a.size_mib * (1 << 20) / 1e6
    ops = ["skopeo push", "skopeo pull", "dlc push", "dlc pull"]
    table = {}
    print(f"{'':14} {'dlc registry':>14} {'docker-registry':>16} {'ratio':>7}")
    for op in ops:
        ours = statistics.median(r[("dlc", op)] for r in rounds)
        theirs = statistics.median(r[("docker-registry", op)] for r in rounds)
        table[op] = {"dlc_mb_s": mb / ours, "docker_registry_mb_s": mb / theirs,
                     "ratio": theirs / ours, "dlc_s": ours, "docker_registry_s": theirs}
        print(f"{op:14} {mb / ours:10.0f} MB/s {mb / theirs:11.0f} MB/s {theirs / ours:6.2f}x",
              flush=True)
    if a.json:
        per_round = [{f"{name} {op}": secs for (name, op), secs in r.items()} for r in rounds]
        Path(a.json).write_text(json.dumps({"size_mib": a.size_mib, "layers": a.layers,
                                            "rounds": a.rounds, "results": table,
                                            "seconds_per_round": per_round}, indent=2))


if __name__ == "__main__":
    main()
