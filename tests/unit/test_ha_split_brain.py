"""The split-brain rule (ha.split_brain) with a fake ARP seam and a fake supervisor: who steps
down, when it comes back, what the pages say."""

import datetime
from types import SimpleNamespace

import pytest
from django.test import RequestFactory
from django.utils import timezone

from ha import split_brain
from ha.arping import Answer, neighbour_mac
from ha.context_processors import ha as ha_context
from ha.models import Pair

pytestmark = pytest.mark.django_db

VIP, FLOATING = "198.51.100.100", "192.0.2.254"
PRIMARY_IP, SECONDARY_IP = "198.51.100.1", "198.51.100.2"
PRIMARY_MAC, STRANGER_MAC = "02:00:00:00:01:01", "02:99:00:00:00:01"
HELD = [(VIP, "eth1"), (FLOATING, "eth0")]
KEEPALIVED_CONF = """\
vrrp_instance lbadmin {
    interface eth1
    virtual_ipaddress {
        198.51.100.100/32 dev eth1
        192.0.2.254/32 dev eth0 label eth0:1
        2001:db8::1/128 dev eth1
    }
}
"""


class FakeArp:
    """Who answers: `others` for duplicate-address detection, `holder` for plain ARP."""

    def __init__(self, others=(), holder=(), mac=PRIMARY_MAC, neighbours=None):
        self.others, self.holder, self.mac = set(others), set(holder), mac
        self.neighbours = neighbours or {PRIMARY_IP: PRIMARY_MAC}
        self.announced, self.asked = [], []

    def duplicate(self, device, address):
        self.asked.append(("D", device, address))
        return Answer(address in self.others, mac=self.mac if address in self.others else "")

    def answers(self, device, address):
        self.asked.append(("plain", device, address))
        return Answer(address in self.holder, mac=self.mac if address in self.holder else "")

    def announce(self, device, address):
        self.announced.append((device, address))
        return ""

    def neighbour_mac(self, address):
        return self.neighbours.get(address, "")


class World:
    """The node as the guard sees it: its VRRP state, the supervisor's requests, the clock."""

    def __init__(self, role, state="active", arp=None):
        self.state, self.arp, self.requests, self.audit = state, arp or FakeArp(), [], []
        self.now = timezone.now()
        self.keepalived_since = None
        mine, peer = (SECONDARY_IP, PRIMARY_IP) if role == "secondary" else \
            (PRIMARY_IP, SECONDARY_IP)
        Pair.objects.update_or_create(pk=1, defaults={
            "role": role, "local_ip": mine, "peer_ip": peer, "virtual_router_id": 51,
            "peer_state": "active" if role == "secondary" else "passive",
            "last_contact": self.now})

    def round(self):
        self.now += datetime.timedelta(seconds=1)
        Pair.objects.filter(pk=1).update(last_contact=self.now)
        return split_brain.Guard(
            arping=self.arp, ask_supervisor=self.requests.append,
            local_state=lambda: self.state, addresses=lambda: list(HELD),
            started_at=lambda: self.keepalived_since, now=lambda: self.now,
            audit=lambda user, action: self.audit.append(action)).run()

    def lasting_round(self):
        """The round that acts: a duplicate counts once it has lasted LASTS_FOR seconds."""
        for _ in range(split_brain.LASTS_FOR):
            assert self.round() == "suspected"
        return self.round()

    @property
    def pair(self):
        return Pair.objects.get(pk=1)


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    (tmp_path / "ha").mkdir()
    return tmp_path


def test_the_held_addresses_are_read_from_keepalived_conf_ipv4_only():
    assert split_brain.held_addresses(KEEPALIVED_CONF) == HELD


def test_an_active_node_that_nobody_else_answers_for_does_nothing():
    node = World("secondary", arp=FakeArp())
    assert node.round() == "ok"
    assert node.requests == [] and not node.pair.split_brain
    assert {kind for kind, _, _ in node.arp.asked} == {"D"}


def test_a_passive_node_does_not_probe():
    node = World("secondary", state="passive", arp=FakeArp(others={VIP}))
    assert node.round() == "not active"
    assert node.arp.asked == []


def test_the_secondary_answered_for_by_the_primary_steps_down_and_says_why(data_dir):
    node = World("secondary", arp=FakeArp(others={VIP}))
    assert node.lasting_round() == "stepped down"
    assert node.requests == [{"stop": "keepalived", "by": "split-brain guard"}]
    pair = node.pair
    assert pair.stepped_down
    assert pair.split_brain_since == node.now - datetime.timedelta(seconds=split_brain.LASTS_FOR)
    assert pair.split_brain_detail == f"{PRIMARY_IP} also answered for {VIP}"
    line = split_brain.describe(pair)
    assert line.startswith(f"Split brain: {PRIMARY_IP} also answered for {VIP} at ")
    assert "the Secondary stepped down and waits while the Primary's addresses answer" in line
    assert (data_dir / "ha" / "vrrp-state").read_text().startswith("backup ")
    assert "stepped down" in node.audit[0]


