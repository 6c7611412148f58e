"""Our distribution-spec conformance suite (registry_conformance.py, oci-specs.md §3.1 steps
plus the §3.2 extras we claim) against `dlc registry serve` on loopback: plain HTTP, and
HTTPS with basic auth."""
import re
import sys
from pathlib import Path

from conftest import run
from helpers_registry import RegistryServer, http_request, make_cert, make_htpasswd
from helpers_registry import registry  # noqa: F401  (fixture)

SUITE = Path(__file__).with_name("registry_conformance.py")


def run_suite(url, *args):
    p = run([sys.executable, SUITE, url, *args], check=False, timeout=120)
    print(p.stdout)
    summary = re.search(r"^(\d+) passed, (\d+) failed$", p.stdout, re.M)
    assert summary, p.stdout + p.stderr
    return p, int(summary.group(1)), int(summary.group(2))


def test_conformance(registry):  # noqa: F811
    p, passed, failed = run_suite(registry.url)
    assert failed == 0 and p.returncode == 0, [
        line for line in p.stdout.splitlines() if line.startswith("FAIL")]
    # every workflow ran (107 steps when this was written)
    assert passed >= 100
    for wf in ("pull", "push", "discovery", "management", "extras"):
        assert re.search(rf"^PASS {wf} \d+:", p.stdout, re.M), wf


def test_conformance_tls_and_auth(tmp_path):
    cert, key = make_cert(tmp_path)
    pw = make_htpasswd(tmp_path / "htpasswd", "alice", "s3cret")
    srv = RegistryServer(tmp_path / "reg", "--tls-cert", cert, "--tls-key", key,
                         "--htpasswd", pw).start()
    try:
        p, passed, failed = run_suite(srv.url, "--insecure", "--user", "alice",
                                      "--password", "s3cret", "--only", "pull,push")
        assert failed == 0 and passed >= 40, p.stdout
        # without credentials every step fails with 401
        p, passed, failed = run_suite(srv.url, "--insecure", "--only", "pull")
        assert passed == 0 and failed > 0
        assert "status 401" in p.stdout
        # plain HTTP to the TLS port gets nothing useful
        try:
            status, _, _ = http_request(srv.host, "GET", "/v2/")
        except OSError:
            status = None
        assert status != 200
    finally:
        assert srv.stop() == 0
