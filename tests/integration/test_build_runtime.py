"""dlc build on the project's own definitions: images/tensor-runtime.json (the tensor
runtime, cpu and gpu) and images/examples/fashion-mlp.json (an extension), checked the way
the AWS DLC sanity suite checks its images: tags, labels, the OS named in the tag, the
version inside the image, and the runtime running under runc."""
import json
import os
import re

import numpy as np
import pytest

from conftest import BUILD, REPO, Dlc, require_tool, run
from helpers_build import (CPU_TENSOR, EPOCH, FASHION_DEF, GPU_TENSOR, check_image,
                           oci_image_tool_validate, parse_build_output, require_runtime,
                           runc_run, tar_members, umoci_unpack)

ENV = {"SOURCE_DATE_EPOCH": EPOCH}
VERSION = (REPO / "runtime" / "VERSION").read_text().strip()


def os_label():
    rel = dict(line.split("=", 1) for line in open("/etc/os-release").read().splitlines()
               if "=" in line)
    return (rel["ID"] + rel.get("VERSION_ID", "")).replace('"', "").lower()


def build(dlc, *args):
    return parse_build_output(dlc("build", "--build-dir", BUILD, *args, env=ENV,
                                  cwd=REPO).stdout)


def need_root():
    if os.geteuid() != 0:
        pytest.skip("runc needs root here (rootless runc is not set up by make deps)")


def git_head():
    return run(["git", "-C", REPO, "rev-parse", "HEAD"]).stdout.strip()


@pytest.fixture(scope="module")
def rt(tmp_path_factory):
    """One store for this module with the cpu image built (a cold build takes seconds):
    (Dlc, dlc build's parsed output, the git HEAD it saw)."""
    require_runtime(CPU_TENSOR)
    d = Dlc(tmp_path_factory.mktemp("rt") / "root")
    head = git_head()
    out = build(d, "--variant", "cpu")
    return d, out, head


def test_cpu_image(rt, tmp_path):
    dlc, out, _ = rt
    major, minor = VERSION.split(".")[:2]
    osl = os_label()
    assert list(out) == ["cpu"]
    assert out["cpu"]["tags"] == [f"tensor-runtime:{VERSION}-cpu-openblas-{osl}",
                                  f"tensor-runtime:{VERSION}-cpu",
                                  f"tensor-runtime:{major}.{minor}-cpu", "tensor-runtime:cpu"]
    assert [layer[0] for layer in out["cpu"]["layers"]] == ["base", "cpu"]
    manifest, config, tars = check_image(dlc.layout, f"tensor-runtime:{VERSION}-cpu")
    oci_image_tool_validate(dlc.layout, f"tensor-runtime:{VERSION}-cpu", tmp_path)

    require_tool("skopeo")
    info = json.loads(run(["skopeo", "inspect",
                           f"oci:{dlc.layout}:tensor-runtime:{VERSION}-cpu"]).stdout)
    labels = info["Labels"]
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z"
    assert labels["org.opencontainers.image.title"] == "tensor-runtime"
    assert labels["org.opencontainers.image.description"]
    assert re.fullmatch(r"[0-9a-f]{40}", labels["org.opencontainers.image.revision"])
    assert (labels["dev.dlc.device"], labels["dev.dlc.backend"], labels["dev.dlc.os"],
            labels["dev.dlc.job"]) == ("cpu", "openblas", osl, "general")
    assert config["config"]["Entrypoint"] == ["/usr/bin/tensor"]
    assert config["config"]["Cmd"] == ["train"]
    assert "LANG=C.UTF-8" in config["config"]["Env"]

    base, cpu = tar_members(tars[0]), tar_members(tars[1])
    assert base["tmp"].mode == 0o1777 and base["bin/busybox"].isfile()
    assert {"opt/ml/input/data", "opt/ml/model", "opt/ml/output", "opt/ml/code"} <= set(base)
    assert "usr/bin/tensor" in cpu and cpu["usr/bin/tensor"].mode == 0o755


def test_cpu_image_runs_under_runc(rt, tmp_path):
    """test_os_version / test_framework_version_cpu of the DLC sanity suite, for us."""
    need_root()
    dlc, _, _ = rt
    bundle = umoci_unpack(dlc.layout, f"tensor-runtime:{VERSION}-cpu", tmp_path / "bundle")
    name = f"dlc-build-rt-{os.getpid()}"
    p = runc_run(bundle, ["/usr/bin/tensor", "version"], name)
    assert p.returncode == 0, p.stderr
    assert VERSION in p.stdout
    p = runc_run(bundle, ["/usr/bin/tensor", "devices"], name)
    assert p.returncode == 0, p.stderr
    assert "OpenBLAS" in p.stdout
    p = runc_run(bundle, ["/bin/sh", "-c", ". /etc/os-release; echo $ID$VERSION_ID"], name)
    assert p.stdout.strip() == os_label()


def test_rebuild_is_cached(rt):
    dlc, first, head = rt
    again = build(dlc, "--variant", "cpu")
    assert [s for _, _, s in again["cpu"]["layers"]] == ["cached", "cached"]
    # same digest, unless a commit landed meanwhile (the revision label moved with it)
    assert again["cpu"]["manifest"] == first["cpu"]["manifest"] or git_head() != head


