"""Helpers for the serving tests: a trained two-moons model (made by the real `tensor
train`), `tensor serve` processes on loopback ports chosen at run time, and a small HTTP
client (http.client, so the tests see status codes and headers exactly)."""
import http.client
import io
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from conftest import BUILD, DLC, REPO, free_port, run

TENSOR = BUILD / "runtime" / "cpu" / "tensor"
GPU_TENSOR = BUILD / "runtime" / "gpu" / "tensor"
SAMPLE_DATA = REPO / "scripts" / "make-sample-data.py"
HYPERPARAMETERS = {"hidden_units": "[16, 16]", "loss": '"sparse_categorical_crossentropy"',
                   "epochs": "15", "learning_rate": "0.01", "batch_size": "64", "seed": "1"}


def train_model(workdir):
    """Trains the demo's model with `tensor train` on the host; returns the model dir and
    the validation features."""
    assert TENSOR.exists(), f"{TENSOR} is not built: run `make`"
    base = Path(workdir) / "opt" / "ml"
    run([sys.executable, SAMPLE_DATA, base / "input" / "data", "--rows", "500"])
    (base / "input" / "config").mkdir(parents=True)
    (base / "input" / "config" / "hyperparameters.json").write_text(json.dumps(HYPERPARAMETERS))
    run([TENSOR, "train"], env={"SAGEMAKER_BASE_DIR": str(base)})
    x = np.load(base / "input" / "data" / "validation" / "train.npy")
    return base / "model", x


def tensor_predict(model_dir, x, tmp):
    """What `tensor predict` says for x (the reference the server must agree with)."""
    inp, out = Path(tmp) / "predict-in.npy", Path(tmp) / "predict-out.npy"
    np.save(inp, x)
    run([TENSOR, "predict", "--model", model_dir, "--input", inp, "--output", out])
    return np.load(out)


class Server:
    """A `tensor serve` process; stop() sends SIGTERM and returns (rc, stderr)."""

    def __init__(self, model_dir=None, env=None, args=(), port=None, wait=True, binary=TENSOR):
        self.port = port or free_port()
        e = dict(os.environ)
        e["SAGEMAKER_BIND_TO_PORT"] = str(self.port)
        e.update(env or {})
        cmd = [str(binary), "serve", *args]
        if model_dir is not None:
            cmd += ["--model-dir", str(model_dir)]
        # stderr to a file, not a pipe: an undrained pipe would fill with access log lines
        # and block the server's threads.
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log, text=True,
                                     env=e)
        self.stderr = None
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"tensor serve exited: {self.stop()[1]}"
            try:
                if get(self.port, "/ping")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"/ping never answered 200: {self.stop()[1]}")

    def stop(self):
        if self.stderr is None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.log.seek(0)
            self.stderr = self.log.read()
            self.log.close()
        return self.proc.returncode, self.stderr


def request(port, method, path, body=None, headers=None, host="127.0.0.1", timeout=30):
    """-> (status, headers as a lowercase dict, body bytes)."""
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def get(port, path, **kw):
    return request(port, "GET", path, **kw)


def invoke(port, body, content_type="application/json", accept=None, **kw):
    headers = {"Content-Type": content_type} if content_type else {}
    if accept:
        headers["Accept"] = accept
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    return request(port, "POST", "/invocations", body=body, headers=headers, **kw)


def npy_bytes(a):
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def predictions(status, headers, body):
    """The float32 array an /invocations answer carries, whatever its type."""
    assert status == 200, body
    ct = headers["content-type"]
    if ct == "application/json":
        return np.array(json.loads(body)["predictions"], dtype=np.float32)
    if ct == "text/csv":
        return np.loadtxt(io.StringIO(body.decode()), delimiter=",", dtype=np.float32, ndmin=2)
    assert ct == "application/x-npy", ct
    return np.load(io.BytesIO(body))


def error_of(status, headers, body, want_status):
    assert status == want_status, (status, body)
    assert headers["content-type"] == "application/json"
    return json.loads(body)["error"]


# ---- dlc serve ------------------------------------------------------------------------------

RUNTIME_DEF = REPO / "images" / "tensor-runtime.json"
IMAGE = "tensor-runtime:1.0.0-cpu"


def build_cpu_image(dlc):
    """The cpu image of images/tensor-runtime.json in dlc's store (a few seconds)."""
    assert TENSOR.exists(), f"{TENSOR} is not built: run `make`"
    dlc("build", "-f", RUNTIME_DEF, "--build-dir", BUILD, "--variant", "cpu",
        env={"SOURCE_DATE_EPOCH": "1700000000"}, cwd=REPO)


class DlcServe:
    """A `dlc serve` process. url is what it printed on stdout (None until ready)."""

    def __init__(self, root, *args, env=None, user_argv=None, dlc=DLC):
        e = dict(os.environ)
        e["DLC_ROOT"] = str(root)
        e.update(env or {})
        argv = [str(dlc), "serve", *map(str, args)]
        self.log = tempfile.TemporaryFile(mode="w+")  # not a pipe: see Server
        self.proc = subprocess.Popen((user_argv or []) + argv, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, env=e)
        self.url = None
        self.stderr = None

    def wait_url(self, timeout=60):
        """The URL line, or None when dlc serve exited first."""
        ready = select.select([self.proc.stdout], [], [], timeout)[0]
        line = self.proc.stdout.readline() if ready else ""
        assert ready, "dlc serve printed no URL in time"
        self.url = line.strip() or None
        return self.url

    @property
    def port(self):
        return int(self.url.rsplit(":", 1)[1])

    def finish(self, timeout=60):
        """Waits for it to exit on its own; returns (rc, stderr)."""
        return self.stop(sig=None, timeout=timeout)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Stops it like Ctrl-C/SIGTERM; returns (rc, stderr)."""
        if self.stderr is None:
            if sig is not None and self.proc.poll() is None:
                self.proc.send_signal(sig)
            try:
                self.proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()
                raise AssertionError(f"dlc serve did not exit within {timeout} s")
            finally:
                self.log.seek(0)
                self.stderr = self.log.read()
                self.log.close()
        return self.proc.returncode, self.stderr
