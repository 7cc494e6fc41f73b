"""The HA clustered pair fails over with real packets (issue 13): two whole appliances over a
pair lab, paired the product's way (ha.pairing.do_pair, run in the Primary's namespace as its
maintenance worker runs it), the guide's service configured on the Primary only and replicated
to the Secondary. Then the active node fails — its keepalived killed (the supervisor restarts
it), or its links taken down — and the other one holds the VIP and the floating IP, serves new
connections on the guide's seven ports, keeps the connections opened before the failure
talking both ways (client first and server first: conntrackd's sync, not loose pick-up), and
routes the cluster's return traffic through the floating IP. nopreempt: a node that comes back
stays passive.

Generous limits here; the figures (takeover in ms, flows kept, replication lag) are
bench/failover.py's."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from lab import (
    CLIENT_ADDRESS,
    FLOATING_IP,
    GUIDE_PORTS,
    LB2_EXTERNAL_ADDRESS,
    LB_EXTERNAL_ADDRESS,
    PRIMARY_ADDRESS,
    VIP,
)
from tests.stacks import holds_steadily, in_appliance, wait_for

from .test_pair_stack import addresses, running, vrrp_state
from .traffic import connect_many

pytestmark = pytest.mark.netns

USER = "tester"

PAIR = textwrap.dedent("""
    import sys
    from ha.models import Pair
    from ha.pairing import do_pair
    do_pair(sys.argv[1], sys.argv[2], sys.argv[3], "tester")
    pair = Pair.load()
    print(pair.status, pair.role, "|", pair.message, "|", pair.vrrp_error)
""")

# The guide's service (chapter 9): the VIP on the seven ports, the Primary Cluster as its real
# server, the Secondary Cluster as the fallback on port 0 with MASQ; the floating IP the
# clusters route through.
SETUP = textwrap.dedent(f"""
    from clusters import services
    from clusters.models import RealServer, VirtualService
    from lab import FLOATING_IP, GUIDE_PORTS, PRIMARY_ADDRESS, SECONDARY_ADDRESS, VIP
    service = VirtualService(label="iConnect", vip=VIP, ports=",".join(map(str, GUIDE_PORTS)),
                             fallback_ip=SECONDARY_ADDRESS, fallback_port=0, fallback_masq=True)
    service.full_clean()
    service = services.do_save_service(service, "{USER}")
    server = RealServer(service=service, label="PrimaryCluster", ip=PRIMARY_ADDRESS)
    server.full_clean()
    server = services.do_save_real_server(server, "{USER}")
    services.do_add_floating_ip(FLOATING_IP, "{USER}")
    print(server.pk)
""")

# A Save on the Primary: the port EXTRA_PORT added to the service (argv[1] "add") or removed.
EXTRA_PORT = 12999
TOGGLE_PORT = textwrap.dedent(f"""
    import sys, time
    from clusters import services
    from clusters.models import VirtualService
    service = VirtualService.objects.get(vip="{VIP}")
    ports = [p for p in service.ports.split(",") if p != "{EXTRA_PORT}"]
    if sys.argv[1] == "add":
        ports.append("{EXTRA_PORT}")
    service.ports = ",".join(ports)
    service.full_clean()
    services.do_save_service(service, "{USER}")
    print(time.time())
""")

HA_STATE = "from ha.state import vrrp_state\nprint(vrrp_state())"

# One connection held open from the client: "send <line>" sends it and prints the next line
# read; "read" prints the next line read (a server that talks first).
HOLD = textwrap.dedent("""
    import socket, sys
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=8)
    lines = s.makefile()
    print(lines.readline().strip(), flush=True)
    for command in sys.stdin:
        try:
            if command.startswith("send "):
                s.sendall(command[5:].encode())
            print(lines.readline().strip() or "CLOSED", flush=True)
        except OSError as error:
            print(f"ERROR {type(error).__name__}", flush=True)
""")


class Held:
    """A long DICOM-like session through the VIP, opened from the client namespace."""

    def __init__(self, lab, port, host=VIP):
        self.port = port
        self.process = subprocess.Popen(
            [*lab.exec_prefix("client"), sys.executable, "-u", "-c", HOLD, host, str(port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.greeting = self.process.stdout.readline().strip()

    def _ask(self, command):
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def talk(self, line="ping"):
        """The client talks first: the answer ('primary port 12000 echo ping')."""
        return self._ask(f"send {line}")

    def read(self):
        """The next line the server sent by itself ('primary port 12000 push')."""
        return self._ask("read")

    def close(self):
        self.process.kill()
        self.process.wait()








def holders(pair):
    """The nodes holding the VIP and the floating IP; a node holding one of them only (never
    for long: one VRRP instance carries both) counts as holding neither."""
    return [stack for stack in pair if {VIP, FLOATING_IP} <= addresses(stack)]


def mac(stack, interface):
    return json.loads(subprocess.run(
        ["ip", "-j", "-n", stack.lab.ns(stack.lab_role), "link", "show", interface],
        capture_output=True, text=True, check=True).stdout)[0]["address"]


def neighbour(lab, role, address):
    """The MAC `role`'s namespace has for `address` (any state but FAILED), or None."""
    entries = json.loads(subprocess.run(
        ["ip", "-j", "-n", lab.ns(role), "neigh", "show", address], capture_output=True,
        text=True, check=True).stdout or "[]")
    for entry in entries:
        if entry.get("lladdr") and "FAILED" not in entry.get("state", []):
            return entry["lladdr"]
    return None


