"""Interop: `dlc export-bundle` gives a bundle runc (and crun) run unchanged, with the same
output as `dlc run` (one deliberate difference: dlc's /dev is read-only, runc must create
its device nodes in a writable one; both refuse to open a new node); layers with whiteouts give the same tree as `umoci unpack`, and the
overlay root shows that tree at run time."""
import json
import os
import shutil
import subprocess
import uuid

import pytest

from conftest import Dlc, require_tool, run
from helpers_run import (Entry, busybox_entries, copy_into_store, probe_bytes, tree_listing,
                         write_image)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="the runner tests start containers as root (the rootless ones setpriv to a test user)")

CHECK = ("id; echo \"$FROM_IMAGE $X\"; cat /etc/motd; pwd; "
         "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; "
         "probe mount; probe umount; probe kcore; probe sysctl; probe keyctl; probe hostdev; "
         "ulimit -n; probe netifs")

WHITEOUT_L1 = [Entry("a", "d"), Entry("a/x", data=b"x"), Entry("a/b", "d"),
               Entry("a/b/y", data=b"y"), Entry("c", "d"), Entry("c/z", data=b"z"),
               Entry("f", data=b"f")]
WHITEOUT_L2 = [Entry(".wh.f", data=b""), Entry("a", "d"), Entry("a/.wh..wh..opq", data=b""),
               Entry("a/new", data=b"new"), Entry("c", "d"), Entry("c/.wh.z", data=b"")]


@pytest.fixture(scope="module")
def io_(tmp_path_factory):
    layout = tmp_path_factory.mktemp("interop-images") / "layout"
    base = busybox_entries({"usr/local/bin/probe": (probe_bytes(), 0o755),
                            "etc/motd": (b"interop\n", 0o644)})
    write_image(layout, "i", [base], {"Env": ["PATH=/usr/local/bin:/bin", "FROM_IMAGE=yes"],
                                      "WorkingDir": "/tmp", "Cmd": ["sh", "-c", CHECK]})
    write_image(layout, "wh", [base, WHITEOUT_L1, WHITEOUT_L2], {"Cmd": ["sh"]})
    d = Dlc(tmp_path_factory.mktemp("interop-root"))
    copy_into_store(d, layout, "i", "interop:1")
    copy_into_store(d, layout, "wh", "whiteouts:1")
    d.layout_dir = layout
    return d


def blocked_what(out):
    """The output with the errno text of "blocked: what: why" lines dropped (a node on a
    nodev mount is EACCES, one the device cgroup refuses EPERM: both blocked)."""
    return [":".join(ln.split(":")[:2]) if ln.startswith("blocked:") else ln
            for ln in out.splitlines()]


def runtime_run(tool, bundle):
    name = "dlc-interop-" + uuid.uuid4().hex[:8]
    if tool == "crun":  # crun refuses hybrid cgroups unless v2 is unmounted (oci-specs.md §6)
        args = ["unshare", "-m", "sh", "-c",
                f"umount /sys/fs/cgroup/unified 2>/dev/null; exec crun run -b {bundle} {name}"]
    else:
        args = [tool, "run", "-b", bundle, name]
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("tool", ["runc", "crun"])
def test_bundle_runs_unchanged_with_the_same_output(io_, tmp_path, tool):
    require_tool(tool)
    bundle = tmp_path / "bundle"
    io_("export-bundle", "-e", "X=1", "interop:1", bundle)
    assert sorted(p.name for p in bundle.iterdir()) == ["config.json", "rootfs"]
    config = json.loads((bundle / "config.json").read_text())
    assert config["process"]["cwd"] == "/tmp" and config["linux"]["seccomp"]
    r = runtime_run(tool, bundle)
    assert r.returncode == 0, r.stderr
    mine = io_("run", "--rm", "-e", "X=1", "interop:1").stdout
    assert blocked_what(r.stdout) == blocked_what(mine)
    assert "blocked: mount" in mine and "CapEff:\t00000000a80425fb" in mine


def test_bundle_of_a_command_and_user(io_, tmp_path):
    require_tool("runc")
    bundle = tmp_path / "bundle"
    io_("export-bundle", "--user", "app", "interop:1", bundle, "sh", "-c", "id; echo $HOME")
    r = runtime_run("runc", bundle)
    assert r.returncode == 0, r.stderr
    assert r.stdout == io_("run", "--rm", "--user", "app", "interop:1", "sh", "-c",
                           "id; echo $HOME").stdout
    assert r.stdout.startswith("uid=1000(app) gid=1000(app)")


def test_whiteouts_match_umoci(io_, tmp_path):
    require_tool("umoci")
    bundle = tmp_path / "bundle"
    io_("export-bundle", "whiteouts:1", bundle)
    ours = {e for e in tree_listing(bundle / "rootfs") if e[0].split("/")[0] in ("a", "c", "f")}
    assert {e[0] for e in ours} == {"a", "a/new", "c"}
    run(["umoci", "unpack", "--image", f"{io_.layout_dir}:wh", tmp_path / "umoci"])
    theirs = {e for e in tree_listing(tmp_path / "umoci" / "rootfs")
              if e[0].split("/")[0] in ("a", "c", "f")}
    assert ours == theirs
    whole_ours = [e for e in tree_listing(bundle / "rootfs")]
    whole_theirs = [e for e in tree_listing(tmp_path / "umoci" / "rootfs")]
    assert whole_ours == whole_theirs
    # the overlay root shows the same at run time
    r = io_("run", "--rm", "whiteouts:1", "sh", "-c", "find /a /c /f 2>/dev/null | sort")
    assert r.stdout.split() == ["/a", "/a/new", "/c"]


def test_export_bundle_refuses_a_nonempty_dir(io_, tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep").write_text("x")
    r = io_("export-bundle", "interop:1", tmp_path / "b", check=False)
    assert r.returncode == 1
    assert r.stderr == f"dlc: export-bundle: {tmp_path / 'b'} exists and is not an empty " \
                       "directory\n"
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["keep"]
