"""The guide's deployment (6.1.1–6.1.3) through the commercial surface, on a whole running
appliance, each time from eth1 without its address: once with `lbcli` commands in a shell
script run inside the appliance (its namespace, the service user), once with one curl to
/api/v2/ through the real gunicorn (the X_LB_APIKEY header spelt with underscores, as the
commercial clients send it). Each time the kernel has eth1's address afterwards and real
traffic from the lab's client reaches the primary on the seven ports; `halt` moves it to the
secondary (the fallback server); `online` brings it back."""

import base64
import http.client
import json
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lab import (
    FLOATING_IP,
    GUIDE_PORTS,
    LB_EXTERNAL_ADDRESS,
    PRIMARY_ADDRESS,
    SECONDARY_ADDRESS,
    VIP,
)
from tests.conftest import running_stack
from tests.stacks import in_stack, wait_for

from .traffic import connect_many

pytestmark = pytest.mark.netns
PORTS = ",".join(map(str, GUIDE_PORTS))
LBCLI = Path(sys.executable).with_name("lbcli")

# 6.1.1: each test first takes eth1's address away (through lbcli, so the configuration says
# so too), then the deployment gives it back, as the guide's administrator types it.
ETH1_ADDRESS = f"{LB_EXTERNAL_ADDRESS}/24"
DEPLOY_SCRIPT = textwrap.dedent(f"""\
    #!/bin/sh
    set -e
    # 6.1.1 Network Configuration: eth1's address in CIDR form (Configure Interfaces)
    "$LBCLI" --action interface --interface eth1 --ip {ETH1_ADDRESS}
    # 6.1.2 Floating IP Configuration (the cluster's default gateway)
    "$LBCLI" --action add-floating-ip --ip {FLOATING_IP}
    # 6.1.3 b) the Virtual Service VNA, Layer 4 NAT on the seven ports
    "$LBCLI" --action add-vip --layer 4 --vip VNA --ip {VIP} --ports {PORTS} \\
        --protocol tcp --forwarding masq
    # 6.1.3 b) 9.-12. Modify: manual failover (No checks, Always On), the fallback server
    "$LBCLI" --action edit-vip --vip VNA --check_type on --fallback_ip {SECONDARY_ADDRESS} \\
        --fallback_port 0 --fallback_masq on
    # 6.1.3 c) the Real Server PrimaryCluster, its port left blank
    "$LBCLI" --action add-rip --vip VNA --rip PrimaryCluster --ip {PRIMARY_ADDRESS} \\
        --weight 100 --minconns 0 --maxconns 0
    "$LBCLI" --action list --function virtual
""")

DEPLOYMENT_CALLS = [
    {"action": "interface", "interface": "eth1", "ip": ETH1_ADDRESS},
    {"action": "add-floating-ip", "ip": FLOATING_IP},
    {"action": "add-vip", "layer": "4", "vip": "VNA", "ip": VIP, "ports": PORTS,
     "protocol": "tcp", "forwarding": "masq"},
    {"action": "edit-vip", "vip": "VNA", "check_type": "on", "fallback_ip": SECONDARY_ADDRESS,
     "fallback_port": "0", "fallback_masq": "on"},
    {"action": "add-rip", "vip": "VNA", "rip": "PrimaryCluster", "ip": PRIMARY_ADDRESS,
     "weight": "100", "minconns": "0", "maxconns": "0"},
]

NEW_KEY = """
from django.contrib.auth import get_user_model
from api import keys
from api.models import ApiKey
user = get_user_model().objects.get(username="loadbalancer")
print(keys.do_create_key(ApiKey(user=user, name="deploy"), by=user))
"""

CONFIGURATION = """
from clusters.models import FloatingIP, VirtualService, ConfigGeneration
from core.models import AuditEntry
from maintenance.models import Revision
print(VirtualService.objects.count(), FloatingIP.objects.count(), Revision.objects.count(),
      ConfigGeneration.current())
"""


@pytest.fixture(scope="module")
def stack():
    with running_stack() as started:
        yield started


