"""`make demo`, the README's first command, as a user runs it: every step, a right
prediction at the end, under two minutes, and nothing left running afterwards."""
import re
import socket
import subprocess
import time

from conftest import BUILD, REPO, Dlc

STEPS = 8
TIME_LIMIT_S = 120


def refused(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_make_demo(tmp_path):
    out = tmp_path / "demo-out"
    t0 = time.monotonic()
    p = subprocess.run(["make", "--no-print-directory", f"BUILD={BUILD}", f"DEMO_OUT={out}",
                        "demo"], cwd=REPO, capture_output=True, text=True, timeout=600)
    took = time.monotonic() - t0
    log = f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    assert p.returncode == 0, log
    for i in range(1, STEPS + 1):
        assert f"==> [{i}/{STEPS}] " in p.stdout, log
    m = re.search(r"predicted classes \[.*\], true classes \[.*\]: (\d+)/(\d+) right", p.stdout)
    assert m and int(m.group(1)) >= int(m.group(2)) - 1, log
    assert (out / "model.tar.gz").stat().st_size > 0
    assert took < TIME_LIMIT_S, f"make demo took {took:.0f} s\n{log}"
    # everything it started is stopped: the registry, dlc serve and its container
    registry = int(re.search(r"registry up at http://127\.0\.0\.1:(\d+)", p.stdout).group(1))
    served = int(re.search(r"serving at http://127\.0\.0\.1:(\d+)", p.stdout).group(1))
    assert refused(registry) and refused(served)
    for store in ("store", "store-pulled"):
        assert Dlc(out / store)("ps", "-a").stdout.splitlines()[1:] == []
