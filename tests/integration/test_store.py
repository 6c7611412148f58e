"""The image store against real peers: skopeo copies images in and out, umoci unpacks them,
oci-image-tool validates the layout after dlc tag / rmi / prune."""
import json
import os
import re
import shutil
import subprocess
import threading
import time

import pytest

from conftest import DLC, Dlc, require_tool, run
from helpers_registry import FlakyProxy, to_store
from helpers_registry import fixture_image, registry  # noqa: F401
from helpers_store import Layout, host_arch, make_fixture_layout, skopeo_copy


def human_size(n):
    """dlc_format_size: decimal units, one decimal above bytes."""
    if n < 1000:
        return f"{n} B"
    for unit in ["kB", "MB", "GB", "TB"]:
        n /= 1000.0
        if n < 1000 or unit == "TB":
            return f"{n:.1f} {unit}"


@pytest.fixture(scope="module")
def fixture_layout(tmp_path_factory):
    return make_fixture_layout(tmp_path_factory.mktemp("fixture") / "layout")


@pytest.fixture
def store(dlc, fixture_layout):
    """A fresh store holding app:1 (fixture x) and other:1 (fixture y), copied in by skopeo."""
    dlc("images")  # creates the layout skopeo copies into
    skopeo_copy(f"oci:{fixture_layout}:x", f"oci:{dlc.layout}:app:1")
    skopeo_copy(f"oci:{fixture_layout}:y", f"oci:{dlc.layout}:other:1")
    return Layout(dlc.layout)


def test_images_lists_what_skopeo_copied_in(dlc, store):
    assert store.ref_names() == ["app:1", "other:1"]
    p = dlc("images")
    lines = p.stdout.splitlines()
    assert re.split(r"\s{2,}", lines[0].strip()) == ["REPOSITORY", "TAG", "DIGEST", "SIZE",
                                                    "CREATED"]
    assert len(lines) == 3
    app = store.entry("app:1")["digest"]
    cols = re.split(r"\s{2,}", lines[1].strip())
    assert cols[:3] == ["app", "1", app[len("sha256:"):][:12]]
    assert cols[4].endswith("ago")
    assert re.split(r"\s{2,}", lines[2].strip())[:2] == ["other", "1"]

    rows = json.loads(dlc("images", "--format", "json").stdout)
    assert [(r["Repository"], r["Tag"]) for r in rows] == [("app", "1"), ("other", "1")]
    assert rows[0]["Digest"] == app
    assert rows[0]["Size"] == store.image_size("app:1")
    assert rows[1]["Size"] == store.image_size("other:1") > rows[0]["Size"]
    config = store.json_blob(store.json_blob(app)["config"]["digest"])
    assert rows[0]["Created"] == config["created"]

    full = dlc("images", "--digests").stdout
    assert app in full


def test_inspect_shows_manifest_and_config(dlc, store):
    digest = store.entry("app:1")["digest"]
    manifest = store.json_blob(digest)
    config = store.json_blob(manifest["config"]["digest"])
    for ref in ["app:1", digest, "app@" + digest, digest[len("sha256:"):][:8]]:
        out = json.loads(dlc("inspect", ref).stdout)
        assert out == {"Digest": digest, "Manifest": manifest, "Config": config}
    assert out["Config"]["config"]["Cmd"] == ["/bin/sh"]
    assert "FIXTURE=1" in out["Config"]["config"]["Env"]


def test_an_index_resolves_to_the_host_manifest(dlc, store, fixture_layout):
    skopeo_copy(f"oci:{fixture_layout}:multi", f"oci:{store.path}:multi:1", "--all")
    index = store.entry("multi:1")
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    host = store.entry("app:1")["digest"]  # x, the host entry of the index
    out = json.loads(dlc("inspect", "multi:1").stdout)
    assert out["Digest"] == host
    assert out["Config"]["architecture"] == host_arch()
    multi = [r for r in json.loads(dlc("images", "--format", "json").stdout)
             if r["Repository"] == "multi"][0]
    assert multi["Digest"] == index["digest"]
    assert multi["Size"] == store.image_size("app:1")
    # gc keeps everything the index reaches, also the other architecture's manifest
    dlc("rmi", "app:1", "other:1")
    assert dlc("prune").stdout == "Deleted 0 blobs, freed 0 B\n"
    dlc("tag", "multi:1", "multi:2")
    # skopeo picks the same manifest out of it (umoci 0.4.7 calls a multi-entry index
    # "ambiguous", so it is not asked)
    info = json.loads(run(["skopeo", "inspect", f"oci:{store.path}:multi:2"]).stdout)
    assert info["Digest"] == index["digest"]
    assert info["Layers"] == [layer["digest"] for layer in out["Manifest"]["layers"]]
    dlc("rmi", "multi:1", "multi:2")
    # the index, and manifest, config and layers of both images (they share the base layer)
    assert len(store.blobs()) == 1 + 3 + 3
    assert dlc("prune").stdout.startswith("Deleted 7 blobs, freed ")
    assert store.blobs() == []


