"""Helpers for the `dlc build` tests: an independent image checker (digests, sizes,
diff_ids of gzip and zstd layers, duplicate tar paths), peers (oci-image-tool, umoci, runc)
driven the way a user would, and small definitions written into a test's directory."""
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

from conftest import BUILD, REPO, require_tool, run
from helpers_store import Layout

RUNTIME_DEF = REPO / "images" / "tensor-runtime.json"
FASHION_DEF = REPO / "images" / "examples" / "fashion-mlp.json"
CPU_TENSOR = BUILD / "runtime" / "cpu" / "tensor"
GPU_TENSOR = BUILD / "runtime" / "gpu" / "tensor"
BUSYBOX = Path("/bin/busybox")
EPOCH = "1700000000"  # a fixed SOURCE_DATE_EPOCH: 2023-11-14T22:13:20Z

MT_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


def require_runtime(*binaries):
    """The tensor runtime is built by `make` (runtime/); these tests need it."""
    for b in binaries or (CPU_TENSOR,):
        assert b.exists(), f"{b} is not built: run `make` (the runtime component)"


def write_json(path, obj):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2))
    return path


def parse_build_output(stdout):
    """dlc build's stdout -> {image: {"tags": [...], "manifest": d, "size": n,
    "layers": [(name, digest, state)]}}."""
    images, cur = {}, None
    for line in stdout.splitlines():
        if not line.startswith(" "):
            name, _, tags = line.partition(":")
            cur = images[name] = {"tags": tags.split(), "layers": []}
        elif m := re.match(r"\s+manifest\s+(sha256:[0-9a-f]{64})$", line):
            cur["manifest"] = m.group(1)
        elif m := re.match(r"\s+size\s+.*\((\d+) bytes compressed\)$", line):
            cur["size"] = int(m.group(1))
        elif m := re.match(r"\s+layer\s+(\S+)\s+(sha256:[0-9a-f]{64})\s+.*\s(\w+)$", line):
            cur["layers"].append((m.group(1), m.group(2), m.group(3)))
        else:
            raise AssertionError(f"unexpected line in dlc build output: {line!r}")
    return images


def decompress(data, media_type):
    if media_type == MT_GZIP:
        return gzip.decompress(data)
    if media_type == MT_ZSTD:
        require_tool("zstd")
        return subprocess.run(["zstd", "-dc"], input=data, capture_output=True,
                              check=True).stdout
    raise AssertionError(f"unexpected layer media type {media_type}")


def check_image(layout, ref):
    """Our own validator (reference/oci-specs.md §1.9), for zstd too: manifest and config
    digests and sizes, every layer's digest, size and media type, sha256 of the
    decompressed stream == diff_id, no duplicate tar paths, history matches layers.
    Returns (manifest, config, [tar bytes per layer])."""
    lay = Layout(layout)
    entry = lay.entry(ref)
    raw = lay.blob(entry["digest"])
    assert len(raw) == entry["size"]
    manifest = json.loads(raw)
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    cfg_raw = lay.blob(manifest["config"]["digest"])
    assert len(cfg_raw) == manifest["config"]["size"]
    config = json.loads(cfg_raw)
    assert config["rootfs"]["type"] == "layers"
    assert len(config["rootfs"]["diff_ids"]) == len(manifest["layers"])
    assert len([h for h in config["history"] if not h.get("empty_layer")]) == \
        len(manifest["layers"])
    assert all("created" in h for h in config["history"])  # umoci stat needs it
    tars = []
    for desc, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"]):
        blob = lay.blob(desc["digest"])
        assert len(blob) == desc["size"]
        tar = decompress(blob, desc["mediaType"])
        assert "sha256:" + hashlib.sha256(tar).hexdigest() == diff_id
        with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
            names = [m.name.rstrip("/") for m in tf.getmembers()]
        assert len(names) == len(set(names)), "duplicate paths in a layer"
        tars.append(tar)
    return manifest, config, tars


def tar_members(tar):
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        return {m.name.rstrip("/"): m for m in tf.getmembers()}


def oci_image_tool_validate(layout, ref, tmp_path):
    """oci-image-tool validate --type image --ref name=REF. Its 1.0.0-rc1 ref filter drops
    the wrong entries from index.json when it holds more than one (it removes from the
    list it iterates), so it is run on a view of the layout whose index.json holds just
    this ref; blobs are hard links to ours, so our bytes are what it checks."""
    require_tool("oci-image-tool")
    layout = Path(layout)
    view = Path(tmp_path) / f"view-{ref.replace(':', '_').replace('/', '_')}"
    if view.exists():
        shutil.rmtree(view)
    shutil.copytree(layout / "blobs", view / "blobs", copy_function=os.link)
    shutil.copy(layout / "oci-layout", view / "oci-layout")
    index = json.loads((layout / "index.json").read_text())
    index["manifests"] = [Layout(layout).entry(ref)]
    (view / "index.json").write_text(json.dumps(index))
    p = run(["oci-image-tool", "validate", "--type", "image", "--ref", f"name={ref}", view])
    assert "Validation succeeded" in p.stdout + p.stderr, p.stdout + p.stderr
    return p


def umoci_unpack(layout, ref, bundle):
    require_tool("umoci")
    args = ["umoci", "unpack", "--image", f"{layout}:{ref}", bundle]
    if os.geteuid() != 0:
        args.insert(2, "--rootless")
    run(args)
    return Path(bundle)


def rootfs_tree(rootfs):
    """Every path under rootfs, relative, directories with a trailing '/'."""
    out = []
    for dirpath, dirnames, filenames in os.walk(rootfs):
        rel = Path(dirpath).relative_to(rootfs)
        for d in dirnames:
            p = rel / d
            out.append(str(p) + ("" if (Path(rootfs) / p).is_symlink() else "/"))
        for f in filenames:
            out.append(str(rel / f))
    return sorted(out)


def runc_run(bundle, args, name, timeout=60):
    """Runs args in the unpacked bundle with runc (root only); returns CompletedProcess."""
    require_tool("runc")
    cfg_path = Path(bundle) / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["process"]["args"] = list(args)
    cfg["process"]["terminal"] = False
    cfg_path.write_text(json.dumps(cfg))
    try:
        return run(["runc", "run", "--bundle", bundle, name], check=False, timeout=timeout)
    finally:
        run(["runc", "delete", "--force", name], check=False)


def store_snapshot(root):
    """Every file under root with its size and mtime: to show a build left it alone."""
    root = Path(root)
    if not root.exists():
        return None
    return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in root.rglob("*"))
