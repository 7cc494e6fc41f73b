"""Issue 11's rules for Local Configuration, each refused in its words: interface prefixes
(finding 5), routes that are nonsense or shadow a connected subnet (findings 10 and 3), the
lock-out guard over the subnets the real servers, floating IPs and VIPs live in (finding 6),
"Remove VLAN" of what is no VLAN of lbadmin's (finding 7), and kernel refusals in the
administrator's words next to their field (finding 11). The kernel side is in
tests/netns/test_network_rules.py."""

import errno
import html
import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from clusters.models import FloatingIP, RealServer, VirtualService
from core.configuration import holders
from maintenance import backup
from network import kernel, netlink, rules, services, tasks
from network import views as network_views
from network.forms import InterfacesForm, RoutingForm, connected_networks, listing_of
from network.models import NetworkConfiguration, PendingNetworkChange
from reports import views as report_views

from . import test_network_forms

pytestmark = pytest.mark.django_db

# The lab's lb as the worker recorded it at its first start (the configuration, not the kernel)
STORED = {"eth0": {"addresses": ["192.0.2.1/24"], "mtu": 1500},
          "eth1": {"addresses": ["198.51.100.1/24", "2001:db8::1/64"], "mtu": 1500}}
LIVE = listing_of(["eth0", "eth1"])


@pytest.fixture
def stored():
    network = NetworkConfiguration.load()
    network.interfaces = STORED
    network.save()
    return network


@pytest.fixture
def guide():
    """The guide's VNA: VIP on eth1's subnet, the primary, the secondary as fallback and the
    floating IP on eth0's."""
    service = VirtualService.objects.create(label="VNA", vip="198.51.100.100", ports="12000",
                                            fallback_ip="192.0.2.120")
    RealServer.objects.create(service=service, label="PrimaryCluster", ip="192.0.2.110")
    FloatingIP.objects.create(address="192.0.2.254")
    return service


@pytest.fixture
def webui(client):
    client.force_login(get_user_model().objects.create_user("loadbalancer", password="x" * 12))
    return client


def field_errors(page, field):
    """The refusals shown next to one field of a page (templates/form_field.html)."""
    found = re.search(rf'id="field-{field}">(.*?)</div>', page, re.S)
    assert found, f"no field {field} on the page"
    return " ".join(html.unescape(e) for e in re.findall(r'class="field-error"[^>]*>(.*?)</p>',
                                                         found.group(1), re.S))


# Finding 5: no interface address with a prefix shorter than /8 (IPv4) or /16 (IPv6)

def interfaces_form(eth1):
    return InterfacesForm({"addresses_eth0": "192.0.2.1/24", "addresses_eth1": eth1,
                           "mtu_eth0": "1500", "mtu_eth1": "1500"},
                          interfaces=LIVE, configured={})


@pytest.mark.parametrize(("address", "words"), [
    ("198.51.100.1/0", "198.51.100.1/0: the prefix /0 is too short for an interface address — "
                       "the appliance would take all of 0.0.0.0/0 as directly connected. Give "
                       "the subnet's own prefix (/8 or longer), e.g. 198.51.100.1/24."),
    ("198.51.100.1/7", "the prefix /7 is too short"),
    ("2001:db8::1/0", "2001:db8::1/0: the prefix /0 is too short for an interface address — "
                      "the appliance would take all of ::/0 as directly connected. Give the "
                      "subnet's own prefix (/16 or longer), e.g. 2001:db8::1/64."),
    ("2001:db8::1/15", "the prefix /15 is too short"),
])
def test_an_interface_address_with_too_short_a_prefix_is_refused_next_to_its_field(address,
                                                                                   words):
    form = interfaces_form(address)
    assert not form.is_valid()
    assert words in " ".join(form.errors["addresses_eth1"])
    assert "addresses_eth0" not in form.errors


@pytest.mark.parametrize("address", ["10.0.0.1/8", "198.51.100.1/32", "2001:db8::1/16",
                                     "2001:db8::1/128"])
def test_the_shortest_sane_prefixes_and_host_routes_are_taken(address):
    form = interfaces_form(address)
    assert form.is_valid(), form.errors


