"""Helpers for the image store tests: fixture images made with umoci from busybox-static,
and readers for an OCI layout's files (index.json, blobs) that check what dlc wrote."""
import hashlib
import io
import json
import platform
import shutil
import tarfile
from pathlib import Path

from conftest import require_tool, run

BUSYBOX = Path("/usr/bin/busybox")  # Debian's busybox-static


def _tar_bytes(entries):
    """An uncompressed tar of (name, bytes or None for a dir, symlink target or None)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, link in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if link is not None:
                info.type = tarfile.SYMTYPE
                info.linkname = link
                tar.addfile(info)
            elif data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o755
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_fixture_layout(layout):
    """An OCI layout with two images made by umoci:
    x: one layer (busybox-static as /bin/busybox, /bin/sh -> busybox), Cmd /bin/sh;
    y: x plus a second layer with /etc/extra.txt;
    multi: an image index with y for another architecture and x for this host's.
    Returns the layout path."""
    require_tool("umoci")
    assert BUSYBOX.exists(), "busybox-static is not installed: run `make deps`"
    layout = Path(layout)
    work = layout.parent / (layout.name + "-work")
    work.mkdir(parents=True, exist_ok=True)
    base = work / "base.tar"
    base.write_bytes(_tar_bytes([("bin", None, None),
                                 ("bin/busybox", BUSYBOX.read_bytes(), None),
                                 ("bin/sh", None, "busybox")]))
    extra = work / "extra.tar"
    extra.write_bytes(_tar_bytes([("etc", None, None),
                                  ("etc/extra.txt", b"only in image y\n", None)]))
    run(["umoci", "init", "--layout", layout])
    run(["umoci", "new", "--image", f"{layout}:x"])
    run(["umoci", "raw", "add-layer", "--image", f"{layout}:x", base])
    run(["umoci", "config", "--image", f"{layout}:x", "--config.cmd", "/bin/sh",
         "--config.env", "FIXTURE=1", "--config.label", "org.example.fixture=x"])
    run(["umoci", "raw", "add-layer", "--image", f"{layout}:x", "--tag", "y", extra])
    run(["umoci", "gc", "--layout", layout])
    shutil.rmtree(work)
    other = "s390x" if host_arch() != "s390x" else "amd64"
    add_index(layout, "multi", [("y", other), ("x", host_arch())])
    return layout


def host_arch():
    """GOARCH of this machine, as dlc's oci_host_arch() says it."""
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "i686": "386"}.get(m, m)


def add_index(layout, tag, entries):
    """Writes an image index over existing manifests into the layout and tags it.
    entries: [(ref_name of a manifest in the layout, architecture)]. Returns its digest."""
    lay = Layout(layout)
    manifests = []
    for ref, arch in entries:
        e = lay.entry(ref)
        manifests.append({"mediaType": e["mediaType"], "digest": e["digest"],
                          "size": e["size"], "platform": {"architecture": arch, "os": "linux"}})
    data = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": manifests}).encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    lay.blob_path(digest).write_bytes(data)
    index = lay.index()
    index["manifests"].append({"mediaType": "application/vnd.oci.image.index.v1+json",
                               "digest": digest, "size": len(data),
                               "annotations": {"org.opencontainers.image.ref.name": tag}})
    (lay.path / "index.json").write_text(json.dumps(index))
    return digest


def skopeo_copy(src, dst, *extra):
    require_tool("skopeo")
    return run(["skopeo", "--insecure-policy", "copy", "--quiet", *extra, src, dst])


class Layout:
    """Reads an OCI image layout directly (what other tools see)."""

    def __init__(self, path):
        self.path = Path(path)

    def index(self):
        return json.loads((self.path / "index.json").read_text())

    def ref_names(self):
        return sorted(m.get("annotations", {}).get("org.opencontainers.image.ref.name")
                      for m in self.index()["manifests"])

    def entry(self, ref_name):
        for m in self.index()["manifests"]:
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref_name:
                return m
        raise KeyError(ref_name)

    def blob_path(self, digest):
        algo, hexd = digest.split(":", 1)
        return self.path / "blobs" / algo / hexd

    def blob(self, digest):
        data = self.blob_path(digest).read_bytes()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == digest, f"{digest} is corrupt"
        return data

    def json_blob(self, digest):
        return json.loads(self.blob(digest))

    def blobs(self):
        return sorted(p.name for p in (self.path / "blobs" / "sha256").iterdir())

    def image_size(self, ref_name):
        """config + layers, compressed: what `dlc images` shows as SIZE."""
        m = self.json_blob(self.entry(ref_name)["digest"])
        return m["config"]["size"] + sum(layer["size"] for layer in m["layers"])
