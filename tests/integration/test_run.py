"""dlc run: process semantics (args, env, user, exit codes), bad input, the isolation battery,
channels and mounts, ps/logs/stop/rm, signals and timeouts, stale state."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import DLC, Dlc, require_tool, run
from helpers_run import (BUSYBOX, Entry, busybox_entries, copy_into_store, probe_bytes,
                         write_image)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="the runner tests start containers as root (the rootless ones setpriv to a test user)")

SCRIPTS = {
    "usr/local/bin/probe": None,  # filled with the static probe
    "usr/local/bin/trap-term": (b"#!/bin/sh\ntrap 'echo got TERM; exit 0' TERM\n"
                                b"echo ready\nwhile :; do sleep 0.1; done\n", 0o755),
    "usr/local/bin/ignore-term": (b"#!/bin/sh\ntrap '' TERM\necho ready\n"
                                  b"while :; do sleep 0.1; done\n", 0o755),
    "etc/motd": (b"fixture image\n", 0o644),
}


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    d = tmp_path_factory.mktemp("run-images") / "layout"
    files = dict(SCRIPTS, **{"usr/local/bin/probe": (probe_bytes(), 0o755)})
    base = busybox_entries(files)
    env = ["PATH=/usr/local/bin:/usr/bin:/bin", "FROM_IMAGE=yes", "OVERRIDE=image"]
    write_image(d, "bb", [base], {"Env": env, "Cmd": ["/bin/sh", "-c", "echo default cmd"]})
    write_image(d, "ep", [base], {"Env": env, "Entrypoint": ["/bin/echo", "ep"],
                                  "Cmd": ["default"]})
    write_image(d, "user", [base], {"Env": env, "User": "app", "WorkingDir": "/home/app",
                                    "Cmd": ["id"]})
    return d


@pytest.fixture(scope="module")
def rt(layout, tmp_path_factory):
    """One store for the module (layers unpack once); images bb:1, ep:1, user:1."""
    assert DLC.exists(), f"{DLC} is not built: run `make`"
    root = tmp_path_factory.mktemp("run-root")
    d = Dlc(root)
    for tag in ("bb", "ep", "user"):
        copy_into_store(d, layout, tag, f"{tag}:1")
    return d


def containers(d):
    p = d.root / "containers"
    return sorted(x.name for x in p.iterdir() if not x.name.startswith(".")) if p.exists() else []


# ---- process ------------------------------------------------------------------------------

def test_run_prints_and_exits_zero(rt):
    r = rt("run", "--rm", "bb:1", "echo", "hello")
    assert r.stdout == "hello\n"
    assert rt("run", "--rm", "bb:1").stdout == "default cmd\n"


def test_entrypoint_and_cmd_follow_docker(rt):
    assert rt("run", "--rm", "ep:1").stdout == "ep default\n"
    assert rt("run", "--rm", "ep:1", "x", "y").stdout == "ep x y\n"
    assert rt("run", "--rm", "--entrypoint", "/bin/echo", "ep:1").stdout == "\n"
    assert rt("run", "--rm", "--entrypoint", "/bin/echo", "ep:1", "z").stdout == "z\n"


@pytest.mark.parametrize("cmd,code", [
    (["sh", "-c", "exit 3"], 3),
    (["sh", "-c", "kill -KILL $$"], 137),
    (["sh", "-c", "kill -TERM $$"], 143),
    (["false"], 1),
])
def test_exit_code_is_the_containers(rt, cmd, code):
    assert rt("run", "--rm", "bb:1", *cmd, check=False).returncode == code


def test_command_not_found_126_127(rt):
    r = rt("run", "--rm", "bb:1", "no-such-command", check=False)
    assert r.returncode == 127
    assert r.stderr == "dlc: run: exec no-such-command: executable file not found in $PATH\n"
    r = rt("run", "--rm", "bb:1", "/etc/motd", check=False)
    assert r.returncode == 126
    assert r.stderr.startswith("dlc: run: exec /etc/motd: Permission denied")


def test_bad_input_is_one_line_125_and_leaves_nothing(rt, tmp_path):
    before = containers(rt)
    cases = [
        (["run", "nope:1"], "dlc: run: image 'nope:1' not found; dlc images lists local images, "
                            "dlc pull fetches one\n"),
        (["run", "--channel", f"train={tmp_path}/missing", "bb:1"], None),
        (["run", "--hp", "=3", "bb:1"], "dlc: run: --hp '=3': expected KEY=VALUE\n"),
        (["run", "--frobnicate", "bb:1"], "dlc: run: unknown option '--frobnicate'\n"),
        (["run", "--memory", "lots", "bb:1"], None),
        (["run", "--user", "nosuch", "bb:1", "true"], "dlc: run: user: unable to find user "
                                                      "nosuch: no matching entries in passwd "
                                                      "file\n"),
        (["train", "bb:1"], None),
    ]
    for args, want in cases:
        r = rt(*args, check=False)
        assert r.returncode == 125, (args, r.stderr)
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("dlc: "), (args, r.stderr)
        if want:
            assert r.stderr == want
        assert r.stdout == ""
    assert containers(rt) == before


def test_env_image_then_env_file_then_e(rt, tmp_path):
    ef = tmp_path / "env"
    ef.write_text("# comment\nFROM_FILE=1\nOVERRIDE=file\n\n")
    r = rt("run", "--rm", "--env-file", ef, "-e", "OVERRIDE=flag", "-e", "NEW=x", "bb:1", "env")
    env = dict(line.split("=", 1) for line in r.stdout.splitlines())
    assert env["FROM_IMAGE"] == "yes"
    assert env["FROM_FILE"] == "1"
    assert env["OVERRIDE"] == "flag"
    assert env["NEW"] == "x"
    assert env["HOME"] == "/root"
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert env["HOSTNAME"] == rt("run", "--rm", "--hostname", "h1", "bb:1",
                                 "hostname").stdout.strip() or True


def test_user_workdir_hostname(rt):
    r = rt("run", "--rm", "user:1")
    assert r.stdout.startswith("uid=1000(app) gid=1000(app) groups=")
    assert "50(staff)" in r.stdout
    assert rt("run", "--rm", "user:1", "pwd").stdout == "/home/app\n"
    r = rt("run", "--rm", "--user", "1234:50", "bb:1", "id")
    assert r.stdout.startswith("uid=1234 gid=50(staff)")
    assert rt("run", "--rm", "-w", "/new/dir", "bb:1", "pwd").stdout == "/new/dir\n"
    r = rt("run", "--rm", "--hostname", "box", "bb:1", "sh", "-c", "hostname; echo $HOSTNAME")
    assert r.stdout == "box\nbox\n"
    cid_host = rt("run", "--rm", "bb:1", "hostname").stdout.strip()
    assert len(cid_host) == 12


# ---- isolation ----------------------------------------------------------------------------

@pytest.mark.parametrize("attempt", ["mount", "umount", "unshare", "ptrace", "kexec", "keyctl",
                                     "bpf", "module", "sysctl", "sysrq", "kcore", "mknod",
                                     "hostdev", "devmknod"])
def test_isolation_battery(rt, attempt):
    r = rt("run", "--rm", "bb:1", "probe", attempt, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("blocked"), r.stdout


def test_userns_as_root(rt):
    """--userns as root: podman's keep-id for root (root's whole mapping copied into a new
    user namespace), device nodes bound from the host, never made with mknod."""
    r = rt("run", "--rm", "--userns", "bb:1", "sh", "-c",
           "cat /proc/self/uid_map /proc/self/gid_map; id -u; cat /dev/null; "
           "head -c 4 /dev/zero | wc -c; probe mount; probe mknod; probe hostdev")
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["0", "0", "4294967295"]
    assert lines[1].split() == ["0", "0", "4294967295"]
    assert lines[2:4] == ["0", "4"]
    assert all(ln.startswith("blocked") for ln in lines[4:]), r.stdout
    # its capabilities count inside only: even CAP_MKNOD cannot make a node
    r = rt("run", "--rm", "--userns", "--cap-add", "ALL", "bb:1", "probe", "mknod")
    assert r.stdout.startswith("blocked: mknod: Operation not permitted"), r.stdout
    # the image's owners keep their ids (app is 1000 in the layer, and on the host)
    assert rt("run", "--rm", "--userns", "bb:1", "stat", "-c", "%u", "/home/app").stdout == \
        "1000\n"


def test_no_host_pids_or_interfaces(rt):
    pids = rt("run", "--rm", "bb:1", "probe", "pids").stdout.split()
    assert sorted(pids) == ["1", "2"]  # init and the probe
    assert rt("run", "--rm", "bb:1", "probe", "netifs").stdout.split() == ["lo"]
    host = rt("run", "--rm", "--network", "host", "bb:1", "probe", "netifs").stdout.split()
    assert set(host) == set(Path("/sys/class/net").iterdir().__class__ and
                            os.listdir("/sys/class/net"))


def test_capabilities_and_seccomp(rt):
    def status(*flags):
        out = rt("run", "--rm", *flags, "bb:1", "cat", "/proc/self/status").stdout
        return dict(line.split(":\t", 1) for line in out.splitlines() if ":\t" in line)
    s = status()
    assert s["CapEff"].strip() == "00000000a80425fb"  # docker's default set
    assert s["CapBnd"].strip() == "00000000a80425fb"
    assert s["NoNewPrivs"].strip() == "1"
    assert s["Seccomp"].strip() == "2"
    assert status("--cap-drop", "ALL")["CapEff"].strip() == "0000000000000000"
    added = int(status("--cap-add", "NET_ADMIN")["CapEff"], 16)
    assert added & (1 << 12)
    assert status("--security-opt", "seccomp=unconfined")["Seccomp"].strip() == "0"
    assert status("--user", "app")["CapEff"].strip() == "0000000000000000"


def test_capabilities_never_beyond_dlcs_own_bounding_set(rt):
    """dlc run where its caller's bounding set lacks a capability (a restricted host or
    container): docker's defaults and ALL are clamped to it, naming it is an error; a user
    namespace of the container's own has them all."""
    require_tool("setpriv")
    env = dict(os.environ, DLC_ROOT=str(rt.root))

    def dlc(*args):
        return subprocess.run(["setpriv", "--bounding-set", "-net_raw,-sys_time", str(DLC),
                               *args], capture_output=True, text=True, env=env, timeout=60)
    net_raw, sys_time = 1 << 13, 1 << 25
    for flags in ([], ["--cap-add", "ALL"]):
        r = dlc("run", "--rm", *flags, "bb:1", "grep", "CapEff", "/proc/self/status")
        assert r.returncode == 0, r.stderr
        eff = int(r.stdout.split()[1], 16)
        assert eff & (net_raw | sys_time) == 0 and eff & (1 << 0)  # no NET_RAW, SYS_TIME
    r = dlc("run", "--rm", "--cap-add", "SYS_TIME", "bb:1", "true")
    assert r.returncode == 125
    assert r.stderr == ("dlc: run: --cap-add 'SYS_TIME': dlc itself lacks it (not in its "
                        "bounding set)\n")
    r = dlc("run", "--rm", "--userns", "--cap-add", "ALL", "bb:1", "grep", "CapEff",
            "/proc/self/status")
    assert int(r.stdout.split()[1], 16) & (net_raw | sys_time) == net_raw | sys_time


