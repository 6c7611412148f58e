"""The `tensor` program (runtime/cmd) end to end: SageMaker /opt/ml trees built in a temp
dir and pointed at with SAGEMAKER_BASE_DIR, as the training toolkit allows."""
import json
import os
import re
import signal
import subprocess
import time

import numpy as np
import pytest

from helpers_runtime import (REPO, TENSOR, checkpoint_position, forward, keras_model, make_opt_ml, read_safetensors,
                             spiral_data, start_tensor, tensor, xor_data)


@pytest.fixture(autouse=True)
def built():
    assert TENSOR.exists(), f"{TENSOR} is not built: run `make`"


def metrics(base):
    return json.loads((base / "output" / "data" / "metrics.json").read_text())


def test_xor_short_form_trains_and_saves_numpy_readable_weights(tmp_path):
    x, y = xor_data()
    base = make_opt_ml(tmp_path / "ml", {
        "epochs": 60, "batch_size": 16, "seed": 1, "threads": 1, "hidden_units": [16],
        "activation": "tanh", "loss": "sparse_categorical_crossentropy",
        "learning_rate": 0.05}, {"training": (x, y)})
    p = tensor("train", base=base, check=True)
    assert "Epoch 60/60 - " in p.stdout
    m = metrics(base)
    assert m["final"]["accuracy"] >= 0.97
    assert len(m["history"]["loss"]) == 60 and m["epochs"] == 60
    assert m["history"]["loss"][-1] < m["history"]["loss"][0]
    assert not (base / "output" / "failure").exists()

    model = json.loads((base / "model" / "model.json").read_text())
    assert model["class_name"] == "Sequential"
    assert model["compile"]["loss"] == "sparse_categorical_crossentropy"
    w = read_safetensors(base / "model" / "model.safetensors")
    assert sorted(w) == ["dense/bias", "dense/kernel", "dense_1/bias", "dense_1/kernel"]
    assert w["dense/kernel"].shape == (2, 16) and w["dense_1/kernel"].shape == (16, 2)

    # tensor predict agrees with numpy's forward pass over the saved weights
    inp = tmp_path / "x.npy"
    np.save(inp, np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64))
    tensor("predict", "--model", base / "model", "--input", inp, "--output",
           tmp_path / "y.npy", check=True)
    got = np.load(tmp_path / "y.npy")
    want = forward(w, model, np.load(inp))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert list(got.argmax(1)) == [0, 1, 1, 0]

    # an input that can be read only once: a pipe from bash's <(...), plain and gzip'd
    for feed in ("cat", "gzip -c"):
        p = subprocess.run(["bash", "-c", f'"$0" predict --model "$1" --input <({feed} "$2")',
                            str(TENSOR), str(base / "model"), str(inp)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, (feed, p.stderr)
        rows = [[float(v) for v in line.split(",")] for line in p.stdout.splitlines()]
        np.testing.assert_array_equal(np.array(rows, dtype=np.float32), got)


def test_spiral_keras_json_with_validation_channel(tmp_path):
    x, y = spiral_data(200, 3, seed=0)
    vx, vy = spiral_data(100, 3, seed=1)
    model = keras_model([(64, "relu"), (64, "relu"), (3, "softmax")], 2, {
        "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
        "optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.01}}})
    base = make_opt_ml(tmp_path / "ml", {"epochs": 80, "batch_size": 32, "seed": 3,
                                         "threads": 1},
                       {"train": (x, y), "validation": (vx, vy)}, model_json=model)
    p = tensor("train", base=base, check=True)
    last = p.stdout.strip().splitlines()[-1]
    assert last.startswith("Epoch 80/80 - ") and " - val_loss: " in last, last
    m = metrics(base)
    assert m["final"]["accuracy"] >= 0.97, m["final"]
    assert m["final"]["val_accuracy"] >= 0.95, m["final"]
    assert m["validation_rows"] == 300 and m["train_rows"] == 600
    # evaluate on the validation channel reproduces the last val_loss
    e = tensor("evaluate", "--model", base / "model", "--channel",
               base / "input" / "data" / "validation", "--json", check=True)
    ev = json.loads(e.stdout)
    assert ev["rows"] == 300
    assert abs(ev["loss"] - m["final"]["val_loss"]) < 1e-4


def test_full_opt_ml_tree_and_keras_lines(tmp_path):
    x, y = xor_data(8)
    hp = {"epochs": 3, "batch_size": 8, "seed": 7, "hidden_units": [8], "loss":
          "sparse_categorical_crossentropy", "validation_split": 0.25, "threads": 1,
          "epoch": 5}
    base = make_opt_ml(tmp_path / "ml", hp, {"training": (x, y)})
    p = tensor("train", base=base, check=True)
    lines = p.stdout.splitlines()
    assert [line.split(" - ")[0] for line in lines] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    for line in lines:
        parts = line.split(" - ")
        assert parts[1].endswith("s") and parts[2].startswith("loss: ")
        assert parts[3].startswith("accuracy: ") and parts[4].startswith("val_loss: ")
    assert "ignoring unknown hyperparameter 'epoch'" in p.stderr
    assert "seed 7" in p.stderr
    for f in ["model/model.json", "model/model.safetensors", "output/data/metrics.json",
              "checkpoints/checkpoint.safetensors"]:
        assert (base / f).is_file(), f
    m = metrics(base)
    assert m["train_rows"] == 24 and m["validation_rows"] == 8  # Keras: the last 25%
    assert sorted(m["history"]) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert sorted(m["final"]) == sorted(m["history"])


def failure(base):
    return (base / "output" / "failure").read_text()


def test_broken_channel_writes_failure_and_exits_1(tmp_path):
    x, y = xor_data(4)
    base = make_opt_ml(tmp_path / "ml", {"epochs": 1, "loss": "mse"}, {"training": (x, y)})
    npy = base / "input" / "data" / "training" / "train.npy"
    npy.write_bytes(npy.read_bytes()[:-5])
    p = tensor("train", base=base)
    assert p.returncode == 1
    msg = p.stderr.strip().splitlines()[-1]
    assert msg.startswith("tensor: train: ")
    assert "train.npy: truncated data: shape (16, 2) of <f4 needs 128 bytes, found 123" in msg
    assert failure(base).splitlines()[0] == msg[len("tensor: train: "):]
    assert not (base / "model" / "model.safetensors").exists()


@pytest.mark.parametrize("case,want", [
    ("no_channel", "no training channel: expected "),
    ("rows", "channel training: train.npy has 16 rows but labels.npy has 15"),
    ("no_loss", "no loss: set the loss hyperparameter"),
    ("bad_hp", "hyperparameter epochs: \"ten\" is not an integer"),
    ("bad_model", "unsupported layer type 'Conv2D'"),
])
def test_failures_name_the_cause(tmp_path, case, want):
    x, y = xor_data(4)
    hp = {"epochs": 1, "loss": "mse"}
    channels = {"training": (x, y)}
    model = None
    if case == "no_channel":
        channels = {}
    elif case == "rows":
        channels = {"training": (x, y[:-1])}
    elif case == "no_loss":
        hp = {"epochs": 1}
    elif case == "bad_hp":
        hp["epochs"] = "ten"
    elif case == "bad_model":
        model = {"class_name": "Sequential", "config": {"layers": [
            {"class_name": "Conv2D", "config": {"name": "c"}}]}}
    base = make_opt_ml(tmp_path / "ml", hp, channels, model_json=model)
    p = tensor("train", base=base)
    assert p.returncode == 1, p.stderr
    assert want in p.stderr
    assert want in failure(base)


def test_failure_file_already_written_is_kept(tmp_path):
    base = make_opt_ml(tmp_path / "ml", {"epochs": 1}, {})
    (base / "output").mkdir()
    (base / "output" / "failure").write_text("user code says why\n")
    assert tensor("train", base=base).returncode == 1
    assert failure(base) == "user code says why\n"


def resume_fixture(base):
    """Big enough that an epoch takes a while (a signal lands inside one), small enough
    for the suite's time budget."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40000, 32)).astype(np.float32)
    y = (x[:, :3].sum(1) > 0).astype(np.float32)
    hp = {"epochs": 6, "batch_size": 32, "seed": 9, "threads": 1, "hidden_units": [128, 64],
          "dropout": 0.1, "loss": "binary_crossentropy", "output_units": 1}
    return make_opt_ml(base, hp, {"training": (x, y)})


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    base = resume_fixture(tmp_path_factory.mktemp("whole"))
    tensor("train", base=base, check=True)
    return base


def wait_for_line(proc, prefix):
    for line in proc.stdout:
        if line.startswith(prefix):
            return line
    raise AssertionError(f"no line {prefix!r}; stderr: {proc.stderr.read()}")


def test_sigkill_mid_training_then_rerun_gives_the_same_weights(tmp_path, uninterrupted):
    killed = resume_fixture(tmp_path)
    proc = start_tensor("train", base=killed)
    wait_for_line(proc, "Epoch 2/6")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "model" / "model.safetensors").exists()
    p = tensor("train", base=killed, check=True)
    assert "resuming from " in p.stderr
    assert (killed / "model" / "model.safetensors").read_bytes() == \
        (uninterrupted / "model" / "model.safetensors").read_bytes()
    assert metrics(killed)["history"] == metrics(uninterrupted)["history"]


def test_sigterm_finishes_the_batch_checkpoints_and_exits_143(tmp_path, uninterrupted):
    stopped = resume_fixture(tmp_path)
    checkpoint = stopped / "checkpoints" / "checkpoint.safetensors"
    proc = start_tensor("train", base=stopped)
    wait_for_line(proc, "Epoch 2/6")
    deadline = time.monotonic() + 30
    while (checkpoint_position(checkpoint) or {}).get("epoch") != 2:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    time.sleep(0.02)  # past the directory fsync that follows the rename
    proc.send_signal(signal.SIGTERM)  # epoch 2 is saved: this lands inside epoch 3
    proc.wait(timeout=30)
    assert proc.returncode == 143, proc.stderr.read()
    assert "stopped by a signal" in proc.stderr.read()
    assert (stopped / "checkpoints" / "checkpoint.safetensors").is_file()
    assert not (stopped / "output" / "failure").exists()
    assert not (stopped / "model" / "model.safetensors").exists()
    p = tensor("train", base=stopped, check=True)
    # Almost always mid-epoch 3 ("batch N" > 1); on a loaded machine the signal can land in
    # the directory fsync after epoch 2's checkpoint, which stops at the epoch boundary.
    # Either way the result must be the uninterrupted run's (test_model.c covers the
    # mid-epoch stop deterministically).
    assert re.search(r"resuming from \S+: epoch [3-6], batch \d+", p.stderr), p.stderr
    assert (stopped / "model" / "model.safetensors").read_bytes() == \
        (uninterrupted / "model" / "model.safetensors").read_bytes()


def test_checkpoint_of_another_configuration_is_refused(tmp_path):
    base = resume_fixture(tmp_path)
    hp = json.loads((base / "input/config/hyperparameters.json").read_text())
    hp["epochs"] = "1"
    (base / "input/config/hyperparameters.json").write_text(json.dumps(hp))
    tensor("train", base=base, check=True)
    hp["batch_size"] = "64"
    (base / "input/config/hyperparameters.json").write_text(json.dumps(hp))
    p = tensor("train", base=base)
    assert p.returncode == 1
    assert "was written for another batch_size: remove it to start over" in p.stderr


def test_csv_channel_gzip_and_predict_csv(tmp_path):
    import gzip
    x, y = xor_data(16)
    rows = "\n".join(f"{int(b)},{a[0]:g},{a[1]:g}" for a, b in zip(x, y)) + "\n"
    base = make_opt_ml(tmp_path / "ml", {"epochs": 40, "batch_size": 8, "seed": 2,
                                         "threads": 1, "hidden_units": [16],
                                         "activation": "tanh", "learning_rate": 0.05,
                                         "loss": "sparse_categorical_crossentropy"},
                       {"train": {"part-0.csv.gz": gzip.compress(rows.encode())}})
    tensor("train", base=base, check=True)
    assert metrics(base)["final"]["accuracy"] >= 0.97
    (tmp_path / "in.csv").write_text("0,1\n1,1\n")
    p = tensor("predict", "--input", tmp_path / "in.csv", base=base, check=True)
    out = np.array([[float(v) for v in line.split(",")] for line in p.stdout.splitlines()])
    assert out.shape == (2, 2) and list(out.argmax(1)) == [1, 0]


def test_other_commands_and_exec(tmp_path):
    version = (REPO / "runtime" / "VERSION").read_text().strip()
    assert tensor("version", check=True).stdout == version + "\n"
    d = tensor("devices", check=True).stdout
    assert "backend cpu" in d and "OpenBLAS" in d and "threads:" in d
    assert tensor("/bin/sh", "-c", "exit 3").returncode == 3
    p = tensor("no-such-program")
    assert p.returncode == 127 and "tensor: exec no-such-program: " in p.stderr
    script = tmp_path / "s.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    assert tensor(script).returncode == 126
    os.chmod(script, 0o755)
    assert tensor(script, check=True).stdout == "hi\n"
    assert tensor("train", "extra").returncode == 2
    assert "train" in tensor("help", check=True).stdout


def test_binary_links_only_the_small_closure():
    out = subprocess.run(["readelf", "-d", str(TENSOR)], capture_output=True, text=True,
                         check=True).stdout
    needed = {line.split("[")[1].split("]")[0] for line in out.splitlines()
              if "(NEEDED)" in line}
    needed = {n for n in needed if not n.startswith(("libasan", "libubsan"))}  # SANITIZE=
    # libmicrohttpd comes with `tensor serve` (issue 8), when it is built in.
    allowed = {"libc.so.6", "libm.so.6", "libopenblas.so.0", "libjansson.so.4", "libz.so.1",
               "libmicrohttpd.so.12"}
    assert needed <= allowed, needed - allowed