def test_tag_then_skopeo_reads_it_back_out(dlc, store, tmp_path):
    dlc("tag", "app:1", "app:v2")
    dlc("tag", "app:1", "localhost:5000/team/app")
    assert store.ref_names() == ["app:1", "app:v2", "localhost:5000/team/app:latest", "other:1"]
    digest = store.entry("app:1")["digest"]
    assert store.entry("app:v2")["digest"] == digest

    info = json.loads(run(["skopeo", "inspect", f"oci:{store.path}:app:v2"]).stdout)
    assert info["Digest"] == digest
    assert "FIXTURE=1" in info["Env"]
    raw = run(["skopeo", "inspect", "--raw", f"oci:{store.path}:app:v2"]).stdout
    assert raw.encode() == store.blob(digest)

    out = tmp_path / "out"
    skopeo_copy(f"oci:{store.path}:localhost:5000/team/app:latest", f"oci:{out}:copy")
    assert Layout(out).entry("copy")["digest"] == digest
    assert Layout(out).blob(digest) == store.blob(digest)

    # moving a tag to another image
    dlc("tag", "other:1", "app:v2")
    assert store.entry("app:v2")["digest"] == store.entry("other:1")["digest"]


def test_umoci_unpacks_from_the_store(dlc, store, tmp_path):
    require_tool("umoci")
    bundle = tmp_path / "bundle"
    run(["umoci", "unpack", "--image", f"{store.path}:other:1", bundle])
    assert (bundle / "rootfs/bin/busybox").read_bytes() == open("/usr/bin/busybox", "rb").read()
    assert os.readlink(bundle / "rootfs/bin/sh") == "busybox"
    assert (bundle / "rootfs/etc/extra.txt").read_text() == "only in image y\n"
    config = json.loads((bundle / "config.json").read_text())
    assert config["process"]["args"] == ["/bin/sh"]


def test_rmi_and_prune_leave_a_valid_store(dlc, store, tmp_path):
    require_tool("oci-image-tool")
    dlc("tag", "app:1", "app:v2")
    before = set(store.blobs())
    other = store.json_blob(store.entry("other:1")["digest"])
    app = store.json_blob(store.entry("app:1")["digest"])
    app_blobs = {d["digest"] for d in [app["config"], *app["layers"]]}
    app_blobs.add(store.entry("app:1")["digest"])
    other_only = {d["digest"] for d in [other["config"], *other["layers"]]} - app_blobs
    other_only.add(store.entry("other:1")["digest"])
    assert len(other_only) == 3  # manifest, config, the extra layer

    p = dlc("rmi", "other:1", "app:1")
    assert p.stdout == "Untagged: other:1\nUntagged: app:1\n"
    assert store.ref_names() == ["app:v2"]
    assert set(store.blobs()) == before  # blobs stay until prune

    freed = sum(store.blob_path(d).stat().st_size for d in other_only)
    p = dlc("prune")
    assert p.stdout == f"Deleted 3 blobs, freed {human_size(freed)}\n"
    assert {"sha256:" + b for b in before - set(store.blobs())} == other_only
    for d in app_blobs:
        store.blob(d)  # still there and intact
    assert dlc("prune").stdout == "Deleted 0 blobs, freed 0 B\n"

    v = run(["oci-image-tool", "validate", "--type", "image", "--ref", "name=app:v2",
             store.path])
    assert "Validation succeeded" in v.stdout + v.stderr
    run(["umoci", "unpack", "--image", f"{store.path}:app:v2", tmp_path / "bundle"])
    # and skopeo can still read it
    run(["skopeo", "inspect", f"oci:{store.path}:app:v2"])


