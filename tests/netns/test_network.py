"""Local Configuration against the kernel of the lab's lb namespace: addresses, MTU, VLANs,
routes, floating IPs as the real servers' gateway, rollback when the kernel refuses, and the
lock-out guard."""

import datetime
import subprocess

import pytest
from django.utils import timezone

from clusters import services
from clusters.dataplane import apply as dataplane_apply
from clusters.models import FloatingIP
from lab import (
    CLIENT_ADDRESS,
    FLOATING_IP,
    LB_EXTERNAL_ADDRESS,
    VIP,
    Lab,
    unique_test_prefix,
)
from network import kernel, netlink
from network import services as network_services
from network import tasks as network_tasks
from network.models import NetworkConfiguration, PendingNetworkChange
from tests.conftest import needs_root

from .conftest import inside
from .test_dataplane import real_server, served_by, vna_service
from .traffic import ask

pytestmark = pytest.mark.netns
EMPTY = {"interfaces": {}, "vlans": [], "gateway4": "", "gateway6": "", "routes": []}


@pytest.fixture
def bare_lab():
    """The lab without addresses on the lb: the guide's 6.1.1 starts from there."""
    needs_root()
    with Lab(unique_test_prefix(), lb_addresses=False) as built:
        yield built


def lb_addresses(lab):
    return subprocess.run(["ip", "-n", lab.ns("lb"), "-br", "addr"], capture_output=True,
                          text=True, check=True).stdout


def apply(lab, config):
    with inside(lab.ns("lb")):
        kernel.apply_network(EMPTY | config)


def test_an_address_on_eth1_is_applied_and_reachable_from_the_client(bare_lab):
    apply(bare_lab, {"interfaces": {"eth1": {"addresses": ["198.51.100.1/24"], "mtu": 1500}}})
    assert "198.51.100.1/24" in lb_addresses(bare_lab)
    ping = subprocess.run([*bare_lab.exec_prefix("client"), "ping", "-c1", "-W2",
                           LB_EXTERNAL_ADDRESS], capture_output=True)
    assert ping.returncode == 0


def test_addresses_and_mtu_are_replaced_not_added_to(bare_lab):
    apply(bare_lab, {"interfaces": {"eth1": {"addresses": ["198.51.100.1/24",
                                                           "2001:db8::1/64"], "mtu": 1400}}})
    apply(bare_lab, {"interfaces": {"eth1": {"addresses": ["198.51.100.2/24"], "mtu": 1500}}})
    listing = lb_addresses(bare_lab)
    assert "198.51.100.2/24" in listing and "198.51.100.1/24" not in listing
    assert "2001:db8::1" not in listing
    with inside(bare_lab.ns("lb")):
        assert netlink.read_interfaces(["eth1"])["eth1"]["mtu"] == 1500


def kernel_has_vlans(lab):
    probe = subprocess.run(["ip", "-n", lab.ns("switch"), "link", "add", "link", "lb",
                            "name", "vlanprobe", "type", "vlan", "id", "2"],
                           capture_output=True, text=True)
    subprocess.run(["ip", "-n", lab.ns("switch"), "link", "del", "vlanprobe"],
                   capture_output=True)
    return probe.returncode == 0


def test_a_vlan_and_an_address_on_it_come_and_go(bare_lab):
    if not kernel_has_vlans(bare_lab):
        # Seen on the development machines: a kernel built without 802.1Q (no 8021q module).
        with pytest.raises(kernel.NetworkError, match="not supported"), \
                inside(bare_lab.ns("lb")):
            kernel.apply_network(EMPTY | {"vlans": [["eth0", 100]]})
        assert "eth0.100" not in lb_addresses(bare_lab)
        pytest.skip("this kernel has no 802.1Q VLAN support; the refusal was checked instead")
    apply(bare_lab, {"vlans": [["eth0", 100]],
                     "interfaces": {"eth0.100": {"addresses": ["203.0.113.1/24"]}}})
    assert "eth0.100@eth0" in lb_addresses(bare_lab) and "203.0.113.1/24" in \
        lb_addresses(bare_lab)
    apply(bare_lab, {"vlans": []})
    assert "eth0.100" not in lb_addresses(bare_lab)


