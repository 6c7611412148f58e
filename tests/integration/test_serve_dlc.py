"""`dlc serve` and `dlc run -p`: the cpu image serving a trained model in a container with
its own network namespace, reached through the port dlc publishes on the host (no
iptables), as root and rootless."""
import concurrent.futures
import json
import os
import shutil
import socket
import tarfile
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

from conftest import BUILD, DLC, REPO, Dlc, free_port, public_build, run
from helpers_run import as_user, ensure_user
from helpers_serve import (IMAGE, RUNTIME_DEF, DlcServe, build_cpu_image, error_of, get, invoke, npy_bytes,
                           predictions, tensor_predict, train_model)

ROOTLESS_UID = 42420


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    d = Dlc(tmp_path_factory.mktemp("serve-store"))
    build_cpu_image(d)
    return d


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve-dlc-model")
    model_dir, x = train_model(tmp)
    return model_dir, x, tensor_predict(model_dir, x, tmp)


def containers(store):
    out = store("ps", "-a").stdout.splitlines()
    return out[1:]


@pytest.fixture
def served(store, model):
    port = free_port()
    s = DlcServe(store.root, IMAGE, "--model-dir", model[0], "-p", f"127.0.0.1:{port}:8080")
    assert s.wait_url() == f"http://127.0.0.1:{port}", s.stop()[1]
    yield s
    rc, err = s.stop()
    assert rc == 0, err
    assert containers(store) == [], "dlc serve left its container behind"


def test_serve_prints_the_url_once_ping_answers(served):
    status, _, body = get(served.port, "/ping")
    assert (status, body) == (200, b"")
    # the readiness probe itself went through the published port and is in the log
    rc, err = served.stop()
    assert rc == 0
    assert "dlc: serving tensor-runtime:1.0.0-cpu in container" in err
    assert 'tensor: 127.0.0.1 "GET /ping" 200 0' in err
    assert "tensor: Terminated: stopping" in err


def test_predictions_through_the_published_port_equal_tensor_predict(served, model):
    _, x, want = model
    np.testing.assert_array_equal(predictions(*invoke(served.port, {"instances": x.tolist()})),
                                  want)
    got = predictions(*invoke(served.port, npy_bytes(x), "application/x-npy",
                              accept="text/csv"))
    np.testing.assert_array_equal(got, want)
    assert "expected 2 features" in error_of(*invoke(served.port, [[1, 2, 3]]), 400)
    assert error_of(*invoke(served.port, "x", "text/plain"), 415)


def test_100_concurrent_requests_through_the_published_port(served, model):
    _, x, want = model
    barrier = threading.Barrier(100)

    def one(i):
        rows = slice(i, i + 1 + i % 5)
        c = socket.create_connection(("127.0.0.1", served.port))  # all connected at once
        barrier.wait(timeout=30)
        body = json.dumps({"instances": x[rows].tolist()}).encode()
        c.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        answer = c.makefile("rb").read()
        c.close()
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK"), answer
        got = np.array(json.loads(payload)["predictions"], dtype=np.float32)
        # Batched with other requests the GEMM may group rows differently: last-bit
        # differences at most.
        np.testing.assert_allclose(got, want[rows], rtol=1e-5, atol=1e-6)
        return True

    with concurrent.futures.ThreadPoolExecutor(100) as ex:
        assert all(ex.map(one, range(100)))


def test_model_tarball_is_unpacked_on_the_host(store, model, tmp_path):
    tarball = tmp_path / "model.tar.gz"
    with tarfile.open(tarball, "w:gz") as t:
        for name in ("model.json", "model.safetensors"):
            t.add(model[0] / name, arcname=name)
    port = free_port()
    s = DlcServe(store.root, IMAGE, "--model", tarball, "-p", f"{port}:8080",
                 env={"TMPDIR": str(tmp_path)})
    assert s.wait_url() == f"http://127.0.0.1:{port}", s.stop()[1]
    try:
        got = predictions(*invoke(port, {"instances": model[1][:8].tolist()}))
        np.testing.assert_array_equal(got, model[2][:8])
        assert len([p for p in tmp_path.iterdir() if p.name.startswith("dlc-model-")]) == 1
    finally:
        rc, err = s.stop()
    assert rc == 0, err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("dlc-model-")]


def test_a_tarball_in_the_model_dir_is_unpacked_in_the_container(store, model, tmp_path):
    # SageMaker unpacks model.tar.gz itself; a bare one in /opt/ml/model is unpacked by
    # tensor serve with the image's busybox tar.
    d = tmp_path / "model"
    d.mkdir()
    with tarfile.open(d / "model.tar.gz", "w:gz") as t:
        for name in ("model.json", "model.safetensors"):
            t.add(model[0] / name, arcname=name)
    port = free_port()
    s = DlcServe(store.root, IMAGE, "--model-dir", d, "-p", f"{port}:8080")
    assert s.wait_url() == f"http://127.0.0.1:{port}", s.stop()[1]
    try:
        got = predictions(*invoke(port, {"instances": model[1][:8].tolist()}))
        np.testing.assert_array_equal(got, model[2][:8])
    finally:
        rc, err = s.stop()
    assert rc == 0, err


