"""ha.vrrp (the pair's files and processes), ha.notify (the FIFO reader), core.pairing and the
pair's variant of the data plane's ruleset, with fake netlink and supervisor seams.
tests/netns/test_ha_vrrp.py and test_ha_dataplane.py run the real things."""

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from clusters.dataplane import apply
from clusters.dataplane.desired import Desired
from clusters.dataplane.render import diff_script, full_script, render
from core import pairing
from ha import notify, vrrp

from .test_ha_render import check_golden
from .test_render import vna

INTERFACES = [
    {"name": "lo", "state": "UNKNOWN", "addresses": ["127.0.0.1/8", "::1/128"],
     "marked": [{"cidr": "127.0.0.1/8", "role": ""}, {"cidr": "::1/128", "role": ""}]},
    {"name": "eth0", "state": "UP", "addresses": ["192.0.2.2/24", "192.0.2.254/24"],
     "marked": [{"cidr": "192.0.2.2/24", "role": ""},
                {"cidr": "192.0.2.254/24", "role": "floating"}]},
    {"name": "eth1", "state": "UP", "addresses": ["198.51.100.2/24", "198.51.100.100/32"],
     "marked": [{"cidr": "198.51.100.2/24", "role": ""},
                {"cidr": "198.51.100.100/32", "role": ""}]},  # held by keepalived
    {"name": "eth2", "state": "DOWN", "addresses": [], "marked": []},
]
SUBNETS = {"198.51.100.": "eth1", "192.0.2.": "eth0"}


def pair(**changes):
    fields = dict(role="primary", local_ip="198.51.100.2", peer_ip="198.51.100.3",
                  virtual_router_id=51, paired=True)
    fields.update(changes)
    return SimpleNamespace(**fields)


@pytest.fixture
def node(tmp_path, monkeypatch, settings):
    """A node whose netlink and supervisor are fakes; its data directory under tmp_path."""
    settings.DATA_DIR = tmp_path
    asked = []
    monkeypatch.setattr(vrrp.netlink, "list_interfaces", lambda: INTERFACES)
    monkeypatch.setattr(vrrp.netlink, "connected_interfaces", lambda addresses: {
        a: next((name for prefix, name in SUBNETS.items() if a.startswith(prefix)), None)
        for a in addresses})
    monkeypatch.setattr(vrrp, "ask_supervisor", asked.append)
    monkeypatch.setattr(vrrp, "router_id", lambda: "lb1")
    return SimpleNamespace(dir=tmp_path / "ha", asked=asked)


def test_the_settings_follow_the_interfaces_and_the_subnets(node):
    settings, unplaced = vrrp.plan(pair(), {"192.0.2.254"}, {"198.51.100.100", "203.0.113.5"})
    assert settings.interface == "eth1"  # holds local_ip
    assert settings.addresses == (("192.0.2.254", 32, "eth0"), ("198.51.100.100", 32, "eth1"))
    assert unplaced == ["203.0.113.5"]
    assert settings.track_interfaces == ("eth0",)  # up, not lo, not the VRRP one
    assert settings.priority == 150 and settings.router_id == "lb1"
    assert settings.state_dir == str(node.dir)
    # own addresses, the peer, the pair's addresses; not loopback (conntrackd_conf adds it)
    assert settings.ignore_addresses == ("192.0.2.2", "198.51.100.2", "198.51.100.3",
                                         "192.0.2.254", "198.51.100.100", "203.0.113.5")


def test_a_node_without_its_pair_address_is_refused(node):
    with pytest.raises(ValueError, match="no interface holds this node's pair address"):
        vrrp.settings_for(pair(local_ip="198.51.100.9"), (), ())


def test_the_files_are_written_0600_and_report_a_change_of_keepalived_only(node):
    settings = vrrp.settings_for(pair(), {"192.0.2.254"}, {"198.51.100.100"})
    assert vrrp.write(settings) is True
    for name in ("keepalived.conf", "conntrackd.conf"):
        assert (node.dir / name).stat().st_mode & 0o777 == 0o600
    assert node.dir.stat().st_mode & 0o777 == 0o700
    assert vrrp.write(settings) is False
    assert "198.51.100.100/32 dev eth1" in (node.dir / "keepalived.conf").read_text()
    assert not [p for p in node.dir.iterdir() if p.name.startswith(".")]  # no temporary left