def ruleset(stack):
    return subprocess.run([*stack.lab.exec_prefix(stack.lab_role), "nft", "list", "table", "ip",
                           "lbadmin"], capture_output=True, text=True).stdout


def serves_the_guides_service(stack):
    table = ruleset(stack)
    return VIP in table and PRIMARY_ADDRESS in table


def all_ports_served(lab):
    """New connections from the client on all seven ports reach the Primary Cluster, which
    sees the client's own address (NAT, not MASQ)."""
    answers = connect_many(lab, VIP, GUIDE_PORTS, len(GUIDE_PORTS))
    expected = [f"primary port {port} client {CLIENT_ADDRESS}" for port in GUIDE_PORTS]
    return answers == expected, answers


def links(stack, state):
    for interface in ("eth0", "eth1"):
        subprocess.run(["ip", "-n", stack.lab.ns(stack.lab_role), "link", "set", interface,
                        state], check=True)


def steady(pair, active):
    """`active` holds the VIP and the floating IP, the other node is its backup (each has
    said so through vrrp-notify)."""
    [passive] = [s for s in pair if s is not active]
    return (holders(pair) == [active] and vrrp_state(active) == "master"
            and vrrp_state(passive) == "backup")


def pair_the_product_way(primary, secondary):
    """do_pair on the Primary (its maintenance worker's code, in its namespace) with the
    Secondary's generated password; the guide's service on the Primary only; returns once the
    Secondary's kernel holds the replicated service and the Primary is the active node."""
    answer = in_appliance(primary, PAIR, LB_EXTERNAL_ADDRESS, LB2_EXTERNAL_ADDRESS,
                          secondary.generated_password)
    assert answer.startswith("paired primary"), answer
    assert answer.endswith("|"), answer  # no vrrp_error
    role = in_appliance(secondary, "from ha.models import Pair\nprint(Pair.load().role)")
    assert role == "secondary"
    in_appliance(primary, SETUP)
    assert wait_for(lambda: serves_the_guides_service(secondary), 60, every=0.2), \
        ruleset(secondary)
    assert wait_for(lambda: steady((primary, secondary), primary), 60, every=0.1), \
        ([addresses(s) for s in (primary, secondary)],
         [vrrp_state(s) for s in (primary, secondary)])


@pytest.fixture(scope="module")
def pair(appliance_pair):
    pair_the_product_way(*appliance_pair)
    return appliance_pair


def open_sessions(lab, active):
    """Two sessions through the active node: h1 will talk first after the failure, h2 will
    hear the server first."""
    sessions = [Held(lab, GUIDE_PORTS[0]), Held(lab, GUIDE_PORTS[1])]
    for held in sessions:
        assert held.greeting == f"primary port {held.port} client {CLIENT_ADDRESS}"
        assert held.talk("before") == f"primary port {held.port} echo before"
    assert neighbour(lab, "client", VIP) == mac(active, "eth1")
    return sessions


def check_taken_over(pair, failed, sessions, limit=10):
    """After `failed` failed: the other node holds the addresses within `limit` seconds, the
    client and the clusters reach it, the sessions opened before still talk both ways."""
    [survivor] = [s for s in pair if s is not failed]
    lab = survivor.lab
    assert wait_for(lambda: survivor in holders(pair), limit, every=0.02), \
        [addresses(s) for s in pair]
    assert wait_for(lambda: holders(pair) == [survivor], limit), [addresses(s) for s in pair]
    # gratuitous ARPs: the client's entry for the VIP, and the cluster's for its gateway,
    # name the survivor's interfaces
    assert wait_for(lambda: neighbour(lab, "client", VIP) == mac(survivor, "eth1"), limit)
    assert wait_for(lambda: neighbour(lab, "primary", FLOATING_IP) == mac(survivor, "eth0"),
                    limit), neighbour(lab, "primary", FLOATING_IP)
    # new connections on all seven ports reach the Primary Cluster through the survivor
    served, answers = all_ports_served(lab)
    assert served, answers
    # the open sessions: h1's client talks first, then the server pushes (h2 hears it before
    # its client has sent a byte since the failure)
    h1, h2 = sessions
    assert h1.talk("after") == f"primary port {h1.port} echo after"
    for listener in (p for p in lab.listeners if p.role == "primary"):
        os.kill(listener.pid, signal.SIGUSR1)
    assert h2.read() == f"primary port {h2.port} push"
    assert h2.talk("after") == f"primary port {h2.port} echo after"
    assert h1.read() == f"primary port {h1.port} push"
    # and their return traffic went through the floating IP on the survivor: the cluster's
    # replies were forwarded there (its conntrack table holds both sessions, committed)
    table = subprocess.run([*lab.exec_prefix(survivor.lab_role), "conntrack", "-L", "-p", "tcp",
                            "-s", CLIENT_ADDRESS, "-d", VIP], capture_output=True,
                           text=True).stdout
    for held in sessions:
        assert f"dport={held.port} src={PRIMARY_ADDRESS}" in table, table
    assert vrrp_state(survivor) == "master"
    assert in_appliance(survivor, HA_STATE) == "active"
    return survivor


