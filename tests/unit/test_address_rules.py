"""One address, one use (issue 11, findings 1 and 2): every writer of Cluster Configuration —
the WebUI's forms and a restore, which builds the same forms — refuses an address another
object already holds, in words naming that object, next to the field; the legitimate shares
(a VIP on several services, a real server behind several services, a fallback that is another
service's real server) are accepted."""

import html as html_module
import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from clusters import views as cluster_views
from clusters.dataplane.desired import from_database
from clusters.dataplane.render import full_script, render
from clusters.forms import FloatingIPForm, RealServerForm, VirtualServiceForm
from clusters.models import FloatingIP, RealServer, VirtualService
from maintenance import backup
from network.forms import InterfacesForm, connected_networks, listing_of
from network.models import NetworkConfiguration

pytestmark = pytest.mark.django_db

GUIDE_PORTS = "12000,12100,12200,12300,12301,12950,12800"
SERVICE = {
    "label": "VNA", "vip": "198.51.100.100", "ports": GUIDE_PORTS, "protocol": "tcp",
    "forwarding": "nat", "scheduler": "wrr", "persistence_timeout": "300", "check_type": "on",
    "check_request": "/", "check_interval": "30", "check_timeout": "5", "failure_count": "10",
    "on_failure": "keep", "fallback_ip": "192.0.2.120", "fallback_port": "0",
    "fallback_masq": "on",
}
SERVER = {"label": "PrimaryCluster", "ip": "192.0.2.110", "port": "", "weight": "100",
          "min_connections": "0", "max_connections": "0"}
# A second service, on another VIP and one port, for the pairs between two services.
OTHER = {"label": "Worklist", "vip": "198.51.100.101", "ports": "104", "fallback_ip": ""}
INTERFACES = {"eth0": {"addresses": ["192.0.2.1/24"], "mtu": None},
              "eth1": {"addresses": ["198.51.100.1/24"], "mtu": None}}

PRIMARY = "192.0.2.110 is already the real server “PrimaryCluster” of “VNA”."
FALLBACK = "192.0.2.120 is already the fallback server of “VNA”."
VIP_OF_VNA = "198.51.100.100 is already the VIP of virtual service “VNA”."
FLOATING = "192.0.2.254 is already a floating IP."
ETH0 = "192.0.2.1 is already the address of interface eth0."


def save(form):
    assert form.is_valid(), form.errors
    return form.save()


def service_form(instance=None, **changes):
    return VirtualServiceForm(SERVICE | changes, instance=instance or VirtualService())


def server_form(service, instance=None, **changes):
    return RealServerForm(SERVER | changes, instance=instance or RealServer(service=service),
                          service=service)


def floating_form(address):
    return FloatingIPForm({"address": address},
                          networks=connected_networks([], NetworkConfiguration.load().interfaces))


def interfaces_form(eth0="192.0.2.1/24", eth1="198.51.100.1/24"):
    return InterfacesForm({"addresses_eth0": eth0, "addresses_eth1": eth1, "mtu_eth0": "",
                           "mtu_eth1": ""}, interfaces=listing_of(["eth0", "eth1"]),
                          configured=NetworkConfiguration.load().interfaces)


@pytest.fixture
def vna():
    """The guide's VNA (VIP, fallback = the secondary), PrimaryCluster behind it, the
    floating IP and the appliance's interfaces as the dataplane worker records them."""
    stored = NetworkConfiguration.load()
    stored.interfaces = INTERFACES
    stored.save()
    service = save(service_form())
    save(server_form(service))
    FloatingIP.objects.create(address="192.0.2.254")
    return service


def refusal(form, field):
    assert not form.is_valid()
    return " ".join(form.errors.get(field, []))


# --- A virtual service: its VIP (finding 1) and its fallback server ---------------------------

