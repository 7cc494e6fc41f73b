"""Split brain on a real pair (issue 13): VRRP between the two nodes is dropped (an nft rule in
the Secondary's namespace, in a table of its own), so both go active; the Secondary's guard
(ha.split_brain, on its checks worker) finds the Primary answering for the VIP and steps down;
the client's new connections reach the Primary Cluster through the Primary; both HA pages and
headers say so. Then the drop goes, the Primary's links go down, and the guard, finding the
VIP silent, starts keepalived again: the Secondary takes over. Pairing and the guide's service
come from test_ha_failover."""

import subprocess

import pytest

from lab import FLOATING_IP, LB2_EXTERNAL_ADDRESS, LB_EXTERNAL_ADDRESS, VIP
from tests.stacks import in_appliance, wait_for

from .test_ha_failover import (
    all_ports_served,
    diagnosis,
    holders,
    links,
    mac,
    neighbour,
    pair_the_product_way,
    steady,
)
from .test_pair_stack import addresses, running

pytestmark = pytest.mark.netns

TABLE = "lbadmin_test"
DROP_VRRP = f"""\
table ip {TABLE} {{
    chain input {{
        type filter hook input priority -10; policy accept;
        ip saddr {LB_EXTERNAL_ADDRESS} ip protocol vrrp drop
    }}
}}
"""
# The HA page and the header, rendered by the appliance's own code on its own database.
PAGE = """
import sys
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
client = Client()
client.force_login(get_user_model().objects.get(username="loadbalancer"))
print(client.get(reverse("cluster:ha"), secure=True, HTTP_HOST=sys.argv[1]).content.decode())
"""
STEPPED = "from ha.models import Pair\nprint(Pair.load().stepped_down)"
RECORD = """
from ha.models import Pair
p = Pair.load()
print(p.role, p.peer_state, p.last_contact, p.split_brain_since, p.split_brain_detail,
      p.stepped_down, p.split_brain_quiet)
"""


def guards(pair):
    """Each node's record and the end of its checks worker's log."""
    return [(in_appliance(stack, RECORD), mac(stack, "eth1"),
             [line for line in (stack.log_dir / "worker-checks.out").read_text().splitlines()
              if "split-brain" in line or "arping" in line][-6:]) for stack in pair] + [
        subprocess.run(["ip", "-n", pair[0].lab.ns("client"), "neigh"], capture_output=True,
                       text=True).stdout]


def nft(stack, *arguments, text=None):
    return subprocess.run([*stack.lab.exec_prefix(stack.lab_role), "nft", *arguments],
                          input=text, capture_output=True, text=True)


def drop_vrrp_from_the_primary(secondary):
    done = nft(secondary, "-f", "-", text=DROP_VRRP)
    assert done.returncode == 0, done.stderr


def allow_vrrp(secondary):
    nft(secondary, "delete", "table", "ip", TABLE)  # absent already: harmless


def page(stack):
    return in_appliance(stack, PAGE, LB_EXTERNAL_ADDRESS if stack.lab_role == "lb" else
                        LB2_EXTERNAL_ADDRESS)


@pytest.fixture(scope="module")
def pair(appliance_pair):
    pair_the_product_way(*appliance_pair)
    return appliance_pair


def test_split_brain_the_secondary_steps_down_and_takes_over_when_the_primary_is_gone(pair):
    primary, secondary = pair
    lab = primary.lab
    try:
        drop_vrrp_from_the_primary(secondary)
        # both go active for a moment, then the Secondary gives way: only the Primary holds
        assert wait_for(lambda: in_appliance(secondary, STEPPED) == "True", 30, every=0.5), \
            diagnosis(pair)
        assert wait_for(lambda: holders(pair) == [primary], 10), diagnosis(pair)
        assert not running(secondary, "keepalived")
        assert not {VIP, FLOATING_IP} & addresses(secondary)
        # new connections from the client reach the Primary Cluster through the Primary
        served, answers = all_ports_served(lab)
        assert served, answers
        assert neighbour(lab, "client", VIP) == mac(primary, "eth1"), guards(pair)
        # both pages say so, in red, the headers too
        shown = page(secondary)
        assert 'id="ha-split-brain"' in shown, shown
        assert "also answered for " in shown
        assert "the Secondary stepped down and waits while the Primary&#x27;s addresses " \
               "answer" in shown
        assert "Secondary | Stepped down (split brain)" in shown
        assert wait_for(lambda: 'id="ha-split-brain"' in page(primary), 15)
        shown = page(primary)
        assert "Primary | Active (split brain)" in shown
        assert "stepped down (split brain)" in shown  # the Secondary's row
        # VRRP back, the Primary gone: the VIP falls silent and the guard starts keepalived
        allow_vrrp(secondary)
        links(primary, "down")
        try:
            assert wait_for(lambda: holders(pair) == [secondary], 30, every=0.2), \
                diagnosis(pair)
            assert running(secondary, "keepalived")
            assert in_appliance(secondary, STEPPED) == "False"
            assert 'id="ha-split-brain"' not in page(secondary)
            assert "Secondary | Active" in page(secondary)
        finally:
            links(primary, "up")
        # the Primary comes back passive (nopreempt): one node holds the addresses again
        assert wait_for(lambda: steady(pair, secondary), 30), diagnosis(pair)
    finally:
        allow_vrrp(secondary)
        links(primary, "up")
