#!/usr/bin/python3
"""Our own OCI distribution-spec conformance suite.

It walks every step of the released suite (distribution-spec v1.1.1 conformance/, see
shared/reference/oci-specs.md §3.1: pull, push, content discovery, content management) and
the extras of the redesigned suite on `main` that dlc's registry claims (§3.2: Range GETs,
zero-byte blobs, chunked uploads with the last chunk on the PUT, out-of-order chunks, upload
cancel, anonymous/missing mounts, bad digests, exact Content-Type/Content-Length on manifest
GETs, ?tag= pushes, nested indexes, `last` without `n`), plus the negative cases of §7 row 8.

Usage:
    registry_conformance.py http://127.0.0.1:5000 [--namespace NAME] [--user U --password P]
                            [--insecure] [--only pull,push,discovery,management,extras]

Prints one "PASS|FAIL <workflow> <n>: <what>" line per step and "N passed, M failed";
exits 1 when any step failed. Python standard library only.
"""
import argparse
import base64
import gzip
import hashlib
import http.client
import io
import json
import os
import ssl
import sys
import tarfile
import urllib.parse
import uuid

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_ERROR_CODES = {
    "BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "NAME_INVALID",
    "NAME_UNKNOWN", "SIZE_INVALID", "UNAUTHORIZED", "DENIED", "UNSUPPORTED", "TAG_INVALID",
    "MANIFEST_UNVERIFIED",
}


