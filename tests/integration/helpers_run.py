"""Helpers for the runner tests: fixture images written as OCI layouts in Python (a static
busybox rootfs, crafted layers for the escape tests) and copied into a store with skopeo;
the SageMaker training toolkit's formatting of SM_* variables, as the oracle; a static C
probe that tries what a container must not be able to do."""
import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import tarfile
from pathlib import Path

from conftest import BUILD, REPO, require_tool, run

BUSYBOX = Path("/usr/bin/busybox")  # Debian's busybox-static
PROBE = BUILD / "tests" / "runner" / "probe"

PASSWD = (b"root:x:0:0:root:/root:/bin/sh\n"
          b"app:x:1000:1000:app user:/home/app:/bin/sh\n"
          b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = (b"root:x:0:\n"
         b"app:x:1000:\n"
         b"staff:x:50:app\n"
         b"nogroup:x:65534:\n")


def host_arch():
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


class Entry:
    """One tar entry: kind f (file), d (dir), l (symlink), h (hardlink), c (char device)."""

    def __init__(self, name, kind="f", data=b"", mode=None, uid=0, gid=0, target=None):
        self.name, self.kind, self.data, self.target = name, kind, data, target
        self.mode = mode if mode is not None else (0o755 if kind == "d" else 0o644)
        self.uid, self.gid = uid, gid


def tar_bytes(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.mtime, info.mode, info.uid, info.gid = 1700000000, e.mode, e.uid, e.gid
            if e.kind == "d":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif e.kind == "l":
                info.type, info.linkname = tarfile.SYMTYPE, e.target
                tar.addfile(info)
            elif e.kind == "h":
                info.type, info.linkname = tarfile.LNKTYPE, e.target
                tar.addfile(info)
            else:
                data = e.data if isinstance(e.data, bytes) else e.data.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def busybox_entries(files=None):
    """A root filesystem: /bin/busybox with a symlink per applet, /etc/passwd and group,
    /tmp, /root, /home/app, plus files {path: bytes or (bytes, mode)}."""
    assert BUSYBOX.exists(), "busybox-static is not installed: run `make deps`"
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    ents = [Entry("bin", "d"), Entry("bin/busybox", data=BUSYBOX.read_bytes(), mode=0o755)]
    ents += [Entry(f"bin/{a}", "l", target="busybox") for a in applets if a != "busybox"]
    ents += [Entry("etc", "d"), Entry("etc/passwd", data=PASSWD), Entry("etc/group", data=GROUP),
             Entry("tmp", "d", mode=0o1777), Entry("root", "d", mode=0o700),
             Entry("home", "d"), Entry("home/app", "d", uid=1000, gid=1000)]
    dirs = set()
    for path, content in sorted((files or {}).items()):
        data, mode = content if isinstance(content, tuple) else (content, 0o755)
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in dirs and d not in ("bin", "etc", "tmp", "root", "home"):
                dirs.add(d)
                ents.append(Entry(d, "d"))
        ents.append(Entry(path, data=data, mode=mode))
    return ents


def _blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    p = Path(layout) / "blobs" / "sha256" / digest
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def write_image(layout, tag, layers, config=None, compress=True):
    """Writes an OCI image (a list of layers, each a list of Entry) into the layout dir."""
    layout = Path(layout)
    layout.mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    descs, diff_ids = [], []
    for ents in layers:
        raw = tar_bytes(ents)
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        data = gzip.compress(raw, mtime=0) if compress else raw
        d = _blob(layout, data)
        d["mediaType"] = ("application/vnd.oci.image.layer.v1.tar+gzip" if compress
                          else "application/vnd.oci.image.layer.v1.tar")
        descs.append(d)
    cfg = {"architecture": host_arch(), "os": "linux",
           "config": dict(config or {}),
           "rootfs": {"type": "layers", "diff_ids": diff_ids},
           "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "helpers_run"}
                       for _ in layers]}
    cdesc = _blob(layout, json.dumps(cfg, sort_keys=True).encode())
    cdesc["mediaType"] = "application/vnd.oci.image.config.v1+json"
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": cdesc, "layers": descs}
    mdesc = _blob(layout, json.dumps(manifest, sort_keys=True).encode())
    mdesc["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    mdesc["annotations"] = {"org.opencontainers.image.ref.name": tag}
    index_path = layout / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else \
        {"schemaVersion": 2, "manifests": []}
    index["manifests"] = [m for m in index["manifests"]
                          if m.get("annotations", {}).get("org.opencontainers.image.ref.name")
                          != tag] + [mdesc]
    index_path.write_text(json.dumps(index))
    return diff_ids


def copy_into_store(dlc, layout, tag, name):
    """skopeo copy oci:LAYOUT:TAG oci:$DLC_ROOT/images:NAME (the store is an OCI layout)."""
    require_tool("skopeo")
    run(["skopeo", "--insecure-policy", "copy", "-q", f"oci:{layout}:{tag}",
         f"oci:{dlc.layout}:{name}"])


def probe_bytes():
    assert PROBE.exists(), f"{PROBE} is not built: run `make`"
    return PROBE.read_bytes()


# ---- the SageMaker training toolkit's rendering (sagemaker_training.environment/mapping) ----

def _env_value(v):
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _cmd_value(v):
    if hasattr(v, "items"):
        return ",".join("%s=%s" % (k, x) for k, x in sorted(v.items()))
    return "" if v is None else str(v)


def toolkit_env(hyperparameters, channels, current_host="algo-1", nic="lo", num_cpus=None,
                num_gpus=0, env=None):
    """What Environment().to_env_vars() gives for these config files (single host)."""
    env = env or {}
    sm_names = {"sagemaker_program", "sagemaker_submit_directory",
                "sagemaker_enable_cloudwatch_metrics", "sagemaker_region",
                "sagemaker_container_log_level", "sagemaker_job_name",
                "default_user_module_name", "_tuning_objective_metric", "sagemaker_s3_output"}
    decoded = {}
    for k, v in hyperparameters.items():
        try:
            decoded[k] = json.loads(v)
        except ValueError:
            decoded[k] = v
    included = {k: v for k, v in decoded.items() if k in sm_names or k.startswith("sagemaker_")}
    user = {k: v for k, v in decoded.items() if k not in included}
    additional = {k: v for k, v in included.items() if k not in sm_names}
    rc = {"current_host": current_host, "hosts": [current_host], "network_interface_name": nic}
    idc = {c: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
               "RecordWrapperType": "None"} for c in channels}
    flags = ["sagemaker_mpi_enabled", "sagemaker_parameter_server_enabled",
             "sagemaker_distributed_dataparallel_enabled", "sagemaker_pytorch_ddp_enabled",
             "sagemaker_pytorch_xla_multi_worker_enabled",
             "sagemaker_multi_worker_mirrored_strategy_enabled",
             "sagemaker_torch_distributed_enabled"]
    dig = additional.get("sagemaker_distribution_instance_groups",
                         ["homogeneousCluster"] if any(additional.get(f, False) for f in flags)
                         else [])
    program = env.get("SAGEMAKER_PROGRAM")
    module_name = program if program is not None else str(included.get("sagemaker_program"))
    if module_name and module_name.endswith(".py"):
        module_name = module_name[:-3]
    common = {
        "current_host": current_host, "current_instance_group": "homogeneousCluster",
        "current_instance_group_hosts": [], "current_instance_type": "local",
        "distribution_instance_groups": dig,
        "framework_module": env.get("SAGEMAKER_TRAINING_MODULE"),
        "hosts": [current_host], "input_config_dir": "/opt/ml/input/config",
        "input_data_config": idc, "input_dir": "/opt/ml/input", "instance_groups": [],
        "instance_groups_dict": {}, "is_hetero": False,
        "log_level": included.get("sagemaker_container_log_level", 20),
        "model_dir": "/opt/ml/model",
        "module_dir": str(included.get("sagemaker_submit_directory", "/opt/ml/code")),
        "module_name": module_name, "network_interface_name": nic,
        "num_cpus": num_cpus if num_cpus is not None else os.cpu_count(),
        "num_gpus": num_gpus, "num_neurons": 0, "output_data_dir": "/opt/ml/output/data",
        "output_dir": "/opt/ml/output", "output_intermediate_dir": "/opt/ml/output/intermediate",
        "resource_config": rc,
        "user_entry_point": program or included.get("sagemaker_program"),
    }
    training_env = dict(common, additional_framework_parameters=additional,
                        channel_input_dirs={c: f"/opt/ml/input/data/{c}" for c in channels},
                        distribution_hosts=[current_host], hyperparameters=user,
                        is_master=True, is_modelparallel_enabled=None,
                        is_smddpmprun_installed=False, job_name=env.get("TRAINING_JOB_NAME"),
                        master_hostname=current_host)
    user_args = []
    for k in sorted(user):
        user_args += ["--%s" % k if len(k) > 1 else "-%s" % k, _cmd_value(user[k])]
    m = dict(common, hps=user, framework_params=additional, channels=sorted(channels),
             training_env=training_env, user_args=user_args)
    for c in channels:
        m["channel_%s" % c] = f"/opt/ml/input/data/{c}"
    for k, v in user.items():
        m["hp_%s" % k] = v
    return {"SM_%s" % k.upper(): _env_value(v) for k, v in m.items()}


def parse_env(text):
    """`env` output -> dict (values may not contain newlines)."""
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k] = v
    return out


