"""Local Configuration input rules, checked against a given live interface listing."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from clusters.forms import FloatingIPForm
from clusters.models import FloatingIP, VirtualService
from clusters.tasks import apply_dataplane
from network import services, tasks
from network.forms import (
    HostnameDnsForm,
    InterfacesForm,
    RoutingForm,
    VlanForm,
    connected_networks,
)
from network.kernel import write_resolver_files
from network.models import NetworkConfiguration, PendingNetworkChange

pytestmark = pytest.mark.django_db

LIVE = [
    {"name": "lo", "kind": "", "mtu": 65536, "addresses": ["127.0.0.1/8"],
     "marked": [{"cidr": "127.0.0.1/8", "role": ""}]},
    {"name": "eth0", "kind": "veth", "mtu": 1500, "addresses": ["192.0.2.1/24"],
     "marked": [{"cidr": "192.0.2.1/24", "role": ""}]},
    {"name": "eth1", "kind": "veth", "mtu": 1500, "addresses": [], "marked": []},
]


def interfaces_form(eth0="192.0.2.1/24", eth1="", mtu0="1500", mtu1="1500"):
    return InterfacesForm({"addresses_eth0": eth0, "addresses_eth1": eth1, "mtu_eth0": mtu0,
                           "mtu_eth1": mtu1}, interfaces=LIVE, configured={})


def test_the_guides_eth1_address_is_accepted_with_ipv6_too():
    form = interfaces_form(eth1="198.51.100.1/24\n2001:db8::1/64")
    assert form.is_valid(), form.errors
    assert form.configuration()["eth1"] == {"addresses": ["198.51.100.1/24",
                                                         "2001:db8::1/64"], "mtu": 1500}


@pytest.mark.parametrize(("eth1", "words"), [
    ("198.51.100.1", "CIDR form"),
    ("198.51.100.300/24", "not an address in CIDR form"),
    ("198.51.100.0/24", "network address"),
    ("198.51.100.255/24", "broadcast address"),
    ("192.0.2.1/24", "already on eth0"),
])
def test_bad_addresses_are_refused_next_to_their_interface(eth1, words):
    form = interfaces_form(eth1=eth1)
    assert not form.is_valid()
    assert words in " ".join(form.errors["addresses_eth1"])


def test_an_address_used_as_a_vip_or_floating_ip_is_refused():
    VirtualService.objects.create(label="VNA", vip="198.51.100.100", ports="80")
    FloatingIP.objects.create(address="192.0.2.254")
    form = interfaces_form(eth1="198.51.100.100/24", eth0="192.0.2.254/24")
    assert not form.is_valid()
    assert "the VIP of virtual service “VNA”" in form.errors["addresses_eth1"][0]
    assert "a floating IP" in form.errors["addresses_eth0"][0]


@pytest.mark.parametrize("mtu", ["67", "9217", "big"])
def test_an_mtu_outside_68_to_9216_is_refused(mtu):
    form = interfaces_form(mtu1=mtu)
    assert not form.is_valid() and "mtu_eth1" in form.errors


def test_a_gateway_must_be_on_a_connected_subnet():
    networks = connected_networks(LIVE)
    assert RoutingForm({"gateway4": "192.0.2.254", "routes": ""}, networks=networks).is_valid()
    form = RoutingForm({"gateway4": "203.0.113.1", "routes": ""}, networks=networks)
    assert not form.is_valid()
    assert "not on any connected subnet" in form.errors["gateway4"][0]
    form = RoutingForm({"routes": "10.0.0.0/8 203.0.113.1\nnonsense"}, networks=networks)
    assert not form.is_valid() and len(form.errors["routes"]) == 2


def test_a_floating_ip_outside_every_connected_subnet_is_refused():
    networks = connected_networks(LIVE)
    assert FloatingIPForm({"address": "192.0.2.254"}, networks=networks).is_valid()
    form = FloatingIPForm({"address": "203.0.113.254"}, networks=networks)
    assert not form.is_valid() and "outside every connected subnet" in form.errors["address"][0]
    form = FloatingIPForm({"address": "192.0.2.255"}, networks=networks)
    assert not form.is_valid() and "broadcast" in form.errors["address"][0]


@pytest.mark.parametrize(("vlan_id", "words"), [("0", "1 to 4094"), ("4095", "1 to 4094"),
                                                ("x", "whole number")])
def test_a_vlan_id_outside_1_to_4094_is_refused(vlan_id, words):
    form = VlanForm({"parent": "eth0", "vlan_id": vlan_id}, interfaces=LIVE, vlans=[])
    assert not form.is_valid() and words in form.errors["vlan_id"][0]


def test_the_interfaces_page_says_when_the_worker_cannot_be_asked(client, settings, tmp_path):
    settings.REDIS_URL = f"unix://{tmp_path}/nothing.sock"
    client.force_login(get_user_model().objects.create_user("loadbalancer", password="x" * 12))
    page = client.get(reverse("local:interfaces")).content.decode()
    assert "Redis is down" in page and "cannot be read or changed" in page


@pytest.fixture
def fake_worker(monkeypatch, settings, tmp_path):
    """The dataplane worker takes every change; the roll-back it would schedule is recorded."""
    settings.REDIS_URL = f"unix://{tmp_path}/nothing.sock"
    scheduled = []
    monkeypatch.setattr(services, "ask_dataplane", lambda task, **kwargs: {"ok": True})
    # after the change, the data plane places VIPs again (core.signals.network_applied)
    monkeypatch.setattr(apply_dataplane, "apply_async", lambda *args, **kwargs: None)
    monkeypatch.setattr(tasks.roll_back_unconfirmed, "apply_async",
                        lambda args, countdown: scheduled.append((args, countdown)))
    return scheduled


def test_a_change_removing_the_browsers_address_waits_for_confirmation(
        fake_worker, settings, django_capture_on_commit_callbacks):
    """The guard's decision; the kernel side (apply, roll back) is in tests/netns."""
    scheduled = fake_worker
    stored = NetworkConfiguration.load()
    stored.interfaces = {"eth0": {"addresses": ["192.0.2.1/24"]}}
    stored.save()
    with django_capture_on_commit_callbacks(execute=True):
        kept = services.do_configure_network(
            {"interfaces": {"eth0": {"addresses": ["192.0.2.1/24", "192.0.2.2/24"]}}},
            "admin", browser_address="192.0.2.1")
    assert kept is None and scheduled == []  # the browser's address stays
    with django_capture_on_commit_callbacks(execute=True):
        pending = services.do_configure_network(
            {"interfaces": {"eth0": {"addresses": ["192.0.2.2/24"]}}}, "admin",
            browser_address="192.0.2.1")
    assert isinstance(pending, PendingNetworkChange)
    assert pending.previous["interfaces"]["eth0"]["addresses"] == ["192.0.2.1/24",
                                                                  "192.0.2.2/24"]
    assert scheduled == [((pending.token,), settings.NETWORK_CONFIRM_SECONDS)]


def test_hostname_and_dns_are_written_where_the_appliance_keeps_them(tmp_path):
    write_resolver_files(tmp_path / "etc", "lb1", ["192.0.2.53", "2001:db8::53"])
    assert (tmp_path / "etc" / "hostname").read_text() == "lb1\n"
    assert "nameserver 192.0.2.53\nnameserver 2001:db8::53\n" in \
        (tmp_path / "etc" / "resolv.conf").read_text()


@pytest.mark.parametrize(("hostname", "ok"), [("lb1", True), ("lb-primary", True),
                                              ("-lb", False), ("lb_1", False), ("", False)])
def test_hostnames_follow_the_rules(hostname, ok):
    assert HostnameDnsForm({"hostname": hostname}).is_valid() is ok
