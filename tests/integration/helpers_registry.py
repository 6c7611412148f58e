"""Helpers for the registry tests: fixture images written as OCI layouts (random layers,
python tarfile/gzip + json), servers on loopback (`dlc registry serve`, Debian's
docker-registry), skopeo, and small HTTP helpers."""
import base64
import gzip
import hashlib
import http.client
import io
import json
import os
import random
import re
import signal
import socket
import subprocess
import tarfile
import time
from pathlib import Path

from conftest import DLC, free_port, require_tool, run

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def random_bytes(rng, n):
    return rng.getrandbits(8 * n).to_bytes(n, "little") if n else b""


def make_tar(files):
    """files: {name: bytes} -> a reproducible tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name in sorted(files):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime, ti.mode, ti.uid, ti.gid = len(files[name]), 0, 0o644, 0, 0
            t.addfile(ti, io.BytesIO(files[name]))
    return buf.getvalue()


class Layout:
    """An OCI image layout on disk that fixtures add images to."""

    def __init__(self, path):
        self.path = Path(path)
        (self.path / "blobs/sha256").mkdir(parents=True, exist_ok=True)
        (self.path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        self.index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": []}
        self._write_index()

    def _write_index(self):
        (self.path / "index.json").write_text(json.dumps(self.index))

    def put_blob(self, data):
        d = sha256(data)
        p = self.path / "blobs/sha256" / d[7:]
        if not p.exists():
            p.write_bytes(data)
        return d

    def put_file_blob(self, path):
        """Moves a large blob file into the layout without reading it into memory twice."""
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        d = "sha256:" + h.hexdigest()
        os.replace(path, self.path / "blobs/sha256" / d[7:])
        return d, os.path.getsize(self.path / "blobs/sha256" / d[7:])

    def add_image(self, tag, layers, annotations=None):
        """layers: list of (media_type, bytes). Returns the manifest digest."""
        descs, diff_ids = [], []
        for mt, blob in layers:
            descs.append({"mediaType": mt, "digest": self.put_blob(blob), "size": len(blob)})
            raw = gzip.decompress(blob) if mt == MT_LAYER_GZIP else blob
            diff_ids.append(sha256(raw))
        return self.add_manifest(tag, descs, diff_ids, annotations)

    def add_manifest(self, tag, descs, diff_ids, annotations=None):
        cfg = json.dumps({"architecture": "amd64", "os": "linux",
                          "created": "2026-01-01T00:00:00Z",
                          "config": {"Cmd": ["/bin/true"]},
                          "rootfs": {"type": "layers", "diff_ids": diff_ids},
                          "history": [{"created": "2026-01-01T00:00:00Z",
                                       "created_by": "fixture"} for _ in diff_ids]},
                         sort_keys=True).encode()
        man = {"schemaVersion": 2, "mediaType": MT_MANIFEST,
               "config": {"mediaType": MT_CONFIG, "digest": self.put_blob(cfg),
                          "size": len(cfg)},
               "layers": descs}
        if annotations:
            man["annotations"] = annotations
        raw = json.dumps(man, sort_keys=True).encode()
        d = self.put_blob(raw)
        self.index["manifests"] = [m for m in self.index["manifests"] if m.get(
            "annotations", {}).get("org.opencontainers.image.ref.name") != tag]
        self.index["manifests"].append({
            "mediaType": MT_MANIFEST, "digest": d, "size": len(raw),
            "annotations": {"org.opencontainers.image.ref.name": tag}})
        self._write_index()
        return d


def gzip_layer(rng, files=3, size=4096):
    """A tar+gzip layer of random files."""
    data = {f"data/file{i}.bin": random_bytes(rng, size) for i in range(files)}
    return MT_LAYER_GZIP, gzip.compress(make_tar(data), mtime=0)


def fixture_layout(path, tag="v1", n_layers=2, seed=1, shared=None, size=4096):
    """A layout with one image of n_layers random gzip layers (+ shared layers first)."""
    rng = random.Random(seed)
    lay = Layout(path)
    layers = list(shared or []) + [gzip_layer(rng, size=size) for _ in range(n_layers)]
    digest = lay.add_image(tag, layers)
    return lay, digest


def big_tar_layer(path, size, seed):
    """Writes an uncompressed tar layer of ~size random bytes to path (streamed)."""
    rng = random.Random(seed)
    with tarfile.open(path, mode="w", format=tarfile.PAX_FORMAT) as t:
        ti = tarfile.TarInfo("data/random.bin")
        ti.size, ti.mtime, ti.mode = size, 0, 0o644

        class Stream(io.RawIOBase):
            def __init__(self):
                self.left = size

            def readable(self):
                return True

            def readinto(self, b):
                n = min(len(b), self.left, 1 << 20)
                if n == 0:
                    return 0
                b[:n] = os.urandom(n) if seed is None else random_bytes(rng, n)
                self.left -= n
                return n

        t.addfile(ti, io.BufferedReader(Stream(), 1 << 20))


# ---- peers ---------------------------------------------------------------------------------

def skopeo(*args, timeout=300, check=True):
    require_tool("skopeo")
    return run(["skopeo", "--insecure-policy", *args], timeout=timeout, check=check)


def to_store(layout, tag, dlc, name):
    """Copies layout:tag into dlc's store as name (e.g. "fixture:v1") with skopeo."""
    dlc.layout.mkdir(parents=True, exist_ok=True)
    skopeo("copy", "--preserve-digests", f"oci:{layout}:{tag}", f"oci:{dlc.layout}:{name}")


