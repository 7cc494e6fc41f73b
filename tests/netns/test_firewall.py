"""Firewall Lockdown and Firewall Script against the kernel of the lab's lb namespace, with
real connections: a listener on the WebUI's port (9443) and SSH's (22) in the lb namespace
stands for gunicorn and sshd (nftables decides before any program sees the connection)."""

import subprocess

import pytest
from django.utils import timezone

from lab import CLIENT_ADDRESS, GUIDE_PORTS, LB_EXTERNAL_ADDRESS, LB_INTERNAL_ADDRESS, VIP
from maintenance import firewall, firewall_tasks
from maintenance.models import FirewallLockdown, FirewallScript
from network import tasks as network_tasks
from network.models import PendingNetworkChange

from .conftest import inside
from .test_dataplane import real_server, served_by, vna_service
from .traffic import HeldConnection, ask, connect_many

pytestmark = pytest.mark.netns
REFUSED = "ERROR ConnectionRefusedError"  # `reject with tcp reset` on a SYN


@pytest.fixture
def webui_ports(lab):
    lab.start_listener("lb", ports=(9443, 22))
    return lab


def in_lb(lab, function, *args):
    with inside(lab.ns("lb")):
        return function(*args)


def held_lockdown(token, confirmed=False):
    """A lockdown the guard holds, its time up: the one before it was off."""
    return PendingNetworkChange.objects.create(
        kind=firewall.LOCKDOWN, token=token, deadline=timezone.now(), confirmed=confirmed,
        previous={"enabled": False, "networks": ""})


