"""The lab: the guide's network in namespaces, for the demo and the tests.

    client 198.51.100.10 ── eth1 198.51.100.1  [lb]  eth0 192.0.2.1 ──┐ br0 in <prefix>switch
                                   (VIP 198.51.100.100 is added       ├── primary   192.0.2.110
                                    by the appliance, not the lab)    └── secondary 192.0.2.120

Namespaces are `<prefix>client`, `<prefix>lb`, `<prefix>primary`, `<prefix>secondary` and
`<prefix>switch`. The demo's prefix is `lbadmin-`; tests use `lbt-<pid>-<n>-`, so labs never
collide and a dead test run's leftovers can be told apart from a live one's. The guide's host
numbers are moved into documentation ranges (RFC 5737), so no lab packet can mean anything
outside. The primary and the secondary run lab.server on the guide's seven ports. The
appliance's WebUI runs inside the lb namespace (on 198.51.100.1:9443, as a real appliance
has it); `Lab.forward` (lab.forward) gives the host's browser a port that leads to it.

With `pair=True` (the HA clustered pair, issue 13) a second appliance, `<prefix>lb2`, joins,
and the client side becomes a bridge (`<prefix>front`) so that both appliances share the
client's segment, as they share the servers' one:

                       br0 in <prefix>front                  br0 in <prefix>switch
    client 198.51.100.10 ──┤                                         ├── primary   192.0.2.110
                           ├── eth1 198.51.100.1 [lb]  eth0 192.0.2.1 ──┤
                           └── eth1 198.51.100.2 [lb2] eth0 192.0.2.2 ──┤
                                                                     └── secondary 192.0.2.120

    VIP 198.51.100.100 (eth1) and floating IP 192.0.2.254 (eth0): held by the VRRP master
    (keepalived, started by the appliance, not the lab). The real servers' default gateway
    is the floating IP; the client's is 198.51.100.1 (onlink), though the VIP is on its own
    segment anyway. Both lb namespaces forward and set net.netfilter.nf_conntrack_events=1
    (ha-recipe F8: connections made before conntrackd started are then replicated too).

With `ntp=True` (System Date & time, issue 15) an NTP server joins the servers' segment:
`<prefix>ntp`, 192.0.2.123 on the switch, where Debian's chronyd serves its own clock (`local
stratum 8`) to anyone (`allow`) — with -x, so it never sets this machine's clock, which every
namespace shares.

    python -m lab up [--prefix P] [--pair] [--ntp]   build it and wait (Ctrl-C removes it)
    python -m lab down [--stale]             remove every lbadmin lab (--stale: only test
                                             labs whose test run has ended)
"""

import argparse
import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The guide's seven ports (DICOM, worklist, admin, stream, HL7…), on which lab.server answers.
GUIDE_PORTS = (12000, 12100, 12200, 12300, 12301, 12950, 12800)
DEMO_PREFIX = "lbadmin-"
TEST_PREFIX_PATTERN = re.compile(r"^lbt-(\d+)-\d+-")
ROLES = ("client", "lb", "primary", "secondary", "switch")
# what a pair lab (Lab(pair=True)) adds: the second appliance and the client-side bridge
PAIR_ROLES = ("lb2", "front")
# what an NTP lab (Lab(ntp=True)) adds: the NTP server, on the servers' segment
NTP_ROLES = ("ntp",)

CLIENT_ADDRESS = "198.51.100.10"
LB_EXTERNAL_ADDRESS = "198.51.100.1"
VIP = "198.51.100.100"
LB_INTERNAL_ADDRESS = "192.0.2.1"
FLOATING_IP = "192.0.2.254"
# the pair lab's second appliance (lb2)
LB2_EXTERNAL_ADDRESS = "198.51.100.2"
LB2_INTERNAL_ADDRESS = "192.0.2.2"
PRIMARY_ADDRESS = "192.0.2.110"
SECONDARY_ADDRESS = "192.0.2.120"
NTP_ADDRESS = "192.0.2.123"
# The lab's NTP server: its own clock at stratum 8 to any client, no command port or socket,
# nothing in the host's /run/chrony (its pid file in a directory of its own).
NTP_SERVER_CONF = """local stratum 8
allow
cmdport 0
bindcmdaddress /
pidfile {pidfile}
"""

_test_counter = itertools.count(1)


def unique_test_prefix():
    return f"lbt-{os.getpid()}-{next(_test_counter)}-"


def run(*command, check=True):
    return subprocess.run(command, check=check, capture_output=True, text=True)


def existing_namespaces():
    output = run("ip", "netns", "list").stdout
    return [line.split()[0] for line in output.splitlines() if line.strip()]


