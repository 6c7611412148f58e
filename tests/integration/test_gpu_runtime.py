"""The GPU build of `tensor` (runtime/gpu/tensor) end to end on pocl, the CPU OpenCL device
`make deps` installs: device listing, a full training run on the OpenCL device against the
CPU run's loss curve, the device policy (gpu / auto / opencl), and each stage of a broken
OpenCL setup failing with its own message: no ICD file, an ICD naming a missing library,
no device, pocl without `ld` (caught by the self-test instead of aborting), the memory cap."""
import json
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import BUILD, require_tool
from helpers_runtime import keras_model, make_opt_ml, spiral_data

GPU_TENSOR = BUILD / "runtime" / "gpu" / "tensor"
CPU_TENSOR = BUILD / "runtime" / "cpu" / "tensor"


@pytest.fixture(autouse=True)
def built():
    assert GPU_TENSOR.exists(), f"{GPU_TENSOR} is not built: run `make`"
    require_tool("clinfo")


def run(binary, *args, base=None, env=None, timeout=300):
    import subprocess
    e = {k: v for k, v in os.environ.items()
         if k not in ("DLC_OPENCL_ALLOW_CPU", "DLC_OPENCL_DEVICE", "DLC_GPU_MEMORY_LIMIT",
                      "OCL_ICD_VENDORS", "DLC_DEVICE")}
    if base is not None:
        e["SAGEMAKER_BASE_DIR"] = str(base)
    e.update(env or {})
    return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True,
                          env=e, timeout=timeout)


