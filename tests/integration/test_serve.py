"""`tensor serve` on the host: SageMaker's /ping, /invocations and /execution-parameters,
codecs, errors, limits and the access log, checked against `tensor predict`."""
import concurrent.futures
import json
import os
import re
import signal
import socket
import tarfile
import threading
import time

import numpy as np
import pytest

from helpers_serve import (GPU_TENSOR, Server, error_of, get, invoke, npy_bytes, predictions, request,
                           tensor_predict, train_model)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve-model")
    model_dir, x = train_model(tmp)
    return model_dir, x, tensor_predict(model_dir, x, tmp)


@pytest.fixture(scope="module")
def server(model):
    s = Server(model[0])
    yield s
    rc, err = s.stop()
    assert rc == 0, err


def test_ping_is_503_until_the_model_is_loaded(model, tmp_path):
    # model.json is a FIFO: loading blocks until the test writes it, so the window in
    # which the server listens but has no model is as long as the test wants.
    d = tmp_path / "model"
    d.mkdir()
    (d / "model.safetensors").write_bytes((model[0] / "model.safetensors").read_bytes())
    os.mkfifo(d / "model.json")
    s = Server(d, wait=False)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                status, headers, body = get(s.port, "/ping")
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert status == 503
        assert "loading" in json.loads(body)["error"]
        assert error_of(*invoke(s.port, [[0.5, 0.5]]), 503)
        with open(d / "model.json", "w") as f:
            f.write((model[0] / "model.json").read_text())
        s.wait_ready()
        status, _, body = get(s.port, "/ping")
        assert (status, body) == (200, b"")
    finally:
        rc, err = s.stop()
    assert rc == 0, err


def test_json_predictions_equal_tensor_predict(server, model):
    _, x, want = model
    got = predictions(*invoke(server.port, {"instances": x.tolist()}))
    np.testing.assert_array_equal(got, want)  # %.9g round-trips every float32 exactly
    got = predictions(*invoke(server.port, x[:3].tolist()))  # a bare list of rows
    np.testing.assert_array_equal(got, want[:3])


def test_csv_in_and_out(server, model):
    _, x, want = model
    body = "\n".join(",".join(f"{v:.9g}" for v in row) for row in x[:50])
    status, headers, out = invoke(server.port, body, "text/csv", accept="text/csv")
    assert headers["content-type"] == "text/csv"
    np.testing.assert_array_equal(predictions(status, headers, out), want[:50])


def test_npy_in_and_out(server, model):
    _, x, want = model
    status, headers, out = invoke(server.port, npy_bytes(x.astype(np.float64)),
                                  "application/x-npy", accept="application/x-npy")
    got = predictions(status, headers, out)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_any_input_with_any_answer_type(server, model):
    _, x, want = model
    bodies = {"application/json": json.dumps({"instances": x[:7].tolist()}),
              "text/csv; charset=utf-8": "\n".join(",".join(map(repr, map(float, r)))
                                                   for r in x[:7]),
              "application/x-npy": npy_bytes(x[:7])}
    for ct, body in bodies.items():
        for accept in (None, "*/*", "application/json", "text/csv", "application/x-npy",
                       "text/html;q=0.9, application/x-npy;q=0.5"):
            got = predictions(*invoke(server.port, body, ct, accept=accept))
            np.testing.assert_allclose(got, want[:7], rtol=1e-6, atol=1e-7)


def test_instances_as_feature_objects(server, model):
    _, x, want = model
    body = {"instances": [{"features": r} for r in x[:2].tolist()]}
    np.testing.assert_array_equal(predictions(*invoke(server.port, body)), want[:2])


def test_unsupported_content_type_is_415(server):
    msg = error_of(*invoke(server.port, "a=1", "application/x-www-form-urlencoded"), 415)
    assert msg == ("unsupported Content-Type 'application/x-www-form-urlencoded': use "
                   "application/json, text/csv or application/x-npy")
    error_of(*invoke(server.port, "1,2", "text/plain"), 415)


def test_unacceptable_accept_is_406(server):
    msg = error_of(*invoke(server.port, [[0.1, 0.2]], accept="image/png"), 406)
    assert msg.startswith("cannot answer in 'image/png'")
    error_of(*invoke(server.port, [[0.1, 0.2]], accept="text/csv;q=0"), 406)