def test_the_interfaces_page_shows_the_prefix_refusal_next_to_the_interface(
        webui, stored, monkeypatch):
    live = [{**i, "kind": "veth", "mtu": 1500} for i in LIVE]
    monkeypatch.setattr(network_views, "live_interfaces", lambda: (live, ""))
    monkeypatch.setattr(services, "ask_dataplane", lambda *a, **k: pytest.fail("applied"))
    page = webui.post(reverse("local:interfaces"), {
        "configure": "1", "addresses_eth0": "192.0.2.1/24", "addresses_eth1": "198.51.100.1/0",
        "mtu_eth0": "1500", "mtu_eth1": "1500"}).content.decode()
    assert "the prefix /0 is too short" in field_errors(page, "addresses_eth1")
    assert NetworkConfiguration.load().interfaces == STORED


def test_a_restore_with_a_prefix_0_interface_address_is_refused_naming_it(stored):
    data = backup.export_xml()
    assert data.count(b"<address>198.51.100.1/24</address>") == 1
    with pytest.raises(backup.BackupError) as refused:
        backup.restore(backup.parse(data.replace(b"<address>198.51.100.1/24</address>",
                                                 b"<address>198.51.100.1/0</address>")),
                       "tester")
    assert str(refused.value).startswith('<interface name="eth1">: eth1: 198.51.100.1/0: the '
                                         "prefix /0 is too short")
    assert NetworkConfiguration.load().interfaces == STORED


# Findings 10 and 3: the routes that make no sense, or would take a connected subnet's place

def routing_form(routes="", **gateways):
    return RoutingForm({"routes": routes} | gateways,
                       networks=connected_networks([], STORED))


@pytest.mark.parametrize(("routes", "words"), [
    ("0.0.0.0/0 192.0.2.254", "Line 1: 0.0.0.0/0 is the default route: use Default Gateway "
                              "(Default Gateway IPv4) above, not a static route."),
    ("::/0 2001:db8::fe", "Line 1: ::/0 is the default route: use Default Gateway (Default "
                          "Gateway IPv6) above, not a static route."),
    ("127.0.0.0/8 192.0.2.254", "Line 1: 127.0.0.0/8 is a loopback destination"),
    ("127.1.0.0/16 192.0.2.254", "Line 1: 127.1.0.0/16 is a loopback destination"),
    ("::1/128 2001:db8::fe", "Line 1: ::1/128 is a loopback destination"),
    ("224.0.0.0/4 192.0.2.254", "Line 1: 224.0.0.0/4 is a multicast destination"),
    ("ff02::/16 2001:db8::fe", "Line 1: ff02::/16 is a multicast destination"),
    ("169.254.0.0/16 192.0.2.254", "Line 1: 169.254.0.0/16 is a link-local destination"),
    ("fe80::/64 2001:db8::fe", "Line 1: fe80::/64 is a link-local destination"),
    ("10.0.0.0/8 192.0.2.0", "Line 1: 192.0.2.0 is the network address of 192.0.2.0/24, not "
                             "a gateway"),
    ("10.0.0.0/8 192.0.2.255", "Line 1: 192.0.2.255 is the broadcast address of "
                               "192.0.2.0/24, not a gateway"),
    ("10.0.0.0/8 192.0.2.1", "Line 1: 192.0.2.1 is the appliance's own address (on eth0), "
                             "not a gateway."),
    ("10.0.0.0/8 2001:db8::fe", "Line 1: an IPv4 destination needs an IPv4 gateway, not "
                                "2001:db8::fe."),
    ("10.0.0.0/8 192.0.2.2\n10.0.0.0/8 192.0.2.3",
     "Line 2: 10.0.0.0/8 is routed on line 1 already: one gateway per destination."),
    # finding 3: the kernel's own subnet route must keep its place
    ("198.51.100.0/24 192.0.2.110", "Line 1: 198.51.100.0/24 is eth1's own subnet: the kernel "
                                    "routes it already, and a static route over it would "
                                    "take its place."),
    ("198.51.100.128/25 192.0.2.110", "Line 1: 198.51.100.128/25 lies inside 198.51.100.0/24, "
                                      "eth1's own subnet: the kernel routes it already"),
    ("2001:db8::/64 2001:db8::fe", "Line 1: 2001:db8::/64 is eth1's own subnet"),
])
def test_a_static_route_that_makes_no_sense_is_refused_in_words(routes, words):
    form = routing_form(routes)
    assert not form.is_valid()
    assert words in " ".join(form.errors["routes"])


