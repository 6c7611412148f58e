"""skopeo against `dlc registry serve`: a layout copied into our registry and back out is
identical (diff -r), manifests keep their bytes, list-tags/inspect/delete work."""
import json
import re

from conftest import run
from helpers_registry import sha256, skopeo
from helpers_registry import fixture_image, registry  # noqa: F401  (fixtures)


def test_skopeo_roundtrip_identical(tmp_path, registry, fixture_image):  # noqa: F811
    src_layout, tag, digest = fixture_image
    a, b = tmp_path / "a", tmp_path / "b"
    # both layouts written by skopeo, so index.json is formatted alike
    skopeo("copy", "--preserve-digests", f"oci:{src_layout}:{tag}", f"oci:{a}:{tag}")
    ref = f"docker://{registry.host}/fixtures/image:{tag}"
    skopeo("copy", "--dest-tls-verify=false", "--preserve-digests", f"oci:{a}:{tag}", ref)
    skopeo("copy", "--src-tls-verify=false", "--preserve-digests", ref, f"oci:{b}:{tag}")
    diff = run(["diff", "-r", a, b], check=False)
    assert diff.returncode == 0, diff.stdout
    raw = skopeo("inspect", "--raw", "--tls-verify=false", ref).stdout.encode()
    assert sha256(raw) == digest
    assert raw == (src_layout / "blobs/sha256" / digest[7:]).read_bytes()
    # the access log shows skopeo's streamed PATCH uploads
    log = registry.wait_log(r'"PUT /v2/fixtures/image/manifests/v1" 201')
    assert '"PATCH /v2/fixtures/image/blobs/uploads/' in log
    assert '"PUT /v2/fixtures/image/manifests/v1" 201' in log


def test_skopeo_list_tags_inspect_delete(tmp_path, registry, fixture_image):  # noqa: F811
    src_layout, tag, digest = fixture_image
    base = f"docker://{registry.host}/fixtures/tags"
    for t in ("v1", "latest", "1.0.0"):
        skopeo("copy", "--dest-tls-verify=false", f"oci:{src_layout}:{tag}", f"{base}:{t}")
    tags = json.loads(skopeo("list-tags", "--tls-verify=false", base).stdout)
    assert tags["Tags"] == ["1.0.0", "latest", "v1"]
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"{base}:v1").stdout)
    assert info["Digest"] == digest
    assert len(info["Layers"]) == 3
    cfg = json.loads(skopeo("inspect", "--config", "--tls-verify=false", f"{base}:v1").stdout)
    assert cfg["rootfs"]["type"] == "layers"
    skopeo("delete", "--tls-verify=false", f"{base}:v1")
    # deleting by digest removes every tag that pointed at the manifest
    p = skopeo("inspect", "--tls-verify=false", f"{base}:latest", check=False)
    assert p.returncode != 0 and "manifest unknown" in p.stderr.lower()
    tags = json.loads(skopeo("list-tags", "--tls-verify=false", base).stdout)
    assert tags["Tags"] == []


def test_skopeo_cross_repository_mount(tmp_path, registry, fixture_image):  # noqa: F811
    """skopeo mounts blobs it knows are in another repository of the same registry."""
    src_layout, tag, digest = fixture_image
    for repo in ("one", "two"):
        skopeo("copy", "--dest-tls-verify=false", f"oci:{src_layout}:{tag}",
               f"docker://{registry.host}/mount/{repo}:{tag}")
    mount = r'"POST /v2/mount/two/blobs/uploads/\?from=mount%2Fone&mount=sha256%3A[0-9a-f]{64}" 201'
    mounts = re.findall(mount, registry.wait_log(mount, 3))
    assert len(mounts) == 3  # the layers; skopeo uploads the config
    raw = skopeo("inspect", "--raw", "--tls-verify=false",
                 f"docker://{registry.host}/mount/two:{tag}").stdout.encode()
    assert sha256(raw) == digest
