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
    FLOATING_IP,
    GUIDE_PORTS,
    LB2_EXTERNAL_ADDRESS,
    LB2_INTERNAL_ADDRESS,
    LB_EXTERNAL_ADDRESS,
    LB_INTERNAL_ADDRESS,
    PRIMARY_ADDRESS,
    SECONDARY_ADDRESS,
    Lab,
    existing_namespaces,
    remove_leftover_labs,
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


def default_route(lab, role):
    return subprocess.run(["ip", "-n", lab.ns(role), "route", "show", "default"],
                          capture_output=True, text=True, check=True).stdout.strip()


def sysctl(lab, role, name):
    return subprocess.run([*lab.exec_prefix(role), "sysctl", "-n", name], capture_output=True,
                          text=True, check=True).stdout.strip()


def test_without_pair_the_lab_has_no_second_appliance_and_routes_through_the_lb(lab):
    assert not lab.pair
    assert not [n for n in existing_namespaces()
                if n in (lab.ns("lb2"), lab.ns("front"))]
    assert default_route(lab, "primary").startswith(f"default via {LB_INTERNAL_ADDRESS} ")
    # the client's eth0 is the lb's eth1's own peer, no bridge between them
    peer = subprocess.run(["ip", "-n", lab.ns("lb"), "-d", "link", "show", "eth1"],
                          capture_output=True, text=True, check=True).stdout
    assert "veth" in peer


def test_the_pair_lab_has_a_second_appliance_on_both_segments(pair_lab):
    lab = pair_lab
    assert all(name in existing_namespaces() for name in lab.namespaces())
    assert {lab.ns("lb2"), lab.ns("front")} <= set(lab.namespaces())
    links = subprocess.run(["ip", "-n", lab.ns("lb2"), "-br", "addr"], capture_output=True,
                           text=True, check=True).stdout
    assert f"{LB2_EXTERNAL_ADDRESS}/24" in links and f"{LB2_INTERNAL_ADDRESS}/24" in links
    for role in ("lb", "lb2"):
        assert sysctl(lab, role, "net.ipv4.ip_forward") == "1"
        assert sysctl(lab, role, "net.netfilter.nf_conntrack_events") == "1"
    # the client's segment is a bridge both appliances are on
    bridged = subprocess.run(["ip", "-n", lab.ns("front"), "-br", "link", "show", "master",
                              "br0"], capture_output=True, text=True, check=True).stdout
    assert {line.split("@")[0] for line in bridged.splitlines()} == {"client", "lb", "lb2"}


def test_the_lab_client_reaches_both_appliances_and_each_reaches_the_servers(pair_lab):
    lab = pair_lab
    for address in (LB_EXTERNAL_ADDRESS, LB2_EXTERNAL_ADDRESS):
        ok = subprocess.run([*lab.exec_prefix("client"), "ping", "-c1", "-W2", address],
                            capture_output=True)
        assert ok.returncode == 0, address
    for role, own in (("lb", LB_INTERNAL_ADDRESS), ("lb2", LB2_INTERNAL_ADDRESS)):
        assert ask(lab, role, PRIMARY_ADDRESS, [12000]) == [
            f"primary port 12000 client {own} | primary port 12000 echo hello"]


def test_the_pair_labs_servers_route_through_the_floating_ip(pair_lab):
    for role in ("primary", "secondary"):
        assert default_route(pair_lab, role).startswith(f"default via {FLOATING_IP} ")
    assert default_route(pair_lab, "client").startswith(
        f"default via {LB_EXTERNAL_ADDRESS} ")
    # nobody holds the floating IP until keepalived runs: the servers' gateway is not there
    gone = subprocess.run([*pair_lab.exec_prefix("primary"), "ping", "-c1", "-W1",
                           FLOATING_IP], capture_output=True)
    assert gone.returncode != 0


def test_a_forward_leads_into_lb2(pair_lab):
    pair_lab.start_listener("lb2", ports=[12000])
    port = free_port()
    forward = pair_lab.forward("127.0.0.1", port, role="lb2", port=12000)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        assert s.makefile().readline().strip() == "lb2 port 12000 client 127.0.0.1"
    assert forward.role == "lb2-forward"
    assert (os.stat(f"/proc/{forward.pid}/ns/net").st_ino
            == os.stat(f"/run/netns/{pair_lab.ns('lb2')}").st_ino)


def test_leaving_a_pair_lab_removes_all_its_namespaces():
    lab = Lab(unique_test_prefix(), pair=True)
    with lab:
        assert len(lab.namespaces()) == 7
        assert all(name in existing_namespaces() for name in lab.namespaces())
    assert not any(name in existing_namespaces() for name in lab.namespaces())


def test_stale_pair_labs_are_removed_with_their_second_appliance():
    """`lab down --stale` (remove_leftover_labs) removes a dead test run's pair lab whole."""
    ended = subprocess.Popen(["true"])
    ended.wait()
    lab = Lab(f"lbt-{ended.pid}-1-", pair=True)
    try:
        lab._build()  # what a killed run leaves: the namespaces, no listeners
        removed = remove_leftover_labs()
        assert {lab.ns("lb2"), lab.ns("front")} <= set(removed)
        assert not [n for n in existing_namespaces() if n.startswith(lab.prefix)]
    finally:
        lab.down()