def test_a_default_gateway_that_is_a_network_or_broadcast_address_is_refused():
    form = routing_form(gateway4="192.0.2.255")
    assert not form.is_valid()
    assert form.errors["gateway4"] == ["192.0.2.255 is the broadcast address of 192.0.2.0/24, "
                                       "not a gateway: give the address of the router on it."]
    form = routing_form(gateway4="198.51.100.0")
    assert not form.is_valid() and "network address" in form.errors["gateway4"][0]


def test_sensible_routes_are_taken_a_wider_one_over_a_connected_subnet_too():
    form = routing_form("10.20.0.0/16 192.0.2.254\n198.51.0.0/16 192.0.2.110\n"
                        "2001:db8:5::/48 2001:db8::fe", gateway4="192.0.2.254",
                        gateway6="2001:db8::fe")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["routes"] == [
        {"destination": "10.20.0.0/16", "gateway": "192.0.2.254"},
        {"destination": "198.51.0.0/16", "gateway": "192.0.2.110"},
        {"destination": "2001:db8:5::/48", "gateway": "2001:db8::fe"}]


def test_the_routing_page_refuses_a_route_over_a_connected_subnet_next_to_the_field(
        webui, stored, monkeypatch):
    monkeypatch.setattr(network_views, "live_interfaces", lambda: (LIVE, ""))
    monkeypatch.setattr(services, "ask_dataplane", lambda *a, **k: pytest.fail("applied"))
    page = webui.post(reverse("local:routing"), {
        "gateway4": "", "gateway6": "", "routes": "198.51.100.0/24 192.0.2.110"}).content.decode()
    assert "198.51.100.0/24 is eth1's own subnet: the kernel routes it already" in \
        field_errors(page, "routes")
    assert NetworkConfiguration.load().routes == []


def test_a_restore_with_a_route_over_a_connected_subnet_is_refused_naming_it(stored):
    network = NetworkConfiguration.load()
    network.routes = [{"destination": "10.0.0.0/8", "gateway": "192.0.2.2"}]
    network.save()
    data = backup.export_xml().replace(b'destination="10.0.0.0/8"',
                                       b'destination="192.0.2.0/24"')
    with pytest.raises(backup.BackupError) as refused:
        backup.restore(backup.parse(data), "tester")
    assert str(refused.value).startswith(
        '<route destination="192.0.2.0/24" gateway="192.0.2.2">: Static Routes: Line 1: '
        "192.0.2.0/24 is eth0's own subnet: the kernel routes it already")
    assert NetworkConfiguration.load().routes == network.routes


def test_a_restore_with_a_default_route_among_the_static_routes_is_refused(stored):
    network = NetworkConfiguration.load()
    network.routes = [{"destination": "10.0.0.0/8", "gateway": "192.0.2.2"}]
    network.save()
    data = backup.export_xml().replace(b'destination="10.0.0.0/8"', b'destination="0.0.0.0/0"')
    with pytest.raises(backup.BackupError, match="0.0.0.0/0 is the default route: use "
                                                 "Default Gateway"):
        backup.restore(backup.parse(data), "tester")


# Finding 6: the lock-out guard also covers the subnets the configuration's servers live in