@pytest.mark.parametrize(("vip", "words"), [
    ("192.0.2.110", PRIMARY),  # finding 1: the primary's address becomes the lb's own
    ("192.0.2.120", FALLBACK),
    ("192.0.2.254", FLOATING),
    ("192.0.2.1", ETH0),
    ("198.51.100.1", "198.51.100.1 is already the address of interface eth1."),
])
def test_a_new_services_vip_held_by_another_object_is_refused_naming_it(vna, vip, words):
    form = service_form(**OTHER | {"vip": vip})
    assert refusal(form, "vip") == words
    assert VirtualService.objects.count() == 1


def test_a_services_vip_cannot_become_its_own_real_servers_address(vna):
    assert refusal(service_form(vna, vip="192.0.2.110"), "vip") == PRIMARY
    assert VirtualService.objects.get().vip == "198.51.100.100"


@pytest.mark.parametrize(("fallback", "words"), [
    ("198.51.100.100", VIP_OF_VNA),
    ("192.0.2.254", FLOATING),
    ("192.0.2.1", ETH0),
])
def test_a_fallback_held_by_a_vip_a_floating_ip_or_an_interface_is_refused(vna, fallback,
                                                                           words):
    form = service_form(**OTHER | {"fallback_ip": fallback})
    assert refusal(form, "fallback_ip") == words


def test_a_services_fallback_cannot_be_its_own_vip(vna):
    assert refusal(service_form(vna, fallback_ip="198.51.100.100"), "fallback_ip") == \
        "The fallback server cannot be the virtual service's own address."


def test_a_service_keeps_its_own_addresses_and_may_swap_them(vna):
    """Its own stored VIP and fallback are replaced by the form's values: no clash with
    themselves, and the check sees the new fallback, not the stored one."""
    save(service_form(vna, ports="12000"))
    service = save(service_form(vna, vip="192.0.2.120", fallback_ip="192.0.2.121"))
    assert (service.vip, service.fallback_ip) == ("192.0.2.120", "192.0.2.121")
    assert refusal(service_form(vna, vip="192.0.2.121", fallback_ip="192.0.2.121"),
                   "fallback_ip") == "The fallback server cannot be the virtual service's " \
                                     "own address."


# --- A real server ----------------------------------------------------------------------------

@pytest.mark.parametrize(("ip", "words"), [
    ("198.51.100.100", VIP_OF_VNA),
    ("192.0.2.254", FLOATING),
    ("192.0.2.1", ETH0),
])
def test_a_real_server_held_by_a_vip_a_floating_ip_or_an_interface_is_refused(vna, ip, words):
    other = save(service_form(**OTHER))
    assert refusal(server_form(other, ip=ip), "ip") == words
    assert not other.real_servers.exists()


def test_a_real_server_on_its_own_services_vip_is_refused(vna):
    assert refusal(server_form(vna, label="Self", ip="198.51.100.100"), "ip") == \
        "A real server cannot have the virtual service's own address."


def test_a_real_server_cannot_move_onto_another_services_vip(vna):
    other = save(service_form(**OTHER))
    primary = RealServer.objects.get(label="PrimaryCluster")
    assert refusal(server_form(vna, primary, ip="198.51.100.101"), "ip") == \
        "198.51.100.101 is already the VIP of virtual service “Worklist”."
    assert save(server_form(vna, primary, weight="50")).ip == "192.0.2.110"  # its own address
    assert not other.real_servers.exists()


# --- A floating IP (finding 2) and an interface address -----------------------------------

@pytest.mark.parametrize(("address", "words"), [
    ("192.0.2.110", PRIMARY),  # finding 2: the same outage as finding 1
    ("192.0.2.120", FALLBACK),
    ("198.51.100.100", VIP_OF_VNA),
    # ...and the appliance's own address: Network Interface Configuration could never be
    # saved again
    ("192.0.2.1", ETH0),
])
def test_a_floating_ip_held_by_another_object_is_refused_naming_it(vna, address, words):
    assert refusal(floating_form(address), "address") == words
    assert list(FloatingIP.objects.values_list("address", flat=True)) == ["192.0.2.254"]
    assert interfaces_form().is_valid()


