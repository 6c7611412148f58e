"""dlc build on definitions written by the tests (no tensor runtime needed): validation
errors, reproducibility, the build cache, zstd, whiteouts under umoci, the shared-library
closure running under runc, dlc history. test_build_runtime.py builds images/*.json."""
import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import require_tool, run
from helpers_build import (BUSYBOX, EPOCH, MT_GZIP, MT_ZSTD, check_image, oci_image_tool_validate,
                           parse_build_output, rootfs_tree, runc_run, store_snapshot,
                           tar_members, umoci_unpack, write_json)
from helpers_store import Layout

ENV = {"SOURCE_DATE_EPOCH": EPOCH}


def tool_definition(d):
    """Two variants over a shared base: busybox, libz's closure, /etc files."""
    (d / "files").mkdir(parents=True, exist_ok=True)
    (d / "files" / "a.txt").write_text("variant a\n")
    (d / "files" / "b.txt").write_text("variant b\n")
    return write_json(d / "tool.json", {
        "name": "tool",
        "version": "2.1.0",
        "os": "testos1",
        "job": "training",
        "title": "tool",
        "description": "a test image",
        "source": "https://example.org/tool",
        "entrypoint": ["/bin/sh"],
        "cmd": ["-c", "cat /etc/variant"],
        "env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"],
        "labels": {"org.example.extra": "yes"},
        "tags": ["{version}-{device}-{backend}-{os}", "{major}.{minor}-{device}", "{device}"],
        "base": {
            "libraries": ["libz.so.1"],
            "busybox": {"src": str(BUSYBOX), "applets": ["sh", "cat", "ls"]},
            "copy": [{"dst": "/etc/passwd", "content": "root:x:0:0:root:/root:/bin/sh\n"},
                     {"dst": "/tmp", "dir": True, "mode": "1777"}],
        },
        "variants": {
            "a": {"device": "cpu", "backend": "plain", "env": ["VARIANT=a"],
                  "copy": [{"src": "files/a.txt", "dst": "/etc/variant"}]},
            "b": {"device": "gpu", "backend": "fancy", "labels": {"org.example.b": "1"},
                  "copy": [{"src": "files/b.txt", "dst": "/etc/variant"}]},
        },
    })


def build(dlc, *args, env=None, check=True):
    e = dict(ENV)
    e.update(env or {})
    return dlc("build", *args, env=e, check=check)


# ---- validation ----------------------------------------------------------------------------

BAD = [
    ("unknown-key", {"name": "x", "version": "1", "flavour": "y",
                     "copy": [{"dst": "/a", "content": ""}]},
     [], "dlc: build: <def>: definition: unknown key 'flavour'"),
    ("missing-file", {"name": "x", "version": "1",
                      "variants": {"cpu": {"copy": [{"src": "{build}/runtime/cpu/tensor",
                                                     "dst": "/usr/bin/tensor"}]}}},
     ["--build-dir", "/nonexistent-build"],
     "dlc: build: <def>: variants.cpu.copy[0]: 'src' /nonexistent-build/runtime/cpu/tensor: "
     "No such file or directory"),
    ("unknown-variant", {"name": "x", "version": "1",
                         "variants": {"cpu": {"copy": [{"dst": "/a", "content": ""}]},
                                      "gpu": {"copy": [{"dst": "/a", "content": ""}]}}},
     ["--variant", "tpu"], "dlc: build: unknown variant 'tpu' (<def> has: cpu, gpu, all)"),
    ("bad-template", {"name": "x", "version": "1", "tags": ["{version}", "{version}-{flavour}"],
                      "copy": [{"dst": "/a", "content": ""}]},
     [], "dlc: build: <def>: tags[1]: unknown field '{flavour}' in '{version}-{flavour}' "
         "(fields: name, version, major, minor, patch, device, backend, os, variant, job, arch)"),
    ("missing-template-field", {"name": "x", "version": "1", "tags": ["{backend}"],
                                "copy": [{"dst": "/a", "content": ""}]},
     [], "dlc: build: <def>: tags[0]: '{backend}' uses {backend}, which this image does not "
         "define"),
    ("missing-library", {"name": "x", "version": "1", "libraries": ["libdlc-nope.so.3"]},
     [], "dlc: build: <def>: libraries[0]: libdlc-nope.so.3 is in neither /etc/ld.so.cache nor "
         "/lib/<triplet>, /usr/lib/<triplet>, /lib, /usr/lib"),
    ("bad-mode", {"name": "x", "version": "1", "copy": [{"dst": "/a", "content": "",
                                                         "mode": "rwx"}]},
     [], "dlc: build: <def>: copy[0]: 'mode' must be an octal string like \"0755\""),
    ("conflict", {"name": "x", "version": "1",
                  "copy": [{"dst": "/etc", "content": "a file"},
                           {"dst": "/etc/passwd", "content": ""}]},
     [], "dlc: build: <def>: copy[1]: '/etc' is already a file (from copy[0])"),
]


