"""`dlc push` / `dlc pull` / `dlc login` / `dlc logout` against our registry and against
Debian's docker-registry (distribution 2.8.2): same digests both ways, blobs skipped or
mounted, chunked uploads, verification, credentials and their file, clear errors."""
import json
import random
import re
import stat

from conftest import Dlc
from helpers_registry import (MT_INDEX, MT_MANIFEST, DockerRegistry, FlakyProxy, Layout,
                              RegistryServer, TokenServer, fixture_layout, gzip_layer, make_cert, make_htpasswd,
                              sha256, skopeo, to_store)
from helpers_registry import docker_registry, fixture_image, registry  # noqa: F401


def store_digest(dlc, ref):
    """The manifest digest `dlc images` reports for ref (via the layout's index.json)."""
    ix = json.loads((dlc.layout / "index.json").read_text())
    for m in ix["manifests"]:
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref:
            return m["digest"]
    raise AssertionError(f"{ref} not in {ix}")


def blob_files(dlc):
    return {p.name: p.read_bytes() for p in (dlc.layout / "blobs/sha256").iterdir()
            if not p.name.startswith(".")}


def summary(p):
    m = re.search(r"(\d+) blobs \((\d+) (?:sent|fetched), (\d+) already there(?:, (\d+) mounted)?",
                  p.stdout)
    assert m, p.stdout + p.stderr
    return tuple(int(x) if x else 0 for x in m.groups())


def test_push_pull_ours(tmp_path, dlc, registry, fixture_image):  # noqa: F811
    layout, tag, digest = fixture_image
    to_store(layout, tag, dlc, "fixture:v1")
    ref = f"{registry.host}/team/fixture:v1"
    p = dlc("push", "fixture:v1", ref)
    assert p.stdout.startswith(f"pushed {ref} {digest}: ")
    assert summary(p) == (4, 4, 0, 0)
    # a second push sends nothing: every blob is already there
    assert summary(dlc("push", "fixture:v1", ref)) == (4, 0, 4, 0)
    fresh = Dlc(tmp_path / "fresh")
    p = fresh("pull", ref)
    assert p.stdout.startswith(f"pulled {ref} {digest}: ")
    assert summary(p) == (4, 4, 0, 0)
    assert store_digest(fresh, ref) == digest
    assert blob_files(fresh) == blob_files(dlc)
    # pulling again fetches nothing; a LOCAL_REF names it
    assert summary(fresh("pull", ref, "mine:1")) == (4, 0, 4, 0)
    assert store_digest(fresh, "mine:1") == digest
    assert f"{digest[7:19]}" in fresh("images").stdout


def test_push_pull_docker_registry(tmp_path, dlc, docker_registry, fixture_image):  # noqa: F811
    layout, tag, digest = fixture_image
    to_store(layout, tag, dlc, "fixture:v1")
    ref = f"{docker_registry.host}/peer/fixture:v1"
    dlc("push", "fixture:v1", ref)
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}").stdout.encode()
    assert sha256(raw) == digest
    cfg = skopeo("inspect", "--config", "--raw", "--tls-verify=false",
                 f"docker://{ref}").stdout.encode()
    assert cfg == (layout / "blobs/sha256" / json.loads(raw)["config"]["digest"][7:]).read_bytes()
    tags = json.loads(skopeo("list-tags", "--tls-verify=false",
                             f"docker://{docker_registry.host}/peer/fixture").stdout)
    assert tags["Tags"] == ["v1"]
    fresh = Dlc(tmp_path / "fresh")
    fresh("pull", ref)
    assert store_digest(fresh, ref) == digest
    assert blob_files(fresh) == blob_files(dlc)


def test_same_digests_from_both_registries(tmp_path, dlc, registry, docker_registry,  # noqa: F811
                                           fixture_image):  # noqa: F811
    layout, tag, digest = fixture_image
    to_store(layout, tag, dlc, "fixture:v1")
    got = []
    for host in (registry.host, docker_registry.host):
        dlc("push", "fixture:v1", f"{host}/x/img:v1")
        other = Dlc(tmp_path / host.replace(":", "_"))
        other("pull", f"{host}/x/img:v1", "img:v1")
        got.append((store_digest(other, "img:v1"), blob_files(other)))
    assert got[0] == got[1] and got[0][0] == digest


