"""Faults and hostile input against `dlc registry serve`: a server killed mid-upload, lying
digests, 32 concurrent overlapping pushes, path traversal, bad credentials, expiry, limits,
garbage collection and clean shutdown."""
import json
import os
import signal
import socket
import subprocess
import time

from conftest import DLC, Dlc
from helpers_registry import (Layout, RegistryServer, files_under, fixture_layout, gzip_layer,
                              http_request, make_htpasswd, random_bytes, sha256, to_store)
from helpers_registry import registry  # noqa: F401  (fixture)

import random


def error_code(body):
    return json.loads(body)["errors"][0]["code"]


def test_kill9_during_blob_upload(tmp_path, dlc):
    lay, digest = fixture_layout(tmp_path / "fix", "v1", n_layers=1, size=3_000_000)
    to_store(lay.path, "v1", dlc, "big:v1")
    man = json.loads((lay.path / "blobs/sha256" / digest[7:]).read_bytes())
    layer = man["layers"][0]["digest"]
    data = (lay.path / "blobs/sha256" / layer[7:]).read_bytes()
    root = tmp_path / "reg"
    srv = RegistryServer(root).start()
    status, h, _ = http_request(srv.host, "POST", "/v2/crash/blobs/uploads/")
    assert status == 202
    # half of the blob, then the server dies with the request still open
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall((f"PUT {h['location']}?digest={layer} HTTP/1.1\r\nHost: x\r\n"
               f"Content-Length: {len(data)}\r\n\r\n").encode() + data[:len(data) // 2])
    upload = root / "_uploads" / h["location"].rsplit("/", 1)[1]
    deadline = time.time() + 10
    while upload.stat().st_size < len(data) // 4 and time.time() < deadline:
        time.sleep(0.02)
    srv.kill9()
    s.close()
    assert not (root / "blobs/sha256" / layer[7:9] / layer[7:]).exists()
    srv2 = RegistryServer(root, port=srv.port).start()
    try:
        assert os.listdir(root / "_uploads") == []
        status, _, _ = http_request(srv2.host, "HEAD", f"/v2/crash/blobs/{layer}")
        assert status == 404
        status, _, body = http_request(srv2.host, "GET", h["location"])
        assert status == 404 and error_code(body) == "BLOB_UPLOAD_UNKNOWN"
        dlc("push", "big:v1", f"{srv2.host}/crash:v1")
        status, _, body = http_request(srv2.host, "GET", f"/v2/crash/blobs/{layer}")
        assert status == 200 and sha256(body) == layer
    finally:
        assert srv2.stop() == 0


def test_lying_digest_stores_nothing(registry):  # noqa: F811
    body, other = b"the real content", b"what the client claims"
    status, _, resp = http_request(registry.host, "POST",
                                   f"/v2/liar/blobs/uploads/?digest={sha256(other)}", body)
    assert status == 400 and error_code(resp) == "DIGEST_INVALID"
    status, h, _ = http_request(registry.host, "POST", "/v2/liar/blobs/uploads/")
    status, _, resp = http_request(registry.host, "PUT", f"{h['location']}?digest={sha256(other)}",
                                   body)
    assert status == 400 and error_code(resp) == "DIGEST_INVALID"
    for d in (sha256(body), sha256(other)):
        assert http_request(registry.host, "GET", f"/v2/liar/blobs/{d}")[0] == 404
    assert [f for f in files_under(registry.root) if f.startswith("blobs/")] == []
    assert os.listdir(registry.root / "_uploads") == []


def test_32_concurrent_overlapping_pushes(tmp_path, dlc, registry):  # noqa: F811
    rng = random.Random(3)
    base = [gzip_layer(rng, size=20_000) for _ in range(2)]
    lay = Layout(dlc.layout)  # write the store's layout directly: 32 images, shared base
    digests = {}
    for i in range(32):
        digests[i] = lay.add_image(f"img:{i}", base + [gzip_layer(rng, files=1, size=5_000)])
    procs = [subprocess.Popen([str(DLC), "push", f"img:{i}",
                               f"{registry.host}/conc/{'same' if i % 2 else i}:t{i}"],
                              env=dict(os.environ, DLC_ROOT=str(dlc.root)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(32)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    for i in range(32):
        repo = f"conc/{'same' if i % 2 else i}"
        status, h, raw = http_request(registry.host, "GET", f"/v2/{repo}/manifests/t{i}")
        assert status == 200 and sha256(raw) == digests[i]
        man = json.loads(raw)
        for d in [man["config"]] + man["layers"]:
            status, _, blob = http_request(registry.host, "GET", f"/v2/{repo}/blobs/{d['digest']}")
            assert status == 200 and sha256(blob) == d["digest"]
    # content-addressed: each distinct blob stored once; nothing left in _uploads
    blobs = [f for f in files_under(registry.root) if f.startswith("blobs/")]
    assert len(blobs) == 2 + 32 * 3  # shared base + (layer, config, manifest) per image
    assert os.listdir(registry.root / "_uploads") == []
    # gc, or a second server, refuse to run beside a server; gc finds nothing to remove
    p = dlc("registry", "gc", "--root", registry.root, check=False)
    assert p.returncode == 1 and "in use by a running server" in p.stderr
    p = dlc("registry", "serve", "--root", registry.root, "--listen", "127.0.0.1:0", check=False)
    assert p.returncode == 1 and "in use by another server" in p.stderr
    assert registry.stop() == 0
    p = dlc("registry", "gc", "--root", registry.root, "--dry-run")
    assert p.stdout.startswith("would remove 0 blobs")


TRAVERSALS = [
    ("GET", "/v2/../../etc/passwd/manifests/latest"),
    ("GET", "/v2/%2e%2e/%2e%2e/etc/manifests/latest"),
    ("GET", "/v2/%2E%2E/x/blobs/sha256:" + "0" * 64),
    ("GET", "/v2//etc/manifests/latest"),
    ("GET", "/v2/foo/manifests/..%2f..%2f..%2fetc%2fpasswd"),
    ("GET", "/v2/foo/manifests/../../../x"),
    ("GET", "/v2/foo/blobs/sha256:..%2f..%2f..%2fetc%2fpasswd"),
    ("GET", "/v2/foo/tags/list?last=../../../../etc"),
    ("GET", "/v2/foo/referrers/sha256:../../x"),
    ("PUT", "/v2/foo/manifests/..%2F..%2Fevil"),
    ("PUT", "/v2/%2e%2e%2fevil/manifests/latest"),
    ("PUT", "/v2//tmp/evil/manifests/latest"),
    ("POST", "/v2/../evil/blobs/uploads/"),
    ("POST", "/v2/foo/blobs/uploads/?mount=sha256:" + "1" * 64 + "&from=../../etc"),
    ("PATCH", "/v2/foo/blobs/uploads/..%2f..%2fblobs"),
    ("DELETE", "/v2/foo/manifests/..%2F..%2Frepositories"),
    ("DELETE", "/v2/foo/blobs/sha256:..%2f..%2f.."),
    ("GET", "/v2/" + "a" * 300 + "/manifests/latest"),
    ("GET", "/v2/foo/manifests/" + "t" * 200),
    ("PUT", "/v2/foo/manifests/" + "t" * 200),
    ("GET", "/v2/foo/blobs/sha256:" + "a" * 500),
]


def test_path_traversal_never_leaves_root(tmp_path, registry):  # noqa: F811
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")

    def others():
        return [f for f in files_under(tmp_path)
                if not f.startswith("registry/") and not f.startswith("registry-")]

    before = others()
    for method, path in TRAVERSALS:
        body = b'{"schemaVersion":2}' if method in ("PUT", "PATCH") else b""
        status, h, resp = http_request(registry.host, method, path, body)
        assert status in (400, 404), (method, path, status, resp)
        assert error_code(resp) in ("NAME_INVALID", "NAME_UNKNOWN", "MANIFEST_UNKNOWN",
                                    "BLOB_UNKNOWN", "DIGEST_INVALID", "TAG_INVALID",
                                    "BLOB_UPLOAD_UNKNOWN"), (path, resp)
    assert others() == before
    assert files_under(registry.root) == [".lock"]


def test_basic_auth(tmp_path):
    pw = make_htpasswd(tmp_path / "htpasswd", "alice", "s3cret")
    srv = RegistryServer(tmp_path / "reg", "--htpasswd", pw, "--realm", "test-realm").start()
    try:
        for auth in (None, ("alice", "wrong"), ("bob", "s3cret"), ("alice", "")):
            status, h, body = http_request(srv.host, "GET", "/v2/", auth=auth)
            assert status == 401, auth
            assert h["www-authenticate"] == 'Basic realm="test-realm"'
            assert error_code(body) == "UNAUTHORIZED"
        status, h, _ = http_request(srv.host, "GET", "/v2/", headers={
            "Authorization": "Basic !!!notbase64"})
        assert status == 401
        assert http_request(srv.host, "GET", "/v2/", auth=("alice", "s3cret"))[0] == 200
        assert http_request(srv.host, "GET", "/v2/_catalog", auth=("alice", "s3cret"))[0] == 200
        log = srv.wait_log(r'"GET /v2/_catalog" 200')
        assert ' - alice [' in log and '"GET /v2/_catalog" 200' in log
    finally:
        assert srv.stop() == 0
    # only bcrypt entries are accepted
    (tmp_path / "md5").write_text("carol:$apr1$abcdefgh$0123456789abcdefghijkl\n")
    p = Dlc(tmp_path / "x")("registry", "serve", "--root", tmp_path / "r2", "--listen",
                            "127.0.0.1:0", "--htpasswd", tmp_path / "md5", check=False)
    assert p.returncode == 1 and "only bcrypt entries are supported" in p.stderr


def test_upload_expiry_limits_and_read_only(tmp_path):
    root = tmp_path / "reg"
    srv = RegistryServer(root, "--upload-expiry", "1", "--max-manifest-size", "1k",
                         "--max-blob-size", "1k", "--max-uploads", "2").start()
    try:
        status, h, _ = http_request(srv.host, "POST", "/v2/lim/blobs/uploads/")
        assert status == 202
        status, h2, _ = http_request(srv.host, "POST", "/v2/lim/blobs/uploads/")
        status, h3, body = http_request(srv.host, "POST", "/v2/lim/blobs/uploads/")
        assert status == 429 and error_code(body) == "TOOMANYREQUESTS"
        assert h3["retry-after"] == "10"
        time.sleep(2.6)  # expiry 1 s, the reaper looks every second
        status, _, body = http_request(srv.host, "GET", h["location"])
        assert status == 404 and error_code(body) == "BLOB_UPLOAD_UNKNOWN"
        assert os.listdir(root / "_uploads") == []
        big = random_bytes(random.Random(1), 2048)
        status, _, body = http_request(srv.host, "POST",
                                       f"/v2/lim/blobs/uploads/?digest={sha256(big)}", big)
        assert status == 413 and error_code(body) == "SIZE_INVALID"
        status, _, body = http_request(srv.host, "PUT", "/v2/lim/manifests/v1", b" " * 2000,
                                       {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        assert status == 413
    finally:
        assert srv.stop() == 0
    ro = RegistryServer(root, "--read-only", port=srv.port).start()
    try:
        for method, path in (("POST", "/v2/lim/blobs/uploads/"), ("PUT", "/v2/lim/manifests/x"),
                             ("DELETE", "/v2/lim/manifests/x"),
                             ("DELETE", "/v2/lim/blobs/sha256:" + "0" * 64)):
            status, _, body = http_request(ro.host, method, path)
            assert status == 405 and error_code(body) == "UNSUPPORTED", (method, path)
        assert http_request(ro.host, "GET", "/v2/")[0] == 200
    finally:
        assert ro.stop() == 0


def test_gc_removes_unreferenced_blobs(tmp_path, dlc):
    rng = random.Random(5)
    shared = [gzip_layer(rng)]
    lay = Layout(dlc.layout)
    keep = lay.add_image("keep:1", shared + [gzip_layer(rng)])
    drop = lay.add_image("drop:1", shared + [gzip_layer(rng)])
    root = tmp_path / "reg"
    srv = RegistryServer(root).start()
    dlc("push", "keep:1", f"{srv.host}/gc/keep:1")
    dlc("push", "drop:1", f"{srv.host}/gc/drop:1")
    assert http_request(srv.host, "DELETE", f"/v2/gc/drop/manifests/{drop}")[0] == 202
    assert srv.stop() == 0
    before = set(f for f in files_under(root) if f.startswith("blobs/"))
    p = dlc("registry", "gc", "--root", root)
    # drop's manifest, config and own layer go; the shared layer stays
    assert p.stdout.startswith("removed 3 blobs"), p.stdout
    after = set(f for f in files_under(root) if f.startswith("blobs/"))
    assert len(before - after) == 3 and not any(drop[7:] in f for f in after)
    srv = RegistryServer(root, port=srv.port).start()
    try:
        fresh = Dlc(tmp_path / "fresh")
        fresh("pull", f"{srv.host}/gc/keep:1")
        assert keep in (fresh.layout / "index.json").read_text()
    finally:
        assert srv.stop() == 0


def test_sigint_with_open_connections_is_clean(tmp_path):
    srv = RegistryServer(tmp_path / "reg").start()
    status, h, _ = http_request(srv.host, "POST", "/v2/sig/blobs/uploads/")
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall((f"PATCH {h['location']} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"
               ).encode() + b"x" * 1000)
    time.sleep(0.2)
    t0 = time.time()
    srv.proc.send_signal(signal.SIGINT)
    assert srv.proc.wait(timeout=10) == 0
    assert time.time() - t0 < 5
    s.close()
    assert "Interrupt, shutting down" in srv.log_text()
    assert os.listdir(tmp_path / "reg/_uploads") == []


def test_connection_limit_and_idle_timeout(tmp_path):
    srv = RegistryServer(tmp_path / "reg", "--max-connections", "2", "--timeout", "1").start()
    try:
        time.sleep(1.5)  # the readiness probe's connection has timed out by now
        held = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(2)]
        time.sleep(0.2)
        try:
            status = http_request(srv.host, "GET", "/v2/", timeout=2)[0]
        except OSError:
            status = None
        assert status is None  # a third connection is refused
        # idle connections are closed after --timeout
        time.sleep(2)
        for s in held:
            s.settimeout(2)
            assert s.recv(1) == b""
            s.close()
        assert http_request(srv.host, "GET", "/v2/")[0] == 200
    finally:
        assert srv.stop() == 0
