"""The first start of the dataplane worker records the interfaces as the system configured
them, so the configuration alone answers every rule (restore, replication, the forms)."""

import subprocess

import pytest

from core.models import AuditEntry
from lab import LB_EXTERNAL_ADDRESS, LB_INTERNAL_ADDRESS
from network.models import NetworkConfiguration
from network.tasks import apply_network_from_database

from .conftest import inside

pytestmark = pytest.mark.netns


@pytest.mark.django_db(transaction=True)
def test_the_first_start_records_the_interfaces_as_the_system_configured_them(lab):
    assert NetworkConfiguration.load().interfaces == {}
    with inside(lab.ns("lb")):
        assert apply_network_from_database() == {"ok": True}
    stored = NetworkConfiguration.load().interfaces
    assert stored["eth0"] == {"addresses": [f"{LB_INTERNAL_ADDRESS}/24"], "mtu": 1500}
    assert stored["eth1"] == {"addresses": [f"{LB_EXTERNAL_ADDRESS}/24"], "mtu": 1500}
    assert "lo" not in stored
    assert AuditEntry.objects.filter(action__startswith="recorded the interfaces").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_later_start_applies_what_is_stored_and_records_nothing(lab):
    stored = NetworkConfiguration.load()
    stored.interfaces = {"eth1": {"addresses": [f"{LB_EXTERNAL_ADDRESS}/24",
                                                "198.51.100.2/24"], "mtu": 1500}}
    stored.save()
    with inside(lab.ns("lb")):
        assert apply_network_from_database() == {"ok": True}
    assert NetworkConfiguration.load().interfaces == stored.interfaces
    live = subprocess.run(["ip", "-n", lab.ns("lb"), "-br", "addr", "show", "eth1"],
                          capture_output=True, text=True, check=True).stdout
    assert "198.51.100.2/24" in live
    assert not AuditEntry.objects.filter(action__startswith="recorded the interfaces").exists()
