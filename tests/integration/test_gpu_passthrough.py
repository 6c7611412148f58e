"""GPU passthrough through the real runner, without a GPU (gpu-passthrough.md §4):

- a fake NVIDIA driver root whose nodes are real character devices made with mknod (195:N
  has no driver here: opening an allowed node fails with ENXIO, a node the device cgroup
  does not allow fails with EPERM), stub driver libraries and a real ld.so.cache;
- the host's pocl (a CPU OpenCL driver) passed into an image that has only the ICD loader,
  by --gpus all and through a spec written by `dlc cdi generate`;
- the tensor runtime's GPU image end to end (needs `dlc build` of images/tensor-runtime.json
  with build/runtime/gpu/tensor).
"""
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from conftest import BUILD, DLC, REPO, Dlc, public_build, run
from helpers_gpu import (DRIVER_VERSION, UUIDS, UVM_MAJOR, busybox_image, cdi_spec,
                         clinfo_image, fake_driver_root, mountinfo_options)
from helpers_run import as_user, ensure_user

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="mknod of device nodes and device cgroups need root")

LIB = "/usr/lib/dlc-gpu"
ROOTLESS_UID = 42421


@pytest.fixture
def fake_root(tmp_path):
    return fake_driver_root(tmp_path / "driver-root")


@pytest.fixture
def bb(dlc, tmp_path):
    return busybox_image(dlc, tmp_path, env=["NVIDIA_VISIBLE_DEVICES=all"])


@pytest.fixture
def cdi_dir(tmp_path, monkeypatch):
    """A private CDI spec directory (never the host's /etc/cdi) for every dlc call."""
    d = tmp_path / "cdi"
    d.mkdir()
    monkeypatch.setenv("DLC_CDI_SPEC_DIRS", str(d))
    return d


def sh(dlc, *args, script, env=None, check=True):
    """dlc run --rm ARGS sh -c SCRIPT."""
    return dlc("run", "--rm", *args, "sh", "-c", script, env=env, check=check, timeout=120)


# ---- dlc info / dlc cdi -----------------------------------------------------------------

def test_info_shows_the_fake_root(dlc, fake_root):
    p = dlc("info", "--driver-root", fake_root, "--format", "json")
    info = json.loads(p.stdout)
    assert info["driver_root"] == str(fake_root)
    assert info["nvidia_driver"] == DRIVER_VERSION
    assert [g["uuid"] for g in info["gpus"]] == UUIDS
    assert [g["node"] for g in info["gpus"]] == ["/dev/nvidia0", "/dev/nvidia1"]
    assert [g["bus_id"] for g in info["gpus"]] == ["0000:3b:00.0", "0000:86:00.0"]
    assert [i["name"] for i in info["opencl_icds"]] == ["nvidia"]
    table = dlc("info", "--driver-root", fake_root).stdout
    assert f"NVIDIA driver: {DRIVER_VERSION}" in table
    assert re.search(r"^\s+0\s+nvidia\s+Tesla T4\s+" + UUIDS[0] + r"\s+0000:3b:00.0\s+/dev/nvidia0$",
                     table, re.M), table


def test_info_on_this_host_lists_pocl(dlc):
    info = json.loads(dlc("info", "--format", "json").stdout)
    pocl = [i for i in info["opencl_icds"] if i["name"] == "pocl"]
    assert pocl, f"pocl.icd is not installed: run `make deps`\n{info}"
    assert pocl[0]["problem"] is None
    assert pocl[0]["libraries"] > 5  # libpocl and LLVM, clang, hwloc, ...


def test_cdi_generate_and_list(dlc, fake_root, cdi_dir):
    out = cdi_dir / "dlc.json"
    dlc("cdi", "generate", "--driver-root", fake_root, "--output", out)
    spec = json.loads(out.read_text())
    assert spec["kind"] == "dlc.local/gpu"
    names = [d["name"] for d in spec["devices"]]
    assert names == ["0", UUIDS[0], "1", UUIDS[1], "all"]
    p = dlc("cdi", "list", env={"DLC_CDI_SPEC_DIRS": str(cdi_dir)})
    assert p.stdout.split() == [f"dlc.local/gpu={n}" for n in names]
    bad = dlc("cdi", "generate", "--kind", "nokind", check=False)
    assert bad.returncode == 1
    assert bad.stderr == "dlc: cdi generate: invalid CDI kind 'nokind' (want vendor.com/class)\n"