def test_an_answer_from_an_unknown_mac_is_named_by_its_mac():
    node = World("secondary", arp=FakeArp(others={FLOATING}, mac=STRANGER_MAC))
    node.lasting_round()
    assert node.pair.split_brain_detail == f"another host ({STRANGER_MAC}) also answered " \
                                           f"for {FLOATING}"


def test_a_stepped_down_secondary_waits_while_the_primarys_addresses_answer():
    node = World("secondary", arp=FakeArp(others={VIP}, holder={VIP}))
    node.lasting_round()
    for _ in range(5):
        assert node.round() == "waiting"
    assert node.requests == [{"stop": "keepalived", "by": "split-brain guard"}]
    probed_while_waiting = node.arp.asked[len(HELD) * (split_brain.LASTS_FOR + 1):]
    assert {kind for kind, _, _ in probed_while_waiting} == {"plain"}
    assert node.pair.stepped_down


def test_three_silent_probes_in_a_row_start_keepalived_again_and_end_the_record(data_dir):
    node = World("secondary", arp=FakeArp(others={VIP}, holder={VIP}))
    node.lasting_round()
    node.arp.holder = set()
    assert [node.round(), node.round()] == ["quiet", "quiet"]
    node.arp.holder = {VIP}  # one answer starts the count again
    assert node.round() == "waiting"
    node.arp.holder = set()
    assert [node.round(), node.round(), node.round()] == ["quiet", "quiet", "started again"]
    assert node.requests[-1] == {"start": "keepalived", "by": "split-brain guard"}
    pair = node.pair
    assert not pair.stepped_down and not pair.split_brain and pair.split_brain_detail == ""
    assert "Split brain over" in node.audit[-1]


def test_a_keepalived_started_by_someone_else_ends_the_waiting():
    node = World("secondary", arp=FakeArp(others={VIP}, holder={VIP}))
    node.lasting_round()
    node.keepalived_since = (node.now + datetime.timedelta(seconds=5)).timestamp()
    node.now += datetime.timedelta(seconds=5)
    assert node.round() == "started by someone else"
    assert not node.pair.stepped_down


def test_probes_that_fail_either_way_decide_nothing():
    class Broken(FakeArp):
        def answers(self, device, address):
            return Answer(False, error="arping exited with 2: Device eth1 not available.")

    node = World("secondary", arp=Broken(others={VIP}))
    node.lasting_round()
    for _ in range(5):
        assert node.round() == "probe failed"
    assert node.pair.stepped_down and len(node.requests) == 1


def test_a_takeover_during_the_probe_is_no_split_brain():
    node = World("secondary", arp=FakeArp(others={VIP}))
    states = iter(["active", "passive"])
    node.state = None
    guard = split_brain.Guard(arping=node.arp, ask_supervisor=node.requests.append,
                              local_state=lambda: next(states), addresses=lambda: list(HELD),
                              started_at=lambda: None, now=lambda: node.now,
                              audit=lambda *a: None)
    assert guard.run() == "moved meanwhile"
    assert node.requests == [] and not node.pair.split_brain


def test_the_primary_never_steps_down_it_records_the_answer_and_announces_its_addresses():
    arp = FakeArp(others={VIP}, mac="02:00:00:00:02:01",
                  neighbours={SECONDARY_IP: "02:00:00:00:02:01"})
    node = World("primary", arp=arp)
    assert node.lasting_round() == "kept the addresses"
    assert node.requests == []
    pair = node.pair
    assert pair.split_brain and not pair.stepped_down
    assert split_brain.describe(pair).startswith(
        f"Split brain: {SECONDARY_IP} also answered for {VIP} at ")
    assert sorted(arp.announced) == sorted((device, address) for address, device in HELD)


def test_the_primarys_record_stays_while_the_secondary_says_it_is_stepped_down():
    node = World("primary", arp=FakeArp(others={VIP}))
    node.lasting_round()
    Pair.objects.filter(pk=1).update(peer_state="stepped")
    node.arp.others = set()
    for _ in range(6):
        assert node.round() == "quiet"
    assert node.pair.split_brain
    # gratuitous ARPs on the silent rounds that follow, then no more
    assert len(node.arp.announced) == len(HELD) * (1 + split_brain.QUIET_ROUNDS)