def diagnosis(pair):
    """What each node holds and says, and the end of its keepalived's log."""
    return [(stack.lab_role, sorted(addresses(stack)), vrrp_state(stack),
             (stack.log_dir / "keepalived.out").read_text()[-1500:]) for stack in pair]


def kill_keepalived(stack):
    """kill -9 keepalived (its whole process group: the VRRP child too), as a crash would."""
    old = stack.processes["keepalived"].pid
    os.killpg(old, signal.SIGKILL)
    return old


def test_before_any_failure_only_the_primary_holds_the_addresses_and_serves_all_ports(pair):
    primary, secondary = pair
    assert holders(pair) == [primary]
    own = addresses(primary)
    assert VIP in own and FLOATING_IP in own
    assert not {VIP, FLOATING_IP} & addresses(secondary)
    served, answers = all_ports_served(primary.lab)
    assert served, answers
    assert neighbour(primary.lab, "client", VIP) == mac(primary, "eth1")
    assert neighbour(primary.lab, "primary", FLOATING_IP) == mac(primary, "eth0")
    # both kernels hold the same service; only the active node holds the addresses
    assert serves_the_guides_service(primary) and serves_the_guides_service(secondary)
    assert in_appliance(primary, HA_STATE) == "active"
    assert in_appliance(secondary, HA_STATE) == "passive"


def test_a_killed_keepalived_hands_over_and_the_restarted_one_stays_passive(pair):
    primary, secondary = pair
    sessions = open_sessions(primary.lab, primary)
    try:
        old = kill_keepalived(primary)
        check_taken_over(pair, primary, sessions)
        # the supervisor restarts it; nopreempt: it comes back passive and stays so
        assert wait_for(lambda: running(primary, "keepalived")
                        and primary.processes["keepalived"].pid != old, 30)
        assert wait_for(lambda: vrrp_state(primary) == "backup", 15), vrrp_state(primary)
        assert holds_steadily(lambda: steady(pair, secondary), 3)
        assert in_appliance(primary, HA_STATE) == "passive"
        for held in sessions:
            assert held.talk("later") == f"primary port {held.port} echo later"
    finally:
        for held in sessions:
            held.close()


def test_the_secondary_failing_in_turn_hands_back_to_the_primary(pair):
    primary, secondary = pair
    assert wait_for(lambda: steady(pair, secondary), 15)
    sessions = open_sessions(primary.lab, secondary)
    try:
        old = kill_keepalived(secondary)
        check_taken_over(pair, secondary, sessions)
        assert wait_for(lambda: running(secondary, "keepalived")
                        and secondary.processes["keepalived"].pid != old, 30)
        assert holds_steadily(lambda: steady(pair, primary), 3)
    finally:
        for held in sessions:
            held.close()


def test_the_active_nodes_links_down_hand_over_and_restored_it_stays_passive(pair):
    primary, secondary = pair
    assert wait_for(lambda: steady(pair, primary), 15)
    sessions = open_sessions(primary.lab, primary)
    try:
        links(primary, "down")
        try:
            check_taken_over(pair, primary, sessions)
            # keepalived saw its interfaces go: FAULT, "down" on the HA page
            assert wait_for(lambda: vrrp_state(primary) == "fault", 10), vrrp_state(primary)
            assert in_appliance(primary, HA_STATE) == "down"
        finally:
            links(primary, "up")
        # back: BACKUP, and nopreempt keeps it passive although its priority is higher
        assert wait_for(lambda: vrrp_state(primary) == "backup", 15), vrrp_state(primary)
        assert holds_steadily(lambda: steady(pair, secondary), 3), diagnosis(pair)
        assert in_appliance(primary, HA_STATE) == "passive"
        assert in_appliance(secondary, HA_STATE) == "active"
        for held in sessions:
            assert held.talk("later") == f"primary port {held.port} echo later"
        served, answers = all_ports_served(primary.lab)
        assert served, answers
        # a Save on the (passive) Primary reaches the active Secondary's kernel, and applying
        # it there leaves keepalived's addresses in place: the Secondary stays active
        in_appliance(primary, TOGGLE_PORT, "add")
        assert wait_for(lambda: str(EXTRA_PORT) in ruleset(secondary), 30, every=0.1)
        assert holds_steadily(lambda: steady(pair, secondary), 3), diagnosis(pair)
        in_appliance(primary, TOGGLE_PORT, "remove")
        assert wait_for(lambda: str(EXTRA_PORT) not in ruleset(secondary), 30, every=0.1)
        assert holds_steadily(lambda: steady(pair, secondary), 2), diagnosis(pair)
    finally:
        for held in sessions:
            held.close()
