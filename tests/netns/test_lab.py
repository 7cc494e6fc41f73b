"""The lab itself: the guide's topology in namespaces, the listeners, and clean teardown."""

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lab import (
    CLIENT_ADDRESS,
    GUIDE_PORTS,
    LB_EXTERNAL_ADDRESS,
    PRIMARY_ADDRESS,
    SECONDARY_ADDRESS,
    Lab,
    existing_namespaces,
    unique_test_prefix,
)
from tests.conftest import free_port

pytestmark = pytest.mark.netns
ROOT = Path(__file__).resolve().parents[2]

ASK_EVERY_PORT = textwrap.dedent("""
    import socket, sys
    host = sys.argv[1]
    for port in map(int, sys.argv[2].split(",")):
        with socket.create_connection((host, port), timeout=2) as s:
            s.sendall(b"hello\\n")
            lines = s.makefile()
            print(lines.readline().strip(), "|", lines.readline().strip())
""")


def ask(lab, role, host, ports=GUIDE_PORTS):
    result = subprocess.run(
        [*lab.exec_prefix(role), sys.executable, "-c", ASK_EVERY_PORT, host,
         ",".join(map(str, ports))], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_the_lab_has_the_guides_hosts_with_eth0_and_eth1_on_the_lb(lab):
    links = subprocess.run(["ip", "-n", lab.ns("lb"), "-br", "addr"], capture_output=True,
                           text=True, check=True).stdout
    assert "eth0" in links and "192.0.2.1/24" in links
    assert "eth1" in links and f"{LB_EXTERNAL_ADDRESS}/24" in links
    forwarding = subprocess.run([*lab.exec_prefix("lb"), "sysctl", "-n",
                                 "net.ipv4.ip_forward"], capture_output=True, text=True)
    assert forwarding.stdout.strip() == "1"


@pytest.mark.parametrize(("name", "address"), [("primary", PRIMARY_ADDRESS),
                                               ("secondary", SECONDARY_ADDRESS)])
def test_each_cluster_answers_on_the_seven_ports_with_its_name(lab, name, address):
    lines = ask(lab, "lb", address)
    assert lines == [f"{name} port {port} client 192.0.2.1 | {name} port {port} echo hello"
                     for port in GUIDE_PORTS]


def test_the_lb_is_the_router_between_client_and_clusters(lab):
    ok = subprocess.run([*lab.exec_prefix("client"), "ping", "-c1", "-W2",
                         LB_EXTERNAL_ADDRESS], capture_output=True)
    assert ok.returncode == 0
    # Routed, not NATed: the primary sees the client's own address.
    assert ask(lab, "client", PRIMARY_ADDRESS, [12000]) == [
        f"primary port 12000 client {CLIENT_ADDRESS} | primary port 12000 echo hello"]


def test_a_forward_leads_a_host_port_into_a_lab_namespace_both_ways(lab):
    port = free_port()
    forward = lab.forward("127.0.0.1", port, role="primary", port=12000)
    # the listening socket is the host's; the connection behind it starts in the primary's
    # namespace, so the primary sees its own loopback address
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        lines = s.makefile()
        assert lines.readline().strip() == "primary port 12000 client 127.0.0.1"
        s.sendall(b"hello\n")
        assert lines.readline().strip() == "primary port 12000 echo hello"
    assert lab.forward("127.0.0.1", port, role="primary", port=12000) is forward
    assert (os.stat(f"/proc/{forward.pid}/ns/net").st_ino
            == os.stat(f"/run/netns/{lab.ns('primary')}").st_ino)


def test_a_forward_on_a_taken_port_says_so(lab):
    with socket.create_server(("127.0.0.1", 0)) as taken, \
            pytest.raises(RuntimeError, match="did not start"):
        lab.forward("127.0.0.1", taken.getsockname()[1], role="lb", port=9443)


def test_leaving_the_lab_removes_its_namespaces_and_processes():
    lab = Lab(unique_test_prefix())
    with lab:
        lab.forward("127.0.0.1", free_port(), role="lb", port=9443)
        pids = [p.pid for p in lab.listeners]
        assert len(pids) == 3
        assert all(name in existing_namespaces() for name in lab.namespaces())
    assert not any(name in existing_namespaces() for name in lab.namespaces())
    assert not any(os.path.exists(f"/proc/{pid}") for pid in pids)


def test_the_lab_fixture_cleans_up_when_a_test_fails(pytester, tmp_path, monkeypatch):
    """Run a failing test that uses the fixture in a separate pytest, then look for leftovers."""
    prefix = unique_test_prefix()
    record = tmp_path / "pids"
    pytester.makeconftest("from tests.conftest import lab  # noqa: F401")
    pytester.makepyfile(test_inner=f"""
        import subprocess
        def test_it_fails_inside_a_lab(lab):
            pids = [p.pid for p in lab.listeners]
            # a stray process of the test's own inside the lab
            stray = subprocess.Popen([*lab.exec_prefix("client"), "sleep", "600"])
            open({str(record)!r}, "w").write(" ".join(map(str, pids + [stray.pid])))
            assert False, "failing on purpose"
    """)
    monkeypatch.setenv("LBADMIN_TEST_LAB_PREFIX", prefix)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:django")
    result.assert_outcomes(failed=1)
    assert not [n for n in existing_namespaces() if n.startswith(prefix)]
    pids = record.read_text().split()
    assert len(pids) == 3
    assert not any(os.path.exists(f"/proc/{pid}") for pid in pids)
