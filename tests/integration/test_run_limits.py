"""Limits: --memory (OOM kill reported), --pids-limit (fork bombs contained), --cpus; the
container's cgroups are gone afterwards."""
import json
import os
import time
from pathlib import Path

import pytest

from conftest import Dlc
from helpers_run import busybox_entries, copy_into_store, probe_bytes, write_image

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="the runner tests start containers as root (the rootless ones setpriv to a test user)")


@pytest.fixture(scope="module")
def lim(tmp_path_factory):
    layout = tmp_path_factory.mktemp("limit-images") / "layout"
    write_image(layout, "l", [busybox_entries({"usr/local/bin/probe": (probe_bytes(), 0o755)})],
                {"Env": ["PATH=/usr/local/bin:/bin"], "Cmd": ["sh"]})
    d = Dlc(tmp_path_factory.mktemp("limit-root"))
    copy_into_store(d, layout, "l", "lim:1")
    return d


def dlc_cgroups():
    """The dlc-* cgroup directories anywhere in the hierarchies."""
    found = []
    for base in Path("/sys/fs/cgroup").iterdir():
        if base.is_dir():
            found += [p for p in base.rglob("dlc-*") if p.is_dir()]
    return found


def test_memory_hog_gets_the_oom_message(lim):
    before = dlc_cgroups()
    r = lim("run", "--rm", "--memory", "64m", "lim:1", "dd", "if=/dev/zero", "of=/dev/null",
            "bs=256M", "count=1", check=False)
    assert r.returncode == 137
    assert r.stderr.endswith("dlc: container killed: out of memory (limit 64 MiB)\n")
    r = lim("run", "--rm", "--memory", "1g", "lim:1", "dd", "if=/dev/zero", "of=/dev/null",
            "bs=16M", "count=1", check=False)
    assert r.returncode == 0 and "out of memory" not in r.stderr
    assert dlc_cgroups() == before


def test_pids_limit_contains_a_fork_bomb(lim):
    r = lim("run", "--rm", "--pids-limit", "20", "lim:1", "probe", "fork", "200")
    n = int(r.stdout.split()[1])
    assert 10 <= n < 20, r.stdout  # init and the probe count too
    assert "Resource temporarily unavailable" in r.stdout
    t = time.time()
    r = lim("run", "--rm", "--pids-limit", "50", "--timeout", "2", "--stop-timeout", "1",
            "lim:1", "sh", "-c", "(f(){ f|f& }; f); exec sleep 30", check=False)
    # the bomb runs in a subshell forked before it: a fork that fails in the main shell
    # would end it with 2 (ash's "can't fork" is fatal) before --timeout does
    assert r.returncode in (137, 143)
    assert time.time() - t < 10
    assert lim("run", "--rm", "lim:1", "probe", "fork", "100").stdout.startswith(
        "forked 100 of 100")  # the host (and the next container) can still fork


def test_limits_are_written_and_removed(lim):
    cid = lim("run", "-d", "--cpus", "0.5", "--memory", "96m", "--pids-limit", "33", "lim:1",
              "sleep", "30").stdout.strip()
    state = json.loads((lim.root / "containers" / cid / "state.json").read_text())
    paths = [Path(p) for p in state["cgroups"]]
    files = {}
    for p in paths:
        for name in ("cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.max", "memory.limit_in_bytes",
                     "memory.max", "pids.max"):
            if (p / name).exists():
                files[name] = (p / name).read_text().strip()
        assert str(state["pid"]) in (p / "cgroup.procs").read_text().split()
    if "cpu.max" in files:  # cgroup v2
        assert files["cpu.max"] == "50000 100000" and files["memory.max"] == str(96 << 20)
    else:
        assert files["cpu.cfs_quota_us"] == "50000" and files["cpu.cfs_period_us"] == "100000"
        assert files["memory.limit_in_bytes"] == str(96 << 20)
    assert files["pids.max"] == "33"
    lim("rm", "-f", cid)
    assert not any(p.exists() for p in paths)


def test_limits_need_writable_cgroups_message(lim, tmp_path):
    r = lim("run", "--rm", "--cpus", "0", "lim:1", "true", check=False)
    assert r.returncode == 125 and r.stderr.startswith("dlc: run: --cpus")
