"""Issue 11, findings 1 and 2, with real traffic from the lab's client: a VIP or a floating IP
on a real server's address (lbadmin would put it on its own eth0, and NAT to the primary would
be delivered locally: every port of VNA refused), or a floating IP on the appliance's own
address (Network Interface Configuration could never be saved again), is refused by the form
in words naming the other object — so the guide's VNA keeps working."""

import subprocess

import pytest

from clusters.forms import FloatingIPForm, VirtualServiceForm
from clusters.models import FloatingIP, VirtualService
from lab import (
    CLIENT_ADDRESS,
    GUIDE_PORTS,
    LB_INTERNAL_ADDRESS,
    PRIMARY_ADDRESS,
    VIP,
)
from network import netlink
from network import tasks as network_tasks
from network.forms import InterfacesForm, connected_networks
from network.models import NetworkConfiguration

from .conftest import inside
from .test_dataplane import real_server, served_by, vna_service
from .traffic import connect_many

pytestmark = pytest.mark.netns

PRIMARY_WORDS = f"{PRIMARY_ADDRESS} is already the real server “PrimaryCluster” of “VNA”."


@pytest.fixture
def guide(dataplane, lab):
    """The guide's VNA live (VIP 198.51.100.100, PrimaryCluster 192.0.2.110, fallback
    192.0.2.120 with MASQ), over the interfaces the dataplane worker recorded at its first
    start, every port answered by the primary."""
    with inside(lab.ns("lb")):  # the dataplane worker's first start
        assert network_tasks.apply_network_from_database() == {"ok": True}
    assert NetworkConfiguration.load().interfaces["eth0"]["addresses"] == [
        f"{LB_INTERNAL_ADDRESS}/24"]
    real_server(vna_service())
    dataplane.apply()
    assert_vna_served_by_the_primary(lab)
    return dataplane


def assert_vna_served_by_the_primary(lab):
    answers = connect_many(lab, VIP, GUIDE_PORTS, 2 * len(GUIDE_PORTS))
    assert [served_by(a) for a in answers] == [
        ("primary", port, CLIENT_ADDRESS) for port in GUIDE_PORTS * 2]


def lb_addresses(lab):
    return subprocess.run(["ip", "-n", lab.ns("lb"), "-br", "addr"], capture_output=True,
                          text=True, check=True).stdout


def floating_ip_form(address):
    return FloatingIPForm({"address": address}, networks=connected_networks(
        [], NetworkConfiguration.load().interfaces))


def test_a_second_service_on_the_primarys_address_is_refused_and_vna_keeps_serving(guide, lab):
    form = VirtualServiceForm({
        "label": "Worklist", "vip": PRIMARY_ADDRESS, "ports": "104", "protocol": "tcp",
        "forwarding": "nat", "scheduler": "wrr", "persistence_timeout": "300",
        "check_type": "on", "check_request": "/", "check_interval": "30", "check_timeout": "5",
        "failure_count": "10", "on_failure": "keep", "fallback_port": "0",
    }, instance=VirtualService())
    assert not form.is_valid()
    assert form.errors["vip"] == [PRIMARY_WORDS]
    assert list(VirtualService.objects.values_list("label", flat=True)) == ["VNA"]
    guide.apply(full=True)
    assert f" {PRIMARY_ADDRESS}/" not in lb_addresses(lab)  # never the lb's own address
    assert_vna_served_by_the_primary(lab)


def test_a_floating_ip_on_the_primary_or_the_lbs_own_address_is_refused(guide, lab):
    assert floating_ip_form(PRIMARY_ADDRESS).errors["address"] == [PRIMARY_WORDS]
    assert floating_ip_form(LB_INTERNAL_ADDRESS).errors["address"] == [
        f"{LB_INTERNAL_ADDRESS} is already the address of interface eth0."]
    assert not FloatingIP.objects.exists()
    guide.apply(full=True)
    assert f" {PRIMARY_ADDRESS}/" not in lb_addresses(lab)
    assert_vna_served_by_the_primary(lab)

    # Network Interface Configuration can still be saved, as the WebUI does it: the form over
    # the live listing, applied by the dataplane worker, then stored.
    stored = NetworkConfiguration.load()
    with inside(lab.ns("lb")):
        listing = netlink.list_interfaces()
    form = InterfacesForm({f"{kind}_{name}": value
                           for name, settings in stored.interfaces.items()
                           for kind, value in (("addresses", "\n".join(settings["addresses"])),
                                               ("mtu", settings["mtu"] or ""))},
                          interfaces=listing, configured=stored.interfaces)
    assert form.is_valid(), form.errors
    with inside(lab.ns("lb")):
        assert network_tasks.apply_network(stored.as_dict() | {
            "interfaces": form.configuration()}) == {"ok": True}
    stored.interfaces = form.configuration()
    stored.save()
    assert f"{LB_INTERNAL_ADDRESS}/24" in lb_addresses(lab)
    guide.apply()
    assert_vna_served_by_the_primary(lab)
