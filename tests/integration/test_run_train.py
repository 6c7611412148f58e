"""The SageMaker contract of dlc run/train: config files, SM_* variables compared with the
training toolkit's own formatting, hyperparameter encoding, dlc train's artifacts and
failure reason, ownership of what the container writes; and, when the builder and the
tensor runtime are available, the end-to-end training of the cpu image on a npy channel."""
import json
import os
import struct
import tarfile
from pathlib import Path

import pytest

from conftest import BUILD, DLC, Dlc, REPO, run
from helpers_run import (busybox_entries, copy_into_store, parse_env, toolkit_env,
                         write_image)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="the runner tests start containers as root (the rootless ones setpriv to a test user)")

TRAIN = b"""#!/bin/sh
# a training program by SageMaker's conventions (no toolkit needed)
set -e
echo "hps: $SM_HPS"
ls "$SM_CHANNEL_TRAINING"
cat "$SM_CHANNEL_TRAINING"/* > "$SM_MODEL_DIR/model.bin"
mkdir -p "$SM_OUTPUT_DATA_DIR"
echo "loss=0.1" > "$SM_OUTPUT_DATA_DIR/metrics.txt"
if [ "$SM_HP_FAIL" = "true" ]; then
    printf 'ExecuteUserScriptError:\\nExitCode 1\\nErrorMessage "ValueError: bad data"\\n' \\
        > /opt/ml/output/failure
    exit 1
fi
if [ "$SM_HP_SILENT_FAIL" = "true" ]; then exit 3; fi
"""


@pytest.fixture(scope="module")
def sm(tmp_path_factory):
    layout = tmp_path_factory.mktemp("train-images") / "layout"
    write_image(layout, "t", [busybox_entries({"usr/local/bin/train": (TRAIN, 0o755)})],
                {"Env": ["PATH=/usr/local/bin:/bin", "SAGEMAKER_PROGRAM=train.py"],
                 "Cmd": ["/bin/sh"]})
    d = Dlc(tmp_path_factory.mktemp("train-root"))
    copy_into_store(d, layout, "t", "trainer:1")
    return d


def channel(tmp_path, name="data", content=b"abc"):
    d = tmp_path / name
    d.mkdir()
    (d / "part-0.npy").write_bytes(content)
    return d


HPS = ["epochs=10", "lr=1e-3", "optimizer=adam", "layers=[64,32]", "use_amp=true",
       "name=\"quoted\"", "learning-rate=0.5", "sagemaker_program=\"train.py\"",
       "sagemaker_mpi_enabled=true", "nested={\"a\": [1, 2.5], \"b\": null}", "k=v w"]


def test_sm_env_is_the_toolkits(sm, tmp_path):
    data = channel(tmp_path)
    val = channel(tmp_path, "val")
    args = ["run", "--rm", "--channel", f"training={data}", "--channel", f"validation={val}",
            "-e", "TRAINING_JOB_NAME=job-7"]
    for hp in HPS:
        args += ["--hp", hp]
    env = parse_env(sm(*args, "trainer:1", "env").stdout)
    hps = json.loads(sm(*args, "trainer:1", "cat",
                        "/opt/ml/input/config/hyperparameters.json").stdout)
    want = toolkit_env(hps, ["training", "validation"], nic="lo", num_cpus=os.cpu_count(),
                       env={"SAGEMAKER_PROGRAM": "train.py", "TRAINING_JOB_NAME": "job-7"})
    got = {k: v for k, v in env.items() if k.startswith("SM_")}
    assert sorted(got) == sorted(want)
    for k in want:
        assert got[k] == want[k], k
    # the ones the issue names, spelled out
    assert got["SM_CHANNELS"] == '["training","validation"]'
    assert got["SM_CHANNEL_TRAINING"] == "/opt/ml/input/data/training"
    assert got["SM_HP_OPTIMIZER"] == "adam" and got["SM_HP_LR"] == "0.001"
    assert got["SM_HP_LEARNING-RATE"] == "0.5"
    assert got["SM_MODEL_DIR"] == "/opt/ml/model"
    assert got["SM_OUTPUT_DATA_DIR"] == "/opt/ml/output/data"
    assert got["SM_HOSTS"] == '["algo-1"]' and got["SM_CURRENT_HOST"] == "algo-1"
    assert got["SM_NUM_GPUS"] == "0" and got["SM_NUM_CPUS"] == str(os.cpu_count())
    assert got["SM_FRAMEWORK_PARAMS"] == '{"sagemaker_mpi_enabled":true}'
    assert json.loads(got["SM_TRAINING_ENV"])["job_name"] == "job-7"


def test_hyperparameters_json_has_sdk_string_values(sm, tmp_path):
    hpf = tmp_path / "hp.json"
    hpf.write_text(json.dumps({"epochs": 10, "optimizer": "adam", "dropout": 0.25,
                               "layers": [64, 32], "amp": False}))
    out = sm("run", "--rm", "--hyperparameters", hpf, "--hp", "epochs=12", "trainer:1", "cat",
             "/opt/ml/input/config/hyperparameters.json").stdout
    # what json.dumps(value) gives for each, as the Python SDK writes them
    assert json.loads(out) == {"epochs": "12", "optimizer": "\"adam\"", "dropout": "0.25",
                               "layers": "[64, 32]", "amp": "false"}
    cfg = json.loads(sm("run", "--rm", "--channel", f"training={channel(tmp_path)}", "trainer:1",
                        "cat", "/opt/ml/input/config/inputdataconfig.json").stdout)
    assert cfg == {"training": {"RecordWrapperType": "None", "S3DistributionType":
                                "FullyReplicated", "TrainingInputMode": "File"}}
    rc = json.loads(sm("run", "--rm", "--network", "host", "trainer:1", "cat",
                       "/opt/ml/input/config/resourceconfig.json").stdout)
    assert rc["current_host"] == "algo-1" and rc["hosts"] == ["algo-1"]
    assert rc["network_interface_name"] != "lo"