def test_configure_writes_and_starts_conntrackd_the_reader_then_keepalived(node, monkeypatch):
    monkeypatch.setattr(vrrp, "_current_addresses", lambda: ({"192.0.2.254"},
                                                             {"198.51.100.100"}))
    vrrp.configure(pair())
    assert (node.dir / "keepalived.conf").exists() and (node.dir / "conntrackd.conf").exists()
    assert node.asked == [{"start": "conntrackd", "by": "HA pair"},
                          {"start": "vrrp-notify", "by": "HA pair"},
                          {"start": "keepalived", "by": "HA pair"}]


def test_unconfigure_stops_keepalived_first_and_removes_the_files(node, monkeypatch):
    monkeypatch.setattr(vrrp, "_current_addresses", lambda: (set(), {"198.51.100.100"}))
    vrrp.configure(pair())
    (node.dir / "vrrp-state").write_text("master 1\n")
    node.asked.clear()
    vrrp.unconfigure()
    assert [request["stop"] for request in node.asked] == ["keepalived", "vrrp-notify",
                                                           "conntrackd"]
    assert not any((node.dir / name).exists()
                   for name in ("keepalived.conf", "conntrackd.conf", "vrrp-state"))


def test_reload_signals_keepalived_only(node, monkeypatch):
    sent = []
    monkeypatch.setattr(vrrp.os, "kill", lambda pid, sig: sent.append((pid, sig)))
    assert vrrp.reload() is False  # no pid file
    node.dir.mkdir()
    (node.dir / "keepalived.pid").write_text(f"{os.getpid()}\n")  # a python process
    assert vrrp.reload() is False and sent == []
    monkeypatch.setattr(vrrp, "keepalived_pid", lambda: 4242)
    assert vrrp.reload() is True and sent == [(4242, signal.SIGHUP)]


def test_the_owner_holds_addresses_only_when_paired_and_reloads_only_on_a_change(node,
                                                                                monkeypatch):
    reloads = []
    monkeypatch.setattr(vrrp, "reload", lambda: reloads.append(1))
    owner = vrrp.AddressOwner(lambda: pair())
    assert owner.holds_addresses()
    assert not vrrp.AddressOwner(lambda: pair(paired=False, role="standalone")) \
        .holds_addresses()
    assert not vrrp.AddressOwner(lambda: pair(peer_ip=None)).holds_addresses()
    assert owner.hand_over({"192.0.2.254"}, {"198.51.100.100"}) == []
    assert owner.hand_over(frozenset({"192.0.2.254"}), frozenset({"198.51.100.100"})) == []
    assert len(reloads) == 1
    assert owner.hand_over({"192.0.2.254"}, {"198.51.100.100", "203.0.113.5"}) == \
        ["203.0.113.5"]
    assert len(reloads) == 1  # an address no subnet holds changes nothing keepalived holds
    owner.hand_over({"192.0.2.254"}, {"198.51.100.101"})
    assert len(reloads) == 2


def test_the_registry_gives_the_owner_only_while_it_holds_the_addresses():
    holding = SimpleNamespace(holds_addresses=lambda: True)
    idle = SimpleNamespace(holds_addresses=lambda: False)
    registered = list(pairing._owners)  # the ha app's, when its AppConfig registered it
    try:
        pairing.register_address_owner(idle)
        assert pairing.address_owner() is None
        pairing.register_address_owner(holding)
        assert pairing.address_owner() is holding
        pairing.unregister_address_owner(holding)
        assert pairing.address_owner() is None
    finally:
        pairing._owners[:] = registered


# --- the data plane in a pair ---

class FakeNetlink:
    FLOATING_PROTO, VIP_PROTO = 251, 250

    def __init__(self):
        self.calls = []

    def place_addresses(self, addresses, proto):
        self.calls.append(("place", tuple(sorted(addresses)), proto))
        return []

    def ensure_vips(self, vips):
        return self.place_addresses(vips, self.VIP_PROTO)