def digest_of(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        return json.loads(self.body)


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def expect_status(resp, *codes):
    check(resp.status in codes,
          f"status {resp.status}, want {'/'.join(map(str, codes))}: {resp.body[:300]!r}")


def expect_error(resp, status, code=None):
    """A spec error body: {"errors":[{"code":...}]} with a code from the OCI list."""
    expect_status(resp, status)
    try:
        errs = resp.json()["errors"]
    except (ValueError, KeyError, TypeError):
        raise Failure(f"status {status} without an OCI error body: {resp.body[:200]!r}")
    check(isinstance(errs, list) and errs, "empty errors array")
    first = errs[0].get("code")
    if code:
        check(first == code, f"error code {first}, want {code}")
    else:
        check(first in OCI_ERROR_CODES, f"error code {first} is not an OCI code")


class Client:
    def __init__(self, url, user=None, password=None, insecure=False):
        u = urllib.parse.urlsplit(url)
        self.scheme, self.netloc = u.scheme, u.netloc
        self.auth = None
        if user is not None:
            tok = base64.b64encode(f"{user}:{password}".encode()).decode()
            self.auth = "Basic " + tok
        self.ctx = ssl._create_unverified_context() if insecure else None

    def request(self, method, path, body=b"", headers=None):
        if path.startswith("http://") or path.startswith("https://"):
            u = urllib.parse.urlsplit(path)
            path = u.path + ("?" + u.query if u.query else "")
        h = {"Content-Length": str(len(body))} if method in ("POST", "PUT", "PATCH") else {}
        if self.auth:
            h["Authorization"] = self.auth
        h.update(headers or {})
        if self.scheme == "https":
            c = http.client.HTTPSConnection(self.netloc, timeout=60, context=self.ctx)
        else:
            c = http.client.HTTPConnection(self.netloc, timeout=60)
        try:
            c.putrequest(method, path, skip_accept_encoding=True)
            for k, v in h.items():
                c.putheader(k, v)
            c.endheaders(body if body else None)
            r = c.getresponse()
            data = r.read()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        finally:
            c.close()


def with_query(location, **params):
    sep = "&" if "?" in location else "?"
    return location + sep + urllib.parse.urlencode(params)


def make_layer():
    """A small deterministic tar+gzip layer."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        data = b"conformance layer\n"
        ti = tarfile.TarInfo("hello.txt")
        ti.size, ti.mtime, ti.mode = len(data), 0, 0o644
        t.addfile(ti, io.BytesIO(data))
    raw = buf.getvalue()
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as g:
        g.write(raw)
    return out.getvalue(), digest_of(raw)


class Data:
    """The suite's test data (oci-specs.md §3.1): 16 configs and manifests, blobs A and B."""

    def __init__(self):
        self.layer, diff_id = make_layer()
        self.layer_digest = digest_of(self.layer)
        self.configs, self.manifests = [], []
        for i in range(16):
            cfg = json.dumps({"architecture": "amd64", "os": "linux",
                              "author": uuid.uuid4().hex,
                              "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
            self.configs.append(cfg)
            man = {"schemaVersion": 2, "mediaType": MT_MANIFEST,
                   "config": {"mediaType": MT_CONFIG, "digest": digest_of(cfg),
                              "size": len(cfg), "data": base64.b64encode(cfg).decode(),
                              "newUnspecifiedField": "null"},
                   "layers": [{"mediaType": MT_LAYER, "digest": self.layer_digest,
                               "size": len(self.layer)}]}
            self.manifests.append(json.dumps(man).encode())
        self.blob_a = os.urandom(42)
        self.blob_b = os.urandom(42)
        self.empty_json = b"{}"
        self.dummy = digest_of(b"hello world")

    def cd(self, i):
        return digest_of(self.configs[i])

    def md(self, i):
        return digest_of(self.manifests[i])


class Suite:
    def __init__(self, client, ns, crossmount_ns):
        self.c = client
        self.ns = ns
        self.xns = crossmount_ns
        self.d = Data()
        self.passed = 0
        self.failed = 0
        self.workflow = ""
        self.n = 0

    def step(self, what, fn):
        self.n += 1
        try:
            fn()
        except Failure as e:
            self.failed += 1
            print(f"FAIL {self.workflow} {self.n}: {what}: {e}", flush=True)
            return False
        except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError,
                AttributeError, IndexError) as e:
            self.failed += 1
            print(f"FAIL {self.workflow} {self.n}: {what}: {type(e).__name__}: {e}", flush=True)
            return False
        self.passed += 1
        print(f"PASS {self.workflow} {self.n}: {what}", flush=True)
        return True

    def begin(self, workflow):
        self.workflow, self.n = workflow, 0

    # ---- helpers --------------------------------------------------------------------------

    def v2(self, ns, *parts):
        return "/v2/" + ns + "/" + "/".join(parts)

    def post_put(self, data, ns=None):
        ns = ns or self.ns
        r = self.c.request("POST", self.v2(ns, "blobs/uploads/"))
        expect_status(r, 202)
        loc = r.header("Location")
        check(loc, "POST without Location")
        r = self.c.request("PUT", with_query(loc, digest=digest_of(data)), data,
                           {"Content-Type": "application/octet-stream"})
        expect_status(r, 201)
        check(r.header("Location"), "PUT without Location")
        return r

    def put_manifest(self, ref, body, mt=MT_MANIFEST, ns=None):
        return self.c.request("PUT", self.v2(ns or self.ns, "manifests", ref), body,
                              {"Content-Type": mt})

    def setup(self, what, fn):
        """Setup actions are steps too, so a broken setup shows."""
        return self.step("setup: " + what, fn)

    # ---- pull -----------------------------------------------------------------------------

    def pull(self):
        d, c, ns = self.d, self.c, self.ns
        self.begin("pull")
        self.setup("push configs[0], configs[1], layer", lambda: [
            self.post_put(d.configs[0]), self.post_put(d.configs[1]), self.post_put(d.layer)])
        self.setup("push manifests[0] as tagtest0",
                   lambda: expect_status(self.put_manifest("tagtest0", d.manifests[0]), 201))
        self.setup("push manifests[1] by digest",
                   lambda: expect_status(self.put_manifest(d.md(1), d.manifests[1]), 201))

        def head_blob_exists():
            r = c.request("HEAD", self.v2(ns, "blobs", d.cd(0)))
            expect_status(r, 200)
            dg = r.header("Docker-Content-Digest")
            check(dg in (None, d.cd(0)), f"Docker-Content-Digest {dg}")
            check(r.header("Content-Length") == str(len(d.configs[0])), "HEAD Content-Length")

        self.step("HEAD blob dummy -> 404",
                  lambda: expect_status(c.request("HEAD", self.v2(ns, "blobs", d.dummy)), 404))
        self.step("HEAD blob configs[0] -> 200", head_blob_exists)
        self.step("GET blob dummy -> 404",
                  lambda: expect_error(c.request("GET", self.v2(ns, "blobs", d.dummy)), 404,
                                       "BLOB_UNKNOWN"))

        def get_blob():
            r = c.request("GET", self.v2(ns, "blobs", d.cd(0)))
            expect_status(r, 200)
            check(r.body == d.configs[0], "blob bytes differ")

        self.step("GET blob configs[0] -> 200, same bytes", get_blob)
        self.step("HEAD manifest .INVALID_MANIFEST_NAME -> 404", lambda: expect_status(
            c.request("HEAD", self.v2(ns, "manifests", ".INVALID_MANIFEST_NAME")), 404))
        for i in (0, 1):
            self.step(f"HEAD manifests[{i}] by digest -> 200",
                      lambda i=i: self.head_manifest(d.md(i), d.md(i)))
        self.step("HEAD manifest by tag -> 200 and digest of manifests[0]",
                  lambda: self.head_manifest("tagtest0", d.md(0)))
        self.step("GET manifest .INVALID_MANIFEST_NAME -> 404", lambda: expect_error(
            c.request("GET", self.v2(ns, "manifests", ".INVALID_MANIFEST_NAME")), 404))
        for i in (0, 1):
            self.step(f"GET manifests[{i}] by digest -> 200",
                      lambda i=i: self.get_manifest(d.md(i), d.manifests[i]))
        self.step("GET manifest by tag -> 200",
                  lambda: self.get_manifest("tagtest0", d.manifests[0]))

        def totally_wrong():
            r = c.request("GET", self.v2(ns, "manifests", "sha256:totallywrong"))
            if r.status == 400:
                expect_error(r, 400)
            else:
                expect_status(r, 404)

        self.step("GET manifest sha256:totallywrong -> 400 (OCI error) or 404", totally_wrong)

        def teardown():
            for i in (0, 1):
                expect_status(c.request("DELETE", self.v2(ns, "manifests", d.md(i))), 202, 405)
            for b in (d.cd(0), d.cd(1), d.layer_digest):
                expect_status(c.request("DELETE", self.v2(ns, "blobs", b)), 202, 404, 405)

        self.step("teardown: delete manifests and blobs", teardown)

    def head_manifest(self, ref, want_digest):
        r = self.c.request("HEAD", self.v2(self.ns, "manifests", ref))
        expect_status(r, 200)
        dg = r.header("Docker-Content-Digest")
        check(dg == want_digest, f"Docker-Content-Digest {dg}, want {want_digest}")

    def get_manifest(self, ref, body, mt=MT_MANIFEST):
        r = self.c.request("GET", self.v2(self.ns, "manifests", ref), headers={"Accept": mt})
        expect_status(r, 200)
        check(r.body == body, "manifest bytes differ")
        check(r.header("Content-Type") == mt, f"Content-Type {r.header('Content-Type')}")
        check(r.header("Content-Length") == str(len(body)), "Content-Length")
        check(r.header("Docker-Content-Digest") == digest_of(body), "Docker-Content-Digest")

    # ---- push -----------------------------------------------------------------------------

    def push(self):
        d, c, ns = self.d, self.c, self.ns
        self.begin("push")
        st = {}

        def streamed_patch():
            r = c.request("POST", self.v2(ns, "blobs/uploads/"))
            expect_status(r, 202)
            r = c.request("PATCH", r.header("Location"), d.blob_a,
                          {"Content-Type": "application/octet-stream"})
            expect_status(r, 202)
            st["loc"] = r.header("Location")
            check(st["loc"], "PATCH without Location")

        def streamed_put():
            r = c.request("PUT", with_query(st["loc"], digest=digest_of(d.blob_a)))
            expect_status(r, 201)
            check(r.header("Location"), "no Location")

        self.step("streamed: POST, PATCH blob A without Content-Range -> 202", streamed_patch)
        self.step("streamed: PUT ?digest=A without body -> 201 + Location", streamed_put)
        self.step("GET blob dummy -> 404",
                  lambda: expect_status(c.request("GET", self.v2(ns, "blobs", d.dummy)), 404))

        def monolithic_post():
            r = c.request("POST", with_query(self.v2(ns, "blobs/uploads/"), digest=d.cd(1)),
                          d.configs[1], {"Content-Type": "application/octet-stream"})
            expect_status(r, 201, 202)
            check(r.header("Location"), "no Location")
            st["mono"] = r.status

        def monolithic_get():
            r = c.request("GET", self.v2(ns, "blobs", d.cd(1)))
            expect_status(r, 200 if st.get("mono") == 201 else 404)

        self.step("POST ?digest=configs[1] with body -> 201/202", monolithic_post)
        self.step("GET that blob -> 200 after 201 (404 after 202)", monolithic_get)

        def post_then_put():
            r = c.request("POST", self.v2(ns, "blobs/uploads/"))
            expect_status(r, 202)
            st["loc2"] = r.header("Location")

        self.step("POST -> 202", post_then_put)
        self.step("PUT configs[1] to that session -> 201", lambda: self.check_put(
            st["loc2"], d.configs[1]))
        self.step("GET configs[1] -> 200", lambda: expect_status(
            c.request("GET", self.v2(ns, "blobs", d.cd(1))), 200))
        self.step("POST+PUT layer -> 201", lambda: self.post_put(d.layer))
        self.step("GET layer -> 200", lambda: expect_status(
            c.request("GET", self.v2(ns, "blobs", d.layer_digest)), 200))
        self.push_chunked(st)
        self.push_mount()
        self.step("GET manifest .INVALID_MANIFEST_NAME -> 404", lambda: expect_status(
            c.request("GET", self.v2(ns, "manifests", ".INVALID_MANIFEST_NAME")), 404))

        def tags():
            for t in ("test0", "test1", "test2", "test3"):
                r = self.put_manifest(t, d.manifests[1])
                expect_status(r, 201)
                check(r.header("Location"), "no Location")

        self.step("PUT manifests[1] as test0..test3 -> 201 + Location", tags)

        def empty_layers():
            cfg = d.configs[1]
            m = json.dumps({"schemaVersion": 2, "config": {"mediaType": MT_CONFIG,
                            "digest": digest_of(cfg), "size": len(cfg)},
                            "layers": []}).encode()
            expect_status(self.put_manifest("emptylayer", m), 201)

        self.step("PUT manifest with layers [] and no mediaType as emptylayer -> 201",
                  empty_layers)
        self.step("GET manifests[1] by digest -> 200",
                  lambda: self.get_manifest(d.md(1), d.manifests[1]))

        def teardown():
            for t in ("test0", "test1", "test2", "test3", "emptylayer"):
                expect_status(c.request("DELETE", self.v2(ns, "manifests", t)), 202, 404)
            expect_status(c.request("DELETE", self.v2(ns, "manifests", d.md(1))), 202, 404)

        self.step("teardown: delete tags and manifests", teardown)

    def check_put(self, loc, data):
        r = self.c.request("PUT", with_query(loc, digest=digest_of(data)), data,
                           {"Content-Type": "application/octet-stream"})
        expect_status(r, 201)
        check(r.header("Location"), "no Location")

    def patch(self, loc, chunk, start):
        return self.c.request("PATCH", loc, chunk, {
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{start}-{start + len(chunk) - 1}"})

    def push_chunked(self, st):
        d, c, ns = self.d, self.c, self.ns
        b1, b2 = d.blob_b[:22], d.blob_b[22:]

        def out_of_order():
            r = c.request("POST", self.v2(ns, "blobs/uploads/"))
            expect_status(r, 202)
            expect_status(self.patch(r.header("Location"), b2, 22), 416)

        def first_chunk():
            r = c.request("POST", self.v2(ns, "blobs/uploads/"))
            expect_status(r, 202)
            st["chunk_loc0"] = r.header("Location")
            r = self.patch(st["chunk_loc0"], b1, 0)
            expect_status(r, 202)
            check(r.header("Range") == "0-21", f"Range {r.header('Range')}, want 0-21")
            st["chunk_loc1"] = r.header("Location")

        def status():
            r = c.request("GET", st["chunk_loc0"])
            expect_status(r, 204)
            check(r.header("Location"), "no Location")
            check(r.header("Range") == "0-21", f"Range {r.header('Range')}")

        def second():
            r = self.patch(st["chunk_loc1"], b2, 22)
            expect_status(r, 202)
            check(r.header("Location"), "no Location")
            st["chunk_loc2"] = r.header("Location")

        def finish():
            r = c.request("PUT", with_query(st["chunk_loc2"], digest=digest_of(d.blob_b)))
            expect_status(r, 201)
            check(r.header("Location"), "no Location")

        self.step("chunked: PATCH chunk 2 first -> 416", out_of_order)
        self.step("chunked: new session, PATCH chunk 1 0-21 -> 202, Range 0-21", first_chunk)
        self.step("chunked: re-send chunk 1 to the POST Location -> 416",
                  lambda: expect_status(self.patch(st["chunk_loc0"], b1, 0), 416))
        self.step("chunked: GET the POST Location -> 204, Range 0-21", status)
        self.step("chunked: PATCH chunk 2 -> 202 + Location", second)
        self.step("chunked: PUT ?digest=B, Content-Length 0 -> 201", finish)

    def push_mount(self):
        d, c, xns = self.d, self.c, self.xns

        def dummy_mount():
            r = c.request("POST", with_query(self.v2(xns, "blobs/uploads/"), mount=d.dummy))
            expect_status(r, 202)
            check(r.header("Location"), "no Location")

        st = {}

        def mount():
            r = c.request("POST", with_query(self.v2(xns, "blobs/uploads/"),
                                             mount=digest_of(d.blob_a), **{"from": self.ns}))
            expect_status(r, 201, 202)
            st["r"] = r

        def mount_result():
            r = st["r"]
            loc = urllib.parse.urlsplit(r.header("Location") or "").path
            if r.status == 201:
                want = f"/v2/{xns}/blobs/{digest_of(d.blob_a)}"
                check(loc == want, f"Location {loc}, want {want}")
                expect_status(c.request("GET", loc), 200)
            else:
                check(loc.startswith(f"/v2/{xns}/blobs/uploads/"), f"Location {loc}")

        self.step("mount: POST ?mount=<dummy> without from -> 202 + Location", dummy_mount)
        self.step("mount: POST ?mount=A&from=<ns> -> 201/202", mount)
        self.step("mount: Location /v2/<crossmount>/blobs/<A> and GET 200 (or a session)",
                  mount_result)

    # ---- content discovery ---------------------------------------------------------------

    def artifact(self, config_mt, subject_i, annotation, artifact_type=None, blob=None):
        """A referrer manifest; blob (digest, size) is its one layer."""
        blob = blob or (digest_of(self.d.empty_json), 2)
        m = {"schemaVersion": 2, "mediaType": MT_MANIFEST,
             "config": {"mediaType": config_mt, "digest": digest_of(self.d.empty_json)
                        if config_mt == MT_EMPTY else blob[0],
                        "size": 2 if config_mt == MT_EMPTY else blob[1]},
             "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                         "digest": blob[0], "size": blob[1]}],
             "subject": {"mediaType": MT_MANIFEST, "digest": self.d.md(subject_i),
                         "size": len(self.d.manifests[subject_i])},
             "annotations": {"org.opencontainers.conformance.test": annotation}}
        if artifact_type:
            m["artifactType"] = artifact_type
        return json.dumps(m).encode()

    def discovery(self):
        d, c, ns = self.d, self.c, self.ns
        self.begin("discovery")
        self.setup("push configs[2], layer, manifests[2] as test0..test3", lambda: [
            self.post_put(d.configs[2]), self.post_put(d.layer),
            [expect_status(self.put_manifest(t, d.manifests[2]), 201)
             for t in ("test0", "test1", "test2", "test3")]])
        ra, rb = os.urandom(32), os.urandom(32)
        bagel = "application/vnd.nhl.peanut.butter.bagel"
        refs = {}

        def put_ref(key, body, mt=MT_MANIFEST, subject=4):
            r = self.put_manifest(digest_of(body), body, mt)
            expect_status(r, 201)
            want = d.md(subject)
            check(r.header("OCI-Subject") == want,
                  f"OCI-Subject {r.header('OCI-Subject')}, want {want}")
            refs[key] = body

        self.setup("push empty JSON blob and ref blob A",
                   lambda: [self.post_put(d.empty_json), self.post_put(ra)])
        self.setup("manifest 'A config' (config type bagel, subject manifests[4]) -> OCI-Subject",
                   lambda: put_ref("A config", self.artifact(bagel, 4, "A config",
                                                            blob=(digest_of(ra), len(ra)))))
        self.setup("manifest 'A layer' (artifactType, empty config) -> OCI-Subject",
                   lambda: put_ref("A layer", self.artifact(MT_EMPTY, 4, "A layer", bagel,
                                                           (digest_of(ra), len(ra)))))
        idx = json.dumps({"schemaVersion": 2, "mediaType": MT_INDEX,
                          "artifactType": "application/vnd.food.stand",
                          "manifests": [{"mediaType": MT_MANIFEST, "digest": d.md(2),
                                         "size": len(d.manifests[2])}],
                          "subject": {"mediaType": MT_MANIFEST, "digest": d.md(4),
                                      "size": len(d.manifests[4])},
                          "annotations": {"org.opencontainers.conformance.test": "index"}
                          }).encode()
        self.setup("index with artifactType and subject -> OCI-Subject",
                   lambda: put_ref("index", idx, MT_INDEX))
        self.setup("push configs[4], layer, manifests[4] as tagtest0", lambda: [
            self.post_put(d.configs[4]), self.post_put(d.layer),
            expect_status(self.put_manifest("tagtest0", d.manifests[4]), 201)])
        self.setup("push ref blob B", lambda: self.post_put(rb))
        self.setup("manifest 'B config' -> OCI-Subject",
                   lambda: put_ref("B config", self.artifact(
                       "application/vnd.different.config", 4, "B config",
                       blob=(digest_of(rb), len(rb)))))
        self.setup("manifest 'B layer' -> OCI-Subject",
                   lambda: put_ref("B layer", self.artifact(
                       MT_EMPTY, 4, "B layer", "application/vnd.different",
                       (digest_of(rb), len(rb)))))
        self.setup("manifest 'C layer' with subject manifests[3] (never pushed) -> OCI-Subject",
                   lambda: put_ref("C layer", self.artifact(MT_EMPTY, 3, "C layer", bagel,
                                                           (digest_of(rb), len(rb))), subject=3))
        st = {}

        def tags_all():
            r = c.request("GET", self.v2(ns, "tags/list"))
            expect_status(r, 200)
            st["tags"] = r.json()["tags"]
            check(len(st["tags"]) >= 4, f"tags {st['tags']}")

        def tags_n():
            half = len(st["tags"]) // 2
            r = c.request("GET", self.v2(ns, f"tags/list?n={half}"))
            expect_status(r, 200)
            check(len(r.json()["tags"]) == half, f"{len(r.json()['tags'])} tags, want {half}")

        def tags_n_last():
            half = len(st["tags"]) // 2
            r = c.request("GET", self.v2(ns, f"tags/list?n={half}&last={st['tags'][half - 1]}"))
            expect_status(r, 200)
            got = r.json()["tags"]
            check(len(got) <= half, f"{len(got)} tags")
            check(got == st["tags"][half:half * 2], f"{got} != {st['tags'][half:half * 2]}")

        self.step("GET tags/list -> 200", tags_all)
        self.step("GET tags/list?n=N/2 -> N/2 tags", tags_n)
        self.step("GET tags/list?n=N/2&last=<tag N/2> -> the next tags", tags_n_last)

        def referrers(digest, want, filt=None):
            path = self.v2(ns, "referrers", digest)
            if filt:
                path += "?" + urllib.parse.urlencode({"artifactType": filt})
            r = c.request("GET", path)
            expect_status(r, 200)
            check(r.header("Content-Type") == MT_INDEX, f"Content-Type {r.header('Content-Type')}")
            ix = r.json()
            check(ix.get("schemaVersion") == 2 and ix.get("mediaType") == MT_INDEX, "not an index")
            got = {m["digest"]: m for m in ix["manifests"]}
            check(len(got) == len(ix["manifests"]), "duplicate digests")
            check(set(got) == {digest_of(refs[k]) for k in want},
                  f"referrers {sorted(got)} != {sorted(want)}")
            for k in want:
                m = got[digest_of(refs[k])]
                ann = m.get("annotations", {})
                check(ann == {"org.opencontainers.conformance.test":
                              json.loads(refs[k])["annotations"][
                                  "org.opencontainers.conformance.test"]}, f"annotations {ann}")
                check(m["size"] == len(refs[k]), "size")
            if filt:
                check(r.header("OCI-Filters-Applied") == "artifactType", "OCI-Filters-Applied")

        self.step("referrers of the dummy digest -> 200, empty index",
                  lambda: referrers(d.dummy, []))
        self.step("referrers of manifests[4] -> 5 entries with their annotations",
                  lambda: referrers(d.md(4), ["A config", "A layer", "index", "B config",
                                              "B layer"]))
        self.step("referrers ?artifactType=bagel -> 2 entries + OCI-Filters-Applied",
                  lambda: referrers(d.md(4), ["A config", "A layer"], bagel))
        self.step("referrers of manifests[3] (never pushed) -> the C manifest",
                  lambda: referrers(d.md(3), ["C layer"]))

        def artifact_types():
            r = c.request("GET", self.v2(ns, "referrers", d.md(4)))
            got = {m["digest"]: m.get("artifactType") for m in r.json()["manifests"]}
            want = {digest_of(refs["A config"]): bagel, digest_of(refs["A layer"]): bagel,
                    digest_of(refs["index"]): "application/vnd.food.stand",
                    digest_of(refs["B config"]): "application/vnd.different.config",
                    digest_of(refs["B layer"]): "application/vnd.different"}
            check(got == want, f"artifactTypes {got}")

        self.step("referrer descriptors carry artifactType (or config.mediaType)",
                  artifact_types)

        def teardown():
            for body in refs.values():
                expect_status(c.request("DELETE", self.v2(ns, "manifests", digest_of(body))),
                              202)
            for i in (2, 4):
                expect_status(c.request("DELETE", self.v2(ns, "manifests", d.md(i))), 202)
            for b in (d.cd(2), d.cd(4), d.layer_digest, digest_of(ra), digest_of(rb),
                      digest_of(d.empty_json)):
                expect_status(c.request("DELETE", self.v2(ns, "blobs", b)), 202, 404)
            r = c.request("GET", self.v2(ns, "referrers", d.md(4)))
            check(r.json()["manifests"] == [], "referrers left after deleting them")

        self.step("teardown: delete referrers, manifests and blobs", teardown)

    # ---- content management ---------------------------------------------------------------

    def management(self):
        d, c, ns = self.d, self.c, self.ns
        self.begin("management")
        st = {}

        def setup():
            self.post_put(d.configs[3])
            self.post_put(d.layer)
            expect_status(self.put_manifest("tagtest0", d.manifests[3]), 201)
            r = c.request("GET", self.v2(ns, "tags/list"))
            st["count"] = len(r.json()["tags"])

        self.setup("push configs[3], layer, manifests[3] as tagtest0; count tags", setup)
        self.step("DELETE tag -> 202", lambda: expect_status(
            c.request("DELETE", self.v2(ns, "manifests", "tagtest0")), 202))
        self.step("GET the deleted tag -> 404", lambda: expect_error(
            c.request("GET", self.v2(ns, "manifests", "tagtest0")), 404, "MANIFEST_UNKNOWN"))
        self.step("DELETE manifests[3] by digest -> 202", lambda: expect_status(
            c.request("DELETE", self.v2(ns, "manifests", d.md(3))), 202))
        self.step("GET manifests[3] -> 404", lambda: expect_status(
            c.request("GET", self.v2(ns, "manifests", d.md(3))), 404))

        def count():
            r = c.request("GET", self.v2(ns, "tags/list"))
            if st["count"] - 1 == 0 and r.status == 404:
                return
            expect_status(r, 200)
            n = len(r.json()["tags"])
            check(n == st["count"] - 1, f"{n} tags, want {st['count'] - 1}")

        self.step("tags/list -> one tag fewer", count)
        self.step("DELETE configs[3] and layer blobs -> 202", lambda: [expect_status(
            c.request("DELETE", self.v2(ns, "blobs", b)), 202)
            for b in (d.cd(3), d.layer_digest)])
        self.step("GET configs[3] -> 404", lambda: expect_status(
            c.request("GET", self.v2(ns, "blobs", d.cd(3))), 404))

    # ---- extras (§3.2 and §7 row 8) --------------------------------------------------------

    def extras(self):
        self.begin("extras")
        self.extras_blobs()
        self.extras_uploads()
        self.extras_manifests()
        self.extras_listing()

    def extras_blobs(self):
        c, ns = self.c, self.ns
        blob = os.urandom(2048)
        dg = digest_of(blob)
        self.setup("push a 2048-byte blob", lambda: self.post_put(blob))
        for rng, status, part in (("bytes=500-1499", 206, blob[500:1500]),
                                  ("bytes=500-", 206, blob[500:]),
                                  ("bytes=-500", 206, blob[-500:]),
                                  ("bytes=2000-5000", 206, blob[2000:]),
                                  ("bytes=500-0", 416, None)):
            def ranged(rng=rng, status=status, part=part):
                r = c.request("GET", self.v2(ns, "blobs", dg), headers={"Range": rng})
                expect_status(r, status)
                if part is not None:
                    check(r.body == part, "range bytes differ")
                    off = blob.index(part)
                    want = f"bytes {off}-{off + len(part) - 1}/2048"
                    check(r.header("Content-Range") == want, f"Content-Range "
                          f"{r.header('Content-Range')}, want {want}")
            self.step(f"GET blob Range {rng} -> {status}", ranged)

        def zero_byte():
            self.post_put(b"")
            r = c.request("GET", self.v2(ns, "blobs", digest_of(b"")))
            expect_status(r, 200)
            check(r.body == b"", "zero-byte blob has bytes")

        self.step("zero-byte blob: POST+PUT, GET -> 200 empty", zero_byte)

        def bad_digest(d):
            r = c.request("POST", self.v2(ns, "blobs/uploads/"))
            r = c.request("PUT", with_query(r.header("Location"), digest=d), b"abc")
            expect_error(r, 400, "DIGEST_INVALID")

        for bad in ("sha256:" + "0" * 64, "sha256:baddigeststring", "SHA256:" + "a" * 64):
            self.step(f"PUT upload ?digest={bad[:20]}.. -> 400 DIGEST_INVALID, nothing stored",
                      lambda bad=bad: [bad_digest(bad), expect_status(c.request(
                          "GET", self.v2(ns, "blobs", digest_of(b"abc"))), 404)])
        self.step("POST ?digest= with a lying digest -> 400 DIGEST_INVALID", lambda: expect_error(
            c.request("POST", with_query(self.v2(ns, "blobs/uploads/"), digest=dg), b"xyz"),
            400, "DIGEST_INVALID"))
        self.step("GET blob with a malformed digest -> 400 DIGEST_INVALID", lambda: expect_error(
            c.request("GET", self.v2(ns, "blobs", "sha256:zz")), 400, "DIGEST_INVALID"))
        self.step("DELETE blob -> 202, then GET -> 404", lambda: [
            expect_status(c.request("DELETE", self.v2(ns, "blobs", dg)), 202),
            expect_error(c.request("GET", self.v2(ns, "blobs", dg)), 404, "BLOB_UNKNOWN")])
        self.step("DELETE unknown blob -> 404 BLOB_UNKNOWN", lambda: expect_error(
            c.request("DELETE", self.v2(ns, "blobs", dg)), 404, "BLOB_UNKNOWN"))

    def extras_uploads(self):
        c, ns, d = self.c, self.ns, self.d
        blob = os.urandom(100)

        def put_chunk():
            r = c.request("POST", self.v2(ns, "blobs/uploads/"))
            r = self.patch(r.header("Location"), blob[:60], 0)
            expect_status(r, 202)
            r = c.request("PUT", with_query(r.header("Location"), digest=digest_of(blob)),
                          blob[60:], {"Content-Range": "60-99",
                                      "Content-Type": "application/octet-stream"})
            expect_status(r, 201)
            r = c.request("GET", self.v2(ns, "blobs", digest_of(blob)))
            check(r.body == blob, "blob bytes differ")

        def out_of_order_put():
            r = c.request("POST", self.v2(ns, "blobs/uploads/"))
            loc = r.header("Location")
            expect_status(self.patch(loc, blob[:60], 0), 202)
            r = c.request("PUT", with_query(loc, digest=digest_of(blob)), blob[70:],
                          {"Content-Range": "70-99"})
            expect_status(r, 416)
            r = c.request("GET", loc)
            expect_status(r, 204)
            check(r.header("Range") == "0-59", f"Range {r.header('Range')}")

        def cancel():
            r = c.request("POST", self.v2(ns, "blobs/uploads/"))
            loc = r.header("Location")
            expect_status(c.request("DELETE", loc), 204)
            expect_error(c.request("GET", loc), 404, "BLOB_UPLOAD_UNKNOWN")

        def missing_mount():
            r = c.request("POST", with_query(self.v2(ns, "blobs/uploads/"), mount=d.dummy,
                                             **{"from": self.xns}))
            expect_status(r, 202)
            check(r.header("Location").startswith(f"/v2/{ns}/blobs/uploads/"), "Location")

        def not_mountable():
            b = os.urandom(16)
            self.post_put(b, ns=self.xns)
            r = c.request("POST", with_query(self.v2(ns, "blobs/uploads/"), mount=digest_of(b)))
            expect_status(r, 202)
            expect_status(c.request("GET", self.v2(ns, "blobs", digest_of(b))), 404)

        self.step("chunked with the last chunk on the PUT -> 201", put_chunk)
        self.step("chunked: out-of-order chunk on the PUT -> 416, status keeps 0-59",
                  out_of_order_put)
        self.step("upload cancel: DELETE <location> -> 204, then GET -> 404", cancel)
        self.step("mount of a missing blob -> 202 session", missing_mount)
        self.step("anonymous mount of a blob of another repository -> 202, not readable",
                  not_mountable)
        self.step("unknown upload session -> 404 BLOB_UPLOAD_UNKNOWN", lambda: expect_error(
            c.request("GET", self.v2(ns, "blobs/uploads", "0" * 32)), 404,
            "BLOB_UPLOAD_UNKNOWN"))
        self.step("push to an invalid repository name -> 400 NAME_INVALID", lambda: expect_error(
            c.request("POST", "/v2/Bad_Name/blobs/uploads/"), 400, "NAME_INVALID"))

    def extras_manifests(self):
        c, ns, d = self.c, self.ns, self.d
        self.setup("push configs[5..7] and the layer", lambda: [
            self.post_put(d.configs[i]) for i in (5, 6, 7)] + [self.post_put(d.layer)])

        def tag_param():
            r = c.request("PUT", self.v2(ns, "manifests", d.md(5)) + "?tag=ta&tag=tb",
                          d.manifests[5], {"Content-Type": MT_MANIFEST})
            expect_status(r, 201)
            for t in ("ta", "tb"):
                self.head_manifest(t, d.md(5))

        def nested_index():
            expect_status(self.put_manifest(d.md(6), d.manifests[6]), 201)
            inner = json.dumps({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [
                {"mediaType": MT_MANIFEST, "digest": d.md(6), "size": len(d.manifests[6]),
                 "platform": {"architecture": "amd64", "os": "linux"}}]}).encode()
            expect_status(self.put_manifest(digest_of(inner), inner, MT_INDEX), 201)
            outer = json.dumps({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [
                {"mediaType": MT_INDEX, "digest": digest_of(inner), "size": len(inner)}]}
            ).encode()
            expect_status(self.put_manifest("nested", outer, MT_INDEX), 201)
            self.get_manifest("nested", outer, MT_INDEX)

        def missing_blob():
            m = json.loads(d.manifests[7])
            m["layers"][0]["digest"] = digest_of(b"not pushed")
            expect_error(self.put_manifest("missing", json.dumps(m).encode()), 400,
                         "MANIFEST_BLOB_UNKNOWN")

        def index_missing_manifest():
            ix = json.dumps({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [
                {"mediaType": MT_MANIFEST, "digest": d.md(15), "size": 10}]}).encode()
            expect_error(self.put_manifest("badindex", ix, MT_INDEX), 400,
                         "MANIFEST_BLOB_UNKNOWN")

        self.step("PUT manifest by digest ?tag=ta&tag=tb -> 201, both tags resolve", tag_param)
        self.step("nested index: PUT and GET byte-for-byte with its Content-Type", nested_index)
        self.step("manifest with a missing layer -> 400 MANIFEST_BLOB_UNKNOWN", missing_blob)
        self.step("index with a missing manifest -> 400 MANIFEST_BLOB_UNKNOWN",
                  index_missing_manifest)
        self.step("PUT manifest by a wrong digest -> 400 DIGEST_INVALID", lambda: expect_error(
            self.put_manifest(d.md(8), d.manifests[7]), 400, "DIGEST_INVALID"))
        self.step("PUT manifest by sha256:baddigeststring -> 400 DIGEST_INVALID",
                  lambda: expect_error(self.put_manifest("sha256:baddigeststring",
                                                         d.manifests[7]), 400, "DIGEST_INVALID"))
        self.step("PUT manifest with trailing spaces by the digest of the trimmed body -> 400",
                  lambda: expect_error(self.put_manifest(d.md(7), d.manifests[7] + b"  "), 400,
                                       "DIGEST_INVALID"))
        self.step("PUT invalid JSON -> 400 MANIFEST_INVALID", lambda: expect_error(
            self.put_manifest("broken", b"{not json"), 400, "MANIFEST_INVALID"))
        self.step("PUT mediaType differing from Content-Type -> 400 MANIFEST_INVALID",
                  lambda: expect_error(self.put_manifest("mismatch", d.manifests[7], MT_INDEX),
                                       400, "MANIFEST_INVALID"))
        self.step("PUT manifest with an invalid tag -> 400 TAG_INVALID", lambda: expect_error(
            self.put_manifest("-bad", d.manifests[7]), 400, "TAG_INVALID"))
        self.step("GET manifest of an unknown repository -> 404 NAME_UNKNOWN",
                  lambda: expect_error(c.request("GET", f"/v2/{ns}-nothere/manifests/latest"),
                                       404, "NAME_UNKNOWN"))

    def extras_listing(self):
        c, ns = self.c, self.ns

        def last_without_n():
            r = c.request("GET", self.v2(ns, "tags/list"))
            tags = r.json()["tags"]
            check(tags == sorted(tags), "tags not sorted")
            r = c.request("GET", self.v2(ns, f"tags/list?last={tags[0]}"))
            expect_status(r, 200)
            check(r.json()["tags"] == tags[1:], f"{r.json()['tags']}")

        def link_header():
            r = c.request("GET", self.v2(ns, "tags/list?n=1"))
            expect_status(r, 200)
            first = r.json()["tags"][0]
            want = f'</v2/{ns}/tags/list?last={first}&n=1>; rel="next"'
            check(r.header("Link") == want, f"Link {r.header('Link')}, want {want}")

        def n_zero():
            r = c.request("GET", self.v2(ns, "tags/list?n=0"))
            expect_status(r, 200)
            check(r.json()["tags"] == [] and r.header("Link") is None, "n=0")

        def catalog():
            r = c.request("GET", "/v2/_catalog")
            expect_status(r, 200)
            repos = r.json()["repositories"]
            check(ns in repos and self.xns in repos, f"catalog {repos}")
            check(repos == sorted(repos), "catalog not sorted")

        self.step("tags/list?last=<first> without n -> the rest", last_without_n)
        self.step("tags/list?n=1 -> Link rel=next", link_header)
        self.step("tags/list?n=0 -> empty, no Link", n_zero)
        self.step("tags/list?n=abc -> 400", lambda: expect_status(
            c.request("GET", self.v2(ns, "tags/list?n=abc")), 400))
        self.step("_catalog lists both repositories, sorted", catalog)
        self.step("GET /v2/ -> 200", lambda: expect_status(c.request("GET", "/v2/"), 200))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("url")
    ap.add_argument("--namespace", default="conformance/" + uuid.uuid4().hex[:8])
    ap.add_argument("--crossmount-namespace", default="crossmount-" + uuid.uuid4().hex[:8])
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--insecure", action="store_true", help="do not verify TLS")
    ap.add_argument("--only", default="pull,push,discovery,management,extras")
    a = ap.parse_args()
    s = Suite(Client(a.url, a.user, a.password, a.insecure), a.namespace, a.crossmount_namespace)
    for w in a.only.split(","):
        getattr(s, w)()
    print(f"{s.passed} passed, {s.failed} failed")
    return 1 if s.failed else 0


if __name__ == "__main__":
    sys.exit(main())