def nft_list(lab, table):
    result = subprocess.run([*lab.exec_prefix("lb"), "nft", "list", "table", *table.split()],
                            capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else None


def test_lockdown_refuses_the_webui_and_ssh_from_outside_its_networks_and_admits_them_inside(
        dataplane, webui_ports):
    lab = webui_ports
    assert ask(lab, LB_EXTERNAL_ADDRESS, 9443) == f"lb port 9443 client {CLIENT_ADDRESS}"
    assert in_lb(lab, firewall_tasks.apply_lockdown, True, "192.0.2.0/24") == {"ok": True}
    # the client (198.51.100.10) is outside 192.0.2.0/24: refused on both ports
    assert ask(lab, LB_EXTERNAL_ADDRESS, 9443) == REFUSED
    assert ask(lab, LB_EXTERNAL_ADDRESS, 22) == REFUSED
    # the primary (192.0.2.110) is inside: admitted
    assert connect_many(lab, LB_INTERNAL_ADDRESS, [9443], 1, role="primary") == [
        "lb port 9443 client 192.0.2.110"]
    # loopback stays allowed (the lab's own forward of the WebUI arrives from 127.0.0.1)
    local = subprocess.run([*lab.exec_prefix("lb"), "python3", "-c",
                            "import socket; s = socket.create_connection(('127.0.0.1', 9443),"
                            " 3); print(s.makefile().readline().strip())"],
                           capture_output=True, text=True, timeout=30)
    assert local.stdout.strip() == "lb port 9443 client 127.0.0.1", local.stderr
    # the client's own network admitted: the client is in again
    assert in_lb(lab, firewall_tasks.apply_lockdown, True, "198.51.100.0/24")["ok"]
    assert ask(lab, LB_EXTERNAL_ADDRESS, 9443) == f"lb port 9443 client {CLIENT_ADDRESS}"
    # off: the table is gone, everyone is in
    assert in_lb(lab, firewall_tasks.apply_lockdown, False, "192.0.2.0/24")["ok"]
    assert nft_list(lab, "inet lbadmin_lockdown") is None


def test_an_open_connection_stays_when_the_lockdown_shuts_its_network_out(dataplane,
                                                                           webui_ports):
    lab = webui_ports
    # The data plane's table, as on every running appliance: conntrack follows connections
    # from then on (a namespace with no ct rule tracks none, and a connection first seen
    # mid-stream counts as new).
    dataplane.apply(full=True)
    with HeldConnection(lab, LB_EXTERNAL_ADDRESS, 9443) as held:
        assert held.greeting == f"lb port 9443 client {CLIENT_ADDRESS}"
        assert in_lb(lab, firewall_tasks.apply_lockdown, True, "192.0.2.0/24")["ok"]
        assert held.talk() == "lb port 9443 echo ping"
        assert ask(lab, LB_EXTERNAL_ADDRESS, 9443) == REFUSED


def test_the_vip_carries_traffic_under_lockdown_and_neither_table_touches_the_other(
        dataplane, webui_ports):
    lab = webui_ports
    real_server(vna_service())
    dataplane.apply(full=True)
    data_plane_before = dataplane.nft("list", "table", "ip", "lbadmin")
    assert in_lb(lab, firewall_tasks.apply_lockdown, True, "192.0.2.0/24")["ok"]
    assert dataplane.nft("list", "table", "ip", "lbadmin") == data_plane_before
    answers = connect_many(lab, VIP, GUIDE_PORTS, len(GUIDE_PORTS))
    assert [served_by(a) for a in answers] == [
        ("primary", port, CLIENT_ADDRESS) for port in GUIDE_PORTS]
    assert ask(lab, LB_EXTERNAL_ADDRESS, 9443) == REFUSED
    # a full apply of the data plane (a worker start, a Rebuild) leaves the lockdown alone
    lockdown = nft_list(lab, "inet lbadmin_lockdown")
    dataplane.apply(full=True)
    assert nft_list(lab, "inet lbadmin_lockdown") == lockdown
    assert ask(lab, LB_EXTERNAL_ADDRESS, 9443) == REFUSED


def test_an_unconfirmed_lockdown_is_rolled_back_and_access_returns(dataplane, webui_ports):
    """The guard's roll-back as the worker runs it when the time is up (the countdown itself
    runs on real workers in tests/browser/test_firewall.py)."""
    lab = webui_ports
    assert in_lb(lab, firewall_tasks.apply_lockdown, True, "192.0.2.0/24")["ok"]
    FirewallLockdown.objects.update_or_create(pk=1, defaults={"enabled": True,
                                                              "networks": "192.0.2.0/24"})
    pending = held_lockdown("t1")
    assert ask(lab, LB_EXTERNAL_ADDRESS, 9443) == REFUSED
    assert in_lb(lab, network_tasks.roll_back_unconfirmed, "t1") == "rolled back"
    assert ask(lab, LB_EXTERNAL_ADDRESS, 9443) == f"lb port 9443 client {CLIENT_ADDRESS}"
    pending.refresh_from_db()
    assert pending.rolled_back and not FirewallLockdown.load().enabled
    # a confirmed one is kept
    held_lockdown("t2", confirmed=True)
    assert in_lb(lab, network_tasks.roll_back_unconfirmed, "t2") == "kept"


def test_at_start_the_worker_puts_both_tables_back_and_rolls_back_what_ran_out(
        dataplane, webui_ports):
    lab = webui_ports
    FirewallLockdown.objects.update_or_create(pk=1, defaults={"enabled": True,
                                                              "networks": "192.0.2.0/24"})
    FirewallScript.objects.update_or_create(pk=1, defaults={"script": SCRIPT})
    results = in_lb(lab, firewall_tasks.apply_from_database)
    assert results == {"lockdown": {"ok": True}, "script": {"ok": True}}
    assert ask(lab, LB_EXTERNAL_ADDRESS, 9443) == REFUSED
    assert "203.0.113.66" in nft_list(lab, "inet lbadmin_script")
    # a lockdown whose confirmation time ran out while the worker was away
    late = held_lockdown("late")
    in_lb(lab, firewall_tasks.apply_from_database)
    assert ask(lab, LB_EXTERNAL_ADDRESS, 9443) == f"lb port 9443 client {CLIENT_ADDRESS}"
    late.refresh_from_db()
    assert late.rolled_back and not FirewallLockdown.load().enabled


SCRIPT = """# drop a scanner, count the rest
set scanners { type ipv4_addr; elements = { 203.0.113.66 } }
chain input {
\ttype filter hook input priority filter; policy accept;
\tip saddr @scanners drop
\ttcp dport 12345 counter reject with tcp reset comment "closed here"
}
"""


def test_the_firewall_script_is_applied_in_its_own_table_and_refuses_the_client_on_its_port(
        dataplane, webui_ports):
    lab = webui_ports
    lab.start_listener("lb", ports=(12345,))
    assert ask(lab, LB_EXTERNAL_ADDRESS, 12345).startswith("lb port 12345")
    assert in_lb(lab, firewall_tasks.apply_script, SCRIPT) == {"ok": True}
    listing = nft_list(lab, "inet lbadmin_script")
    assert "set scanners" in listing and 'comment "closed here"' in listing
    assert ask(lab, LB_EXTERNAL_ADDRESS, 12345) == REFUSED
    assert ask(lab, LB_EXTERNAL_ADDRESS, 9443).startswith("lb port 9443")
    # saved again: rebuilt whole, not added to
    assert in_lb(lab, firewall_tasks.apply_script, SCRIPT)["ok"]
    assert nft_list(lab, "inet lbadmin_script").count("chain input") == 1
    # empty: the table goes
    assert in_lb(lab, firewall_tasks.apply_script, "")["ok"]
    assert nft_list(lab, "inet lbadmin_script") is None
    assert ask(lab, LB_EXTERNAL_ADDRESS, 12345).startswith("lb port 12345")


def test_a_refused_script_leaves_the_previous_one_live_and_names_the_administrators_line(
        dataplane, webui_ports):
    lab = webui_ports
    assert in_lb(lab, firewall_tasks.apply_script, SCRIPT)["ok"]
    before = nft_list(lab, "inet lbadmin_script")
    broken = "chain input {\n\ttype filter hook input priority filter;\n" \
             "\ttcp dport 22 acept\n}\n"
    result = in_lb(lab, firewall_tasks.apply_script, broken)
    assert not result["ok"]
    assert result["error"].startswith("line 3:"), result["error"]
    assert "Error:" in result["error"] and "tcp dport 22 acept" in result["error"]
    assert nft_list(lab, "inet lbadmin_script") == before
    # a refusal the kernel alone sees: a set that does not exist
    result = in_lb(lab, firewall_tasks.apply_script,
                   "chain c {\n\tip saddr @nowhere drop\n}\n")
    assert not result["ok"] and result["error"].startswith("line 2:"), result["error"]
    assert nft_list(lab, "inet lbadmin_script") == before


@pytest.mark.parametrize("hostile", [
    "flush ruleset",
    "delete table ip lbadmin",
    "chain a { type filter hook input priority 0; }\n}\ndelete table ip lbadmin\n"
    "table inet lbadmin_script {",
    "}\nflush table ip lbadmin\ntable inet lbadmin_script {",
    'include "/etc/nftables.conf"',
    "chain a { }\n} ; delete table ip lbadmin ; table inet lbadmin_script {",
    "chain a {\n\tjump b\n}\nchain b { }\nadd rule ip lbadmin schedule drop",
    'chain x { comment "a" } } delete table ip lbadmin',
])
def test_a_hostile_script_cannot_touch_the_data_planes_table(dataplane, webui_ports, hostile):
    lab = webui_ports
    real_server(vna_service())
    dataplane.apply(full=True)
    data_plane = dataplane.nft("list", "table", "ip", "lbadmin")
    assert in_lb(lab, firewall_tasks.apply_lockdown, True, "192.0.2.0/24")["ok"]
    lockdown = nft_list(lab, "inet lbadmin_lockdown")
    result = in_lb(lab, firewall_tasks.apply_script, hostile)
    assert not result["ok"]
    assert dataplane.nft("list", "table", "ip", "lbadmin") == data_plane
    assert nft_list(lab, "inet lbadmin_lockdown") == lockdown
    assert served_by(ask(lab, VIP, 12000)) == ("primary", 12000, CLIENT_ADDRESS)


def test_the_ha_peer_is_admitted_whatever_the_networks(dataplane, webui_ports, monkeypatch):
    lab = webui_ports
    monkeypatch.setattr(firewall_tasks.pairing, "peer_address", lambda: CLIENT_ADDRESS)
    assert in_lb(lab, firewall_tasks.apply_lockdown, True, "203.0.113.0/24")["ok"]
    assert ask(lab, LB_EXTERNAL_ADDRESS, 9443) == f"lb port 9443 client {CLIENT_ADDRESS}"
    assert connect_many(lab, LB_INTERNAL_ADDRESS, [9443], 1, role="primary") == [REFUSED]