@pytest.mark.parametrize("name,definition,args,want", BAD, ids=[b[0] for b in BAD])
def test_bad_definition_is_one_clear_error_and_leaves_the_store_alone(dlc, tmp_path, name,
                                                                        definition, args, want):
    d = write_json(tmp_path / "defs" / f"{name}.json", definition)
    triplet = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}.get(os.uname().machine)
    want = want.replace("<def>", str(d)).replace("<triplet>", str(triplet))
    # a store that does not exist yet is not created
    shutil.rmtree(dlc.root)
    p = build(dlc, "-f", d, *args, check=False)
    assert (p.returncode, p.stdout, p.stderr) == (1, "", want + "\n")
    assert not dlc.root.exists()
    # one that exists is not touched
    good = tool_definition(tmp_path / "good")
    build(dlc, "-f", good)
    before = store_snapshot(dlc.root)
    p = build(dlc, "-f", d, *args, check=False)
    assert (p.returncode, p.stderr) == (1, want + "\n")
    assert store_snapshot(dlc.root) == before


def test_usage_errors(dlc, tmp_path):
    p = dlc("build", "--compress", "xz", check=False)
    assert p.returncode == 2
    assert p.stderr.startswith("dlc build: --compress: compression 'xz' is not one of gzip, "
                               "zstd\nUsage: dlc build ")
    p = dlc("build", "extra-arg", check=False)
    assert p.returncode == 2 and "unexpected argument 'extra-arg'" in p.stderr
    d = tool_definition(tmp_path)
    p = build(dlc, "-f", d, "--tag", "rc1", check=False)
    assert p.returncode == 1
    assert p.stderr == ("dlc: build: tag 'tool:rc1' would name both the a and the b image: "
                        "add {variant} or {device} to the template\n")


# ---- what gets built ----------------------------------------------------------------------------


def test_images_tags_labels_and_shared_base(dlc, tmp_path):
    d = tool_definition(tmp_path)
    p = build(dlc, "-f", d, "--tag", "rc-{variant}", "--tag", "other/tool:{version}-{variant}")
    out = parse_build_output(p.stdout)
    assert list(out) == ["a", "b"]
    assert out["a"]["tags"] == ["tool:2.1.0-cpu-plain-testos1", "tool:2.1-cpu", "tool:cpu",
                                "tool:rc-a", "other/tool:2.1.0-a"]
    assert out["b"]["tags"] == ["tool:2.1.0-gpu-fancy-testos1", "tool:2.1-gpu", "tool:gpu",
                                "tool:rc-b", "other/tool:2.1.0-b"]
    lay = Layout(dlc.layout)
    for image in out.values():
        for tag in image["tags"]:
            assert lay.entry(tag)["digest"] == image["manifest"]
        assert image["size"] == lay.image_size(image["tags"][0])
    (base_a, _, state_a), (base_b, _, _) = out["a"]["layers"][0], out["b"]["layers"][0]
    assert base_a == base_b == "base"
    assert out["a"]["layers"][0][1] == out["b"]["layers"][0][1]  # one base layer, shared
    assert state_a == "built"

    manifest, config, tars = check_image(dlc.layout, "tool:cpu")
    assert [m["mediaType"] for m in manifest["layers"]] == [MT_GZIP, MT_GZIP]
    labels = config["config"]["Labels"]
    assert labels == {
        "org.opencontainers.image.version": "2.1.0",
        "org.opencontainers.image.created": "2023-11-14T22:13:20Z",
        "org.opencontainers.image.source": "https://example.org/tool",
        "org.opencontainers.image.title": "tool",
        "org.opencontainers.image.description": "a test image",
        "dev.dlc.device": "cpu", "dev.dlc.backend": "plain", "dev.dlc.job": "training",
        "dev.dlc.os": "testos1", "org.example.extra": "yes"}  # not in git: no revision
    assert config["created"] == "2023-11-14T22:13:20Z"
    assert config["config"]["Env"] == ["PATH=/usr/bin:/bin", "LANG=C.UTF-8", "VARIANT=a"]
    assert config["config"]["Entrypoint"] == ["/bin/sh"]
    assert [h["created_by"] for h in config["history"]] == ["dlc build tool.json: base",
                                                           "dlc build tool.json: a"]
    base = tar_members(tars[0])
    for m in base.values():
        assert (m.uid, m.gid, m.mtime) == (0, 0, int(EPOCH))
    assert base["tmp"].mode == 0o1777
    assert base["bin/sh"].issym() and base["bin/sh"].linkname == "busybox"
    assert "usr/lib64" in base or "lib64" in base or os.uname().machine != "x86_64"
    assert list(tar_members(tars[1])) == ["etc/variant"]  # etc/ is in the base already
    _, config_b, _ = check_image(dlc.layout, "tool:gpu")
    assert config_b["config"]["Labels"]["org.example.b"] == "1"