def test_push_mounts_from_another_repository(dlc, registry, fixture_image):  # noqa: F811
    layout, tag, digest = fixture_image
    to_store(layout, tag, dlc, "fixture:v1")
    dlc("push", "fixture:v1", f"{registry.host}/a/img:v1")
    p = dlc("push", "fixture:v1", f"{registry.host}/b/img:v1")
    assert summary(p) == (4, 0, 0, 4)
    mount = r'"POST /v2/b/img/blobs/uploads/\?mount=sha256:[0-9a-f]{64}&from=a/img" 201'
    assert len(re.findall(mount, registry.wait_log(mount, 4))) == 4


def test_chunked_upload(tmp_path, dlc, registry):  # noqa: F811
    lay, digest = fixture_layout(tmp_path / "big", "v1", n_layers=1, size=300_000)
    to_store(lay.path, "v1", dlc, "big:v1")
    dlc("push", "--chunk-size", "64k", "big:v1", f"{registry.host}/chunky:v1")
    log = registry.wait_log(r'"PUT /v2/chunky/manifests/v1" 201')
    patches = re.findall(r'"PATCH /v2/chunky/blobs/uploads/[0-9a-f]{32}" 202', log)
    assert len(patches) >= 4, log
    fresh = Dlc(tmp_path / "fresh")
    fresh("pull", f"{registry.host}/chunky:v1")
    assert store_digest(fresh, f"{registry.host}/chunky:v1") == digest


def test_pull_verifies_every_blob(tmp_path, dlc, registry, fixture_image):  # noqa: F811
    layout, tag, digest = fixture_image
    to_store(layout, tag, dlc, "fixture:v1")
    dlc("push", "fixture:v1", f"{registry.host}/v/img:v1")
    man = json.loads((layout / "blobs/sha256" / digest[7:]).read_bytes())
    victim = man["layers"][1]["digest"]
    blob = registry.root / "blobs/sha256" / victim[7:9] / victim[7:]
    data = bytearray(blob.read_bytes())
    data[100] ^= 0xFF  # same size, different bytes
    blob.write_bytes(bytes(data))
    fresh = Dlc(tmp_path / "fresh")
    p = fresh("pull", f"{registry.host}/v/img:v1", check=False)
    assert p.returncode == 1
    assert p.stderr.startswith(f"dlc: pull {registry.host}/v/img:v1: blob {victim}")
    assert "hashes to" in p.stderr or "does not match" in p.stderr or "corrupt" in p.stderr
    assert victim[7:] not in {f for f in blob_files(fresh)}
    assert not (fresh.layout / "index.json").exists() or \
        "v/img" not in (fresh.layout / "index.json").read_text()


def test_push_stops_at_a_corrupt_local_blob(dlc, registry, fixture_image):  # noqa: F811
    layout, tag, digest = fixture_image
    to_store(layout, tag, dlc, "fixture:v1")
    man = json.loads((layout / "blobs/sha256" / digest[7:]).read_bytes())
    victim = man["layers"][0]["digest"]
    blob = dlc.layout / "blobs/sha256" / victim[7:]
    data = bytearray(blob.read_bytes())
    data[100] ^= 0xFF  # same size, different bytes
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    ref = f"{registry.host}/v/bad:v1"
    p = dlc("push", "fixture:v1", ref, check=False)
    assert p.returncode == 1
    assert re.fullmatch(rf"dlc: push {re.escape(ref)}: upload blob {victim}: local blob {victim} "
                        rf"is corrupt: it hashes to sha256:[0-9a-f]{{64}}\n", p.stderr), p.stderr
    # the registry got no manifest, so nothing is tagged there
    assert not (registry.root / "repositories/v/bad/_manifests/tags/v1").exists()


def test_pull_by_digest_and_errors(tmp_path, dlc, registry, fixture_image):  # noqa: F811
    layout, tag, digest = fixture_image
    to_store(layout, tag, dlc, "fixture:v1")
    dlc("push", "fixture:v1", f"{registry.host}/e/img:v1")
    fresh = Dlc(tmp_path / "fresh")
    fresh("pull", f"{registry.host}/e/img@{digest}", "bydigest:1")
    assert store_digest(fresh, "bydigest:1") == digest
    p = fresh("pull", f"{registry.host}/e/img:nope", check=False)
    assert p.returncode == 1
    assert p.stderr == (f"dlc: pull {registry.host}/e/img:nope: registry {registry.host}, "
                        f"repository e/img: HTTP 404 MANIFEST_UNKNOWN: manifest e/img:nope is "
                        f"unknown\n")
    p = dlc("push", "fixture:v1", "127.0.0.1:1/x:v1", check=False)
    assert p.returncode == 1 and "registry 127.0.0.1:1" in p.stderr
    p = dlc("push", "fixture:v1", "no-registry:v1", check=False)
    assert p.returncode == 1 and "names no registry" in p.stderr
    p = dlc("push", "missing:v1", f"{registry.host}/x:v1", check=False)
    assert p.returncode == 1 and "not found" in p.stderr