def test_routes_are_applied_and_removed(bare_lab):
    apply(bare_lab, {"interfaces": {"eth0": {"addresses": ["192.0.2.1/24"]}},
                     "gateway4": "192.0.2.120",
                     "routes": [{"destination": "10.20.0.0/16", "gateway": "192.0.2.110"}]})
    routes = subprocess.run(["ip", "-n", bare_lab.ns("lb"), "route"], capture_output=True,
                            text=True).stdout
    assert "default via 192.0.2.120" in routes and "10.20.0.0/16 via 192.0.2.110" in routes
    apply(bare_lab, {"interfaces": {"eth0": {"addresses": ["192.0.2.1/24"]}}})
    routes = subprocess.run(["ip", "-n", bare_lab.ns("lb"), "route"], capture_output=True,
                            text=True).stdout
    assert "default" not in routes and "10.20.0.0" not in routes


def test_a_refused_change_leaves_the_previous_settings(bare_lab):
    apply(bare_lab, {"interfaces": {"eth1": {"addresses": ["198.51.100.1/24"]}}})
    with pytest.raises(kernel.NetworkError), inside(bare_lab.ns("lb")):
        kernel.apply_network(EMPTY | {
            "interfaces": {"eth1": {"addresses": ["198.51.100.9/24"]}},
            "vlans": [["eth1", 7]], "gateway4": "203.0.113.99"})  # no route to it: refused
    listing = lb_addresses(bare_lab)
    assert "198.51.100.1/24" in listing and "198.51.100.9" not in listing
    assert "eth1.7" not in listing


@pytest.mark.django_db(transaction=True)
def test_the_floating_ip_is_the_real_servers_gateway_and_replies_come_back(dataplane):
    needs_root()
    with Lab(unique_test_prefix(), gateway=FLOATING_IP) as lab:
        FloatingIP.objects.create(address=FLOATING_IP)
        real_server(vna_service())
        with inside(lab.ns("lb")):
            assert dataplane_apply.apply_dataplane(full=True)["ok"]
        assert f"{FLOATING_IP}/24" in lb_addresses(lab)
        # the primary's default route is the floating IP; NAT keeps the client's address
        assert served_by(ask(lab, VIP, 12000)) == ("primary", 12000, CLIENT_ADDRESS)
        services.do_remove_floating_ip(FloatingIP.objects.get(), "tester")
        with inside(lab.ns("lb")):
            assert dataplane_apply.apply_dataplane()["ok"]
        assert FLOATING_IP not in lb_addresses(lab)


@pytest.mark.django_db(transaction=True)
def test_the_stored_configuration_comes_back_after_the_addresses_are_cleared(bare_lab):
    stored = NetworkConfiguration.load()
    stored.interfaces = {"eth1": {"addresses": ["198.51.100.1/24"], "mtu": 1500}}
    stored.save()
    with inside(bare_lab.ns("lb")):
        assert network_tasks.apply_network_from_database() == {"ok": True}
    subprocess.run(["ip", "-n", bare_lab.ns("lb"), "addr", "flush", "dev", "eth1"], check=True)
    assert "198.51.100.1" not in lb_addresses(bare_lab)
    with inside(bare_lab.ns("lb")):  # what the dataplane worker does when it starts
        assert network_tasks.apply_network_from_database() == {"ok": True}
    assert "198.51.100.1/24" in lb_addresses(bare_lab)


def renumber_eth1(lab):
    """eth1 198.51.100.1 -> 198.51.100.2, in the kernel and stored: (before, after)."""
    before = EMPTY | {"interfaces": {"eth1": {"addresses": ["198.51.100.1/24"]}}}
    apply(lab, before)
    after = EMPTY | {"interfaces": {"eth1": {"addresses": ["198.51.100.2/24"]}}}
    apply(lab, after)
    stored = NetworkConfiguration.load()
    stored.interfaces = after["interfaces"]
    stored.save()
    return before, after