def test_wrong_feature_count_is_400_naming_both(server):
    msg = error_of(*invoke(server.port, {"instances": [[1, 2, 3]]}), 400)
    assert msg == "expected 2 features per row, got 3"
    msg = error_of(*invoke(server.port, "1,2,3,4\n", "text/csv"), 400)
    assert msg == "expected 2 features per row, got 4"
    msg = error_of(*invoke(server.port, npy_bytes(np.zeros((2, 5))), "application/x-npy"), 400)
    assert msg == "expected 2 features per row, got 5"


@pytest.mark.parametrize("body,content_type,want", [
    ('{"instances": [[1, 2]', "application/json", "JSON body:1:"),
    ('{"inputs": [[1, 2]]}', "application/json", 'expected {"instances"'),
    ("[[1, 2], [3]]", "application/json", "row 2 has 1 values, row 1 has 2"),
    ('[[1, "a"]]', "application/json", "row 1, column 2: expected a number"),
    ("[]", "application/json", "the request has no rows"),
    ("", "application/json", "JSON body"),
    ("1,2\n3,x\n", "text/csv", "CSV body:2"),
    ("1,2\n3\n", "text/csv", "CSV body:2"),
    ("", "text/csv", "the request has no rows"),
    (b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'", "application/x-npy", "npy body"),
    (b"not npy at all", "application/x-npy", "npy body"),
])
def test_malformed_bodies_are_400(server, body, content_type, want):
    msg = error_of(*invoke(server.port, body, content_type), 400)
    assert want in msg
    assert get(server.port, "/ping")[0] == 200  # and the server is still fine


def test_truncated_npy_data_is_400(server):
    body = npy_bytes(np.zeros((10, 2), dtype=np.float32))[:-8]
    assert "truncated" in error_of(*invoke(server.port, body, "application/x-npy"), 400)


def test_execution_parameters(server):
    status, headers, body = get(server.port, "/execution-parameters")
    assert status == 200 and headers["content-type"] == "application/json"
    p = json.loads(body)
    assert p == {"BatchStrategy": "MULTI_RECORD", "MaxConcurrentTransforms": os.cpu_count(),
                 "MaxPayloadInMB": 6}


def test_routes_and_methods(server):
    assert error_of(*get(server.port, "/nope"), 404).startswith("no such endpoint")
    status, headers, _ = get(server.port, "/invocations")
    assert status == 405 and headers["allow"] == "POST"
    status, headers, _ = request(server.port, "POST", "/ping", body="x")
    assert status == 405 and headers["allow"] == "GET"
    assert request(server.port, "HEAD", "/ping")[0] == 200


def test_payload_limit(model):
    s = Server(model[0], env={"SAGEMAKER_MAX_PAYLOAD_IN_MB": "1"})
    try:
        assert json.loads(get(s.port, "/execution-parameters")[2])["MaxPayloadInMB"] == 1
        big = np.zeros((70000, 2), dtype=np.float64)  # 1.1 MB of npy
        # Refused from the headers, before the body is sent (as curl does for large
        # bodies, with Expect: 100-continue).
        c = socket.create_connection(("127.0.0.1", s.port))
        c.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-npy"
                  b"\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n"
                  % len(npy_bytes(big)))
        answer = c.makefile("rb").read()
        c.close()
        assert answer.startswith(b"HTTP/1.1 413 "), answer
        msg = json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
        assert msg == "the body has 1120128 bytes, more than the 1 MB limit"
        # Without a Content-Length (chunked) the limit holds while reading.
        def chunks():
            for _ in range(20):
                yield b"0.5,0.5\n" * 8192
        # (http.client sends a generator chunked.)
        status, _, body = request(s.port, "POST", "/invocations", body=chunks(),
                                  headers={"Content-Type": "text/csv"})
        assert status == 413, body
        small = npy_bytes(big[:1000])
        assert invoke(s.port, small, "application/x-npy")[0] == 200
    finally:
        rc, err = s.stop()
    assert rc == 0, err


def test_default_accept_from_the_environment(model):
    s = Server(model[0], env={"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"})
    try:
        status, headers, _ = invoke(s.port, [[0.1, 0.2]])
        assert status == 200 and headers["content-type"] == "text/csv"
        status, headers, _ = invoke(s.port, [[0.1, 0.2]], accept="application/json")
        assert headers["content-type"] == "application/json"
    finally:
        s.stop()