# ---- the fake NVIDIA root in a container --------------------------------------------------

def test_gpus_0_passes_nodes_libraries_and_icd(dlc, fake_root, bb):
    p = sh(dlc, "--gpus", "0", "--driver-root", fake_root, bb, script=(
        "stat -c '%n %F %t:%T' /dev/nvidiactl /dev/nvidia0 /dev/nvidia-uvm /dev/nvidia-uvm-tools;"
        "test -e /dev/nvidia1 && echo nvidia1-present;"
        "cat /dev/nvidia0 2>&1; cat /dev/nvidiactl 2>&1;"
        f"ls {LIB}; cat /etc/OpenCL/vendors/nvidia.icd; nvidia-smi;"
        "echo LD=$LD_LIBRARY_PATH; cat /proc/self/mountinfo"))
    lines = p.stdout.splitlines()
    assert lines[:4] == ["/dev/nvidiactl character special file c3:ff",
                         "/dev/nvidia0 character special file c3:0",
                         f"/dev/nvidia-uvm character special file {UVM_MAJOR:x}:0",
                         f"/dev/nvidia-uvm-tools character special file {UVM_MAJOR:x}:1"]
    assert "nvidia1-present" not in p.stdout
    # the device cgroup let the open through; no driver answers 195:N here
    assert "cat: can't open '/dev/nvidia0': No such device or address" in lines
    assert "cat: can't open '/dev/nvidiactl': No such device or address" in lines
    libs = set(lines)
    assert {"libcuda.so", "libcuda.so.1", f"libcuda.so.{DRIVER_VERSION}", "libnvidia-ml.so.1",
            "libnvidia-opencl.so.1"} <= libs
    assert "libnvidia-cfg.so.1" not in libs  # another driver version: skipped
    assert f"{LIB}/libnvidia-opencl.so.1" in lines
    assert "GPU 0: fake" in lines
    assert f"LD={LIB}" in lines
    mountinfo = p.stdout[p.stdout.index("LD="):]
    assert {"ro", "nosuid", "nodev"} <= mountinfo_options(mountinfo, f"{LIB}/libcuda.so.1")


def test_gpus_selection_by_uuid_and_sm_num_gpus(dlc, fake_root, bb, tmp_path):
    p = sh(dlc, "--gpus", UUIDS[1].lower(), "--driver-root", fake_root, bb,
           script="ls /dev | grep '^nvidia[0-9]'")
    assert p.stdout.split() == ["nvidia1"]
    data = tmp_path / "data"
    data.mkdir()
    p = sh(dlc, "--gpus", "all", "--driver-root", fake_root, "--channel", f"training={data}",
           bb, script="echo SM_NUM_GPUS=$SM_NUM_GPUS; ls /dev | grep '^nvidia[0-9]'")
    assert p.stdout.split() == ["SM_NUM_GPUS=2", "nvidia0", "nvidia1"]
    p = sh(dlc, "--gpus", "none", "--driver-root", fake_root, "--channel", f"training={data}",
           bb, script="echo SM_NUM_GPUS=$SM_NUM_GPUS; ls /dev | grep -c '^nvidia' || true")
    assert p.stdout.split() == ["SM_NUM_GPUS=0", "0"]


def test_selection_never_comes_from_the_image_env(dlc, fake_root, bb):
    # bb's config says NVIDIA_VISIBLE_DEVICES=all; the driver root is even set for dlc
    p = sh(dlc, bb, env={"DLC_DRIVER_ROOT": str(fake_root)},
           script="echo NVD=$NVIDIA_VISIBLE_DEVICES; ls /dev; ls /usr/lib/dlc-gpu 2>&1;"
                  "echo SM=$SM_NUM_GPUS")
    assert "NVD=all" in p.stdout
    assert "nvidia" not in p.stdout.replace("NVD=all", "")
    assert "ls: /usr/lib/dlc-gpu: No such file or directory" in p.stdout