def test_a_tarball_without_a_model_is_refused(store, tmp_path):
    tarball = tmp_path / "model.tar.gz"
    with tarfile.open(tarball, "w:gz") as t:
        (tmp_path / "README").write_text("no model here")
        t.add(tmp_path / "README", arcname="README")
    s = DlcServe(store.root, IMAGE, "--model", tarball, env={"TMPDIR": str(tmp_path)})
    rc, err = s.finish()
    assert rc == 1
    assert f"dlc: serve: {tarball} holds no model.json at its top" in err
    assert containers(store) == []


def test_a_server_that_dies_shows_its_last_log_lines(store, tmp_path):
    empty = tmp_path / "empty-model"
    empty.mkdir()
    s = DlcServe(store.root, IMAGE, "--model-dir", empty, "-p", f"{free_port()}:8080")
    assert s.wait_url() is None
    rc, err = s.finish()
    assert rc == 1
    assert ("dlc: serve: tensor-runtime:1.0.0-cpu: the container exited with code 1 before "
            "/ping answered 200") in err, err
    assert "dlc: serve: the container's last log lines:" in err
    assert "    tensor: serve: load model from /opt/ml/model: " in err
    assert containers(store) == []


def test_startup_timeout_shows_the_last_log_lines(store, model, tmp_path):
    # model.json is a FIFO nobody writes: the server listens but never finishes loading.
    d = tmp_path / "stuck-model"
    d.mkdir()
    shutil.copy(model[0] / "model.safetensors", d)
    os.mkfifo(d / "model.json")
    s = DlcServe(store.root, IMAGE, "--model-dir", d, "-p", f"{free_port()}:8080",
                 "--startup-timeout", "2", "--stop-timeout", "1")
    assert s.wait_url(timeout=30) is None
    rc, err = s.finish()
    assert rc == 1
    assert "dlc: serve: tensor-runtime:1.0.0-cpu: /ping did not answer 200 within 2 s" in err
    assert "    tensor: listening on 0.0.0.0:8080" in err
    assert containers(store) == []


def test_a_busy_host_port_fails_before_anything_runs(store, model):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        s = DlcServe(store.root, IMAGE, "--model-dir", model[0], "-p", f"{port}:8080")
        rc, err = s.finish()
    assert rc == 1
    assert f"dlc: serve: publish 127.0.0.1:{port}: Address already in use" in err
    assert containers(store) == []


def test_usage_errors(store, model):
    rc, err = DlcServe(store.root, IMAGE).finish()
    assert rc == 2 and "give the model with --model-dir DIR or --model FILE.tar.gz" in err
    rc, err = DlcServe(store.root, IMAGE, "--model-dir", model[0], "-p", "1:2:3:4").finish()
    assert rc == 1 and "-p 1:2:3:4: an IPv6 address goes in brackets" in err
    rc, err = DlcServe(store.root, "--model-dir", model[0]).finish()
    assert rc == 2 and "no image given" in err


def test_dlc_run_publishes_ports_too(store, model):
    port = free_port()
    cid = store("run", "-d", "-p", f"127.0.0.1:{port}:8080", "-v", f"{model[0]}:/opt/ml/model:ro",
                IMAGE, "serve").stdout.strip()
    try:
        for _ in range(100):
            try:
                if get(port, "/ping")[0] == 200:
                    break
            except OSError:
                pass
            threading.Event().wait(0.1)
        got = predictions(*invoke(port, {"instances": model[1][:3].tolist()}))
        np.testing.assert_array_equal(got, model[2][:3])
    finally:
        store("rm", "-f", cid)
    r = store("run", "--network", "host", "-p", "8080:8080", IMAGE, "version", check=False)
    assert r.returncode == 125
    assert "-p publishes ports of a container's own network" in r.stderr


def test_serve_works_rootless(model):
    uid = ensure_user("dlcserve", ROOTLESS_UID)
    d = Path(tempfile.mkdtemp(prefix="dlc-serve-rootless-"))
    try:
        os.chmod(d, 0o755)
        shutil.copytree(model[0], d / "model")
        for p in [d, *d.rglob("*")]:
            os.chown(p, uid, uid)
        env = ["env", f"DLC_ROOT={d / 'root'}"]
        dlc, build, images = public_build()  # the checkout may not be reachable by uid
        run(as_user(uid, env + [dlc, "build", "-f", images / "tensor-runtime.json",
                                "--build-dir", build, "--variant", "cpu"]), cwd=d)
        port = free_port()
        s = DlcServe(d / "root", IMAGE, "--model-dir", d / "model", "-p", f"{port}:8080",
                     user_argv=as_user(uid, env), dlc=dlc)
        assert s.wait_url() == f"http://127.0.0.1:{port}", s.stop()[1]
        got = predictions(*invoke(port, {"instances": model[1][:4].tolist()}))
        np.testing.assert_array_equal(got, model[2][:4])
        rc, err = s.stop()
        assert rc == 0, err
        assert "tensor: Terminated: stopping" in err
    finally:
        shutil.rmtree(d, ignore_errors=True)
