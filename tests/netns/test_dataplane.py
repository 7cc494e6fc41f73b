"""The Layer 4 NAT data plane, proven by real connections from the client namespace through
nftables in the lb namespace to the primary and secondary clusters."""

import os
import subprocess
import time
from pathlib import Path

import pytest

from clusters import services
from clusters.dataplane import nft
from clusters.models import RealServer, VirtualService
from lab import (
    CLIENT_ADDRESS,
    GUIDE_PORTS,
    LB_INTERNAL_ADDRESS,
    PRIMARY_ADDRESS,
    SECONDARY_ADDRESS,
    VIP,
)
from maintenance import backup

from .traffic import HeldConnection, ask, connect_many

pytestmark = pytest.mark.netns
USER = "tester"
CUT = ("ERROR ConnectionResetError", "CLOSED", "ERROR BrokenPipeError")  # a cut connection


def vna_service(**overrides):
    """The guide's 6.1.3 b: VIP on the seven ports, fallback = the secondary, port 0, MASQ."""
    fields = dict(label="VNA", vip=VIP, ports=",".join(map(str, GUIDE_PORTS)),
                  fallback_ip=SECONDARY_ADDRESS, fallback_port=0, fallback_masq=True)
    fields.update(overrides)
    service = VirtualService(**fields)
    service.full_clean()
    return services.do_save_service(service, USER)


def real_server(service, label="PrimaryCluster", ip=PRIMARY_ADDRESS, **overrides):
    server = RealServer(service=service, label=label, ip=ip, **overrides)
    server.full_clean()
    return services.do_save_real_server(server, USER)


def served_by(answer):
    """'primary port 12000 client 198.51.100.10' -> ('primary', 12000, '198.51.100.10')."""
    name, _, port, _, client = answer.split()
    return name, int(port), client


def test_the_guides_vna_service_sends_every_port_to_the_primary_with_the_clients_address(
        dataplane, lab):
    real_server(vna_service())
    dataplane.apply()
    answers = connect_many(lab, VIP, GUIDE_PORTS, len(GUIDE_PORTS))
    assert [served_by(a) for a in answers] == [
        ("primary", port, CLIENT_ADDRESS) for port in GUIDE_PORTS]


def halt_cuts_and_falls_back(dataplane, lab, primary):
    """Halt the primary while a connection to it is open: the apply cuts it, and new
    connections on every port reach the MASQ fallback (the secondary sees the load
    balancer's address, so needs no route back)."""
    with HeldConnection(lab, VIP, 12000) as held:
        assert held.greeting.startswith("primary port 12000")
        assert held.talk("before").startswith("primary port 12000 echo before")
        services.do_set_state(primary, "halt", USER)
        result = dataplane.apply()
        assert result["cut"] == [primary.id]
        assert held.talk("after") in CUT
    answers = connect_many(lab, VIP, GUIDE_PORTS, len(GUIDE_PORTS))
    assert [served_by(a) for a in answers] == [
        ("secondary", port, LB_INTERNAL_ADDRESS) for port in GUIDE_PORTS]


def test_halt_cuts_open_connections_and_sends_new_ones_to_the_masqueraded_fallback(
        dataplane, lab):
    primary = real_server(vna_service())
    dataplane.apply()
    halt_cuts_and_falls_back(dataplane, lab, primary)

    services.do_set_state(primary, "online", USER)
    dataplane.apply()
    answers = connect_many(lab, VIP, GUIDE_PORTS, len(GUIDE_PORTS))
    assert {served_by(a)[0] for a in answers} == {"primary"}


def test_drain_keeps_an_open_connection_while_new_ones_go_to_the_fallback(dataplane, lab):
    primary = real_server(vna_service())
    dataplane.apply()
    with HeldConnection(lab, VIP, 12950) as held:
        services.do_set_state(primary, "drain", USER)
        dataplane.apply()
        assert held.talk("still there").startswith("primary port 12950 echo still there")
        assert served_by(ask(lab, VIP, 12950))[0] == "secondary"
        assert held.talk("and still").startswith("primary port 12950 echo and still")


def test_without_masq_the_fallback_sees_the_client(dataplane, lab):
    vna_service(fallback_masq=False)  # no real server: everything goes to the fallback
    dataplane.apply()
    assert served_by(ask(lab, VIP, 12000)) == ("secondary", 12000, CLIENT_ADDRESS)


def test_weights_one_to_three_share_400_connections_about_one_to_three(dataplane, lab):
    service = vna_service(ports="12000", fallback_ip="")
    real_server(service, "one", PRIMARY_ADDRESS, weight=100)
    real_server(service, "three", SECONDARY_ADDRESS, weight=300)
    dataplane.apply()
    answers = connect_many(lab, VIP, [12000], 400)
    names = [served_by(a)[0] for a in answers]
    # Weighted round robin (numgen inc over gcd-reduced weights): exact shares, ±2 for
    # connections a retry may move.
    assert abs(names.count("primary") - 100) <= 2
    assert abs(names.count("secondary") - 300) <= 2


def test_least_connection_shares_by_weight_when_idle(dataplane, lab):
    service = vna_service(ports="12000", fallback_ip="", scheduler="wlc")
    real_server(service, "one", PRIMARY_ADDRESS, weight=100)
    real_server(service, "three", SECONDARY_ADDRESS, weight=300)
    dataplane.apply()
    names = [served_by(a)[0] for a in connect_many(lab, VIP, [12000], 400)]
    # A random pick in proportion to weight / (connections + 1): 100 expected, 5 sigma ≈ 43.
    assert 57 <= names.count("primary") <= 143


