"""Helpers for the tensor runtime's integration tests: SageMaker /opt/ml trees written the
way SageMaker (and its Python SDK) write them, small learnable data sets, and a reader of
safetensors files that uses nothing but numpy."""
import json
import os
import struct
import subprocess
from pathlib import Path

import numpy as np

from conftest import BUILD

TENSOR = BUILD / "runtime" / "cpu" / "tensor"
REPO = Path(__file__).resolve().parents[2]


def sdk_hyperparameters(hp):
    """What sagemaker-python-sdk >= 2.110 writes: every value json.dumps'ed, so strings
    arrive quoted twice, plus the sagemaker_* framework keys."""
    out = {k: json.dumps(v) for k, v in hp.items()}
    out["sagemaker_program"] = json.dumps("train.py")
    out["sagemaker_container_log_level"] = "20"
    out["sagemaker_job_name"] = json.dumps("job-1")
    return out


def make_opt_ml(base, hyperparameters, channels, model_json=None, raw=False):
    """Builds base/{input/config,input/data/<channel>,code} like the platform does.
    channels: name -> (x, y) arrays (saved as train.npy + labels.npy) or name -> {file: bytes}.
    raw=True writes hyperparameter values as given (strings), as raw API callers do."""
    base = Path(base)
    config = base / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    hp = hyperparameters if raw else sdk_hyperparameters(hyperparameters)
    (config / "hyperparameters.json").write_text(json.dumps(hp))
    (config / "inputdataconfig.json").write_text(json.dumps({
        name: {"ContentType": "application/x-npy", "TrainingInputMode": "File",
               "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
        for name in channels}))
    (config / "resourceconfig.json").write_text(json.dumps({
        "current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}))
    for name, data in channels.items():
        d = base / "input" / "data" / name
        d.mkdir(parents=True, exist_ok=True)
        if isinstance(data, dict):
            for fname, content in data.items():
                (d / fname).write_bytes(content)
        else:
            np.save(d / "train.npy", data[0])
            np.save(d / "labels.npy", data[1])
    if model_json is not None:
        (base / "code").mkdir(parents=True, exist_ok=True)
        (base / "code" / "model.json").write_text(json.dumps(model_json))
    return base


def tensor(*args, base=None, env=None, check=False, timeout=120, **kw):
    e = dict(os.environ)
    if base is not None:
        e["SAGEMAKER_BASE_DIR"] = str(base)
    if env:
        e.update(env)
    p = subprocess.run([str(TENSOR), *map(str, args)], capture_output=True, text=True,
                       env=e, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"tensor {' '.join(map(str, args))} exited {p.returncode}\n"
                             f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def start_tensor(*args, base=None):
    e = dict(os.environ)
    if base is not None:
        e["SAGEMAKER_BASE_DIR"] = str(base)
    return subprocess.Popen([str(TENSOR), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=e)


def read_safetensors(path):
    """name -> array, from the bytes alone: u64 LE header length, JSON header, raw data."""
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32"
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(data[begin:end], dtype="<f4").reshape(info["shape"])
    return out


def checkpoint_position(path):
    """The position a checkpoint holds (its metadata), or None while there is none."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(json.loads(raw[8:8 + n])["__metadata__"]["position"])


def xor_data(repeat=32):
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * repeat, dtype=np.float32)
    y = (x[:, 0] != x[:, 1]).astype(np.int64)
    return x, y


def spiral_data(points_per_class=200, classes=3, seed=0):
    """The classic CS231n spiral: interleaved arms, not linearly separable."""
    rng = np.random.default_rng(seed)
    x = np.zeros((points_per_class * classes, 2), dtype=np.float32)
    y = np.zeros(points_per_class * classes, dtype=np.int64)
    for c in range(classes):
        r = np.linspace(0.0, 1, points_per_class)
        t = np.linspace(c * 4, (c + 1) * 4, points_per_class) + rng.normal(0, 0.1,
                                                                         points_per_class)
        ix = range(points_per_class * c, points_per_class * (c + 1))
        x[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        y[ix] = c
    perm = rng.permutation(len(y))
    return x[perm], y[perm]


def keras_model(layers, input_dim, compile_block):
    """A model.json as tf.keras' model.to_json() writes it, plus a compile block."""
    def dense(name, units, act):
        return {"class_name": "Dense", "config": {
            "name": name, "trainable": True, "dtype": "float32", "units": units,
            "activation": act, "use_bias": True,
            "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
            "bias_initializer": {"class_name": "Zeros", "config": {}},
            "kernel_regularizer": None, "bias_regularizer": None,
            "activity_regularizer": None, "kernel_constraint": None,
            "bias_constraint": None}}
    out = [{"class_name": "InputLayer", "config": {
        "batch_input_shape": [None, input_dim], "dtype": "float32", "sparse": False,
        "ragged": False, "name": "input_1"}}]
    for i, (units, act) in enumerate(layers):
        out.append(dense("dense" if i == 0 else f"dense_{i}", units, act))
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": out},
            "keras_version": "2.13.1", "backend": "tensorflow", "compile": compile_block}


def forward(weights, model_json, x):
    """The model's forward pass in numpy, from its safetensors weights."""
    acts = {"relu": lambda v: np.maximum(v, 0), "tanh": np.tanh, "linear": lambda v: v,
            "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
            "softmax": lambda v: np.exp(v - v.max(1, keepdims=True)) /
            np.exp(v - v.max(1, keepdims=True)).sum(1, keepdims=True)}
    h = x.astype(np.float64)
    for layer in model_json["config"]["layers"]:
        if layer["class_name"] != "Dense":
            continue
        cfg = layer["config"]
        h = h @ weights[cfg["name"] + "/kernel"] + weights[cfg["name"] + "/bias"]
        h = acts[cfg["activation"]](h)
    return h