def test_reproducible_across_stores_and_cached(dlc, tmp_path):
    from conftest import Dlc
    d = tool_definition(tmp_path / "src")
    first = build(dlc, "-f", d).stdout
    other = Dlc(tmp_path / "other-root")
    assert build(other, "-f", d).stdout == first  # same inputs, another store: same digests

    t0 = time.monotonic()
    again = build(dlc, "-f", d).stdout
    took = time.monotonic() - t0
    assert again == first.replace("built", "cached")
    assert took < 2.0
    entries = sorted(p.name for p in (dlc.root / "build-cache").iterdir())
    assert len(entries) == 3  # base, a, b

    no_cache = build(dlc, "-f", d, "--no-cache").stdout
    assert no_cache == first  # written again, byte for byte

    # a changed file rebuilds its layer only; a changed epoch rebuilds everything
    (tmp_path / "src" / "files" / "a.txt").write_text("variant a, changed\n")
    out = parse_build_output(build(dlc, "-f", d).stdout)
    assert [s for _, _, s in out["a"]["layers"]] == ["cached", "built"]
    assert [s for _, _, s in out["b"]["layers"]] == ["cached", "cached"]
    out2 = parse_build_output(build(dlc, "-f", d, env={"SOURCE_DATE_EPOCH": "1700000001"}).stdout)
    assert [s for _, _, s in out2["b"]["layers"]] == ["built", "built"]
    assert out2["b"]["manifest"] != out["b"]["manifest"]


def test_zstd_layers(dlc, tmp_path):
    d = tool_definition(tmp_path)
    gz = parse_build_output(build(dlc, "-f", d, "--variant", "a").stdout)
    zs = parse_build_output(build(dlc, "-f", d, "--variant", "a", "--compress", "zstd").stdout)
    assert zs["a"]["manifest"] != gz["a"]["manifest"]
    assert [s for _, _, s in zs["a"]["layers"]] == ["built", "built"]
    manifest, config, _ = check_image(dlc.layout, "tool:cpu")  # our diff_id check
    assert [m["mediaType"] for m in manifest["layers"]] == [MT_ZSTD, MT_ZSTD]
    lay = Layout(dlc.layout)
    assert lay.blob(manifest["layers"][0]["digest"])[:4] == b"\x28\xb5\x2f\xfd"
    # same tar inside, whatever the compression
    gz_manifest = lay.json_blob(gz["a"]["manifest"])
    gz_config = lay.json_blob(gz_manifest["config"]["digest"])
    assert gz_config["rootfs"]["diff_ids"] == config["rootfs"]["diff_ids"]


