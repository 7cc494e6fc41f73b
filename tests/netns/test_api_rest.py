"""The REST API on a real stack: a Python client (the standard library's HTTPS, as a script
would) makes the guide's deployment (6.1.1, 6.1.3 b and c) through /api/v1/ over gunicorn, waits
until its configuration generation is applied, and real connections from the lab's client
reach the primary on the seven ports; Halt sends them to the secondary; Online brings them
back."""

import http.client
import json
import ssl
import subprocess

import pytest

from lab import (
    CLIENT_ADDRESS,
    GUIDE_PORTS,
    LB_EXTERNAL_ADDRESS,
    LB_INTERNAL_ADDRESS,
    PRIMARY_ADDRESS,
    SECONDARY_ADDRESS,
    VIP,
)
from tests.conftest import running_stack
from tests.stacks import in_stack, wait_for

from .traffic import connect_many

pytestmark = pytest.mark.netns
ETH1_ADDRESS = f"{LB_EXTERNAL_ADDRESS}/24"

MAKE_KEY = """
from django.conf import settings
from django.contrib.auth import get_user_model
from api import keys
from api.models import ApiKey
user = get_user_model().objects.get(username=settings.APPLIANCE_USER)
print(keys.do_create_key(ApiKey(user=user, name="netns-test"), user))
"""


class RestClient:
    """/api/v1/ over HTTPS with a key, one keep-alive connection (a script's client)."""

    def __init__(self, port, key):
        self.port, self.key = port, key
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the appliance's self-signed certificate
        self.connection = http.client.HTTPSConnection("127.0.0.1", port, context=context,
                                                      timeout=30)

    def call(self, method, path, body=None, key=True):
        headers = {"Host": f"127.0.0.1:{self.port}", "Accept": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {self.key}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.connection.request(method, f"/api/v1{path}", body=data, headers=headers)
        response = self.connection.getresponse()
        text = response.read().decode()
        return response.status, json.loads(text) if text else None, dict(response.getheaders())


@pytest.fixture(scope="module")
def stack():
    with running_stack() as started:
        yield started


@pytest.fixture(scope="module")
def rest(stack):
    client = RestClient(stack.https_port, in_stack(stack, MAKE_KEY))
    yield client
    client.connection.close()


def answers(lab):
    return [tuple(a.split()[i] for i in (0, 2, 4))
            for a in connect_many(lab, VIP, GUIDE_PORTS, len(GUIDE_PORTS))]


def wait_applied(rest, generation):
    def applied():
        status, state, _ = rest.call("GET", "/apply-state")
        return status == 200 and state["applied_generation"] is not None and \
            state["applied_generation"] >= generation and state["state"] == "applied"

    assert wait_for(applied, 30, every=0.1), rest.call("GET", "/apply-state")


def eth1_addresses(stack):
    """eth1's IPv4 addresses in the appliance's namespace, as the kernel has them."""
    shown = subprocess.run([*stack.lab.exec_prefix(stack.lab_role), "ip", "-o", "-4", "addr",
                            "show", "dev", "eth1"], capture_output=True, text=True, check=True,
                           timeout=30).stdout
    return {line.split()[3] for line in shown.splitlines()}


def test_the_guides_deployment_through_the_rest_api_carries_traffic(stack, rest):
    status, body, _ = rest.call("GET", "/virtual-services", key=False)
    assert status == 401 and "No valid API key" in body["errors"]["__all__"][0]
    # the guide's starting point: eth1 without an address (in the kernel and the configuration)
    status, body, _ = rest.call("PATCH", "/network/interfaces", {"eth1": {"addresses": []}})
    assert status == 200, body
    assert ETH1_ADDRESS not in eth1_addresses(stack)
    # 6.1.1: eth1's address in CIDR form (Configure Interfaces); a bad one in the form's words
    status, refused, _ = rest.call("PATCH", "/network/interfaces",
                                   {"eth1": {"addresses": [LB_EXTERNAL_ADDRESS]}})
    assert status == 400 and refused["errors"]["addresses_eth1"] == [
        f"\u201c{LB_EXTERNAL_ADDRESS}\u201d: give the address in CIDR form, e.g. "
        "198.51.100.1/24."]
    status, body, _ = rest.call("PATCH", "/network/interfaces",
                                {"eth1": {"addresses": [ETH1_ADDRESS]}})
    assert status == 200, body
    assert body["configured"]["interfaces"]["eth1"]["addresses"] == [ETH1_ADDRESS]
    assert ETH1_ADDRESS in eth1_addresses(stack)
    # 6.1.3 b: Add a new Virtual Service (protocol TCP and forwarding NAT are the defaults)
    status, service, _ = rest.call("POST", "/virtual-services", {
        "label": "VNA", "vip": VIP, "ports": ",".join(map(str, GUIDE_PORTS))})
    assert status == 201, service
    # a refusal in the form's words, over the wire too
    status, refused, _ = rest.call("POST", f"/virtual-services/{service['id']}/real-servers",
                                   {"label": "Bad", "ip": "192.0.2.999"})
    assert status == 400 and refused["errors"]["ip"] == [
        "\u201c192.0.2.999\u201d is not an IPv4 address such as 192.0.2.10."]
    # 6.1.3 c: Modify: the fallback server (the secondary, port 0, MASQ), then the real server
    status, _, _ = rest.call("PATCH", f"/virtual-services/{service['id']}", {
        "fallback_ip": SECONDARY_ADDRESS, "fallback_port": 0, "fallback_masq": True})
    assert status == 200
    status, server, headers = rest.call(
        "POST", f"/virtual-services/{service['id']}/real-servers",
        {"label": "PrimaryCluster", "ip": PRIMARY_ADDRESS})
    assert status == 201, server
    wait_applied(rest, int(headers["X-Config-Generation"]))
    assert answers(stack.lab) == [("primary", str(p), CLIENT_ADDRESS) for p in GUIDE_PORTS]

    # the guide's 7.2 through the API: Halt moves the traffic to the (MASQ) fallback ...
    status, halted, _ = rest.call("POST", f"/real-servers/{server['id']}/halt")
    assert status == 200 and halted["state"] == "halt"
    wait_applied(rest, halted["generation"])
    assert answers(stack.lab) == [("secondary", str(p), LB_INTERNAL_ADDRESS)
                                  for p in GUIDE_PORTS]
    # ... and Online brings it back
    status, online, _ = rest.call("POST", f"/real-servers/{server['id']}/online")
    assert status == 200
    wait_applied(rest, online["generation"])
    assert answers(stack.lab) == [("primary", str(p), CLIENT_ADDRESS) for p in GUIDE_PORTS]

    user_log = in_stack(stack, "from core.models import AuditEntry\n"
                               "print(AuditEntry.objects.filter(user__endswith='(API key "
                               "netns-test)').count())")
    # eth1 taken away and given back; add, modify, add server, halt, online
    assert int(user_log) == 7
