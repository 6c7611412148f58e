"""Shared fixtures for dlc's integration tests.

They drive the real binaries (build/dlc, build/runtime/*/tensor) and real peers
(skopeo, umoci, runc, docker-registry, pocl). Every test gets a fresh DLC_ROOT; servers
listen on loopback ports chosen at run time and are stopped by the fixture that starts them.
Area-specific helpers live in helpers_<area>.py beside this file.
"""
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("DLC_BUILD", REPO / "build"))
DLC = BUILD / "dlc"


def free_port():
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, check=True, env=None, timeout=300, **kw):
    """Runs a command, returns CompletedProcess with text stdout/stderr."""
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=e,
                       timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {p.returncode}\n"
                             f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def require_tool(name):
    """Peers are installed by `make deps`; a missing one is a failure, not a skip."""
    path = shutil.which(name)
    assert path, f"{name} is not installed: run `make deps`"
    return path


_PUBLIC = {}


def public_build():
    """(dlc, build dir, images dir) copied where every user can reach them.

    Rootless tests run dlc as another user, and a checkout may sit under a directory only
    its owner can enter (a 0700 home or mktemp dir), so they run this copy instead."""
    if not _PUBLIC:
        import tempfile
        top = Path(tempfile.mkdtemp(prefix="dlc-public-build-"))
        os.chmod(top, 0o755)
        build = top / "build"
        for rel in ("dlc", "runtime/cpu/tensor", "runtime/gpu/tensor"):
            if (BUILD / rel).exists():
                (build / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(BUILD / rel, build / rel)
        shutil.copytree(REPO / "images", top / "images")
        (top / "runtime").mkdir()
        shutil.copy2(REPO / "runtime" / "VERSION", top / "runtime" / "VERSION")
        for p in [top, *top.rglob("*")]:
            os.chmod(p, 0o755 if p.is_dir() or os.access(p, os.X_OK) else 0o644)
        _PUBLIC.update(dlc=build / "dlc", build=build, images=top / "images", top=top)
    return _PUBLIC["dlc"], _PUBLIC["build"], _PUBLIC["images"]


@pytest.fixture(scope="session", autouse=True)
def _remove_public_build():
    yield
    from helpers_run import remove_users
    remove_users()
    if _PUBLIC:
        shutil.rmtree(_PUBLIC["top"], ignore_errors=True)


class Dlc:
    """Runs build/dlc against one DLC_ROOT."""

    def __init__(self, root):
        self.root = Path(root)

    def __call__(self, *args, check=True, env=None, timeout=300, **kw):
        e = {"DLC_ROOT": str(self.root)}
        if env:
            e.update(env)
        return run([DLC, *args], check=check, env=e, timeout=timeout, **kw)

    @property
    def layout(self):
        return self.root / "images"


@pytest.fixture
def dlc_root(tmp_path):
    root = tmp_path / "dlc-root"
    root.mkdir()
    return root


@pytest.fixture
def dlc(dlc_root):
    assert DLC.exists(), f"{DLC} is not built: run `make`"
    return Dlc(dlc_root)