def stop_processes(pids, timeout=3):
    """SIGTERM the processes, wait up to `timeout` seconds for them to exit, then SIGKILL
    what is left and wait as long again."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if Path(f"/proc/{p}").exists()]
            time.sleep(0.05)
        if not pids:
            break


def remove_namespace(name):
    """Stop every process in the namespace, then delete it."""
    stop_processes([int(p) for p in run("ip", "netns", "pids", name, check=False).stdout.split()])
    run("ip", "netns", "del", name, check=False)


class Lab:
    def __init__(self, prefix=DEMO_PREFIX, gateway=None, lb_addresses=True, pair=False,
                 ntp=False):
        self.prefix = prefix
        self.pair = pair
        self.ntp = ntp
        self.ntp_dir = None  # the NTP server's pid file and log, while it runs
        # the real servers' default route (the floating IP in issue 5); a pair's servers route
        # through the floating IP, which the VRRP master holds
        self.gateway = gateway or (FLOATING_IP if pair else LB_INTERNAL_ADDRESS)
        self.lb_addresses = lb_addresses
        self.listeners = []

    def ns(self, role):
        return f"{self.prefix}{role}"

    def exec_prefix(self, role):
        """The command prefix that runs a program inside a lab namespace."""
        return ["ip", "netns", "exec", self.ns(role)]

    @property
    def roles(self):
        return ROLES + (PAIR_ROLES if self.pair else ()) + (NTP_ROLES if self.ntp else ())

    @property
    def appliances(self):
        """The roles an appliance runs in: lb, and lb2 in a pair lab."""
        return ("lb", "lb2") if self.pair else ("lb",)

    def namespaces(self):
        return [self.ns(role) for role in self.roles]

    def __enter__(self):
        self.up()
        return self

    def __exit__(self, *exc):
        self.down()

    def up(self):
        try:
            self._build()
            self.start_listener("primary")
            self.start_listener("secondary")
            if self.ntp:
                self.start_ntp_server()
        except BaseException:
            self.down()
            raise

    def _build(self):
        for name in self.namespaces():
            run("ip", "netns", "add", name)
            run("ip", "-n", name, "link", "set", "lo", "up")
        switch = self.ns("switch")
        run("ip", "-n", switch, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", switch, "link", "set", "br0", "up")
        if self.pair:
            # client eth0, lb eth1 and lb2 eth1 <-> the front bridge: one client segment
            front = self.ns("front")
            run("ip", "-n", front, "link", "add", "br0", "type", "bridge")
            run("ip", "-n", front, "link", "set", "br0", "up")
            for role, interface in (("client", "eth0"), ("lb", "eth1"), ("lb2", "eth1")):
                run("ip", "-n", self.ns(role), "link", "add", interface, "type", "veth",
                    "peer", "name", role, "netns", front)
                run("ip", "-n", front, "link", "set", role, "master", "br0", "up")
        else:
            # client eth0 <-> lb eth1: the external arm
            run("ip", "-n", self.ns("client"), "link", "add", "eth0", "type", "veth",
                "peer", "name", "eth1", "netns", self.ns("lb"))
        # lb eth0 (and lb2 eth0), primary eth0, secondary eth0 <-> the switch: the internal arm
        for role in (*self.appliances, "primary", "secondary", *self.ntp_roles):
            run("ip", "-n", self.ns(role), "link", "add", "eth0", "type", "veth",
                "peer", "name", role, "netns", switch)
            run("ip", "-n", switch, "link", "set", role, "master", "br0", "up")
        for role, interface in (("client", "eth0"),
                                *((lb, name) for lb in self.appliances
                                  for name in ("eth0", "eth1")),
                                ("primary", "eth0"), ("secondary", "eth0"),
                                *((role, "eth0") for role in self.ntp_roles)):
            run("ip", "-n", self.ns(role), "link", "set", interface, "up")
        if self.ntp:
            self._address("ntp", "eth0", NTP_ADDRESS)
        self._address("client", "eth0", CLIENT_ADDRESS, LB_EXTERNAL_ADDRESS)
        self._address("primary", "eth0", PRIMARY_ADDRESS, self.gateway)
        self._address("secondary", "eth0", SECONDARY_ADDRESS, self.gateway)
        if self.lb_addresses:
            self._address("lb", "eth1", LB_EXTERNAL_ADDRESS)
            self._address("lb", "eth0", LB_INTERNAL_ADDRESS)
            if self.pair:
                self._address("lb2", "eth1", LB2_EXTERNAL_ADDRESS)
                self._address("lb2", "eth0", LB2_INTERNAL_ADDRESS)
        for role in self.appliances:
            run(*self.exec_prefix(role), "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
            if self.pair:
                # ha-recipe F8: with the default 2, connections made before conntrackd
                # started never send events, so their end is never replicated
                run(*self.exec_prefix(role), "sysctl", "-q", "-w",
                    "net.netfilter.nf_conntrack_events=1")

    def _address(self, role, interface, address, gateway=None):
        run("ip", "-n", self.ns(role), "addr", "add", f"{address}/24", "dev", interface)
        if gateway:
            # onlink: the gateway may be an address the lb has not been given yet
            run("ip", "-n", self.ns(role), "route", "add", "default", "via", gateway,
                "dev", interface, "onlink")

    def start_listener(self, role, ports=GUIDE_PORTS):
        process = subprocess.Popen(
            [*self.exec_prefix(role), sys.executable, "-m", "lab.server",
             "--name", role, "--ports", ",".join(map(str, ports))],
            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent,
        )
        if process.stdout.readline().strip() != "ready":
            process.kill()
            raise RuntimeError(f"the {role} listener did not start")
        process.role = role
        self.listeners.append(process)
        return process

    def forward(self, listen_address, listen_port, role="lb", port=9443):
        """A port on the host that leads to `port` on 127.0.0.1 inside the role's namespace
        (lab.forward): how the host's browser reaches the WebUI, which runs inside the lb
        namespace (or lb2, a pair's second appliance). Returns once it listens; the same
        forward asked again is the running one. Stopped with the lab, like the listeners."""
        key = (listen_address, listen_port, role, port)
        for process in self.listeners:
            if getattr(process, "forward", None) == key and process.poll() is None:
                return process
        process = subprocess.Popen(
            [sys.executable, "-m", "lab.forward", "--listen", f"{listen_address}:{listen_port}",
             "--netns", self.ns(role), "--to", f"127.0.0.1:{port}"],
            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent,
        )
        if process.stdout.readline().strip() != "ready":
            process.kill()
            process.wait()
            raise RuntimeError(f"the forward from {listen_address}:{listen_port} to the "
                               f"{role} namespace's port {port} did not start")
        process.role = f"{role}-forward"
        process.forward = key
        self.listeners.append(process)
        return process

    @property
    def ntp_roles(self):
        return NTP_ROLES if self.ntp else ()

    def start_ntp_server(self, timeout=10):
        """chronyd in the ntp namespace, serving on UDP 123 (returns once it listens). As
        root it binds the port and drops to Debian's _chrony user itself. Stopped with the
        lab, like the listeners."""
        self.ntp_dir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}ntp-"))
        conf = self.ntp_dir / "chrony.conf"
        conf.write_text(NTP_SERVER_CONF.format(pidfile=self.ntp_dir / "chronyd.pid"))
        with open(self.ntp_dir / "chronyd.out", "ab") as log:
            process = subprocess.Popen([*self.exec_prefix("ntp"), "chronyd", "-x", "-d", "-f",
                                        str(conf)], stdout=log, stderr=subprocess.STDOUT)
        process.role = "ntp"
        self.listeners.append(process)
        deadline = time.monotonic() + timeout
        while not run(*self.exec_prefix("ntp"), "ss", "-Hnlu", "sport = :123").stdout.strip():
            if process.poll() is not None or time.monotonic() > deadline:
                output = (self.ntp_dir / "chronyd.out").read_text()[-500:]
                raise RuntimeError(f"the lab's NTP server did not start: {output}")
            time.sleep(0.05)
        return process

    def stop_listener(self, role):
        """Stop the role's listener (tests: a cluster node that stops answering)."""
        for process in [p for p in self.listeners if p.role == role]:
            process.terminate()
            process.wait(timeout=5)
            self.listeners.remove(process)

    def down(self):
        for process in self.listeners:
            process.terminate()
        for process in self.listeners:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.listeners = []
        if self.ntp_dir is not None:
            shutil.rmtree(self.ntp_dir, ignore_errors=True)
            self.ntp_dir = None
        present = set(existing_namespaces())
        # every role a lab of this prefix may have: a pair lab left behind by a killed demo
        # is removed by the next one whatever it builds
        for name in (self.ns(role) for role in ROLES + PAIR_ROLES + NTP_ROLES):
            if name in present:
                remove_namespace(name)


def remove_leftover_labs(every=False):
    """Remove the demo lab, and test labs whose run has ended (every test lab with every=True)."""
    removed = []
    for name in existing_namespaces():
        match = TEST_PREFIX_PATTERN.match(name)
        stale_test = match and (every or not Path(f"/proc/{match.group(1)}").exists())
        if (every and name.startswith(DEMO_PREFIX)) or stale_test:
            remove_namespace(name)
            removed.append(name)
    return removed


def main():
    parser = argparse.ArgumentParser(description="Build or remove the lbadmin lab.")
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("--prefix", default=DEMO_PREFIX)
    parser.add_argument("--stale", action="store_true",
                        help="down: only test labs whose test run has ended")
    parser.add_argument("--pair", action="store_true",
                        help="up: the HA pair's lab (a second appliance, lb2)")
    parser.add_argument("--ntp", action="store_true",
                        help=f"up: an NTP server at {NTP_ADDRESS} (System Date & time)")
    args = parser.parse_args()
    if args.action == "down":
        removed = remove_leftover_labs(every=not args.stale)
        print("removed: " + (" ".join(removed) if removed else "nothing"))
        return
    with Lab(args.prefix, pair=args.pair, ntp=args.ntp) as lab:
        print("lab up: " + " ".join(lab.namespaces()), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