def test_rmi_reports_each_missing_ref(dlc, store):
    p = dlc("rmi", "app:1", "nope:x", "Bad:Ref", check=False)
    assert p.returncode == 1
    assert p.stdout == "Untagged: app:1\n"
    assert p.stderr.splitlines() == [
        "dlc: rmi: image 'nope:x' not found",
        "dlc: rmi: invalid reference 'Bad:Ref': repository name must be lowercase",
    ]
    assert store.ref_names() == ["other:1"]

    # by digest prefix: every tag of that image goes
    dlc("tag", "other:1", "other:2")
    prefix = store.entry("other:1")["digest"][len("sha256:"):][:10]
    p = dlc("rmi", prefix)
    assert sorted(p.stdout.splitlines()) == ["Untagged: other:1", "Untagged: other:2"]
    assert store.ref_names() == []


def test_malformed_index_json_names_the_file(dlc, store):
    index = store.path / "index.json"
    index.write_text('{"schemaVersion": 2, "manifests": [')
    for args in (["images"], ["inspect", "app:1"], ["tag", "app:1", "b"], ["prune"]):
        p = dlc(*args, check=False)
        assert p.returncode == 1, args
        assert p.stderr.startswith(f"dlc: {args[0]}: {index}:1:"), p.stderr
    index.write_text('{"schemaVersion": 2, "manifests": [{"mediaType": "x/y", "size": 1}]}')
    p = dlc("images", check=False)
    assert p.returncode == 1
    assert p.stderr == (f"dlc: images: {index}: index: manifests[0]: "
                        "missing required 'digest'\n")


def test_corrupted_blob_is_detected(dlc, store):
    manifest = store.json_blob(store.entry("app:1")["digest"])
    path = store.blob_path(manifest["config"]["digest"])
    data = bytearray(path.read_bytes())
    data[0] ^= 0x20
    path.write_bytes(bytes(data))
    p = dlc("inspect", "app:1", check=False)
    assert p.returncode == 1
    assert re.fullmatch(r"dlc: inspect: image 'app:1': blob sha256:[0-9a-f]{64} is corrupt: "
                        r"content hashes to sha256:[0-9a-f]{64}\n", p.stderr), p.stderr
    # images still lists the image, warning about it
    p = dlc("images")
    assert "is corrupt" in p.stderr
    assert re.split(r"\s{2,}", p.stdout.splitlines()[1].strip())[3] == "?"


def test_invalid_references_give_the_reason(dlc, store):
    cases = {
        ("tag", "app:1", "Bad:tag"):
            "dlc: tag: invalid reference 'Bad:tag': repository name must be lowercase\n",
        ("tag", "app:1", "a:-x"):
            "dlc: tag: invalid reference 'a:-x': tag '-x' must start with a letter, digit or "
            "'_'\n",
        ("tag", "app:1", "a@sha256:abc"):
            "dlc: tag: invalid reference 'a@sha256:abc': digest 'sha256:abc': sha256 needs 64 "
            "hex digits, got 3\n",
        ("inspect", "a..b"):
            "dlc: inspect: invalid reference 'a..b': repository name component 'a..b' has an "
            "invalid separator '..'\n",
        ("inspect", "sha256:ABC"):
            "dlc: inspect: digest 'sha256:ABC': uppercase hex is not allowed\n",
        ("inspect", "missing"): "dlc: inspect: image 'missing:latest' not found\n",
        ("tag", "missing:1", "b"): "dlc: tag: image 'missing:1' not found\n",
    }
    for args, want in cases.items():
        p = dlc(*args, check=False)
        assert (p.returncode, p.stderr) == (1, want), args


def test_usage_errors_exit_2(dlc):
    cases = [
        (["images", "--bogus"], "dlc images: unrecognized option '--bogus'\n"
                                "Usage: dlc images [--format table|json] [--digests]\n"),
        (["images", "--format", "yaml"], "dlc images: --format: 'yaml' is not one of table, "
                                         "json\nUsage: dlc images [--format table|json] "
                                         "[--digests]\n"),
        (["inspect"], "dlc inspect: expected exactly one image reference\n"
                      "Usage: dlc inspect REF\n"),
        (["tag", "a"], "dlc tag: expected a source and a target reference\n"
                       "Usage: dlc tag SOURCE TARGET\n"),
        (["rmi"], "dlc rmi: expected at least one image reference\nUsage: dlc rmi REF...\n"),
        (["prune", "x"], "dlc prune: unexpected argument 'x'\n"
                         "Usage: dlc prune [--wait SECONDS]\n"),
        (["prune", "--wait", "-1"], "dlc prune: --wait: -1 is out of range [0, 86400]\n"
                                    "Usage: dlc prune [--wait SECONDS]\n"),
        (["rmi", "-f", "x"], "dlc rmi: invalid option -- 'f'\nUsage: dlc rmi REF...\n"),
    ]
    for args, want in cases:
        p = dlc(*args, check=False)
        assert (p.returncode, p.stderr, p.stdout) == (2, want, ""), args
    for cmd in ["images", "inspect", "tag", "rmi", "prune"]:
        p = dlc(cmd, "--help")
        assert p.stdout.startswith("Usage: dlc " + cmd) and "--root DIR" in p.stdout


