#!/usr/bin/python3
"""Serving benchmark: requests/s and p50/p99 latency of POST /invocations with wrk
(Debian's), single-row and 100-row JSON bodies, loopback only, bounded duration.

Two targets, so the cost of the container path shows:
  dlc serve   the cpu image in a container, through the port dlc publishes on the host
              (accept on the host, relay into the container's network namespace)
  direct      the same `tensor serve` binary on the host, no container, no relay

The model is the demo's (two moons, 2 -> 16 -> 16 -> 2, trained by `tensor train`). Each
answer's shape is checked once before wrk runs.

Usage: run.py [--duration 10] [--connections 32] [--threads 2] [--json FILE]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests/integration"))
os.environ.setdefault("DLC_BUILD", str(HERE.parents[1] / "build"))

from conftest import Dlc, free_port  # noqa: E402
from helpers_serve import (IMAGE, DlcServe, Server, build_cpu_image, invoke,  # noqa: E402
                           predictions, train_model)

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = f:read("*a")
f:close()
"""

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def latency_ms(text, pct):
    m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not m:
        raise SystemExit(f"no {pct}% latency in wrk's output:\n{text}")
    return float(m.group(1)) * UNITS[m.group(2)]


def wrk(url, body_file, lua, a):
    env = dict(os.environ, BENCH_BODY=str(body_file))
    p = subprocess.run(["wrk", f"-t{a.threads}", f"-c{a.connections}", f"-d{a.duration}s",
                        "--latency", "-s", str(lua), url + "/invocations"],
                       capture_output=True, text=True, env=env, timeout=a.duration + 60)
    if p.returncode != 0:
        raise SystemExit(f"wrk failed:\n{p.stdout}\n{p.stderr}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", p.stdout).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", p.stdout)
    socket_errors = re.search(r"Socket errors: (.*)", p.stdout)
    return {"requests_per_s": rps, "p50_ms": latency_ms(p.stdout, 50),
            "p99_ms": latency_ms(p.stdout, 99), "non_2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": socket_errors.group(1) if socket_errors else ""}


def check(port, body_file, rows):
    status, headers, body = invoke(port, body_file.read_bytes())
    got = predictions(status, headers, body)
    if got.shape != (rows, 2):
        raise SystemExit(f"unexpected answer shape {got.shape}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: run `make deps`")
    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    results, server, served = [], None, None
    try:
        model_dir, x = train_model(tmp / "train")
        bodies = {}
        for rows in (1, 100):
            bodies[rows] = tmp / f"body-{rows}.json"
            bodies[rows].write_text(json.dumps({"instances": x[:rows].tolist()}))
        lua = tmp / "post.lua"
        lua.write_text(LUA)
        store = Dlc(tmp / "store")
        build_cpu_image(store)
        port = free_port()
        served = DlcServe(store.root, IMAGE, "--model-dir", model_dir, "-p", f"127.0.0.1:{port}:8080")
        if served.wait_url() is None:
            raise SystemExit(f"dlc serve did not get ready:\n{served.stop()[1]}")
        server = Server(model_dir)
        for target, url, p in (("dlc serve", served.url, served.port),
                               ("direct", f"http://127.0.0.1:{server.port}", server.port)):
            for rows, body in bodies.items():
                check(p, body, rows)
                r = wrk(url, body, lua, a)
                r.update(target=target, rows=rows)
                results.append(r)
                print(f"{target:10} {rows:4} row(s)  {r['requests_per_s']:10.0f} req/s  "
                      f"p50 {r['p50_ms']:7.3f} ms  p99 {r['p99_ms']:7.3f} ms"
                      + (f"  non-2xx {r['non_2xx']}" if r["non_2xx"] else "")
                      + (f"  socket errors: {r['socket_errors']}" if r["socket_errors"] else ""),
                      flush=True)
    finally:
        logs = {"dlc serve": served.stop()[1] if served is not None else "",
                "direct": server.stop()[1] if server is not None else ""}
        shutil.rmtree(tmp, ignore_errors=True)
    for target, log in logs.items():
        m = re.search(r"(\d+) requests \((\d+) rows\) were answered in (\d+) predict calls", log)
        if m:
            req, rows, calls = map(int, m.groups())
            print(f"{target:10} batching: {req} requests in {calls} predict calls "
                  f"({req / max(calls, 1):.2f} requests, {rows / max(calls, 1):.1f} rows a call)")
    print(f"(wrk -t{a.threads} -c{a.connections} -d{a.duration}s, {os.cpu_count()} CPUs, "
          "loopback; the server's access log is on, as by default)")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