def test_login_logout_and_auth_file(tmp_path, dlc, fixture_image):
    layout, tag, digest = fixture_image
    to_store(layout, tag, dlc, "fixture:v1")
    pw = make_htpasswd(tmp_path / "htpasswd", "alice", "s3cret")
    srv = RegistryServer(tmp_path / "reg", "--htpasswd", pw).start()
    auth = tmp_path / "home/.config/dlc/auth.json"
    env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": ""}
    try:
        ref = f"{srv.host}/secure/img:v1"
        p = dlc("push", "fixture:v1", ref, check=False, env=env)
        assert p.returncode == 1 and "requires authentication" in p.stderr
        p = dlc("login", "-u", "alice", "--password-stdin", srv.host, input="wrong\n",
                check=False, env=env)
        assert p.returncode == 1 and "HTTP 401 UNAUTHORIZED" in p.stderr
        assert not auth.exists()
        p = dlc("login", "-u", "alice", "--password-stdin", srv.host, input="s3cret\n", env=env)
        assert "Login Succeeded" in p.stdout
        assert stat.S_IMODE(auth.stat().st_mode) == 0o600
        assert stat.S_IMODE(auth.parent.stat().st_mode) == 0o700
        entry = json.loads(auth.read_text())["auths"][srv.host]
        assert entry == {"auth": "YWxpY2U6czNjcmV0"}  # base64("alice:s3cret"), docker format
        dlc("push", "fixture:v1", ref, env=env)
        # a readable auth file is refused: it holds a password
        auth.chmod(0o644)
        p = dlc("pull", ref, check=False, env=env)
        assert p.returncode == 1 and "chmod 600" in p.stderr and "0644" in p.stderr
        auth.chmod(0o600)
        Dlc(tmp_path / "fresh")("pull", ref, env=env)
        dlc("logout", srv.host, env=env)
        assert json.loads(auth.read_text())["auths"] == {}
        p = dlc("logout", srv.host, check=False, env=env)
        assert p.returncode == 1 and "not logged in" in p.stderr
        # environment credentials need no file
        env2 = dict(env, DLC_REGISTRY_USER="alice", DLC_REGISTRY_PASSWORD="s3cret")
        Dlc(tmp_path / "fresh2")("pull", ref, env=env2)
        env2["DLC_REGISTRY_PASSWORD"] = "bad"
        p = Dlc(tmp_path / "fresh3")("pull", ref, check=False, env=env2)
        assert p.returncode == 1 and "HTTP 401" in p.stderr
    finally:
        assert srv.stop() == 0


def test_parallel_pull_of_many_layers(tmp_path, dlc, registry):  # noqa: F811
    lay, digest = fixture_layout(tmp_path / "many", "v1", n_layers=12)
    to_store(lay.path, "v1", dlc, "many:v1")
    dlc("push", "--parallel", "8", "many:v1", f"{registry.host}/many:v1")
    fresh = Dlc(tmp_path / "fresh")
    p = fresh("pull", "--parallel", "8", f"{registry.host}/many:v1")
    assert summary(p) == (13, 13, 0, 0)
    assert store_digest(fresh, f"{registry.host}/many:v1") == digest


def test_bearer_token_auth_against_docker_registry(tmp_path, dlc, fixture_image):  # noqa: F811
    """docker-registry with token auth: dlc answers the Bearer challenge with a token from the
    realm (basic credentials), for push, mount and pull."""
    layout, tag, digest = fixture_image
    to_store(layout, tag, dlc, "fixture:v1")
    tokens = TokenServer(tmp_path / "tokens", "alice", "s3cret").start()
    reg = DockerRegistry(tmp_path / "dr", auth=tokens.registry_auth()).start()
    env = {"DLC_REGISTRY_USER": "alice", "DLC_REGISTRY_PASSWORD": "s3cret"}
    try:
        p = dlc("push", "fixture:v1", f"{reg.host}/tok/a:v1", check=False,
                env={"DLC_REGISTRY_USER": "alice", "DLC_REGISTRY_PASSWORD": "nope"})
        assert p.returncode == 1 and f"token from {tokens.realm}: HTTP 401" in p.stderr
        dlc("push", "fixture:v1", f"{reg.host}/tok/a:v1", env=env)
        assert summary(dlc("push", "fixture:v1", f"{reg.host}/tok/b:v1", env=env)) == \
            (4, 0, 0, 4)
        fresh = Dlc(tmp_path / "fresh")
        fresh("pull", f"{reg.host}/tok/b:v1", env=env)
        assert store_digest(fresh, f"{reg.host}/tok/b:v1") == digest
        scopes = [q.get("scope", [""])[0] for q, _ in tokens.requests]
        assert "repository:tok/a:pull,push" in scopes and "repository:tok/b:pull" in scopes
        # the mount needed pull on the source repository too: the challenge said so
        assert any("repository:tok/a:pull" in s and "repository:tok/b:pull,push" in s
                   for s in scopes), scopes
        p = Dlc(tmp_path / "anon")("pull", f"{reg.host}/tok/b:v1", check=False,
                                   env={"HOME": str(tmp_path)})
        assert p.returncode == 1
    finally:
        reg.stop()
        tokens.stop()