def test_the_subnets_left_without_an_address_are_told_with_who_lives_there(guide):
    cut = rules.left_unconnected(STORED, {"eth0": {"addresses": []}, "eth1": STORED["eth1"]},
                                 holders())
    assert rules.describe_unconnected(cut) == [
        "This change removes every address of 192.0.2.0/24 from eth0: the fallback server of "
        "“VNA” (192.0.2.120), the real server “PrimaryCluster” of “VNA” (192.0.2.110) and a "
        "floating IP (192.0.2.254) would be unreachable."]
    only_link_local = {"eth0": STORED["eth0"], "eth1": {"addresses": ["fe80::1/64"]}}
    assert rules.describe_unconnected(rules.left_unconnected(STORED, only_link_local,
                                                             holders())) == [
        "This change removes every address of 198.51.100.0/24 from eth1: the VIP of virtual "
        "service “VNA” (198.51.100.100) would be unreachable."]
    renumbered = {"eth0": {"addresses": ["192.0.2.2/24"]}, "eth1": STORED["eth1"]}
    moved = {"eth0": {"addresses": []}, "eth1": {"addresses": ["198.51.100.1/24",
                                                               "192.0.2.1/24"]}}
    assert rules.left_unconnected(STORED, renumbered, holders()) == {}
    assert rules.left_unconnected(STORED, moved, holders()) == {}


fake_worker = test_network_forms.fake_worker  # the same fixture, shared