def wait_http(port, path="/v2/", timeout=10, proc=None, tls=False):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited {proc.returncode}: {proc.stderr.read()}")
        try:
            if tls:
                import ssl
                c = http.client.HTTPSConnection("127.0.0.1", port, timeout=2,
                                                context=ssl._create_unverified_context())
            else:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            c.getresponse().read()
            c.close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing answers on 127.0.0.1:{port} after {timeout}s")


class RegistryServer:
    """`dlc registry serve` on a loopback port; stop() checks a clean SIGTERM exit."""

    def __init__(self, root, *args, port=None, env=None):
        self.root = Path(root)
        self.args = list(args)
        self.port = port or free_port()
        self.env = env
        self.proc = None
        self.log = self.root.parent / f"registry-{self.port}.log"
        self.tls = "--tls-cert" in self.args

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    @property
    def url(self):
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def start(self):
        e = dict(os.environ)
        e.update(self.env or {})
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [str(DLC), "registry", "serve", "--root", str(self.root), "--listen", self.host,
             *self.args], stdout=self.logf, stderr=self.logf, env=e)
        wait_http(self.port, proc=self.proc, tls=self.tls)
        return self

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.logf.close()

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("dlc registry serve did not stop on SIGTERM")
        self.logf.close()
        return rc

    def log_text(self):
        return self.log.read_text(errors="replace")

    def wait_log(self, pattern, count=1, timeout=5):
        """The log once pattern (a regex) matches count times: a request's line is written
        when MHD has sent the response, which may be after the client moved on."""
        deadline = time.time() + timeout
        while True:
            text = self.log_text()
            if len(re.findall(pattern, text)) >= count or time.time() > deadline:
                return text
            time.sleep(0.02)


class DockerRegistry:
    """Debian's docker-registry (distribution 2.8.2) on loopback with a temp config
    (oci-specs.md §4.5): filesystem storage, deletes enabled, no auth unless given."""

    def __init__(self, tmp, auth=None):
        self.dir = Path(tmp)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.auth = auth or ""
        self.proc = None

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        require_tool("docker-registry")
        cfg = self.dir / "config.yml"
        cfg.write_text(f"""version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {self.dir}/data
  delete:
    enabled: true
http:
  addr: {self.host}
{self.auth}""")
        self.logf = open(self.dir / "registry.log", "ab")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(cfg)], stdout=self.logf,
                                     stderr=self.logf)
        wait_http(self.port, proc=self.proc)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()