def test_gpu_image_runs_under_runc(rt, tmp_path):
    """The GPU variant starts with no driver injected (the runner adds vendor ICDs): its
    loader finds libOpenCL.so.1 and tensor reports its version."""
    require_runtime(GPU_TENSOR)
    need_root()
    dlc, _, _ = rt
    gpu = build(dlc, "--variant", "gpu")["gpu"]
    assert gpu["layers"][0][2] == "cached"  # the cpu build's base
    bundle = umoci_unpack(dlc.layout, f"tensor-runtime:{VERSION}-gpu", tmp_path / "bundle")
    p = runc_run(bundle, ["/usr/bin/tensor", "version"], f"dlc-build-gpu-{os.getpid()}")
    assert (p.returncode, VERSION in p.stdout) == (0, True), p.stdout + p.stderr
    assert (bundle / "rootfs" / "etc" / "OpenCL" / "vendors").is_dir()


def test_variants_share_a_base_and_reproduce_in_other_stores(rt, tmp_path):
    require_runtime(CPU_TENSOR, GPU_TENSOR)
    dlc, _, _ = rt
    # The revision label is the checkout's HEAD: in a tree where commits land while the
    # test runs, build again until one round saw a single HEAD.
    for attempt in range(3):
        head = git_head()
        cpu = build(dlc, "--variant", "cpu")["cpu"]
        gpu = build(dlc, "--variant", "gpu")["gpu"]
        both = build(Dlc(tmp_path / f"fresh{attempt}"))
        if git_head() == head:
            break
    assert cpu["layers"][0][1] == gpu["layers"][0][1]  # base: byte-identical
    assert cpu["manifest"] == both["cpu"]["manifest"]  # same inputs, same digests
    assert gpu["manifest"] == both["gpu"]["manifest"]
    assert [s for _, _, s in both["gpu"]["layers"]] == ["built", "built"]
    assert both["gpu"]["tags"][0] == f"tensor-runtime:{VERSION}-gpu-opencl-{os_label()}"
    _, _, tars = check_image(dlc.layout, f"tensor-runtime:{VERSION}-gpu")
    names = set(tar_members(tars[1]))
    assert "usr/bin/tensor" in names
    assert any(n.endswith("/libOpenCL.so.1") for n in names)


def test_fashion_mlp_extends_the_cpu_image(rt, tmp_path):
    dlc, _, _ = rt
    base = build(dlc, "--variant", "cpu")["cpu"]
    out = parse_build_output(dlc("build", "-f", FASHION_DEF, env=ENV).stdout)["fashion-mlp"]
    assert out["tags"] == [f"fashion-mlp:{VERSION}-cpu", "fashion-mlp:latest"]
    assert [(n, d) for n, d, _ in out["layers"][:2]] == \
        [("from", d) for _, d, _ in base["layers"]]
    assert [s for _, _, s in out["layers"]][:2] == ["inherited", "inherited"]
    manifest, config, tars = check_image(dlc.layout, "fashion-mlp:latest")
    assert list(tar_members(tars[2])) == ["opt/ml/code/model.json"]
    labels = config["config"]["Labels"]
    assert labels["dev.dlc.example"] == "fashion-mlp"
    assert labels["dev.dlc.device"] == "cpu"  # inherited
    assert labels["org.opencontainers.image.title"] == "fashion-mlp"
    assert config["config"]["Entrypoint"] == ["/usr/bin/tensor"]
    assert manifest["annotations"]["org.opencontainers.image.base.name"] == \
        "tensor-runtime:1.0.0-cpu"
    assert len(config["history"]) == 3
    hist = dlc("history", "fashion-mlp:latest").stdout.splitlines()
    assert "dlc build fashion-mlp.json: copy" in hist[1]
    assert "dlc build tensor-runtime.json: base" in hist[3]


def test_fashion_mlp_trains_under_runc(rt, tmp_path):
    """The extension's model.json drives `tensor train` inside the container: SageMaker's
    files in, a model out."""
    need_root()
    dlc, _, _ = rt
    build(dlc, "--variant", "cpu")
    dlc("build", "-f", FASHION_DEF, env=ENV)
    bundle = umoci_unpack(dlc.layout, "fashion-mlp:latest", tmp_path / "bundle")
    ml = bundle / "rootfs" / "opt" / "ml"
    rng = np.random.default_rng(0)
    (ml / "input" / "data" / "training").mkdir(parents=True, exist_ok=True)
    np.save(ml / "input" / "data" / "training" / "train.npy",
            rng.random((64, 784), dtype=np.float32))
    np.save(ml / "input" / "data" / "training" / "labels.npy",
            rng.integers(0, 10, 64).astype(np.int64))
    (ml / "input" / "config").mkdir(parents=True, exist_ok=True)
    (ml / "input" / "config" / "hyperparameters.json").write_text(
        json.dumps({"epochs": "1", "batch_size": "32"}))
    p = runc_run(bundle, ["/usr/bin/tensor", "train"], f"dlc-build-fm-{os.getpid()}",
                 timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (ml / "model" / "model.safetensors").exists()
    saved = json.loads((ml / "model" / "model.json").read_text())
    assert saved["config"]["name"] == "fashion_mlp"