def test_tls_registry(tmp_path, dlc, fixture_image):  # noqa: F811
    layout, tag, digest = fixture_image
    to_store(layout, tag, dlc, "fixture:v1")
    cert, key = make_cert(tmp_path)
    srv = RegistryServer(tmp_path / "reg", "--tls-cert", cert, "--tls-key", key).start()
    ref = f"{srv.host}/tls/img:v1"
    try:
        p = dlc("push", "fixture:v1", ref, check=False)
        assert p.returncode == 1
        assert "certificate" in p.stderr and "--insecure" in p.stderr, p.stderr
        dlc("push", "fixture:v1", ref, env={"SSL_CERT_FILE": str(cert)})
        fresh = Dlc(tmp_path / "fresh")
        fresh("pull", "--insecure", ref)
        assert store_digest(fresh, ref) == digest
        assert '"GET /v2/tls/img/manifests/v1" 200' in srv.wait_log(
            r'"GET /v2/tls/img/manifests/v1" 200')
    finally:
        assert srv.stop() == 0


def test_push_index_pull_platform(tmp_path, dlc, registry):  # noqa: F811
    """An index is pushed children first; a pull takes the linux/<host arch> image."""
    import platform
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    rng = random.Random(9)
    lay = Layout(dlc.layout)
    mine = lay.add_image("mine:1", [gzip_layer(rng)])
    other = lay.add_image("other:1", [gzip_layer(rng)])
    raw = {m["digest"]: m["size"] for m in lay.index["manifests"]}
    ix = json.dumps({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [
        {"mediaType": MT_MANIFEST, "digest": other, "size": raw[other],
         "platform": {"architecture": "s390x", "os": "linux"}},
        {"mediaType": MT_MANIFEST, "digest": mine, "size": raw[mine],
         "platform": {"architecture": arch, "os": "linux"}}]}).encode()
    d = lay.put_blob(ix)
    lay.index["manifests"].append({"mediaType": MT_INDEX, "digest": d, "size": len(ix),
                                   "annotations": {"org.opencontainers.image.ref.name":
                                                   "multi:1"}})
    lay._write_index()
    ref = f"{registry.host}/multi:1"
    p = dlc("push", "multi:1", ref)
    assert d in p.stdout and summary(p)[0] == 4
    log = registry.wait_log(r'"PUT /v2/multi/manifests/1" 201')
    assert log.index(f'"PUT /v2/multi/manifests/{other}" 201') < \
        log.index('"PUT /v2/multi/manifests/1" 201')
    fresh = Dlc(tmp_path / "fresh")
    fresh("pull", ref)
    assert store_digest(fresh, ref) == mine


def test_retries_on_5xx_and_dropped_connections(tmp_path, dlc, registry, fixture_image):  # noqa
    layout, tag, digest = fixture_image
    to_store(layout, tag, dlc, "fixture:v1")
    blob_ops = lambda method, path: "/blobs/" in path or "/manifests/" in path  # noqa: E731
    for mode in ("503", "drop"):
        proxy = FlakyProxy(registry.host, blob_ops, mode).start()
        try:
            ref = f"{proxy.host}/flaky/{mode}:v1"
            dlc("push", "fixture:v1", ref)
            fresh = Dlc(tmp_path / f"fresh-{mode}")
            fresh("pull", ref)
            assert store_digest(fresh, ref) == digest
            methods = {m for m, _ in proxy.failed}
            assert {"HEAD", "PUT", "GET"} <= methods, proxy.failed
        finally:
            proxy.stop()