def test_a_pair_hands_the_addresses_over_and_removes_those_it_placed(monkeypatch):
    fake = FakeNetlink()
    monkeypatch.setattr(apply, "netlink", fake)
    rules = render(Desired((vna(),), floating_ips=frozenset({"192.0.2.254"})))
    assert apply.place_addresses(rules, None) == []
    assert fake.calls == [("place", ("192.0.2.254",), 251), ("place", ("198.51.100.100",), 250)]
    fake.calls.clear()
    handed = []
    owner = SimpleNamespace(hand_over=lambda f, v: handed.append((f, v)) or ["203.0.113.5"])
    assert apply.place_addresses(rules, owner) == ["203.0.113.5"]
    assert fake.calls == [("place", (), 251), ("place", (), 250)]  # its own removed
    assert handed == [(frozenset({"192.0.2.254"}), frozenset({"198.51.100.100"}))]


def test_the_pairs_ruleset_drops_invalid_packets_to_the_vips_as_the_golden_file():
    rules = render(Desired((vna(),)), pair=True)
    check_golden("pair-vna.nft", full_script(rules))
    assert "ct state invalid ip daddr @pair_vips drop" in full_script(rules)


def test_a_standalone_ruleset_is_unchanged_by_the_pair_variant():
    text = full_script(render(Desired((vna(),))))
    assert "pair" not in text
    assert text == (Path(__file__).parent / "golden" / "vna.nft").read_text()


def test_a_pairs_vips_change_by_elements_and_a_change_of_mode_needs_a_full_apply():
    before = render(Desired((vna(),)), pair=True)
    moved = vna()
    after = render(Desired((type(moved)(**{**moved.__dict__, "vip": "198.51.100.101"}),)),
                   pair=True)
    script = diff_script(before, after)
    assert "delete element ip lbadmin pair_vips { 198.51.100.100 }" in script
    assert "add element ip lbadmin pair_vips { 198.51.100.101 }" in script
    with pytest.raises(ValueError, match="full apply"):
        diff_script(render(Desired((vna(),))), before)


# --- ha.notify ---

@pytest.mark.parametrize(("line", "state"), [
    ('INSTANCE "lbadmin" MASTER 150', "master"),
    (b'INSTANCE "lbadmin" BACKUP 100', "backup"),
    ('INSTANCE "lbadmin" FAULT 100\n', "fault"),
    ('INSTANCE "other" MASTER 150', None),
    ('GROUP "lbadmin" MASTER 150', None),
    ('INSTANCE "lbadmin" STOP 150', None),
    ('INSTANCE "lbadmin" MASTER_RX_LOWER_PRI 150', None),
    ('INSTANCE "lbadmin" MASTER 150 extra', None),
    ('INSTANCE "lbadmin" MASTER 999', None),
    ('INSTANCE "lbadmin"  MASTER 150', None),
    ('instance "lbadmin" master 150', None),
    (b'\xff\xfe', None),
    ("", None),
])
def test_the_reader_parses_keepaliveds_lines_strictly(line, state):
    assert notify.parse(line) == state


class Runner:
    def __init__(self, fail=()):
        self.commands, self.fail = [], fail

    def __call__(self, command, **options):
        self.commands.append((command[-1], options["timeout"]))
        flag = command[-1]
        if flag in self.fail:
            if self.fail[flag] == "timeout":
                raise subprocess.TimeoutExpired(command, options["timeout"])
            if self.fail[flag] == "missing":
                raise FileNotFoundError(2, "No such file or directory")
            return subprocess.CompletedProcess(command, 1, b"", b"refused")
        return subprocess.CompletedProcess(command, 0, b"", b"")