@pytest.mark.parametrize(("eth0", "words"), [
    ("192.0.2.110/24", PRIMARY),
    ("192.0.2.120/24", FALLBACK),
    ("192.0.2.254/24", FLOATING),
])
def test_an_interface_address_held_by_another_object_is_refused_naming_it(vna, eth0, words):
    assert refusal(interfaces_form(eth0=eth0), "addresses_eth0") == words


def test_the_interfaces_record_made_at_first_start_is_what_the_rule_reads(vna):
    """The dataplane worker records the interfaces at its first start; before that nothing is
    known of them, and once recorded the appliance's own address is refused to every kind."""
    NetworkConfiguration.objects.all().delete()
    assert floating_form("192.0.2.1").errors["address"] == [
        "192.0.2.1 is outside every connected subnet: no interface could bring it up."]
    stored = NetworkConfiguration.load()
    stored.interfaces = INTERFACES
    stored.save()
    assert refusal(floating_form("192.0.2.1"), "address") == ETH0
    assert refusal(service_form(**OTHER | {"vip": "192.0.2.1"}), "vip") == ETH0
    assert refusal(server_form(vna, label="Self", ip="192.0.2.1"), "ip") == ETH0


# --- The legitimate shares --------------------------------------------------------------------

def test_one_vip_may_serve_several_services_on_different_ports(vna):
    save(service_form(label="HL7", ports="2575"))
    assert VirtualService.objects.filter(vip="198.51.100.100").count() == 2
    assert "already takes some of these ports" in refusal(
        service_form(label="Admin", ports="12000"), "ports")


def test_one_real_server_may_serve_several_services(vna):
    other = save(service_form(**OTHER))
    save(server_form(other))
    assert RealServer.objects.filter(ip="192.0.2.110").count() == 2


def test_a_fallback_may_be_another_services_real_server_and_the_other_way_round(vna):
    other = save(service_form(**OTHER | {"fallback_ip": "192.0.2.110"}))
    save(server_form(other, label="SecondaryCluster", ip="192.0.2.120"))
    save(server_form(vna, label="Backup", ip="192.0.2.120"))  # its own fallback, too
    assert other.fallback_ip == "192.0.2.110"


# --- The WebUI: the refusal next to its field, nothing saved ----------------------------------

@pytest.fixture
def admin(client, settings, tmp_path):
    settings.REDIS_URL = f"unix://{tmp_path}/nothing.sock"
    settings.CELERY_BROKER_URL = f"redis+socket://{tmp_path}/nothing.sock"
    user = get_user_model().objects.create_user("loadbalancer", password="a-Long-test-pass")
    client.force_login(user)
    return client


def field_error(response, field):
    page = response.content.decode()
    start = page.index(f'id="field-{field}"')
    block = page[start:page.index("</div>", start)]
    return " ".join(html_module.unescape(p) for p in
                    re.findall(r'class="field-error" role="alert">(.*?)</p>', block))


def test_the_webui_shows_each_refusal_next_to_its_field(admin, vna, monkeypatch):
    response = admin.post(reverse("cluster:virtual-service-add"),
                          SERVICE | OTHER | {"vip": "192.0.2.110", "fallback_ip": "192.0.2.254"})
    assert response.status_code == 200
    assert field_error(response, "vip") == PRIMARY
    assert field_error(response, "fallback_ip") == FLOATING
    other = save(service_form(**OTHER))
    response = admin.post(reverse("cluster:real-server-add", args=[other.pk]),
                          SERVER | {"ip": "198.51.100.100"})
    assert field_error(response, "ip") == VIP_OF_VNA
    monkeypatch.setattr(cluster_views, "live_interfaces", lambda: ([], ""))
    response = admin.post(reverse("cluster:floating-ips"), {"address": "192.0.2.110"})
    assert field_error(response, "address") == PRIMARY
    assert VirtualService.objects.count() == 2 and RealServer.objects.count() == 1
    assert FloatingIP.objects.count() == 1