@pytest.mark.parametrize("eth0", [[], ["fe80::1/64"], ["203.0.113.1/24"]])
def test_emptying_the_real_servers_subnet_waits_for_confirmation_or_is_rolled_back(
        guide, stored, fake_worker, settings, eth0, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        pending = services.do_configure_network(
            {"interfaces": {"eth0": {"addresses": eth0}, "eth1": STORED["eth1"]}}, "admin",
            browser_address="198.51.100.1")  # the browser's own address stays
    assert isinstance(pending, PendingNetworkChange)
    assert pending.previous["interfaces"] == STORED
    assert fake_worker == [((pending.token,), settings.NETWORK_CONFIRM_SECONDS)]
    assert "the real server “PrimaryCluster” of “VNA” (192.0.2.110)" in \
        services.reasons_held(pending)[0]


def test_a_change_that_keeps_every_subnet_is_applied_at_once(guide, stored, fake_worker,
                                                             django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        pending = services.do_configure_network(
            {"interfaces": {"eth0": {"addresses": ["192.0.2.2/24"]}, "eth1": STORED["eth1"]}},
            "admin", browser_address="198.51.100.1")
    assert pending is None and fake_worker == []


def test_the_interfaces_page_does_not_say_applied_when_eth0_is_emptied(
        webui, guide, stored, fake_worker, monkeypatch):
    live = [{**i, "kind": "veth", "mtu": 1500} for i in LIVE]
    monkeypatch.setattr(network_views, "live_interfaces", lambda: (live, ""))
    response = webui.post(reverse("local:interfaces"), {
        "configure": "1", "addresses_eth0": "", "addresses_eth1": "198.51.100.1/24",
        "mtu_eth0": "1500", "mtu_eth1": "1500"}, follow=True, HTTP_HOST="198.51.100.1")
    page = html.unescape(response.content.decode())
    assert "Applied." not in page
    assert "This change removes every address of 192.0.2.0/24 from eth0" in page
    assert "the real server “PrimaryCluster” of “VNA” (192.0.2.110)" in page
    assert "a floating IP (192.0.2.254)" in page
    pending = PendingNetworkChange.objects.get()
    assert f'action="{reverse("local:network-confirm", args=[pending.token])}"' in page
    webui.post(reverse("local:network-confirm", args=[pending.token]))
    assert PendingNetworkChange.objects.get().confirmed


# Finding 7: "Remove VLAN" removes lbadmin's VLANs only

def store_vlan_eth0_100(monkeypatch, interfaces=None):
    """lbadmin's VLAN eth0.100 stored (with `interfaces`, if given); the live listing is LIVE."""
    monkeypatch.setattr(network_views, "live_interfaces", lambda: (LIVE, ""))
    network = NetworkConfiguration.load()
    network.vlans = [["eth0", 100]]
    if interfaces is not None:
        network.interfaces = interfaces
    network.save()


def remove_vlan(webui, name):
    """The page after "Remove VLAN" `name`, unescaped."""
    return html.unescape(webui.post(reverse("local:vlan-remove"), {"vlan": name},
                                    follow=True).content.decode())


@pytest.mark.parametrize("name", ["eth0", "eth0.999", ""])
def test_remove_vlan_refuses_what_is_no_vlan_of_lbadmins_and_changes_nothing(
        webui, stored, monkeypatch, name):
    store_vlan_eth0_100(monkeypatch)
    monkeypatch.setattr(services, "ask_dataplane", lambda *a, **k: pytest.fail("applied"))
    page = remove_vlan(webui, name)
    assert f"{name or '(no name)'} is not a VLAN lbadmin made" in page
    assert "Nothing was changed." in page and "removed." not in page
    assert NetworkConfiguration.load().interfaces == STORED
    assert NetworkConfiguration.load().vlans == [["eth0", 100]]


def test_remove_vlan_removes_lbadmins_vlan_and_its_settings(webui, stored, fake_worker,
                                                            monkeypatch):
    store_vlan_eth0_100(monkeypatch,
                        STORED | {"eth0.100": {"addresses": ["203.0.113.1/24"]}})
    page = remove_vlan(webui, "eth0.100")
    assert "VLAN eth0.100 removed." in page
    assert NetworkConfiguration.load().vlans == []
    assert NetworkConfiguration.load().interfaces == STORED


# Finding 11: the kernel's refusals in the administrator's words, the kernel's after them

@pytest.mark.parametrize(("step", "words"), [
    (("route", "10.0.0.0/8 via 192.0.2.9", "routes", errno.ENETUNREACH,
      "Network is unreachable"),
     "The kernel refused 10.0.0.0/8 via 192.0.2.9: the gateway is not reachable: no address "
     "of the appliance is on its subnet (kernel: Network is unreachable)."),
    (("route", "198.51.100.0/24 via 192.0.2.110", "routes", errno.EEXIST, "File exists"),
     "The kernel refused 198.51.100.0/24 via 192.0.2.110: there is a route to that "
     "destination already (the kernel's own subnet route, or one lbadmin did not add): "
     "lbadmin does not replace it (kernel: File exists)."),
    (("mtu", "MTU 9000 on eth1", "mtu_eth1", errno.EINVAL, "Invalid argument"),
     "The kernel refused MTU 9000 on eth1: the interface does not take this MTU (its "
     "driver's limits) (kernel: Invalid argument)."),
    (("mtu", "MTU 9000 on eth1", "mtu_eth1", errno.ERANGE, "Numerical result out of range"),
     "The kernel refused MTU 9000 on eth1: the MTU is outside the range this interface takes "
     "(kernel: Numerical result out of range)."),
    (("address", "198.51.100.1/24 on eth1", "addresses_eth1", errno.EINVAL,
      "Invalid argument"),
     "The kernel refused 198.51.100.1/24 on eth1: the kernel does not take this address on "
     "this interface (kernel: Invalid argument)."),
    (("link", "the settings of eth9", "addresses_eth9", errno.ENODEV, "No such device"),
     "The kernel refused the settings of eth9: there is no such interface on the appliance "
     "(kernel: No such device)."),
    (("vlan", "VLAN eth0.100", "vlan_id", errno.EEXIST, "File exists"),
     "The kernel refused VLAN eth0.100: an interface of that name exists already (kernel: "
     "File exists)."),
    (("route", "10.0.0.0/8 via 192.0.2.9", "routes", 9999, "Something new"),
     "The kernel refused 10.0.0.0/8 via 192.0.2.9: the kernel refused it (kernel: Something "
     "new)."),
])
def test_kernel_refusals_are_told_in_words_with_the_kernels_after_them(step, words):
    assert kernel.in_words(netlink.StepRefused(*step)) == words


def test_a_refused_step_names_its_field_and_the_previous_settings_are_put_back(monkeypatch):
    applied = []
    monkeypatch.setattr(kernel, "read_current", lambda config: "before")

    def refusing(config):
        applied.append(config)
        if config != "before":
            raise netlink.StepRefused("route", "10.0.0.0/8 via 192.0.2.9", "routes",
                                      errno.ENETUNREACH, "Network is unreachable")

    monkeypatch.setattr(kernel, "_apply", refusing)
    assert tasks.apply_network({"routes": []}) == {
        "ok": False, "field": "routes",
        "error": "The kernel refused 10.0.0.0/8 via 192.0.2.9: the gateway is not reachable: "
                 "no address of the appliance is on its subnet (kernel: Network is "
                 "unreachable)."}
    assert applied == [{"routes": []}, "before"]


def test_the_routing_page_shows_a_kernel_refusal_next_to_static_routes(webui, stored,
                                                                        monkeypatch):
    monkeypatch.setattr(network_views, "live_interfaces", lambda: (LIVE, ""))
    monkeypatch.setattr(services, "ask_dataplane", lambda task, **kwargs: {
        "ok": False, "field": "routes",
        "error": "The kernel refused 10.0.0.0/8 via 192.0.2.9: the gateway is not reachable "
                 "(kernel: Network is unreachable)."})
    page = webui.post(reverse("local:routing"), {
        "gateway4": "", "gateway6": "", "routes": "10.0.0.0/8 192.0.2.9"}).content.decode()
    assert field_errors(page, "routes") == (
        "The kernel refused 10.0.0.0/8 via 192.0.2.9: the gateway is not reachable (kernel: "
        "Network is unreachable). The previous settings stay.")
    assert NetworkConfiguration.load().routes == []


# Finding 3: View Configuration › Network Configuration shows the live routes

def test_view_configuration_shows_the_live_routes_the_kernels_own_included(webui, stored,
                                                                           monkeypatch):
    monkeypatch.setattr(report_views, "live_interfaces", lambda: ([], ""))
    monkeypatch.setattr(report_views, "ask_dataplane", lambda task: [
        {"destination": "198.51.100.0/24", "gateway": "", "device": "eth1", "proto": "kernel",
         "scope": "link", "metric": None, "source": "198.51.100.1", "lbadmin": False,
         "family": 4},
        {"destination": "10.20.0.0/16", "gateway": "192.0.2.110", "device": "eth0",
         "proto": "lbadmin", "scope": "universe", "metric": None, "source": "",
         "lbadmin": True, "family": 4}])
    page = webui.get(reverse("view:network")).content.decode()
    table = page[page.index('id="live-routes"'):]
    assert "<code>198.51.100.0/24</code>" in table and "kernel" in table
    assert "<code>10.20.0.0/16</code>" in table and "<strong>lbadmin</strong>" in table


def test_a_backup_routing_one_destination_twice_is_refused_naming_the_second_route():
    stored = NetworkConfiguration.load()
    stored.interfaces = {"eth0": {"addresses": ["192.0.2.1/24"], "mtu": 1500}}
    stored.routes = [{"destination": "10.0.0.0/8", "gateway": "192.0.2.2"}]
    stored.save()
    data = backup.export_xml().replace(
        b'<route destination="10.0.0.0/8" gateway="192.0.2.2" />',
        b'<route destination="10.0.0.0/8" gateway="192.0.2.2" />'
        b'<route destination="10.0.0.0/8" gateway="192.0.2.3" />')
    with pytest.raises(backup.BackupError) as refused:
        backup.restore(backup.parse(data), "tester")
    assert str(refused.value).startswith(
        '<route destination="10.0.0.0/8" gateway="192.0.2.3">: Static Routes: Line 2: '
        "10.0.0.0/8 is routed on line 1 already")
    assert NetworkConfiguration.load().routes == stored.routes


def test_a_backup_whose_interfaces_leave_the_real_servers_unconnected_is_refused():
    stored = NetworkConfiguration.load()
    stored.interfaces = {"eth0": {"addresses": ["192.0.2.1/24"], "mtu": 1500},
                         "eth1": {"addresses": ["198.51.100.1/24"], "mtu": 1500}}
    stored.save()
    service = VirtualService.objects.create(label="VNA", vip="198.51.100.100", ports="12000")
    RealServer.objects.create(service=service, label="PrimaryCluster", ip="192.0.2.110")
    data = backup.export_xml().replace(b"<address>192.0.2.1/24</address>",
                                       b"<address>203.0.113.1/24</address>")
    with pytest.raises(backup.BackupError) as refused:
        backup.restore(backup.parse(data), "tester")
    assert str(refused.value) == (
        "<network>: This change removes every address of 192.0.2.0/24 from eth0: the real "
        "server “PrimaryCluster” of “VNA” (192.0.2.110) would be unreachable.")
    assert NetworkConfiguration.load().interfaces == stored.interfaces
    assert RealServer.objects.filter(label="PrimaryCluster").exists()