def test_each_transition_records_the_state_and_runs_conntrackds_steps(tmp_path):
    runner = Runner()
    assert notify.handle(b'INSTANCE "lbadmin" MASTER 150', str(tmp_path), "/c.conf",
                         runner=runner) == "master"
    word, stamp = (tmp_path / "vrrp-state").read_text().split()
    assert word == "master" and abs(float(stamp) - time.time()) < 5
    assert (tmp_path / "vrrp-state").stat().st_mode & 0o777 == 0o600
    assert runner.commands == [("-c", 30), ("-f", 10), ("-R", 10), ("-B", 10)]
    runner.commands.clear()
    notify.handle('INSTANCE "lbadmin" BACKUP 150', str(tmp_path), "/c.conf", runner=runner)
    assert runner.commands == [("-t", 10), ("-n", 10)]
    runner.commands.clear()
    notify.handle('INSTANCE "lbadmin" FAULT 150', str(tmp_path), "/c.conf", runner=runner)
    assert runner.commands == [("-t", 10)]
    assert (tmp_path / "vrrp-state").read_text().startswith("fault ")
    runner.commands.clear()
    assert notify.handle('INSTANCE "x" MASTER 1', str(tmp_path), "/c.conf", runner=runner) \
        is None
    assert runner.commands == []


def test_a_failing_step_is_logged_and_the_next_ones_still_run(tmp_path, capsys):
    runner = Runner(fail={"-c": "timeout", "-f": "exit", "-R": "missing"})
    outcomes = notify.run_steps("master", "/c.conf", runner=runner, binary="conntrackd")
    assert outcomes == [("-c", "timeout"), ("-f", "exit 1"),
                        ("-R", "FileNotFoundError: [Errno 2] No such file or directory"),
                        ("-B", "ok")]
    errors = capsys.readouterr().err
    assert "conntrackd -c took more than 30 s" in errors and "refused" in errors


def test_the_reader_survives_a_transition_that_fails_whole(tmp_path, monkeypatch, capsys):
    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(notify, "handle", broken)
    notify.serve(str(tmp_path), "/c.conf", lines=[b"a", b"b"])
    assert capsys.readouterr().err.count("boom") == 2


def test_the_reader_makes_the_fifo_and_reads_it_across_writers_and_a_new_fifo(tmp_path):
    fifo = tmp_path / "vrrp.fifo"
    lines = notify.lines_of(str(fifo), check_every=0.05)
    got = []

    def read(count):
        for line in lines:
            got.append(line)
            if len(got) == count:
                return

    reader = threading.Thread(target=read, args=(4,), daemon=True)
    reader.start()
    deadline = time.monotonic() + 5
    while not fifo.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fifo.stat().st_mode & 0o777 == 0o600
    for text in (b'INSTANCE "lbadmin" BACKUP 150\nINSTANCE "lb', b'admin" MASTER 150\n'):
        fd = os.open(fifo, os.O_WRONLY)  # one writer, then it goes (keepalived restarts)
        os.write(fd, text)
        os.close(fd)
    time.sleep(0.1)
    fifo.unlink()  # keepalived removes a FIFO it made; the reader makes a new one
    deadline = time.monotonic() + 5
    while not fifo.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    fd = os.open(fifo, os.O_WRONLY)
    os.write(fd, b"x" * 600 + b'\nINSTANCE "lbadmin" FAULT 150\nlast\n')
    os.close(fd)
    reader.join(5)
    assert got == [b'INSTANCE "lbadmin" BACKUP 150', b'INSTANCE "lbadmin" MASTER 150',
                   b'INSTANCE "lbadmin" FAULT 150', b"last"]


def test_the_reader_refuses_a_path_that_is_not_a_fifo(tmp_path):
    (tmp_path / "vrrp.fifo").write_text("")
    with pytest.raises(RuntimeError, match="not a FIFO"):
        notify.ensure_fifo(str(tmp_path / "vrrp.fifo"))


def test_the_reader_imports_nothing_but_the_standard_library():
    source = Path(notify.__file__).read_text()
    imports = {line.split()[1].split(".")[0] for line in source.splitlines()
               if line.startswith(("import ", "from "))}
    assert imports <= {"argparse", "contextlib", "os", "re", "select", "shutil", "stat",
                       "subprocess", "sys", "time"}