def test_the_primarys_record_ends_once_the_secondary_is_heard_passive_again():
    node = World("primary", arp=FakeArp(others={VIP}))
    node.lasting_round()
    node.arp.others = set()
    Pair.objects.filter(pk=1).update(peer_state="passive")
    assert [node.round() for _ in range(3)] == ["quiet", "quiet", "over"]
    assert not node.pair.split_brain


def test_a_primary_that_never_saw_the_answer_learns_the_step_down_from_the_secondary():
    node = World("primary", arp=FakeArp())
    Pair.objects.filter(pk=1).update(peer_state="stepped")
    assert node.round() == "the Secondary gave way"
    pair = node.pair
    assert pair.split_brain_detail == f"the Secondary {SECONDARY_IP} also took {VIP}, {FLOATING}"
    assert "the Primary kept its addresses" in split_brain.describe(pair)
    assert node.arp.announced


def test_a_standalone_appliance_clears_a_left_over_record():
    node = World("secondary", arp=FakeArp(others={VIP}))
    node.lasting_round()
    Pair.objects.filter(pk=1).update(role=Pair.Role.STANDALONE)
    assert node.round() == "standalone"
    assert not node.pair.stepped_down


def test_only_one_round_runs_at_a_time():
    assert split_brain._one_at_a_time.acquire(blocking=False)
    try:
        assert split_brain.guard() == "busy"
    finally:
        split_brain._one_at_a_time.release()


def test_the_header_says_stepped_down_in_red_and_the_primary_says_split_brain(
        django_user_model):
    request = RequestFactory().get("/")
    request.user = django_user_model.objects.create_user("tester")
    World("secondary", arp=FakeArp(others={VIP})).lasting_round()
    context = ha_context(request)
    assert str(context["ha_header"]) == "Secondary | Stepped down (split brain)"
    assert bool(context["ha_split_brain"])
    Pair.objects.filter(pk=1).update(role=Pair.Role.PRIMARY, stepped_down=False)
    context = ha_context(request)
    assert str(context["ha_header"]).endswith("(split brain)")
    assert str(context["ha_header"]).startswith("Primary | ")


def test_a_stepped_down_node_reports_stepped_to_its_peer():
    from ha.state import known, vrrp_state

    World("secondary", arp=FakeArp(others={VIP})).lasting_round()
    assert vrrp_state() == "stepped"
    assert known("stepped") == "stepped"


def test_the_neighbour_table_gives_the_peers_mac(tmp_path):
    table = tmp_path / "arp"
    table.write_text(
        "IP address       HW type     Flags       HW address            Mask     Device\n"
        "198.51.100.1     0x1         0x2         02:00:00:00:01:01     *        eth1\n"
        "198.51.100.9     0x1         0x0         00:00:00:00:00:00     *        eth1\n")
    assert neighbour_mac("198.51.100.1", table) == PRIMARY_MAC
    assert neighbour_mac("198.51.100.9", table) == ""
    assert neighbour_mac("198.51.100.7", table) == ""


def test_arpings_exit_codes_read_as_answers(monkeypatch):
    from ha import arping

    def fake(code, out=""):
        return lambda arguments: (SimpleNamespace(returncode=code, stdout=out, stderr="no"), "")

    reply = "Unicast reply from 198.51.100.100 [02:00:00:00:01:01]  0.5ms\n"
    monkeypatch.setattr(arping, "_run", fake(1, reply))
    assert arping.duplicate("eth1", VIP) == Answer(True, mac=PRIMARY_MAC)
    monkeypatch.setattr(arping, "_run", fake(0))
    assert arping.duplicate("eth1", VIP) == Answer(False)
    monkeypatch.setattr(arping, "_run", fake(0, reply))
    assert arping.answers("eth1", VIP) == Answer(True, mac=PRIMARY_MAC)
    monkeypatch.setattr(arping, "_run", fake(1))
    assert arping.answers("eth1", VIP) == Answer(False)
    monkeypatch.setattr(arping, "_run", fake(2))
    assert arping.duplicate("eth1", VIP).error == "arping exited with 2: no"


def test_a_duplicate_that_goes_within_seconds_steps_nobody_down():
    """A keepalived killed with SIGKILL leaves its addresses until the supervisor restarts it,
    and the restarted one removes them: no split brain, nobody steps down."""
    arp = FakeArp(others={VIP})
    node = World("secondary", arp=arp)
    assert [node.round() for _ in range(3)] == ["suspected"] * 3
    arp.others.clear()
    assert node.round() == "quiet"
    assert node.requests == [] and not node.pair.stepped_down
