"""Rootless: the same runs as a non-root user, through a user namespace that maps the
caller to root inside (no setuid helpers): isolation, channels, files owned by the caller,
dlc train end to end, and clear errors for what needs privileges."""
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

from conftest import free_port, public_build, run
from helpers_run import (as_user, busybox_entries, copy_into_store, ensure_user, probe_bytes,
                         write_image)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="the runner tests start containers as root (the rootless ones setpriv to a test user)")

UID = 2345
TRAIN = (b"#!/bin/sh\nid -u > $SM_MODEL_DIR/who\ncat $SM_CHANNEL_TRAINING/* "
         b"> $SM_MODEL_DIR/model.bin\necho done\n")


class UserDlc:
    """Runs build/dlc as the test user against a store that user owns."""

    def __init__(self, root, uid):
        self.root, self.uid, self.layout = Path(root), uid, Path(root) / "images"

    def __call__(self, *args, check=True, timeout=120):
        env = {"PATH": os.environ["PATH"], "DLC_ROOT": str(self.root), "HOME": str(self.root)}
        p = subprocess.run(as_user(self.uid, [public_build()[0], *args]), capture_output=True,
                           text=True,
                           env=env, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"dlc {args} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    uid = ensure_user("dlc-rootless", UID)
    base = Path(tempfile.mkdtemp(prefix="dlc-rootless-"))  # reachable by the user
    os.chmod(base, 0o755)
    layout = tmp_path_factory.mktemp("rootless-images") / "layout"
    write_image(layout, "r", [busybox_entries({"usr/local/bin/probe": (probe_bytes(), 0o755),
                                               "usr/local/bin/train": (TRAIN, 0o755)})],
                {"Env": ["PATH=/usr/local/bin:/bin"], "Cmd": ["sh"]})
    d = UserDlc(base / "root", uid)
    d.root.mkdir()
    copy_into_store(d, layout, "r", "rootless:1")
    run(["chown", "-R", f"{uid}:{uid}", base])
    d.base = base
    yield d
    shutil.rmtree(base, ignore_errors=True)


def user_dir(u, name):
    p = u.base / name
    p.mkdir()
    os.chown(p, u.uid, u.uid)
    return p


def test_rootless_run_is_root_inside_and_confined(user):
    r = user("run", "--rm", "rootless:1", "sh", "-c", "id -u; cat /proc/self/uid_map")
    lines = r.stdout.split("\n")
    assert lines[0] == "0"
    assert lines[1].split() == ["0", str(user.uid), "1"]
    for attempt in ("mount", "unshare", "keyctl", "sysctl", "kcore", "mknod", "ptrace"):
        r = user("run", "--rm", "rootless:1", "probe", attempt, check=False)
        assert r.stdout.startswith("blocked"), (attempt, r.stdout)
    assert user("run", "--rm", "rootless:1", "probe", "netifs").stdout.split() == ["lo"]
    assert sorted(user("run", "--rm", "rootless:1", "probe", "pids").stdout.split()) == ["1", "2"]


def test_rootless_files_belong_to_the_caller(user):
    data = user_dir(user, "data")
    (data / "part").write_text("rows")
    model = user_dir(user, "model")
    user("run", "--rm", "--channel", f"training={data}", "--model-dir", model, "rootless:1",
         "train")
    for p in model.iterdir():
        assert p.stat().st_uid == user.uid
    assert (model / "who").read_text() == "0\n"  # root inside, the caller outside
    r = user("run", "--rm", "--channel", f"training={data}", "rootless:1", "probe", "write",
             "/opt/ml/input/data/training/new", check=False)
    assert r.stdout.startswith("blocked")


def test_rootless_train_end_to_end(user):
    data = user_dir(user, "tdata")
    (data / "x.npy").write_bytes(b"\x93NUMPY")
    out = user.base / "out"
    r = user("train", "--channel", f"training={data}", "--output", out, "rootless:1")
    assert r.stdout == "done\n"
    assert (out / "model.tar.gz").stat().st_uid == user.uid
    with tarfile.open(out / "model.tar.gz") as t:
        assert sorted(t.getnames()) == ["model.bin", "who"]


def test_rootless_errors_are_clear(user):
    cdir = user.root / "containers"
    before = sorted(cdir.iterdir()) if cdir.exists() else []
    r = user("run", "--rm", "--user", "1000", "rootless:1", "true", check=False)
    assert r.returncode == 125
    assert "is not mapped in the user namespace" in r.stderr
    r = user("run", "--rm", "--memory", "64m", "rootless:1", "true", check=False)
    assert r.returncode == 125 and r.stderr.count("\n") == 1
    assert (sorted(cdir.iterdir()) if cdir.exists() else []) == before


def test_rootless_detach_ps_stop_rm(user):
    cid = user("run", "-d", "rootless:1", "sleep", "30").stdout.strip()
    assert cid[:12] in user("ps").stdout
    user("stop", "-t", "1", cid)
    assert "Exited (143)" in user("ps", "-a").stdout
    user("rm", cid)
    assert cid[:12] not in user("ps", "-a").stdout


def read_published(port, tries=100):
    """What a connection to the published port gets (the server may still be starting)."""
    for _ in range(tries):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                data = c.recv(100)
            if data:
                return data
        except OSError:
            pass
        time.sleep(0.1)
    return b""


def test_rootless_publish_reaches_the_containers_network(user):
    """-p dials inside the container's network namespace through the fd the runner opened
    before the (undumpable) init could refuse a rootless monitor its /proc links."""
    port = free_port()
    cid = user("run", "-d", "-p", f"127.0.0.1:{port}:7000", "rootless:1", "nc", "-ll", "-p",
               "7000", "-e", "echo", "hello").stdout.strip()
    try:
        for _ in range(3):  # the first connection starts the namespace helper, later reuse it
            assert read_published(port) == b"hello\n"
    finally:
        user("rm", "-f", cid)