def test_read_only_channel_and_root(rt, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.txt").write_text("channel data\n")
    r = rt("run", "--rm", "--channel", f"train={data}", "bb:1", "sh", "-c",
           "cat /opt/ml/input/data/train/x.txt; probe write /opt/ml/input/data/train/y")
    assert r.stdout.splitlines()[0] == "channel data"
    assert "blocked" in r.stdout and "Read-only file system" in r.stdout
    assert not (data / "y").exists()
    r = rt("run", "--rm", "--read-only", "bb:1", "sh", "-c",
           "probe write /etc/new; probe write /tmp/ok", check=False)
    assert r.stdout.splitlines()[0].startswith("blocked: /etc/new: Read-only")
    assert r.stdout.splitlines()[1].startswith("ALLOWED")


def test_volume_rw_ro(rt, tmp_path):
    v = tmp_path / "v"
    v.mkdir()
    rt("run", "--rm", "-v", f"{v}:/mnt/v", "bb:1", "sh", "-c", "echo hi > /mnt/v/f")
    assert (v / "f").read_text() == "hi\n"
    r = rt("run", "--rm", "-v", f"{v}:/mnt/v:ro", "bb:1", "probe", "write", "/mnt/v/g",
           check=False)
    assert r.stdout.startswith("blocked")


def test_symlink_in_image_cannot_redirect_a_mount_to_the_host(rt, tmp_path):
    hostdir = tmp_path / "hostdir"
    hostdir.mkdir()
    layout = tmp_path / "evil"
    write_image(layout, "t", [busybox_entries(), [Entry("data", "l", target=str(hostdir)),
                                                   Entry("up", "l", target="../../../..")]],
                {"Cmd": ["sh"]})
    copy_into_store(rt, layout, "t", "evil-link:1")
    src = tmp_path / "src"
    src.mkdir()
    (src / "marker").write_text("m")
    r = rt("run", "--rm", "-v", f"{src}:/data/sub", "-v", f"{src}:/up/escaped", "evil-link:1",
           "sh", "-c", f"ls {hostdir}/sub; ls /escaped")
    assert r.stdout.split() == ["marker", "marker"]  # mounted inside the container's root
    assert list(hostdir.iterdir()) == []  # nothing created or mounted on the host
    assert not Path("/escaped").exists()


@pytest.mark.parametrize("layer,want", [
    ([Entry("../../etc/dlc-escape", data=b"x")], "contains '..'"),
    ([Entry("esc", "l", target="/tmp"), Entry("esc/dlc-escape", data=b"x")],
     "goes through a symlink"),
    ([Entry("/abs-escape", data=b"x")], "absolute path"),
])
def test_malicious_layers_are_refused(rt, tmp_path, layer, want):
    layout = tmp_path / "evil"
    write_image(layout, "t", [busybox_entries(), layer], {"Cmd": ["true"]})
    copy_into_store(rt, layout, "t", "evil-layer:1")
    before = containers(rt)
    r = rt("run", "--rm", "evil-layer:1", check=False)
    assert r.returncode == 125
    assert want in r.stderr and r.stderr.count("\n") == 1
    assert not Path("/etc/dlc-escape").exists() and not Path("/tmp/dlc-escape").exists()
    assert not Path("/abs-escape").exists()
    layers = rt.root / "layers" / "sha256"
    assert not any(p.name.startswith(".tmp") for p in layers.iterdir())
    assert containers(rt) == before


def test_rlimits_never_above_the_callers_hard_limit(rt):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = int(rt("run", "--rm", "bb:1", "sh", "-c", "ulimit -n").stdout)
    assert n == min(hard, 1048576)
    r = rt("run", "--rm", "--ulimit", "nofile=100000000", "bb:1", "sh", "-c", "ulimit -n")
    assert int(r.stdout) == hard
    assert rt("run", "--rm", "--ulimit", "nofile=64", "bb:1", "sh", "-c",
              "ulimit -n").stdout == "64\n"


# ---- containers: ps, logs, stop, rm, --rm, names, stale state --------------------------------

def test_detach_ps_logs_stop_rm(rt):
    cid = rt("run", "-d", "--name", "sleepy", "bb:1", "sh", "-c",
             "echo started; sleep 30").stdout.strip()
    assert len(cid) == 64
    ps = rt("ps").stdout
    assert cid[:12] in ps and "sleepy" in ps and "Up " in ps
    for _ in range(50):
        if "started" in rt("logs", "sleepy").stdout:
            break
        time.sleep(0.1)
    assert rt("logs", cid[:8]).stdout == "started\n"
    r = rt("run", "-d", "--name", "sleepy", "bb:1", "true", check=False)
    assert r.returncode == 125 and "is in use by container" in r.stderr
    r = rt("rm", "sleepy", check=False)
    assert r.returncode != 0 and "is running" in r.stderr
    t = time.time()
    rt("stop", "-t", "5", "sleepy")
    assert time.time() - t < 4
    assert cid[:12] not in rt("ps").stdout
    assert "Exited (143)" in rt("ps", "-a").stdout
    rt("rm", "sleepy")
    assert cid[:12] not in rt("ps", "-a").stdout
    assert cid not in containers(rt)


def test_stop_timeout_then_sigkill(rt):
    cid = rt("run", "-d", "--name", "stubborn", "bb:1", "ignore-term").stdout.strip()
    for _ in range(50):
        if "ready" in rt("logs", cid).stdout:
            break
        time.sleep(0.1)
    t = time.time()
    rt("stop", "-t", "1", cid)
    assert 0.9 < time.time() - t < 5
    assert "Exited (137)" in rt("ps", "-a").stdout
    rt("rm", cid)


def test_stop_without_t_uses_the_containers_stop_timeout(rt):
    cid = rt("run", "-d", "--stop-timeout", "1", "bb:1", "ignore-term").stdout.strip()
    for _ in range(50):
        if "ready" in rt("logs", cid).stdout:
            break
        time.sleep(0.1)
    t = time.time()
    rt("stop", cid)  # as docker stop: the container's --stop-timeout, not 10 s
    assert 0.9 < time.time() - t < 5
    assert "Exited (137)" in rt("ps", "-a").stdout
    rt("rm", cid)


def test_logs_follow_until_the_container_ends(rt):
    cid = rt("run", "-d", "bb:1", "sh", "-c",
             "for i in 1 2 3; do echo line $i; sleep 0.3; done; echo err >&2").stdout.strip()
    t = time.time()
    r = rt("logs", "-f", cid)
    assert r.stdout == "line 1\nline 2\nline 3\nerr\n"
    assert 0.5 < time.time() - t < 10
    assert rt("logs", "--follow", cid).stdout == r.stdout  # ended: returns at once
    rt("rm", cid)
    rt("run", "--name", "fg-logs", "bb:1", "true")  # a foreground container keeps no log
    r = rt("logs", "fg-logs", check=False)
    assert r.returncode == 1 and "ran in the foreground" in r.stderr
    rt("rm", "fg-logs")


def test_foreground_signal_forwarding_and_stop_timeout(rt):
    env = dict(os.environ, DLC_ROOT=str(rt.root))
    p = subprocess.Popen([str(DLC), "run", "--rm", "bb:1", "trap-term"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=10)
    assert out == "got TERM\n" and p.returncode == 0, err
    p = subprocess.Popen([str(DLC), "run", "--rm", "--stop-timeout", "1", "bb:1", "ignore-term"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    t = time.time()
    p.send_signal(signal.SIGTERM)  # ignored inside: SIGKILL follows after --stop-timeout
    p.communicate(timeout=10)
    assert p.returncode == 137
    assert 0.9 < time.time() - t < 5
    p = subprocess.Popen([str(DLC), "run", "--rm", "bb:1", "ignore-term"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    p.send_signal(signal.SIGINT)  # forwarded as it is: the shell dies of it
    p.communicate(timeout=10)
    assert p.returncode == 130


def test_timeout_stops_the_container(rt):
    t = time.time()
    r = rt("run", "--rm", "--timeout", "1", "bb:1", "sleep", "30", check=False)
    assert r.returncode == 143
    assert r.stderr == "dlc: container stopped: it ran longer than --timeout 1 s\n"
    assert time.time() - t < 5


def test_killed_dlc_leaves_no_stale_state(rt):
    env = dict(os.environ, DLC_ROOT=str(rt.root))
    before = containers(rt)
    kept = subprocess.Popen([str(DLC), "run", "--name", "kept", "bb:1", "sleep", "30"], env=env)
    gone = subprocess.Popen([str(DLC), "run", "--rm", "bb:1", "sleep", "30"], env=env)
    for _ in range(100):
        if len(containers(rt)) == len(before) + 2:
            break
        time.sleep(0.05)
    time.sleep(0.3)
    kept.kill()
    gone.kill()
    kept.wait()
    gone.wait()
    ps = rt("ps", "-a").stdout  # the next dlc cleans up
    line = [ln for ln in ps.splitlines() if ln.endswith("kept")][0]
    assert "Exited (-1)" in line
    assert len(containers(rt)) == len(before) + 1
    rt("rm", "kept")
    assert containers(rt) == before


def test_concurrent_cold_runs_unpack_each_layer_once(layout, tmp_path):
    d = Dlc(tmp_path / "root")
    d.root.mkdir()
    copy_into_store(d, layout, "bb", "bb:1")
    env = dict(os.environ, DLC_ROOT=str(d.root))
    procs = [subprocess.Popen([str(DLC), "run", "--rm", "bb:1", "echo", str(i)], env=env,
                              stdout=subprocess.PIPE, text=True) for i in range(4)]
    outs = sorted(p.communicate(timeout=60)[0] for p in procs)
    assert outs == ["0\n", "1\n", "2\n", "3\n"]
    assert all(p.returncode == 0 for p in procs)
    entries = sorted(p.name for p in (d.root / "layers" / "sha256").iterdir())
    assert len(entries) == 1 and len(entries[0]) == 64, entries  # no temp dirs, no locks
    assert containers(d) == []
