"""Helpers for the GPU passthrough tests (gpu-passthrough.md §4): a fake driver root with
real device nodes made by mknod (195:N: no driver behind them, so opening one gives ENXIO
once the device cgroup lets it through), stub driver libraries built with gcc and a real
ld.so.cache from `ldconfig -r`; fixture images built from host binaries and their ldd
closure (clinfo with the ocl-icd loader) on top of the runner tests' busybox rootfs."""
import json
import os
import re
import subprocess
from pathlib import Path

from conftest import REPO, require_tool, run
from helpers_run import Entry, busybox_entries, copy_into_store, write_image

LIBDIR = "/usr/lib/x86_64-linux-gnu"
DRIVER_VERSION = "999.88.77"
UUIDS = ["GPU-aaaaaaaa-0000-0000-0000-000000000000", "GPU-bbbbbbbb-0000-0000-0000-000000000001"]
UVM_MAJOR = 235


def _write(root, rel, data, mode=0o644):
    p = Path(root) / rel.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data if isinstance(data, bytes) else data.encode())
    p.chmod(mode)
    return p


def _mknod(root, rel, major, minor):
    p = Path(root) / rel.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.exists():
        p.unlink()
    os.mknod(p, 0o666 | 0o020000, os.makedev(major, minor))  # S_IFCHR
    return p


def _stub_lib(root, rel, soname):
    require_tool("gcc")
    src = Path(root) / "stub.c"
    src.write_text("int cuInit(unsigned f) { (void)f; return 100; } /* CUDA_ERROR_NO_DEVICE */\n")
    out = Path(root) / rel.lstrip("/")
    out.parent.mkdir(parents=True, exist_ok=True)
    run(["gcc", "-shared", "-fPIC", f"-Wl,-soname,{soname}", "-o", out, src])
    src.unlink()


def fake_driver_root(root):
    """An NVIDIA driver root: 2 GPUs (minors 0 and 1), nvidiactl, uvm (major 235), driver
    libraries of version 999.88.77 plus one of another version, nvidia-smi, nvidia.icd."""
    assert os.geteuid() == 0, "mknod of device nodes needs root"
    root = Path(root)
    _write(root, "/proc/devices", f"Character devices:\n  1 mem\n195 nvidia\n{UVM_MAJOR} "
                                  "nvidia-uvm\n\nBlock devices:\n  7 loop\n")
    _write(root, "/proc/driver/nvidia/version",
           f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {DRIVER_VERSION}  Wed Jan  1 "
           "00:00:00 UTC 2025\n")
    for minor, (bus, uuid) in enumerate(zip(["0000:3b:00.0", "0000:86:00.0"], UUIDS)):
        _write(root, f"/proc/driver/nvidia/gpus/{bus}/information",
               f"Model: \t\t Tesla T4\nGPU UUID: \t {uuid}\nBus Location: \t {bus}\n"
               f"Device Minor: \t {minor}\n")
        _mknod(root, f"/dev/nvidia{minor}", 195, minor)
    _mknod(root, "/dev/nvidiactl", 195, 255)
    _mknod(root, "/dev/nvidia-uvm", UVM_MAJOR, 0)
    _mknod(root, "/dev/nvidia-uvm-tools", UVM_MAJOR, 1)
    for name, soname in [("libcuda", "libcuda.so.1"), ("libnvidia-ml", "libnvidia-ml.so.1"),
                         ("libnvidia-opencl", "libnvidia-opencl.so.1")]:
        _stub_lib(root, f"{LIBDIR}/{name}.so.{DRIVER_VERSION}", soname)
    _stub_lib(root, f"{LIBDIR}/libnvidia-cfg.so.111.22.33", "libnvidia-cfg.so.1")
    _write(root, "/usr/bin/nvidia-smi", "#!/bin/sh\necho 'GPU 0: fake'\n", 0o755)
    _write(root, "/etc/OpenCL/vendors/nvidia.icd", "libnvidia-opencl.so.1\n")
    _write(root, "/etc/ld.so.conf", LIBDIR + "\n")
    run(["ldconfig", "-r", root])
    return root


def busybox_image(dlc, tmp_path, name="gpu-test:bb", env=None):
    """The runner tests' busybox rootfs as name, with env (a list of K=V) in its config."""
    layout = tmp_path / "bb-layout"
    write_image(layout, "bb", [busybox_entries()],
                config={"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"] + (env or []),
                        "Cmd": ["sh"]})
    copy_into_store(dlc, layout, "bb", name)
    return name


def ldd_closure(binary):
    """Host paths of binary's shared libraries (ldd), the dynamic loader included."""
    out = run(["ldd", binary]).stdout
    paths = []
    for line in out.splitlines():
        m = re.search(r"=>\s+(/\S+)", line) or re.match(r"\s*(/\S+)\s+\(", line)
        if m:
            paths.append(m.group(1))
    return paths


def _file_entries(paths):
    """Entries placing each host file at its own path (parents as directories)."""
    ents, dirs = [], {"bin", "etc", "tmp", "root", "home"}
    for path in paths:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if d not in dirs:
                dirs.add(d)
                ents.append(Entry(d, "d"))
        ents.append(Entry("/".join(parts), data=Path(path).read_bytes(),
                          mode=Path(path).stat().st_mode & 0o777))
    return ents


def clinfo_image(dlc, tmp_path, name="gpu-test:clinfo"):
    """busybox + the host's clinfo and ocl-icd loader (with their libc closure) and an empty
    /etc/OpenCL/vendors: an OpenCL client image with no vendor driver of its own."""
    clinfo = require_tool("clinfo")
    # The C library comes from the image, never from the host (the runner does not inject
    # it): the whole glibc family a vendor driver may need must be there.
    glibc = [f"/lib/x86_64-linux-gnu/{n}" for n in
             ("libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1")]
    files = sorted(set([clinfo] + ldd_closure(clinfo) + [g for g in glibc if Path(g).exists()]))
    assert any("libOpenCL.so.1" in f for f in files), "clinfo does not link libOpenCL.so.1"
    ents = busybox_entries() + _file_entries(files) + [
        Entry("etc/OpenCL", "d"), Entry("etc/OpenCL/vendors", "d")]
    layout = tmp_path / "clinfo-layout"
    write_image(layout, "clinfo", [ents],
                config={"Env": ["PATH=/usr/local/bin:/usr/bin:/bin",
                                "POCL_CACHE_DIR=/tmp/pocl"], "Cmd": ["clinfo", "-l"]})
    copy_into_store(dlc, layout, "clinfo", name)
    return name


def cdi_spec(path, kind, devices, edits=None, version="0.6.0"):
    """Writes a CDI spec (devices: {name: containerEdits})."""
    spec = {"cdiVersion": version, "kind": kind,
            "devices": [{"name": n, "containerEdits": e} for n, e in devices.items()]}
    if edits:
        spec["containerEdits"] = edits
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(spec))
    return path


def mountinfo_options(mountinfo, target):
    """The per-mount options of target in a /proc/self/mountinfo text, as a set."""
    for line in mountinfo.splitlines():
        f = line.split()
        if len(f) > 5 and f[4] == target:
            return set(f[5].split(","))
    raise AssertionError(f"{target} is not a mount point:\n{mountinfo}")