def test_persistence_keeps_one_client_on_one_server(dataplane, lab):
    service = vna_service(ports="12000", fallback_ip="", persistent=True)
    real_server(service, "one", PRIMARY_ADDRESS)
    real_server(service, "two", SECONDARY_ADDRESS)
    dataplane.apply()
    names = {served_by(a)[0] for a in connect_many(lab, VIP, [12000], 50)}
    assert len(names) == 1
    # Halting that server moves the client, and it stays on the other one.
    kept = service.real_servers.get(ip=PRIMARY_ADDRESS if names == {"primary"}
                                    else SECONDARY_ADDRESS)
    services.do_set_state(kept, "halt", USER)
    dataplane.apply()
    moved = {served_by(a)[0] for a in connect_many(lab, VIP, [12000], 20)}
    assert len(moved) == 1 and moved != names


def test_a_maximum_connections_limit_holds(dataplane, lab):
    service = vna_service(ports="12000")
    real_server(service, max_connections=3)
    dataplane.apply()
    held = [HeldConnection(lab, VIP, 12000) for _ in range(3)]
    try:
        assert all(h.greeting.startswith("primary") for h in held)
        # The kernel refuses a fourth at once (ct count): its SYNs are dropped until the
        # client gives up, before any sampler has run.
        assert ask(lab, VIP, 12000) == "ERROR TimeoutError"
        # The sampler then takes the full server out of the schedule, so the client's retry
        # reaches the fallback.
        dataplane.sample()
        dataplane.apply()
        assert served_by(ask(lab, VIP, 12000))[0] == "secondary"
        held.pop().close()
        time.sleep(0.2)
        dataplane.sample()
        dataplane.apply()
        assert served_by(ask(lab, VIP, 12000))[0] == "primary"
    finally:
        for h in held:
            h.close()


def test_checks_always_off_send_everything_to_the_fallback(dataplane, lab):
    real_server(vna_service(check_type="off"))
    dataplane.apply()
    answers = connect_many(lab, VIP, GUIDE_PORTS, len(GUIDE_PORTS))
    assert [served_by(a)[:2] for a in answers] == [("secondary", port) for port in GUIDE_PORTS]


def test_udp_services_are_balanced_too(dataplane, lab):
    real_server(vna_service(ports="12800", protocol="tcp+udp"))
    dataplane.apply()
    script = (
        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        f"s.settimeout(3); s.sendto(b'hi', ('{VIP}', 12800)); print(s.recv(100).decode())")
    answer = subprocess.run([*lab.exec_prefix("client"), "python3", "-c", script],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert served_by(answer) == ("primary", 12800, CLIENT_ADDRESS)


def test_a_refused_apply_leaves_the_previous_ruleset_live(dataplane, lab):
    service = vna_service()
    real_server(service)
    dataplane.apply()
    # Someone edits lbadmin's table by hand: port 9999 of the VIP now drops.
    dataplane.nft("add", "element", "ip", "lbadmin", "services",
                  f"{{ {VIP} . tcp . 9999 : drop }}")
    service.ports += ",9999"
    service.full_clean()
    services.do_save_service(service, USER)
    result = dataplane.apply(expect_ok=False)
    assert not result["ok"] and "File exists" in result["error"]
    # The previous ruleset still serves the seven ports.
    answers = connect_many(lab, VIP, GUIDE_PORTS, len(GUIDE_PORTS))
    assert {served_by(a)[0] for a in answers} == {"primary"}
    # View Configuration's comparison flags the drift; a full apply (reconcile) repairs it.
    assert dataplane.compare()["matches"] is False
    dataplane.apply(full=True)
    assert dataplane.compare()["matches"] is True
    assert served_by(ask(lab, VIP, 12000))[0] == "primary"


def test_deleting_a_service_removes_its_rules_and_its_vip(dataplane, lab):
    service = vna_service()
    real_server(service)
    dataplane.apply()
    assert VIP in subprocess.run(["ip", "-n", lab.ns("lb"), "addr"], capture_output=True,
                                 text=True).stdout
    services.do_delete_service(service, USER)
    dataplane.apply()
    assert VIP not in subprocess.run(["ip", "-n", lab.ns("lb"), "addr"], capture_output=True,
                                     text=True).stdout
    assert "svc_" not in dataplane.nft("list", "table", "ip", "lbadmin")
    assert dataplane.compare()["matches"] is True
    # and the client finds nothing there any more: nobody answers for the VIP
    assert ask(lab, VIP, 12000).startswith("ERROR")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: nft in a namespace of its own")
@pytest.mark.parametrize("golden", ["vna.nft", "weighted.nft"])
def test_the_golden_scripts_are_accepted_by_the_kernel(golden):
    """What the golden tests pin down is also what nft and the kernel accept (in a namespace
    made for this check alone)."""
    script = (Path(__file__).parents[1] / "unit" / "golden" / golden).read_text()
    assert "table ip lbadmin" in nft.canonical(script)


def test_backup_wipe_restore_brings_back_the_same_live_ruleset(dataplane, lab):
    real_server(vna_service(persistent=True))
    dataplane.apply()
    before = dataplane.nft("list", "table", "ip", "lbadmin")
    data = backup.export_xml()
    services.do_delete_service(VirtualService.objects.get(), USER)
    dataplane.apply()
    assert "198.51.100.100" not in dataplane.nft("list", "table", "ip", "lbadmin")
    backup.restore(backup.parse(data), USER)
    dataplane.apply()
    assert dataplane.nft("list", "table", "ip", "lbadmin") == before
    assert served_by(ask(lab, VIP, 12000)) == ("primary", 12000, CLIENT_ADDRESS)