def test_gzip_image_passes_peers(dlc, tmp_path):
    d = tool_definition(tmp_path)
    build(dlc, "-f", d)
    oci_image_tool_validate(dlc.layout, "tool:cpu", tmp_path)
    oci_image_tool_validate(dlc.layout, "tool:2.1-gpu", tmp_path)
    require_tool("skopeo")
    info = json.loads(run(["skopeo", "inspect", f"oci:{dlc.layout}:tool:gpu"]).stdout)
    assert info["Labels"]["dev.dlc.device"] == "gpu"
    assert info["Labels"]["org.opencontainers.image.version"] == "2.1.0"
    bundle = umoci_unpack(dlc.layout, "tool:cpu", tmp_path / "bundle")
    assert (bundle / "rootfs" / "etc" / "variant").read_text() == "variant a\n"
    assert os.readlink(bundle / "rootfs" / "bin" / "sh") == "busybox"
    stat = run(["umoci", "stat", "--image", f"{dlc.layout}:tool:cpu"]).stdout
    assert "dlc build tool.json: base" in stat


def test_whiteouts_and_opaque_directories_under_umoci(dlc, tmp_path):
    """reference/oci-specs.md §1.8's oracle: L1 {a/x, a/b/y, c/z, f} + L2 {.wh.f,
    a/.wh..wh..opq, a/new, c/.wh.z} unpacks to {a/, a/new, c/}."""
    l1 = write_json(tmp_path / "l1.json", {
        "name": "wh", "version": "1", "tags": ["l1"],
        "copy": [{"dst": "/a/x", "content": "x"}, {"dst": "/a/b/y", "content": "y"},
                 {"dst": "/c/z", "content": "z"}, {"dst": "/f", "content": "f"}]})
    l2 = write_json(tmp_path / "l2.json", {
        "name": "wh", "from": "wh:l1", "tags": ["l2"],
        "copy": [{"dst": "/f", "whiteout": True}, {"dst": "/a", "opaque": True},
                 {"dst": "/a/new", "content": "new"}, {"dst": "/c/z", "whiteout": True}]})
    build(dlc, "-f", l1)
    out = parse_build_output(build(dlc, "-f", l2).stdout)
    assert [s for _, _, s in out["wh"]["layers"]] == ["inherited", "built"]
    manifest, config, tars = check_image(dlc.layout, "wh:l2")
    assert list(tar_members(tars[1])) == [".wh.f", "a", "a/.wh..wh..opq", "a/new", "c/.wh.z"]
    assert manifest["annotations"]["org.opencontainers.image.base.name"] == "wh:l1"
    assert manifest["annotations"]["org.opencontainers.image.base.digest"] == \
        Layout(dlc.layout).entry("wh:l1")["digest"]
    bundle = umoci_unpack(dlc.layout, "wh:l2", tmp_path / "bundle")
    assert rootfs_tree(bundle / "rootfs") == ["a/", "a/new", "c/"]
    assert (bundle / "rootfs" / "a" / "new").read_text() == "new"


C_MAIN = r"""
#include <stdio.h>
#include <zlib.h>
int helper(void);
int main(void) { printf("zlib %s helper %d\n", zlibVersion(), helper()); return 0; }
"""


def test_closure_runs_under_runc(dlc, tmp_path):
    """A program built here, linked with libz and a private library found through
    RUNPATH $ORIGIN/../lib: the image holds exactly what the loader needs."""
    require_tool("gcc")
    if os.geteuid() != 0:
        pytest.skip("runc needs root here (rootless runc is not set up by make deps)")
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    (src / "lib").mkdir()
    (src / "helper.c").write_text("int helper(void) { return 42; }\n")
    (src / "main.c").write_text(C_MAIN)
    run(["gcc", "-shared", "-fPIC", "-o", src / "lib" / "libhelper.so.1",
         "-Wl,-soname,libhelper.so.1", src / "helper.c"])
    run(["gcc", "-o", src / "bin" / "app", src / "main.c", "-L", src / "lib",
         "-l:libhelper.so.1", "-lz", "-Wl,-rpath,$ORIGIN/../lib", "-Wl,--enable-new-dtags"])
    d = write_json(tmp_path / "app.json", {
        "name": "app", "version": "0.1", "tags": ["t"], "entrypoint": ["/opt/app/bin/app"],
        "copy": [{"src": "src/bin/app", "dst": "/opt/app/bin/app"}]})
    build(dlc, "-f", d)
    _, _, tars = check_image(dlc.layout, "app:t")
    names = set(tar_members(tars[0]))
    assert "opt/app/lib/libhelper.so.1" in names
    assert not any(n.startswith("bin/") for n in names)  # no shell asked for, none added
    bundle = umoci_unpack(dlc.layout, "app:t", tmp_path / "bundle")
    p = runc_run(bundle, ["/opt/app/bin/app"], f"dlc-build-test-{os.getpid()}")
    zlib_version = subprocess.run(
        ["python3", "-c", "import zlib; print(zlib.ZLIB_RUNTIME_VERSION)"],
        capture_output=True, text=True).stdout.strip()
    assert (p.returncode, p.stdout) == (0, f"zlib {zlib_version} helper 42\n"), p.stderr