def test_unknown_gpu_and_device_fail_before_the_container(dlc, fake_root, bb, cdi_dir):
    p = sh(dlc, "--gpus", "2", "--driver-root", fake_root, bb, script="true", check=False)
    assert p.returncode == 125
    assert p.stderr == "dlc: run: --gpus 2: unknown GPU '2': this host has 2 GPUs\n"
    p = sh(dlc, "--device", "nope.com/gpu=0", bb, script="true", check=False,
           env={"DLC_CDI_SPEC_DIRS": str(cdi_dir)})
    assert p.returncode == 125
    assert p.stderr == (f"dlc: run: unknown CDI device 'nope.com/gpu=0' (specs read from "
                        f"{cdi_dir})\n")
    p = sh(dlc, "--device", "/dev/does-not-exist", bb, script="true", check=False)
    assert p.returncode == 125
    assert "--device /dev/does-not-exist" in p.stderr
    assert dlc("ps", "-a").stdout.count("\n") <= 1  # nothing left behind


def test_device_cgroup_allows_only_what_was_passed(dlc, fake_root, bb, cdi_dir):
    """nvidia0 rw; nvidia1 present but allowed for mknod only: EPERM from the cgroup."""
    cdi_spec(cdi_dir / "t.json", "test.example/gpu", {
        "rw": {"deviceNodes": [{"path": "/dev/nvidia0",
                                "hostPath": str(fake_root / "dev/nvidia0")}]},
        "m": {"deviceNodes": [{"path": "/dev/nvidia1",
                               "hostPath": str(fake_root / "dev/nvidia1"),
                               "permissions": "m"}]}})
    p = sh(dlc, "--device", "test.example/gpu=rw", "--device", "test.example/gpu=m", bb,
           env={"DLC_CDI_SPEC_DIRS": str(cdi_dir)},
           script="stat -c '%t:%T' /dev/nvidia1; cat /dev/nvidia0 2>&1; cat /dev/nvidia1 2>&1; true")
    assert p.stdout.splitlines() == [
        "c3:1",
        "cat: can't open '/dev/nvidia0': No such device or address",
        "cat: can't open '/dev/nvidia1': Operation not permitted"]


def test_device_path_flag(dlc, fake_root, bb):
    p = sh(dlc, "--device", "/dev/nvidia1:/dev/gpu", "--driver-root", fake_root, bb,
           script="stat -c '%t:%T' /dev/gpu; cat /dev/gpu 2>&1; echo SM=$SM_NUM_GPUS")
    assert p.stdout.splitlines()[:2] == ["c3:1",
                                         "cat: can't open '/dev/gpu': No such device or address"]


def test_rootless_binds_the_nodes(tmp_path):
    """Not root: the nodes are bind-mounted (mknod is EPERM in a user namespace) and no
    device cgroup can be made; the node's own permissions apply."""
    uid = ensure_user("dlcgpu", ROOTLESS_UID)
    d = Path(tempfile.mkdtemp(prefix="dlc-gpu-rootless-"))
    try:
        os.chmod(d, 0o755)
        fake = fake_driver_root(d / "driver-root")
        (d / "root").mkdir()
        store = Dlc(d / "root")
        busybox_image(store, d)
        for p in [d, *d.rglob("*")]:
            os.lchown(p, uid, uid)
        p = run(as_user(uid, ["env", f"DLC_ROOT={store.root}", public_build()[0], "run", "--rm",
                              "--gpus",
                              "0", "--driver-root", fake, "gpu-test:bb", "sh", "-c",
                              "stat -c '%t:%T' /dev/nvidia0; cat /dev/nvidia0 2>&1; true"]),
                timeout=120)
        assert p.stdout.splitlines() == [
            "c3:0", "cat: can't open '/dev/nvidia0': No such device or address"]
        assert "rootless: no device cgroup" in p.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---- pocl: OpenCL passed through into an image with only the ICD loader ----------------------

def test_pocl_passthrough_with_gpus_all(dlc, tmp_path):
    img = clinfo_image(dlc, tmp_path)
    p = dlc("run", "--rm", "--gpus", "all", img, "clinfo", "-l", timeout=120)
    assert "Platform #0: Portable Computing Language" in p.stdout, p.stdout + p.stderr
    p = dlc("run", "--rm", "--gpus", "all", img, "cat", "/etc/OpenCL/vendors/pocl.icd")
    assert p.stdout == f"{LIB}/libpocl.so.2.10.0\n"
    # without --gpus the loader finds no platform
    p = dlc("run", "--rm", img, "clinfo", "-l", timeout=120)
    assert "Portable Computing Language" not in p.stdout


