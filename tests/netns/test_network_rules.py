"""Issue 11's Local Configuration rules against the kernel of the lab's lb namespace, proven by
real connections from the client: the guide's VNA (VIP 198.51.100.100 → the primary
192.0.2.110) keeps serving because a bad change was refused (an interface prefix of /0, a
static route over a connected subnet) or held for confirmation and rolled back (emptying the
real servers' subnet); the kernel's own subnet routes survive adding and clearing routes.

The WebUI is Django's test client; its calls to the dataplane worker run the worker's tasks
in the lb namespace, as the worker does."""

import html
import subprocess

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from clusters.tasks import apply_dataplane
from lab import CLIENT_ADDRESS, VIP
from network import kernel
from network import services as network_services
from network import tasks as network_tasks
from network.models import NetworkConfiguration, PendingNetworkChange
from reports import views as report_views

from .conftest import inside
from .test_dataplane import real_server, served_by, vna_service
from .traffic import ask

pytestmark = pytest.mark.netns
RECORDED = {"eth0": ["192.0.2.1/24"], "eth1": ["198.51.100.1/24"]}


def routes(lab):
    return subprocess.run(["ip", "-n", lab.ns("lb"), "route"], capture_output=True, text=True,
                          check=True).stdout


def addresses(lab):
    return subprocess.run(["ip", "-n", lab.ns("lb"), "-br", "addr"], capture_output=True,
                          text=True, check=True).stdout


def subnet_routes_are_the_kernels(lab):
    listing = routes(lab)
    return "198.51.100.0/24 dev eth1 proto kernel" in listing and \
        "192.0.2.0/24 dev eth0 proto kernel" in listing


def vna_serves(lab):
    answer = ask(lab, VIP, 12000)
    return not answer.startswith("ERROR") and \
        served_by(answer) == ("primary", 12000, CLIENT_ADDRESS)


class Appliance:
    def __init__(self, lab, client, scheduled):
        self.lab, self.client, self.scheduled = lab, client, scheduled

    def post(self, name, data):
        """POST a Local Configuration page as the browser at 198.51.100.1 does; the page it
        ends on, unescaped."""
        response = self.client.post(reverse(name), data, follow=True,
                                    HTTP_HOST="198.51.100.1")
        return html.unescape(response.content.decode())

    def configure_interfaces(self, eth0, eth1):
        return self.post("local:interfaces", {
            "configure": "1", "addresses_eth0": eth0, "addresses_eth1": eth1,
            "mtu_eth0": "1500", "mtu_eth1": "1500"})

    def route(self, lines, gateway4=""):
        return self.post("local:routing", {"gateway4": gateway4, "gateway6": "",
                                           "routes": lines})


@pytest.fixture
def appliance(lab, dataplane, monkeypatch):
    """The guide's VNA on the lab; the interfaces recorded as the dataplane worker's first start
    records them; the WebUI's requests to the worker run its tasks in the lb namespace, the
    data plane is applied again after each network change (core.signals.network_applied) and
    the lock-out guard's roll-back is kept for the test to run when it likes."""

    def in_lb(task, **kwargs):
        with inside(lab.ns("lb")):
            return task(**kwargs)

    monkeypatch.setattr(network_services, "ask_dataplane", in_lb)
    monkeypatch.setattr(report_views, "ask_dataplane", in_lb)
    monkeypatch.setattr(apply_dataplane, "apply_async",
                        lambda *args, **kwargs: dataplane.apply(full=True))
    scheduled = []
    monkeypatch.setattr(network_tasks.roll_back_unconfirmed, "apply_async",
                        lambda args, countdown: scheduled.append(args[0]))
    with inside(lab.ns("lb")):
        assert network_tasks.apply_network_from_database() == {"ok": True}
    assert {name: s["addresses"] for name, s in NetworkConfiguration.load().interfaces.items()
            } == RECORDED
    real_server(vna_service())
    dataplane.apply(full=True)
    assert vna_serves(lab) and subnet_routes_are_the_kernels(lab)
    client = Client()
    client.force_login(get_user_model().objects.create_user("loadbalancer",
                                                            password="a-Long-test-pass"))
    return Appliance(lab, client, scheduled)


# Finding 5

def test_an_interface_prefix_of_0_is_refused_and_vna_keeps_serving(appliance, lab):
    page = appliance.configure_interfaces("192.0.2.1/24", "198.51.100.1/0")
    assert "198.51.100.1/0: the prefix /0 is too short for an interface address" in page
    assert "Applied." not in page
    assert "198.51.100.1/24" in addresses(lab) and "/0" not in addresses(lab)
    assert subnet_routes_are_the_kernels(lab)
    assert vna_serves(lab)


# Finding 3

def test_a_route_over_a_connected_subnet_is_refused_and_vna_keeps_serving(appliance, lab):
    page = appliance.route("198.51.100.0/24 192.0.2.110")
    assert "198.51.100.0/24 is eth1's own subnet: the kernel routes it already" in page
    assert "Applied." not in page
    assert NetworkConfiguration.load().routes == []
    assert "via 192.0.2.110" not in routes(lab) and subnet_routes_are_the_kernels(lab)
    assert vna_serves(lab)