def spiral_job(path, device, epochs=15, **extra):
    x, y = spiral_data(150, 3, seed=0)
    model = keras_model([(48, "relu"), (32, "tanh"), (3, "softmax")], 2, {
        "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
        "optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.005}}})
    hp = {"epochs": epochs, "batch_size": 32, "seed": 5, "threads": 1, "device": device}
    hp.update(extra)
    return make_opt_ml(path, hp, {"training": (x, y)}, model_json=model)


def history(base):
    return json.loads((base / "output" / "data" / "metrics.json").read_text())["history"]


def test_devices_lists_the_opencl_platform_and_device():
    p = run(GPU_TENSOR, "devices")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "backend opencl: " in out and "backend cpu: " in out
    assert "  OpenCL ICD files in /etc/OpenCL/vendors: pocl.icd -> libpocl.so" in out
    assert "  platform 0: Portable Computing Language (The pocl project), OpenCL " in out
    line = next(li for li in out.splitlines() if li.startswith("    device 0.0: "))
    for want in (": CPU, ", " memory (max allocation ", " compute units, ", " driver ",
                 "[in use]"):
        assert want in line, line
    # the CPU build has no OpenCL backend at all
    if CPU_TENSOR.exists():
        assert "backend opencl" not in run(CPU_TENSOR, "devices").stdout


def test_training_on_opencl_matches_the_cpu_loss_curve(tmp_path):
    gpu = spiral_job(tmp_path / "gpu", "opencl")
    cpu = spiral_job(tmp_path / "cpu", "cpu")
    p = run(GPU_TENSOR, "train", base=gpu)
    assert p.returncode == 0, p.stderr
    assert "opencl: using device 0.0 'pthread" in p.stderr
    q = run(GPU_TENSOR, "train", base=cpu)  # the gpu image's CPU backend
    assert q.returncode == 0, q.stderr
    assert "opencl: using device" not in q.stderr
    hg, hc = history(gpu), history(cpu)
    assert len(hg["loss"]) == 15
    # float sums in another order: the curves agree to 1e-4 relative per epoch
    np.testing.assert_allclose(hg["loss"], hc["loss"], rtol=1e-4)
    np.testing.assert_allclose(hg["accuracy"], hc["accuracy"], atol=2 / 450)
    assert hg["loss"][-1] < 0.5 * hg["loss"][0]
    # and so do the saved weights
    from helpers_runtime import read_safetensors
    wg = read_safetensors(gpu / "model" / "model.safetensors")
    wc = read_safetensors(cpu / "model" / "model.safetensors")
    for name in wc:
        np.testing.assert_allclose(wg[name], wc[name], rtol=1e-3, atol=1e-5, err_msg=name)


def test_device_gpu_without_a_gpu_fails_and_never_trains_on_cpu(tmp_path):
    base = spiral_job(tmp_path / "ml", "gpu", epochs=2)
    p = run(GPU_TENSOR, "train", base=base)
    assert p.returncode == 1, p.stderr
    want = ("device gpu: no GPU: opencl backend: device: no usable OpenCL device of type GPU "
            "or accelerator (found: 'pthread-")
    assert want in p.stderr
    assert "set DLC_OPENCL_ALLOW_CPU=1 or use device=opencl" in p.stderr
    assert want in (base / "output" / "failure").read_text()
    assert "Epoch" not in p.stdout and not (base / "model" / "model.safetensors").exists()


def test_allow_cpu_lets_device_gpu_and_auto_use_pocl(tmp_path):
    base = spiral_job(tmp_path / "gpu", "gpu", epochs=2)
    p = run(GPU_TENSOR, "train", base=base, env={"DLC_OPENCL_ALLOW_CPU": "1"})
    assert p.returncode == 0, p.stderr
    assert "opencl: using device 0.0 " in p.stderr
    auto = spiral_job(tmp_path / "auto", "auto", epochs=2)
    p = run(GPU_TENSOR, "train", base=auto, env={"DLC_OPENCL_ALLOW_CPU": "1"})
    assert p.returncode == 0, p.stderr
    assert "opencl: using device 0.0 " in p.stderr


def test_auto_says_it_falls_back_to_cpu(tmp_path):
    base = spiral_job(tmp_path / "ml", "auto", epochs=2)
    p = run(GPU_TENSOR, "train", base=base)
    assert p.returncode == 0, p.stderr
    assert ("device auto: opencl backend: device: no usable OpenCL device of type GPU or "
            "accelerator") in p.stderr
    assert "; using cpu" in p.stderr


def broken(tmp_path, env, want, device="opencl", listing=True):
    base = spiral_job(tmp_path / "ml", device, epochs=1)
    p = run(GPU_TENSOR, "train", base=base, env=env)
    assert p.returncode == 1, p.stderr
    assert want in p.stderr, p.stderr
    assert want in (base / "output" / "failure").read_text()
    if listing:  # `tensor devices` says the same, and still lists the cpu backend
        d = run(GPU_TENSOR, "devices", env=env)
        assert d.returncode == 0 and want in d.stdout and "backend cpu: " in d.stdout, d.stdout


def test_stage_icd_no_vendor_file(tmp_path):
    vendors = tmp_path / "vendors"
    vendors.mkdir()
    broken(tmp_path, {"OCL_ICD_VENDORS": str(vendors)},
           f"opencl backend: ICD: no OpenCL driver is installed: no *.icd file in {vendors} "
           "(from OCL_ICD_VENDORS)", device="gpu")


def test_stage_platform_icd_names_a_missing_library(tmp_path):
    vendors = tmp_path / "vendors"
    vendors.mkdir()
    (vendors / "nvidia.icd").write_text("libnvidia-opencl.so.1\n")
    broken(tmp_path, {"OCL_ICD_VENDORS": str(vendors)},
           "opencl backend: platform: the OpenCL loader found no platform "
           f"(CL_PLATFORM_NOT_FOUND_KHR); ICD files in {vendors} (from OCL_ICD_VENDORS): "
           "nvidia.icd -> libnvidia-opencl.so.1 (cannot be loaded: libnvidia-opencl.so.1: "
           "cannot open shared object file")


def test_stage_device_pocl_without_a_writable_cache(tmp_path):
    broken(tmp_path, {"POCL_CACHE_DIR": "/proc/dlc-not-writable"},
           "opencl backend: device: the OpenCL platforms report no device at all: "
           "'Portable Computing Language' (pocl reports none when its kernel cache directory "
           "is not writable")


def test_stage_self_test_catches_pocl_without_ld(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    # a fresh kernel cache, so pocl has to link the test kernel (with `ld`, not on PATH)
    broken(tmp_path, {"PATH": str(empty), "POCL_CACHE_DIR": str(tmp_path / "kcache")},
           "opencl backend: self-test: the OpenCL driver crashed (signal 6, Aborted) building "
           "or running a test kernel on 'pthread-")
    p = run(GPU_TENSOR, "devices", env={"PATH": str(empty),
                                       "POCL_CACHE_DIR": str(tmp_path / "kcache2")})
    assert 'it printed: error: unable to execute command: Executable "ld"' in p.stdout


def test_self_test_is_not_fooled_by_a_warm_kernel_cache(tmp_path):
    # A run with `ld` fills the kernel cache; without `ld` the self-test still compiles and
    # links its kernel afresh (a cached one would pass and leave the abort for later).
    cache = tmp_path / "kcache"
    assert run(GPU_TENSOR, "devices", env={"POCL_CACHE_DIR": str(cache)}).returncode == 0
    assert any(cache.iterdir())
    empty = tmp_path / "bin"
    empty.mkdir()
    broken(tmp_path, {"PATH": str(empty), "POCL_CACHE_DIR": str(cache)},
           "opencl backend: self-test: the OpenCL driver crashed (signal 6, Aborted)")
    leftovers = [p for p in Path(os.environ.get("TMPDIR", "/tmp")).glob("dlc-opencl-selftest-*")]
    assert not leftovers, leftovers


def test_dlc_device_env_is_the_default_device(tmp_path):
    base = spiral_job(tmp_path / "ml", "cpu", epochs=1)
    hp = json.loads((base / "input" / "config" / "hyperparameters.json").read_text())
    del hp["device"]
    (base / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hp))
    p = run(GPU_TENSOR, "train", base=base, env={"DLC_DEVICE": "gpu"})
    assert p.returncode == 1 and "device gpu: no GPU: " in p.stderr, p.stderr
    p = run(GPU_TENSOR, "train", base=base, env={"DLC_DEVICE": "opencl"})
    assert p.returncode == 0 and "opencl: using device 0.0 " in p.stderr, p.stderr


def test_gpu_memory_limit_hyperparameter(tmp_path):
    base = spiral_job(tmp_path / "ml", "opencl", epochs=1, gpu_memory_limit="16k")
    p = run(GPU_TENSOR, "train", base=base)
    assert p.returncode == 1, p.stderr
    assert "would exceed gpu_memory_limit=16.4 kB" in p.stderr
    bad = spiral_job(tmp_path / "bad", "opencl", epochs=1, gpu_memory_limit="lots")
    p = run(GPU_TENSOR, "train", base=bad)
    assert p.returncode == 1
    assert "hyperparameter gpu_memory_limit: 'lots' is not a size" in p.stderr


def test_gpu_memory_limit(tmp_path):
    broken(tmp_path, {"DLC_GPU_MEMORY_LIMIT": "16k"},
           "would exceed gpu_memory_limit=16.4 kB (0 B in use); raise gpu_memory_limit or "
           "lower batch_size", listing=False)
    base = spiral_job(tmp_path / "ok", "opencl", epochs=1)
    p = run(GPU_TENSOR, "train", base=base, env={"DLC_GPU_MEMORY_LIMIT": "64m"})
    assert p.returncode == 0, p.stderr