def test_pocl_passthrough_through_cdi_generate(dlc, tmp_path, cdi_dir):
    img = clinfo_image(dlc, tmp_path)
    dlc("cdi", "generate", "--output", cdi_dir / "dlc.json")
    env = {"DLC_CDI_SPEC_DIRS": str(cdi_dir)}
    assert "dlc.local/gpu=opencl-pocl" in dlc("cdi", "list", env=env).stdout.split()
    p = dlc("run", "--rm", "--device", "dlc.local/gpu=opencl-pocl", img, "clinfo", "-l",
            env=env, timeout=120)
    assert "Platform #0: Portable Computing Language" in p.stdout, p.stdout + p.stderr


# ---- the tensor runtime's GPU image ----------------------------------------------------------

GPU_TENSOR = BUILD / "runtime" / "gpu" / "tensor"
VERSION = (REPO / "runtime" / "VERSION").read_text().strip()


@pytest.fixture
def gpu_image(dlc):
    assert GPU_TENSOR.exists(), f"{GPU_TENSOR} is not built: run `make`"
    dlc("build", "--build-dir", BUILD, "--variant", "gpu", cwd=REPO, timeout=600,
        env={"SOURCE_DATE_EPOCH": "1700000000"})
    return f"tensor-runtime:{VERSION}-gpu"


def write_dataset(d):
    """A small separable 2-class problem as CSV (label first)."""
    import random
    rnd = random.Random(7)
    d.mkdir(parents=True, exist_ok=True)
    rows = []
    for _ in range(256):
        x = [rnd.uniform(-1, 1) for _ in range(8)]
        rows.append(",".join([str(int(sum(x) > 0))] + [f"{v:.6f}" for v in x]))
    (d / "train.csv").write_text("\n".join(rows) + "\n")
    return d


HPS = ["--hp", "loss=sparse_categorical_crossentropy", "--hp", "epochs=3", "--hp", "seed=1"]


def train(dlc, image, data, *args, check=True):
    """dlc train (SageMaker's training contract), into a fresh output dir beside data."""
    out = data.parent / f"out-{len(list(data.parent.glob('out-*')))}"
    return dlc("train", *args, "--channel", f"training={data}", "--output", out, *HPS, image,
               check=check, timeout=600)


def test_tensor_devices_lists_pocl(dlc, gpu_image):
    p = dlc("run", "--rm", "--gpus", "all", gpu_image, "devices", timeout=300)
    assert "Portable Computing Language" in p.stdout, p.stdout + p.stderr
    assert "unavailable" not in p.stdout  # the self-test kernel built, linked and ran


def test_device_gpu_without_gpus_fails_clearly(dlc, gpu_image, tmp_path):
    p = train(dlc, gpu_image, write_dataset(tmp_path / "data"), "--hp", "device=gpu",
              check=False)
    assert p.returncode == 1, p.stdout + p.stderr
    # the runtime names the stage (no ICD) and points at --gpus; never a silent CPU run
    assert p.stderr.startswith("tensor: train: device gpu: no GPU: opencl backend: ICD: "), \
        p.stderr
    assert "--gpus" in p.stderr
    assert "Epoch" not in p.stdout


def test_train_on_pocl_matches_cpu(dlc, gpu_image, tmp_path):
    data = write_dataset(tmp_path / "data")
    losses = {}
    for device, extra in [("cpu", []), ("opencl", ["--gpus", "all"])]:
        p = train(dlc, gpu_image, data, "--hp", f"device={device}", *extra)
        assert f" on {device} " in p.stdout + p.stderr, p.stdout + p.stderr
        losses[device] = [float(x) for x in re.findall(r" loss: ([0-9.]+)", p.stdout)]
    assert len(losses["cpu"]) == 3, losses
    for a, b in zip(losses["cpu"], losses["opencl"], strict=True):
        assert abs(a - b) <= 1e-3 * max(1.0, abs(a)), losses


def test_train_on_pocl_through_cdi(dlc, gpu_image, tmp_path, cdi_dir):
    """The spec from `dlc cdi generate` carries pocl's linker scripts (beside the spec)."""
    dlc("cdi", "generate", "--output", cdi_dir / "dlc.json")
    assert (cdi_dir / "dlc.d").is_dir()
    p = train(dlc, gpu_image, write_dataset(tmp_path / "data"), "--hp", "device=opencl",
              "--device", "dlc.local/gpu=opencl-pocl")
    assert " on opencl " in p.stdout + p.stderr
    assert len(re.findall(r" loss: ([0-9.]+)", p.stdout)) == 3