@pytest.fixture(scope="module")
def key(stack):
    return in_stack(stack, NEW_KEY).splitlines()[-1]


def lbcli_in_appliance(stack, *args, script=None):
    """`lbcli` (or a shell script calling it as $LBCLI, given on sh's standard input) inside
    the appliance: its namespace, the service user, the services' environment."""
    command = [*stack.lab.exec_prefix(stack.lab_role), *stack.as_service("worker-maintenance")]
    command += ["/bin/sh", "-s"] if script else [str(LBCLI), *args]
    return subprocess.run(command, cwd=stack.code_dir, capture_output=True, text=True,
                          input=script, timeout=300,
                          env={**stack.code_env(), **stack.lab_env(), "LBCLI": str(LBCLI)})


def eth1_addresses(stack):
    """eth1's IPv4 addresses in the appliance's namespace, as the kernel has them."""
    shown = subprocess.run([*stack.lab.exec_prefix(stack.lab_role), "ip", "-o", "-4", "addr",
                            "show", "dev", "eth1"], capture_output=True, text=True, check=True,
                           timeout=30).stdout
    return {line.split()[3] for line in shown.splitlines()}


def without_eth1s_address(stack):
    """The guide's starting point for 6.1.1: eth1 without an address (in the kernel and the
    configuration), made through lbcli's own action."""
    removed = lbcli_in_appliance(stack, "--action", "interface", "--interface", "eth1",
                                 "--ip", "")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert ETH1_ADDRESS not in eth1_addresses(stack)


def root_owned(directory):
    return {path for path in directory.rglob("*") if path.lstat().st_uid == 0}


def served(stack):
    """Who answers each of the seven ports from the lab's client, e.g. {'primary'}."""
    return {answer.split()[0] for answer in connect_many(stack.lab, VIP, GUIDE_PORTS, 7)}


def curl_v2(stack, key, calls, header="X_LB_APIKEY"):
    """One curl from the host to the appliance's gunicorn (its forwarded HTTPS port)."""
    result = subprocess.run(
        ["curl", "-sk", "--max-time", "60", "-u", f"loadbalancer:{stack.generated_password}",
         "-H", f"{header}: {base64.b64encode(key.encode()).decode()}",
         "-H", "Content-Type: application/json", "-X", "POST",
         "-w", "\\n%{http_code}", "--data-binary", json.dumps({"lbcli": calls}),
         f"https://127.0.0.1:{stack.https_port}/api/v2/"],
        capture_output=True, text=True, timeout=90, check=True)
    body, _, status = result.stdout.rpartition("\n")
    return int(status), json.loads(body)


def answers(document):
    return document["lbapi"][0]["itteration"][0]["lbcli"]