def test_history(dlc, tmp_path):
    d = tool_definition(tmp_path)
    out = parse_build_output(build(dlc, "-f", d).stdout)
    p = dlc("history", "tool:cpu")
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["LAYER", "CREATED", "SIZE", "CREATED", "BY"]
    assert len(lines) == 3
    top_digest = out["a"]["layers"][1][1]
    assert lines[1].startswith(top_digest[7:19] + "  2023-11-14T22:13:20Z")
    assert "dlc build tool.json: a (1 file (10 B))" in lines[1]
    assert "dlc build tool.json: base (" in lines[2]
    hist = json.loads(dlc("history", "--format", "json", "tool:cpu").stdout)
    assert [h["digest"] for h in hist] == [layer[1] for layer in out["a"]["layers"]]
    assert hist[1]["created_by"] == "dlc build tool.json: a"
    assert hist[1]["comment"] == "1 file (10 B)"
    lay = Layout(dlc.layout)
    sizes = [m["size"] for m in lay.json_blob(out["a"]["manifest"])["layers"]]
    assert [h["size"] for h in hist] == sizes
    p = dlc("history", "tool:nope", check=False)
    assert (p.returncode, p.stderr) == (1, "dlc: history: image 'tool:nope' not found\n")


def test_from_a_registry_image_pulls_it(dlc, tmp_path):
    """"from" naming a registry image the store lacks: dlc build pulls it first (here from
    `dlc registry serve` on loopback), then adds its layer on top."""
    from conftest import Dlc
    from helpers_registry import RegistryServer
    d = tool_definition(tmp_path / "src")
    build(dlc, "-f", d, "--variant", "a")
    srv = RegistryServer(tmp_path / "registry").start()
    try:
        remote = f"{srv.host}/tool:cpu"
        dlc("push", "tool:cpu", remote)
        ext = write_json(tmp_path / "ext.json", {
            "name": "ext", "from": remote, "tags": ["{version}-{device}"],
            "copy": [{"dst": "/etc/extra", "content": "on top\n"}]})
        other = Dlc(tmp_path / "other-root")
        out = parse_build_output(build(other, "-f", ext).stdout)["ext"]
    finally:
        assert srv.stop() == 0
    # the registry is gone: everything below comes from the store
    assert out["tags"] == ["ext:2.1.0-cpu"]  # version and device from the pulled image
    assert [s for _, _, s in out["layers"]] == ["inherited", "inherited", "built"]
    pulled = Layout(dlc.layout).entry("tool:cpu")["digest"]
    assert Layout(other.layout).entry(remote)["digest"] == pulled
    _, config, _ = check_image(other.layout, "ext:2.1.0-cpu")
    assert config["config"]["Labels"]["dev.dlc.backend"] == "plain"
    # a new config over the same layers: no layer of its own
    relabel = write_json(tmp_path / "relabel.json", {"name": "ext", "from": remote,
                                                     "tags": ["relabel"], "labels": {"x": "y"}})
    out = parse_build_output(build(other, "-f", relabel).stdout)["ext"]
    assert [s for _, _, s in out["layers"]] == ["inherited", "inherited"]
    assert check_image(other.layout, "ext:relabel")[1]["config"]["Labels"]["x"] == "y"
    # without a registry part, a missing from-image is an error, not a guess
    local = write_json(tmp_path / "local.json", {"name": "ext", "from": "nope:1"})
    p = build(other, "-f", local, check=False)
    assert (p.returncode, p.stderr) == (1, f"dlc: build: {local}: from: image 'nope:1' not "
                                           "found\n")