def test_train_packs_artifacts(sm, tmp_path):
    data = channel(tmp_path, content=b"\x93NUMPY")
    out = tmp_path / "out"
    r = sm("train", "--channel", f"training={data}", "--output", out, "--hp", "epochs=2",
           "trainer:1")
    assert 'hps: {"epochs":2}' in r.stdout
    with tarfile.open(out / "model.tar.gz") as t:
        assert t.getnames() == ["model.bin"]
        assert t.extractfile("model.bin").read() == b"\x93NUMPY"
    with tarfile.open(out / "output.tar.gz") as t:
        assert "data/metrics.txt" in t.getnames()
    assert sorted(p.name for p in out.iterdir()) == ["model.tar.gz", "output.tar.gz"]
    assert rt_hostname(sm) == "algo-1\n"


def test_train_options_after_the_image(sm, tmp_path):
    # the form: dlc train IMG --channel training=./data --output ./out [--hp ...]
    data = channel(tmp_path, content=b"after")
    out = tmp_path / "out"
    r = sm("train", "trainer:1", "--channel", f"training={data}", "--output", out,
           "--hp", "epochs=5")
    assert 'hps: {"epochs":5}' in r.stdout
    with tarfile.open(out / "model.tar.gz") as t:
        assert t.extractfile("model.bin").read() == b"after"


def rt_hostname(d):
    return d("train", "--output", "/tmp/dlc-train-hostname-out", "trainer:1",
             "hostname").stdout


def test_train_failure_reason_and_exit_code(sm, tmp_path):
    data = channel(tmp_path)
    out = tmp_path / "out"
    r = sm("train", "--channel", f"training={data}", "--output", out, "--hp", "fail=true",
           "trainer:1", check=False)
    assert r.returncode == 1
    assert r.stderr == ('dlc: train: the job failed (exit 1): ExecuteUserScriptError:\n'
                        'ExitCode 1\nErrorMessage "ValueError: bad data"\n')
    with tarfile.open(out / "output.tar.gz") as t:
        assert "failure" in t.getnames()
    r = sm("train", "--channel", f"training={data}", "--output", out, "--hp",
           "silent_fail=true", "trainer:1", check=False)
    assert r.returncode == 3
    assert r.stderr == "dlc: train: the job failed (exit 3) without a failure reason\n"


@pytest.mark.parametrize("flags", [[], ["--userns"]])
def test_files_in_model_dir_belong_to_the_dirs_owner(sm, tmp_path, flags):
    model = tmp_path / "model"
    output = tmp_path / "output"
    for d in (model, output):
        d.mkdir()
        os.chown(d, 4321, 4321)
    data = channel(tmp_path)
    sm("run", "--rm", *flags, "--channel", f"training={data}", "--model-dir", model,
       "--output-dir", output, "trainer:1", "train")
    for p in list(model.rglob("*")) + list(output.rglob("*")):
        st = p.stat()
        assert (st.st_uid, st.st_gid) == (4321, 4321), p


# ---- end to end on the tensor-runtime cpu image (builder + runtime) ---------------------------

def _npy(path, shape, values):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % (shape,)
    header += " " * (64 - (10 + len(header) + 1) % 64) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
                     + struct.pack("<%df" % len(values), *values))


def test_train_tensor_runtime_cpu_image(tmp_path):
    tensor = BUILD / "runtime" / "cpu" / "tensor"
    definition = REPO / "images" / "tensor-runtime.json"
    if not tensor.exists() or not definition.exists():
        pytest.skip("the tensor runtime or images/tensor-runtime.json is not built")
    d = Dlc(tmp_path / "root")
    d.root.mkdir()
    d("build", "-f", definition, "--variant", "cpu", env={"DLC_BUILD": str(BUILD)})
    import random
    rnd = random.Random(1)
    xs = [rnd.uniform(-1, 1) for _ in range(64 * 4)]
    ys = [1.0 if sum(xs[i * 4:i * 4 + 4]) > 0 else 0.0 for i in range(64)]
    data = tmp_path / "data"
    data.mkdir()
    _npy(data / "train.npy", (64, 4), xs)
    _npy(data / "labels.npy", (64,), ys)
    out = tmp_path / "out"
    model = tmp_path / "model"
    model.mkdir()
    r = d("train", "--rm", "--channel", f"training={data}", "--output", out,
          "--model-dir", model, "--hp", "epochs=3", "--hp", "hidden_units=16",
          "--hp", "output_units=2", "--hp", "output_activation=softmax",
          "--hp", "loss=sparse_categorical_crossentropy", "tensor-runtime:cpu", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (model / "model.safetensors").exists()  # written to the host directory
    with tarfile.open(out / "model.tar.gz") as t:
        names = t.getnames()
    assert "model.safetensors" in names and "model.json" in names, names