# --- A restore builds the same forms: refused naming the element, nothing changed -----------

def snapshot():
    return (list(VirtualService.objects.values()), list(RealServer.objects.values()),
            list(FloatingIP.objects.values_list("address", flat=True)),
            list(NetworkConfiguration.objects.values()), full_script(render(from_database())))


def without_interfaces(data):
    return re.sub(rb"<interface .*?</interface>", b"", data, flags=re.DOTALL)


@pytest.mark.parametrize("shape", [lambda data: data, without_interfaces],
                         ids=["with interfaces", "without interfaces"])
def test_a_backup_whose_floating_ip_is_a_real_server_is_refused(vna, shape):
    data = shape(backup.export_xml()).replace(b'address="192.0.2.254"',
                                              b'address="192.0.2.110"')
    before = snapshot()
    with pytest.raises(backup.BackupError) as refused:
        backup.restore(backup.parse(data), "tester")
    assert str(refused.value) == f'<floating-ip address="192.0.2.110">: New Floating IP: {PRIMARY}'
    assert snapshot() == before


def test_a_backup_whose_floating_ip_is_an_interface_address_is_refused(vna):
    data = backup.export_xml().replace(b'address="192.0.2.254"', b'address="192.0.2.1"')
    with pytest.raises(backup.BackupError) as refused:
        backup.restore(backup.parse(data), "tester")
    # the file's own interfaces replace this appliance's, so the clash is found between the
    # file's eth0 and the file's floating IP
    assert str(refused.value) == '<interface name="eth0">: eth0: 192.0.2.1 is already a ' \
        'floating IP.'


def service_element(label, vip):
    """A second <virtual-service> for the file, on one port, with no fallback."""
    return (f'<virtual-service id="99" label="{label}" vip="{vip}" ports="104" protocol="tcp" '
            'forwarding="nat" scheduler="wrr" persistent="false" persistence_timeout="300" '
            'check_type="on" check_script="" check_port="" check_request="/" check_host="" '
            'check_expect="" check_interval="30" check_timeout="5" failure_count="10" '
            'on_failure="keep" fallback_ip="" fallback_port="0" fallback_masq="false" />'
            ).encode()


@pytest.mark.parametrize(("where", "words"), [
    # after VNA in the file (restored in the file's order): its VIP meets VNA's real server
    (b"</lbadmin-backup>",
     f'<virtual-service label="Worklist">: Virtual Service IP Address: {PRIMARY}'),
    # before VNA: VNA's real server meets its VIP
    (b"<virtual-service ",
     '<virtual-service label="VNA"> <real-server label="PrimaryCluster">: Real Server IP '
     "Address: 192.0.2.110 is already the VIP of virtual service “Worklist”."),
], ids=["after VNA", "before VNA"])
def test_a_backup_whose_vip_is_a_real_server_is_refused_naming_the_element(vna, where, words):
    data = backup.export_xml()
    assert data.count(where) == 1
    data = data.replace(where, service_element("Worklist", "192.0.2.110") + where)
    before = snapshot()
    with pytest.raises(backup.BackupError) as refused:
        backup.restore(backup.parse(data), "tester")
    assert str(refused.value) == words
    assert snapshot() == before


def test_a_backup_with_the_legitimate_shares_is_restored_as_it_was(vna):
    save(service_form(label="HL7", ports="2575", fallback_ip="192.0.2.110"))
    save(server_form(VirtualService.objects.get(label="HL7"), label="Same", ip="192.0.2.110"))
    before = snapshot()
    backup.restore(backup.parse(backup.export_xml()), "tester")
    assert snapshot() == before