def test_root_option_overrides_the_environment(tmp_path, fixture_layout):
    env = {k: v for k, v in os.environ.items() if k != "DLC_ROOT"}
    env["DLC_ROOT"] = str(tmp_path / "not-this-one")
    for i, args in enumerate([["--root", tmp_path / "a", "images"],
                              ["images", "--root", tmp_path / "b"],
                              ["--root=" + str(tmp_path / "c"), "prune"]]):
        p = subprocess.run([str(DLC), *map(str, args)], env=env, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        root = tmp_path / "abc"[i]
        assert json.loads((root / "images/oci-layout").read_text()) == {
            "imageLayoutVersion": "1.0.0"}
        assert json.loads((root / "images/index.json").read_text())["manifests"] == []
    assert not (tmp_path / "not-this-one").exists()
    skopeo_copy(f"oci:{fixture_layout}:x", f"oci:{tmp_path}/b/images:z:1")
    p = subprocess.run([str(DLC), "images", "--root", str(tmp_path / "b"), "--format", "json"],
                       env=env, capture_output=True, text=True, check=True)
    assert [r["Tag"] for r in json.loads(p.stdout)] == ["1"]


def test_prune_spares_a_pull_in_progress(tmp_path, dlc, registry, fixture_image):  # noqa: F811
    """`dlc prune` while a `dlc pull` into the same store has fetched blobs but not tagged
    the image (the registry's blob answers are held back): prune waits, gives up with the
    reason and removes nothing; once the pull has tagged, a waiting prune runs and keeps it."""
    layout, tag, digest = fixture_image
    to_store(layout, tag, dlc, "fixture:v1")
    ref = f"{registry.host}/lease/img:v1"
    dlc("push", "fixture:v1", ref)
    manifest = Layout(dlc.layout).json_blob(digest)
    layers = [d["digest"][7:] for d in manifest["layers"]]
    image_blobs = {digest[7:], manifest["config"]["digest"][7:], *layers}

    fresh = Dlc(tmp_path / "fresh")
    fresh("images")
    # a layer an earlier, interrupted pull left behind: untagged, so garbage until this pull
    # skips fetching it and references it from its tag
    blobs = fresh.layout / "blobs/sha256"
    shutil.copy(dlc.layout / "blobs/sha256" / layers[0], blobs / layers[0])

    arrived, gate = threading.Event(), threading.Event()

    def hold_blob_gets(method, path):
        if method == "GET" and "/blobs/" in path:
            arrived.set()
            gate.wait(60)
        return False  # then forward it

    proxy = FlakyProxy(registry.host, hold_blob_gets).start()
    env = dict(os.environ, DLC_ROOT=str(fresh.root))
    pull = subprocess.Popen([str(DLC), "pull", f"{proxy.host}/lease/img:v1", "img:v1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    waiting = None
    try:
        assert arrived.wait(30), "the pull never asked for a blob"
        t0 = time.monotonic()
        p = fresh("prune", "--wait", "1", check=False)
        assert time.monotonic() - t0 >= 1.0
        assert (p.returncode, p.stdout) == (1, "")
        assert p.stderr == ("dlc: waiting for another dlc process that is writing to the store\n"
                            "dlc: prune: gc: another dlc process is writing to the store (a "
                            "build or pull whose image is not tagged yet); gave up after 1.0 s, "
                            "try again when it is done\n")
        assert (blobs / layers[0]).exists()
        waiting = subprocess.Popen([str(DLC), "prune", "--wait", "60"], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        assert waiting.poll() is None, waiting.communicate()
        gate.set()
        out, err = pull.communicate(timeout=60)
        assert pull.returncode == 0, err
        out, err = waiting.communicate(timeout=60)
        assert (waiting.returncode, out) == (0, "Deleted 0 blobs, freed 0 B\n"), err
    finally:
        gate.set()
        for proc in (pull, waiting):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
        proxy.stop()
    assert {p.name for p in blobs.iterdir()} == image_blobs
    fresh("rmi", "img:v1")
    assert fresh("prune").stdout.startswith(f"Deleted {len(image_blobs)} blobs, freed ")