def http_request(host, method, path, body=b"", headers=None, auth=None, timeout=30):
    """One request; returns (status, headers dict lowercased, body)."""
    c = http.client.HTTPConnection(host, timeout=timeout)
    h = dict(headers or {})
    if auth:
        h["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    if method in ("POST", "PUT", "PATCH"):
        h.setdefault("Content-Length", str(len(body)))
    try:
        c.request(method, path, body=body or None, headers=h)
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def files_under(root):
    """Every regular file under root (relative paths), for 'nothing outside' checks."""
    root = Path(root)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# ---- pytest fixtures (imported by the test modules) -------------------------------------------

import pytest  # noqa: E402


@pytest.fixture
def registry(tmp_path):
    """A fresh `dlc registry serve` on a loopback port; must stop cleanly on SIGTERM."""
    srv = RegistryServer(tmp_path / "registry").start()
    yield srv
    assert srv.stop() == 0, srv.log_text()


@pytest.fixture
def docker_registry(tmp_path):
    srv = DockerRegistry(tmp_path / "docker-registry").start()
    yield srv
    srv.stop()


@pytest.fixture
def fixture_image(tmp_path):
    """A 3-layer gzip image in an OCI layout: (layout path, tag, manifest digest)."""
    lay, digest = fixture_layout(tmp_path / "fixture", "v1", n_layers=3)
    return lay.path, "v1", digest


def make_htpasswd(path, user, password):
    require_tool("htpasswd")
    run(["htpasswd", "-Bbc", "-C", "5", path, user, password])
    return path


def make_cert(dir_):
    """A self-signed certificate for 127.0.0.1 (openssl): (cert, key)."""
    cert, key = Path(dir_) / "cert.pem", Path(dir_) / "key.pem"
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", key, "-out", cert])
    return cert, key


# ---- a bearer token server for docker-registry's token auth ------------------------------------

def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """Issues RS256 JWTs the way distribution's token auth expects them
    (docs/content/spec/auth/token.md): basic credentials in, {"token": ...} out, the signing
    certificate in the x5c header. Signing is done by the openssl CLI."""

    def __init__(self, dir_, user, password, service="dlc-test", issuer="dlc-test-issuer"):
        self.dir = Path(dir_)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert, self.key = make_cert(self.dir)
        der = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-outform", "DER"],
                             capture_output=True, check=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.user, self.password = user, password
        self.service, self.issuer = service, issuer
        self.port = free_port()
        self.requests = []

    @property
    def realm(self):
        return f"http://127.0.0.1:{self.port}/token"

    def registry_auth(self):
        return (f"auth:\n  token:\n    realm: {self.realm}\n    service: {self.service}\n"
                f"    issuer: {self.issuer}\n    rootcertbundle: {self.cert}\n")

    def sign(self, claims):
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        payload = (_b64url(json.dumps(header).encode()) + "." +
                   _b64url(json.dumps(claims).encode()))
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)],
                             input=payload.encode(), capture_output=True, check=True).stdout
        return payload + "." + _b64url(sig)

    def token_for(self, scopes):
        access = []
        for scope in scopes:
            for item in scope.split(" "):
                parts = item.split(":")
                if len(parts) >= 3 and parts[0] == "repository":
                    access.append({"type": "repository", "name": ":".join(parts[1:-1]),
                                   "actions": parts[-1].split(",")})
        now = int(time.time())
        return self.sign({"iss": self.issuer, "sub": self.user, "aud": self.service,
                          "exp": now + 300, "nbf": now - 10, "iat": now,
                          "jti": os.urandom(8).hex(), "access": access})

    def start(self):
        import threading
        import urllib.parse
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                q = urllib.parse.parse_qs(u.query)
                want = "Basic " + base64.b64encode(
                    f"{outer.user}:{outer.password}".encode()).decode()
                outer.requests.append((q, self.headers.get("Authorization")))
                if u.path != "/token" or self.headers.get("Authorization") != want:
                    self.send_response(401)
                    self.end_headers()
                    return
                body = json.dumps({"token": outer.token_for(q.get("scope", [])),
                                   "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class FlakyProxy:
    """An HTTP proxy in front of a registry that fails the first attempt of every request
    whose (method, path) matches `fail` with a 503, or by dropping the connection
    (mode="drop"), so clients' retries show."""

    def __init__(self, upstream, fail=lambda method, path: True, mode="503"):
        self.upstream = upstream
        self.fail = fail
        self.mode = mode
        self.port = free_port()
        self.seen = set()
        self.failed = []

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                path = self.path.split("?")[0]
                # every upload session counts as one path, so a retry with a new one passes
                key = (self.command, re.sub(r"/uploads/[0-9a-zA-Z-]+$", "/uploads/", path))
                if key not in outer.seen and outer.fail(self.command, path):
                    outer.seen.add(key)
                    outer.failed.append(key)
                    if outer.mode == "drop":
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                c = http.client.HTTPConnection(outer.upstream, timeout=60)
                hdrs = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                c.request(self.command, self.path, body=body or None, headers=hdrs)
                r = c.getresponse()
                data = r.read()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding",
                                         "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", r.getheader("Content-Length") or
                                 str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                c.close()

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
