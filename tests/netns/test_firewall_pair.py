"""Firewall Lockdown in an HA pair (two whole appliances over a pair lab): a lockdown made
before pairing learns the peer when the pair is made, and with both nodes locked down to a
network neither is in, the peer is still admitted — replication (the Primary's HTTPS calls to
the Secondary's WebUI) goes on — while the client is refused and the VIP still serves it."""

import subprocess
import textwrap

import pytest

from lab import CLIENT_ADDRESS, LB2_EXTERNAL_ADDRESS, LB_EXTERNAL_ADDRESS, VIP
from tests.stacks import in_appliance, wait_for

from .test_dataplane import served_by
from .test_ha_failover import pair_the_product_way
from .traffic import ask

pytestmark = pytest.mark.netns

# The lockdown saved and confirmed as the wizard does (the dataplane worker applies it).
LOCK_DOWN = textwrap.dedent("""
    import sys
    from maintenance import firewall_services
    from network import guard, services
    pending = firewall_services.do_save_lockdown(True, sys.argv[1], "tester", "")
    print(services.do_confirm_change(pending.token, "tester", guard.Browser("127.0.0.1")))
""")
ADD_SERVICE = textwrap.dedent("""
    from clusters import services
    from clusters.models import VirtualService
    service = VirtualService(label="Worklist", vip="198.51.100.101", ports="104")
    service.full_clean()
    services.do_save_service(service, "tester")
""")
HAS_SERVICE = ("from clusters.models import VirtualService\n"
               "print(VirtualService.objects.filter(label='Worklist').exists())")


def lockdown(stack):
    return subprocess.run([*stack.lab.exec_prefix(stack.lab_role), "nft", "list", "table",
                           "inet", "lbadmin_lockdown"], capture_output=True, text=True).stdout


def test_the_peer_is_admitted_once_paired_and_replication_passes_the_lockdown(appliance_pair):
    primary, secondary = appliance_pair
    lab = primary.lab
    # before pairing, each admits the other by its networks (the guide's 10.1.2 note)
    assert in_appliance(primary, LOCK_DOWN, f"{LB2_EXTERNAL_ADDRESS}/32") == "kept"
    assert in_appliance(secondary, LOCK_DOWN, f"{LB_EXTERNAL_ADDRESS}/32") == "kept"
    assert "HA peer" not in lockdown(primary) + lockdown(secondary)
    assert ask(lab, LB_EXTERNAL_ADDRESS, 9443).startswith("ERROR ConnectionRefused")

    pair_the_product_way(primary, secondary)
    for node, peer in ((primary, LB2_EXTERNAL_ADDRESS), (secondary, LB_EXTERNAL_ADDRESS)):
        assert wait_for(lambda node=node, peer=peer:
                        f'ip saddr {peer} accept comment "HA peer"' in lockdown(node), 30), \
            lockdown(node)

    # both locked down to a network neither node nor the client is in
    for node in (primary, secondary):
        assert in_appliance(node, LOCK_DOWN, "203.0.113.0/24") == "kept"
        assert "203.0.113.0/24" in lockdown(node) and "HA peer" in lockdown(node)
    for address in (LB_EXTERNAL_ADDRESS, LB2_EXTERNAL_ADDRESS):
        assert ask(lab, address, 9443).startswith("ERROR ConnectionRefused")
    # a Save on the Primary still reaches the Secondary over its WebUI's port
    in_appliance(primary, ADD_SERVICE)
    assert wait_for(lambda: in_appliance(secondary, HAS_SERVICE) == "True", 60, every=0.5)
    # and the guide's service still carries the client's traffic
    assert served_by(ask(lab, VIP, 12000)) == ("primary", 12000, CLIENT_ADDRESS)