def test_access_log_has_one_line_per_request_with_latency(model):
    s = Server(model[0])
    invoke(s.port, [[0.1, 0.2], [0.3, 0.4]])
    invoke(s.port, "x", "text/plain")
    rc, err = s.stop()
    assert rc == 0
    lines = [l for l in err.splitlines() if '"POST /invocations"' in l]
    assert len(lines) == 2, err
    assert re.fullmatch(r'tensor: 127\.0\.0\.1 "POST /invocations" 200 \d+ rows=2 \d+\.\d{3}ms',
                        lines[0]), lines[0]
    assert re.fullmatch(r'tensor: 127\.0\.0\.1 "POST /invocations" 415 \d+ rows=0 \d+\.\d{3}ms',
                        lines[1]), lines[1]
    assert "tensor: ready: model 'sequential' (2 inputs -> 2 outputs" in err
    assert "tensor: Terminated: stopping; 1 requests (2 rows) were answered in 1 predict calls" \
        in err, err


def test_concurrent_requests_are_all_answered_correctly(server, model):
    _, x, want = model
    def one(i):
        rows = slice(i % 50, i % 50 + 1 + i % 7)
        got = predictions(*invoke(server.port, {"instances": x[rows].tolist()}))
        return np.allclose(got, want[rows], rtol=1e-6, atol=1e-7)
    with concurrent.futures.ThreadPoolExecutor(100) as ex:
        assert all(ex.map(one, range(300)))


def test_model_tar_gz_in_the_model_dir(model, tmp_path):
    d = tmp_path / "model"
    d.mkdir()
    with tarfile.open(d / "model.tar.gz", "w:gz") as t:
        for name in ("model.json", "model.safetensors"):
            t.add(model[0] / name, arcname=name)
    env = {"TMPDIR": str(tmp_path)}
    s = Server(d, env=env)
    try:
        got = predictions(*invoke(s.port, {"instances": model[1][:5].tolist()}))
        np.testing.assert_array_equal(got, model[2][:5])
        unpacked = [p for p in tmp_path.iterdir() if p.name.startswith("tensor-model-")]
        assert len(unpacked) == 1
    finally:
        rc, err = s.stop()
    assert rc == 0, err
    assert not any(p.name.startswith("tensor-model-") for p in tmp_path.iterdir())


def test_a_missing_model_exits_1_with_the_reason(tmp_path):
    s = Server(tmp_path / "nothing", wait=False)
    s.proc.wait(timeout=20)
    rc, err = s.stop()
    assert rc == 1
    assert re.search(r"tensor: serve: load model from .*/nothing: .*model\.json", err), err


def test_a_busy_port_exits_1(server, model):
    s = Server(model[0], port=server.port, wait=False)
    s.proc.wait(timeout=20)
    rc, err = s.stop()
    assert rc == 1
    assert f"tensor: serve: listen on 0.0.0.0:{server.port}" in err


def test_bad_environment_is_refused(model):
    s = Server(model[0], env={"SAGEMAKER_BIND_TO_PORT": "http"}, wait=False)
    s.proc.wait(timeout=20)
    rc, err = s.stop()
    assert rc == 1 and "SAGEMAKER_BIND_TO_PORT" in err, err


def test_sigterm_lets_requests_in_flight_finish(model):
    s = Server(model[0])
    body = json.dumps({"instances": model[1][:20].tolist()}).encode()
    c = socket.create_connection(("127.0.0.1", s.port))
    c.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
    time.sleep(0.2)  # the request has begun
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert s.proc.poll() is None, "tensor serve quit with a request in flight"
    with pytest.raises(OSError):  # no new connections are taken meanwhile
        get(s.port, "/ping", timeout=2)
    c.sendall(body[10:])
    answer = c.makefile("rb").read()
    c.close()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["predictions"]
    rc, err = s.stop()
    assert rc == 0, err


def test_the_gpu_build_serves_on_opencl(model):
    # pocl, the CPU OpenCL device, stands in for a GPU (DLC_OPENCL_ALLOW_CPU); /ping stays
    # 503 while the backend compiles its kernels for the warm-up prediction.
    assert GPU_TENSOR.exists(), f"{GPU_TENSOR} is not built: run `make`"
    s = Server(model[0], binary=GPU_TENSOR, args=("--device", "opencl"),
               env={"DLC_OPENCL_ALLOW_CPU": "1"})
    try:
        got = predictions(*invoke(s.port, {"instances": model[1].tolist()}))
        np.testing.assert_allclose(got, model[2], rtol=1e-4, atol=1e-6)
    finally:
        rc, err = s.stop()
    assert rc == 0, err
    assert "on the opencl backend" in err