def test_the_guides_deployment_with_lbcli_in_a_shell_script(stack):
    without_eth1s_address(stack)
    result = lbcli_in_appliance(stack, script=DEPLOY_SCRIPT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ETH1_ADDRESS in eth1_addresses(stack)  # 6.1.1 made it, in the kernel
    listing = json.loads(result.stdout[result.stdout.rindex('{\n  "lbapi"'):])
    vna = answers(listing)[0]["data"][0]
    assert (vna["vip"], vna["ip"], vna["ports"], vna["fallback_ip"], vna["fallback_masq"]) == (
        "VNA", VIP, PORTS, SECONDARY_ADDRESS, "on")
    assert vna["rips"][0]["rip"] == "PrimaryCluster"
    assert wait_for(lambda: served(stack) == {"primary"}, 30, every=0.5), served(stack)

    halted = lbcli_in_appliance(stack, "--action", "halt", "--vip", "VNA", "--rip",
                                "PrimaryCluster")
    assert halted.returncode == 0, halted.stdout + halted.stderr
    assert wait_for(lambda: served(stack) == {"secondary"}, 20, every=0.2), served(stack)
    online = lbcli_in_appliance(stack, "--action", "online", "--vip", "VNA", "--rip",
                                "PrimaryCluster")
    assert online.returncode == 0, online.stdout + online.stderr
    assert wait_for(lambda: served(stack) == {"primary"}, 20, every=0.2), served(stack)
    # each lbcli run is the service user's, in the User Log under the system user's name
    log = in_stack(stack, "from core.models import AuditEntry\n"
                          "print(AuditEntry.objects.filter(action__contains='PrimaryCluster')"
                          ".values_list('user', flat=True).first())")
    assert log.startswith("lbcli (")

    # run as root, lbcli becomes the data directory's owner first: it leaves no root-owned file
    before = root_owned(stack.data_dir)
    as_root = subprocess.run([*stack.lab.exec_prefix(stack.lab_role), str(LBCLI), "--action",
                              "drain", "--vip", "VNA", "--rip", "PrimaryCluster"],
                             cwd=stack.code_dir, env={**stack.code_env(), **stack.lab_env()},
                             capture_output=True, text=True, timeout=120)
    assert as_root.returncode == 0, as_root.stdout + as_root.stderr
    assert root_owned(stack.data_dir) <= before

    # clean up for the next test, through lbcli too
    for args in (("--action", "delete-vip", "--vip", "VNA"),
                 ("--action", "delete-floating-ip", "--ip", FLOATING_IP)):
        removed = lbcli_in_appliance(stack, *args)
        assert removed.returncode == 0, removed.stdout + removed.stderr


def test_the_guides_deployment_with_one_curl_to_api_v2_through_gunicorn(stack, key):
    without_eth1s_address(stack)
    before = in_stack(stack, CONFIGURATION).split()
    assert before[:2] == ["0", "0"]  # the previous test removed what it made
    status, document = curl_v2(stack, key, DEPLOYMENT_CALLS)
    assert status == 200, document
    assert [a["status"] for a in answers(document)] == ["success"] * 5, document
    assert ETH1_ADDRESS in eth1_addresses(stack)  # 6.1.1 made it, in the kernel
    services, floating, revisions, generation = in_stack(stack, CONFIGURATION).split()
    assert (services, floating) == ("1", "1")
    # the network change first, alone (the kernel took it), then the batch: one revision each
    assert int(revisions) == int(before[2]) + 2
    assert int(generation) == int(before[3]) + 1  # one generation, so one apply
    assert wait_for(lambda: served(stack) == {"primary"}, 30, every=0.5), served(stack)

    status, document = curl_v2(stack, key, [{"action": "halt", "vip": "VNA",
                                             "rip": "PrimaryCluster"}])
    assert (status, answers(document)[0]["status"]) == (200, "success")
    assert wait_for(lambda: served(stack) == {"secondary"}, 20, every=0.2), served(stack)
    status, document = curl_v2(stack, key, [{"action": "online", "vip": "VNA",
                                             "rip": "PrimaryCluster"}],
                                header="X-LB-APIKEY")  # the dashed spelling works too
    assert (status, answers(document)[0]["status"]) == (200, "success")
    assert wait_for(lambda: served(stack) == {"primary"}, 20, every=0.2), served(stack)


def test_gunicorn_refuses_a_100_mb_body_from_its_length_and_nothing_changes(stack, key):
    before = in_stack(stack, CONFIGURATION)
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    connection = http.client.HTTPSConnection("127.0.0.1", stack.https_port, context=context,
                                             timeout=30)
    try:
        connection.putrequest("POST", "/api/v2/")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(100 * 1024 * 1024))
        connection.putheader("X_LB_APIKEY", base64.b64encode(key.encode()).decode())
        connection.putheader("Authorization", "Basic " + base64.b64encode(
            f"loadbalancer:{stack.generated_password}".encode()).decode())
        connection.endheaders(b'{"lbcli": [' + b" " * 65536)
        response = connection.getresponse()
        document = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 413
    assert "at most 16 MiB" in answers(document)[0]["error"]
    assert in_stack(stack, CONFIGURATION) == before


def test_a_wrong_key_through_gunicorn_is_401_in_words(stack):
    status, document = curl_v2(stack, "lba_" + "x" * 43, [{"action": "list",
                                                          "function": "virtual"}])
    assert status == 401
    assert answers(document)[0]["error"].startswith("The API key is not valid")