_USERS = {}


def ensure_user(name, uid=None):
    """A host user for the rootless tests, made for this test run and removed at its end.

    The name gets the pid of the pytest process and the uid is the first free one above
    uid's hint, so parallel runs (or a run after one that was killed) never share a user."""
    if name in _USERS:
        return _USERS[name][1]
    import pwd
    unique = f"{name}-{os.getpid()}"[:32]
    uid = uid or 42000
    while True:
        try:
            pwd.getpwuid(uid)
            uid += 1
        except KeyError:
            break
    r = subprocess.run(["useradd", "--uid", str(uid), "--no-create-home", "--shell", "/bin/sh",
                        unique], capture_output=True, text=True)
    if r.returncode == 9 or r.returncode == 4:  # name or uid taken meanwhile: try the next
        return ensure_user(name, uid + 1)
    assert r.returncode == 0, f"useradd {unique}: {r.stderr}"
    _USERS[name] = (unique, uid)
    return uid


def remove_users():
    """Removes every user ensure_user made (called when the test session ends)."""
    for unique, _ in _USERS.values():
        subprocess.run(["userdel", unique], capture_output=True)
    _USERS.clear()


def as_user(uid, args):
    """argv that runs args as uid (setpriv, no supplementary groups)."""
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"] + \
        [str(a) for a in args]


def tree_listing(root):
    """Sorted (path, type, mode, uid, target-or-size) of a directory tree."""
    out = []
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = p.lstat()
            rel = str(p.relative_to(root))
            kind = "l" if p.is_symlink() else "d" if p.is_dir() else "f"
            extra = os.readlink(p) if kind == "l" else st.st_size if kind == "f" else ""
            out.append((rel, kind, oct(st.st_mode & 0o7777), st.st_uid, extra))
    return sorted(out)