def test_the_kernel_refuses_a_route_in_place_of_its_own_subnet_route_whoever_asks(appliance,
                                                                                 lab):
    """A writer that skipped the form (a configuration stored by an older release) cannot put
    a route in place of the kernel's subnet route: it is added, never replaced."""
    config = NetworkConfiguration.load().as_dict() | {
        "routes": [{"destination": "198.51.100.0/24", "gateway": "192.0.2.110"}]}
    with pytest.raises(kernel.NetworkError) as refused, inside(lab.ns("lb")):
        kernel.apply_network(config)
    assert str(refused.value) == (
        "The kernel refused 198.51.100.0/24 via 192.0.2.110: there is a route to that "
        "destination already (the kernel's own subnet route, or one lbadmin did not add): "
        "lbadmin does not replace it (kernel: File exists).")
    assert refused.value.field == "routes"
    assert subnet_routes_are_the_kernels(lab) and vna_serves(lab)


def test_the_subnet_routes_survive_adding_changing_and_clearing_routes(appliance, lab):
    # a route lbadmin did not add, to the same place as one it will: never deleted
    subprocess.run(["ip", "-n", lab.ns("lb"), "route", "add", "10.30.0.0/16", "via",
                    "192.0.2.120", "proto", "static"], check=True)
    page = appliance.route("10.20.0.0/16 192.0.2.110\n10.30.0.0/16 192.0.2.110")
    # the kernel refuses the second (another's route is there), in words, next to the field
    assert "The kernel refused 10.30.0.0/16 via 192.0.2.110: there is a route to that " \
           "destination already" in page and "(kernel: File exists). The previous settings " \
           "stay." in page
    assert "10.20.0.0/16" not in routes(lab)  # all of it or none of it
    assert "Applied." in appliance.route("10.20.0.0/16 192.0.2.110", gateway4="192.0.2.120")
    assert "10.20.0.0/16 via 192.0.2.110 dev eth0 proto 250" in routes(lab)
    assert "default via 192.0.2.120 dev eth0 proto 250" in routes(lab)
    # another gateway for the same destination: lbadmin's route is changed, nothing else
    assert "Applied." in appliance.route("10.20.0.0/16 192.0.2.120")
    assert "10.20.0.0/16 via 192.0.2.120 dev eth0 proto 250" in routes(lab)
    assert "default" not in routes(lab)
    assert "Applied." in appliance.route("")
    listing = routes(lab)
    assert "10.20.0.0" not in listing and "10.30.0.0/16 via 192.0.2.120 dev eth0 proto static" \
        in listing
    assert subnet_routes_are_the_kernels(lab) and vna_serves(lab)


def test_a_lost_subnet_route_is_put_back_by_the_next_apply(appliance, lab):
    """What a route over a connected subnet, then cleared, did before this release: the
    kernel's subnet route was gone for good. The next apply (any save, a worker start) puts it
    back."""
    subprocess.run(["ip", "-n", lab.ns("lb"), "route", "del", "198.51.100.0/24", "dev", "eth1"],
                   check=True)
    assert "198.51.100.0/24" not in routes(lab)
    with inside(lab.ns("lb")):  # the dataplane worker's start
        assert network_tasks.apply_network_from_database() == {"ok": True}
    assert subnet_routes_are_the_kernels(lab) and vna_serves(lab)
    assert "198.51.100.0/24 dev eth1 proto kernel scope link src 198.51.100.1" in routes(lab)


def test_view_configuration_shows_the_live_routes(appliance, lab):
    appliance.route("10.20.0.0/16 192.0.2.110")
    page = html.unescape(appliance.client.get(reverse("view:network")).content.decode())
    table = page[page.index('id="live-routes"'):page.index("</table>", page.index(
        'id="live-routes"'))]
    rows = [" ".join(row.split()) for row in table.split("<tr")]
    assert any("<code>198.51.100.0/24</code>" in row and "eth1" in row and "kernel" in row
               and "link" in row for row in rows), rows
    assert any("<code>10.20.0.0/16</code>" in row and "<code>192.0.2.110</code>" in row
               and "<strong>lbadmin</strong>" in row for row in rows), rows


# Finding 6

@pytest.mark.parametrize("eth0", ["", "fe80::1/64"])
def test_emptying_the_real_servers_subnet_is_held_then_rolled_back_and_vna_serves_again(
        appliance, lab, eth0):
    page = appliance.configure_interfaces(eth0, "198.51.100.1/24")
    assert "Applied." not in page
    assert "This change removes every address of 192.0.2.0/24 from eth0: " in page
    assert "the real server “PrimaryCluster” of “VNA” (192.0.2.110)" in page
    assert "a floating IP" not in page  # the lab's VNA has none
    assert "192.0.2.1/24" not in addresses(lab)  # applied, as the browser's guard does…
    assert not vna_serves(lab)  # …and the archive is down until it is confirmed or undone
    pending = PendingNetworkChange.objects.get()
    assert appliance.scheduled == [pending.token]
    with inside(lab.ns("lb")):  # the worker, when NETWORK_CONFIRM_SECONDS are up
        assert network_tasks.roll_back_unconfirmed(pending.token) == "rolled back"
    assert "192.0.2.1/24" in addresses(lab)
    assert {name: s["addresses"] for name, s in NetworkConfiguration.load().interfaces.items()
            } == RECORDED
    assert subnet_routes_are_the_kernels(lab) and vna_serves(lab)