@pytest.mark.django_db(transaction=True)
def test_the_lock_out_guard_rolls_back_a_change_nobody_confirmed(bare_lab, redis_server):
    before, after = renumber_eth1(bare_lab)
    pending = PendingNetworkChange.objects.create(
        token="t0ken", previous=before, deadline=timezone.now() + datetime.timedelta(seconds=1))
    with inside(bare_lab.ns("lb")):  # the worker, when the confirmation time is up
        assert network_tasks.roll_back_unconfirmed(pending.token) == "rolled back"
    assert "198.51.100.1/24" in lb_addresses(bare_lab)
    assert "198.51.100.2" not in lb_addresses(bare_lab)
    assert NetworkConfiguration.load().interfaces == before["interfaces"]
    assert network_services.do_confirm_change(pending.token, "late user") == "too late"


@pytest.mark.django_db(transaction=True)
def test_at_start_the_worker_rolls_back_a_change_whose_time_ran_out_while_it_was_away(
        bare_lab, redis_server):
    """The countdown fell due while the dataplane worker was down: its start undoes the change
    before it applies the stored settings (which were the unconfirmed ones)."""
    before, after = renumber_eth1(bare_lab)
    pending = PendingNetworkChange.objects.create(
        token="l4te", previous=before, deadline=timezone.now() - datetime.timedelta(seconds=5))
    with inside(bare_lab.ns("lb")):  # the worker's start (clusters.tasks.reconcile_at_start)
        assert network_tasks.apply_network_from_database() == {"ok": True}
    assert "198.51.100.1/24" in lb_addresses(bare_lab)
    assert "198.51.100.2" not in lb_addresses(bare_lab)
    assert NetworkConfiguration.load().interfaces == before["interfaces"]
    pending.refresh_from_db()
    assert pending.rolled_back


@pytest.mark.django_db(transaction=True)
def test_a_confirmed_change_is_kept(bare_lab, redis_server):
    before, after = renumber_eth1(bare_lab)
    pending = PendingNetworkChange.objects.create(
        token="k33p", previous=before, deadline=timezone.now())
    assert network_services.do_confirm_change(pending.token, "user") == "kept"
    with inside(bare_lab.ns("lb")):  # the worker, when the confirmation time is up
        assert network_tasks.roll_back_unconfirmed(pending.token) == "kept"
    assert "198.51.100.2/24" in lb_addresses(bare_lab)
    assert "198.51.100.1" not in lb_addresses(bare_lab)
    assert NetworkConfiguration.load().interfaces == after["interfaces"]


def test_applying_local_configuration_leaves_the_ha_pairs_addresses_alone(bare_lab):
    """keepalived (ha.render) labels the VIPs and floating IPs it holds "<device>:ha": they are
    not the administrator's, so applying Local Configuration never removes them (it did, on
    every change replicated to an active Secondary, which then lost the pair's addresses)."""
    subprocess.run(["ip", "-n", bare_lab.ns("lb"), "addr", "add", f"{FLOATING_IP}/32", "dev",
                    "eth0", "label", "eth0:ha"], check=True)
    apply(bare_lab, {"interfaces": {"eth0": {"addresses": ["192.0.2.1/24"], "mtu": 1500}}})
    assert f"{FLOATING_IP}/32" in lb_addresses(bare_lab)
    with inside(bare_lab.ns("lb")):
        assert netlink.read_interfaces(["eth0"])["eth0"]["addresses"] == ["192.0.2.1/24"]
        [eth0] = [link for link in netlink.list_interfaces() if link["name"] == "eth0"]
    assert {"cidr": f"{FLOATING_IP}/32", "role": "pair"} in eth0["marked"]
