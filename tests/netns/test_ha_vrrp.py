"""The HA pair's rendered files (ha.render) with Debian's real keepalived 2.2.7 and conntrackd
1.4.7, both run as the service user with only the capabilities ha.render names, and the reader
of keepalived's notify FIFO (ha.notify) as the service user with no capability at all.

Two throwaway namespaces, `<prefix>ka1` (primary) and `<prefix>ka2` (secondary), are joined by
two veth pairs, as a pair of load balancers is by its front and back networks:

    ka1 eth1 198.51.100.2 ── eth1 198.51.100.3 ka2    VRRP adverts and conntrackd sync
    ka1 eth0 192.0.2.2    ── eth0 192.0.2.3    ka2    tracked; the floating IP lives here

The VIP 198.51.100.100 and the floating IP 192.0.2.254 go to exactly one of them. Only
documentation addresses (RFC 5737), only between these two namespaces.
"""

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ha.render import (
    CONNTRACKD_CAPABILITIES,
    KEEPALIVED_CAPABILITIES,
    NOTIFY_CAPABILITIES,
    SERVICE_USER,
    PairSettings,
    conntrackd_command,
    conntrackd_conf,
    keepalived_command,
    keepalived_conf,
    notify_command,
)
from lab import unique_test_prefix
from tests.conftest import needs_root
from tests.stacks import wait_for

VIP = "198.51.100.100"
FLOATING_IP = "192.0.2.254"
FRONT = {"ka1": "198.51.100.2", "ka2": "198.51.100.3"}
BACK = {"ka1": "192.0.2.2", "ka2": "192.0.2.3"}
ROLES = {"ka1": "primary", "ka2": "secondary"}
PEER = {"ka1": "ka2", "ka2": "ka1"}
# A client-like address added on the master: its flows are not in the ignore list, so they are
# replicated; the destination answers nothing (no namespace holds it), the entry stays UNREPLIED.
FLOW_SOURCE, FLOW_DESTINATION = "192.0.2.9", "192.0.2.50"
ROOT = Path(__file__).resolve().parents[2]
CAPABILITY_BITS = {"net_admin": 12, "net_raw": 13}


def run(*command, check=True):
    return subprocess.run(command, check=check, capture_output=True, text=True, timeout=15)


def as_service_user(capabilities):
    """setpriv's prefix: the service user with exactly these capabilities, ambient so that they
    survive the exec of a binary without file capabilities."""
    caps = ",".join(["-all", *(f"+{cap}" for cap in capabilities)])
    return ["setpriv", f"--reuid={SERVICE_USER}", f"--regid={SERVICE_USER}", "--init-groups",
            f"--inh-caps={caps}", f"--ambient-caps={caps}", f"--bounding-set={caps}", "--"]




class Pair:
    def __init__(self, prefix, base):
        self.prefix, self.base = prefix, base
        self.settings, self.processes = {}, []

    def ns(self, node):
        return f"{self.prefix}{node}"

    def build(self):
        for node in ("ka1", "ka2"):
            run("ip", "netns", "add", self.ns(node))
        for link in ("eth1", "eth0"):
            run("ip", "link", "add", link, "netns", self.ns("ka1"), "type", "veth",
                "peer", "name", link, "netns", self.ns("ka2"))
        for node in ("ka1", "ka2"):
            ns = self.ns(node)
            run("ip", "-n", ns, "addr", "add", f"{FRONT[node]}/24", "dev", "eth1")
            run("ip", "-n", ns, "addr", "add", f"{BACK[node]}/24", "dev", "eth0")
            for link in ("lo", "eth1", "eth0"):
                run("ip", "-n", ns, "link", "set", link, "up")
            # as the recipe (ha-recipe.md, F8); and a rule that uses conntrack, without which a
            # new namespace tracks nothing
            run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.netfilter.nf_conntrack_events=1")
            subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], check=True, text=True,
                           input="table ip hatest {\n\tchain out {\n\t\ttype filter hook output "
                                 "priority 0;\n\t\tct state new counter\n\t}\n}\n")

    def render(self):
        for node in ("ka1", "ka2"):
            state_dir = self.base / node
            state_dir.mkdir()
            settings = PairSettings(
                role=ROLES[node], router_id=node, local_ip=FRONT[node],
                peer_ip=FRONT[PEER[node]], interface="eth1", virtual_router_id=51,
                state_dir=str(state_dir),
                addresses=((VIP, 32, "eth1"), (FLOATING_IP, 32, "eth0")),
                track_interfaces=("eth0",),
                ignore_addresses=(*FRONT.values(), *BACK.values(), VIP, FLOATING_IP))
            Path(settings.keepalived_config).write_text(keepalived_conf(settings))
            Path(settings.conntrackd_config).write_text(conntrackd_conf(settings))
            self.settings[node] = settings
        for path in [self.base, *self.base.rglob("*")]:
            shutil.chown(path, SERVICE_USER, SERVICE_USER)

    def start(self, node, command, capabilities, log_name):
        log = open(self.base / node / log_name, "ab")  # noqa: SIM115 (closed in stop)
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(node), *as_service_user(capabilities), *command],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
        process.log = log
        self.processes.append(process)
        return process

    def exec_as_user(self, node, command, capabilities=()):
        return run("ip", "netns", "exec", self.ns(node), *as_service_user(capabilities),
                   *command, check=False)

    def holds_vip(self, node):
        return f"inet {VIP}/32" in run("ip", "-n", self.ns(node), "-4", "addr", "show").stdout

    def holders(self):
        return [node for node in ("ka1", "ka2") if self.holds_vip(node)]

    def effective_capabilities(self, pid):
        """{pid: CapEff} of the process (`ip netns exec` and setpriv exec, so it is the daemon
        itself) and of its children (keepalived's VRRP process)."""
        found = {}
        for each in [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text()
                               .split())]:
            status = Path(f"/proc/{each}/status").read_text()
            found[each] = int(next(line.split()[1] for line in status.splitlines()
                                   if line.startswith("CapEff:")), 16)
        return found

    def vrrp_state(self, node):
        with contextlib.suppress(FileNotFoundError):
            return Path(self.settings[node].state_file).read_text().split()[0]
        return None

    def logs(self):
        return "\n".join(f"--- {path.relative_to(self.base)}\n"
                         f"{path.read_text(errors='replace')[-3000:]}"
                         for path in sorted(self.base.glob("*/*.log")))

    def stop(self):
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=3)
            process.log.close()

    def remove(self):
        for node in ("ka1", "ka2"):
            run("ip", "netns", "delete", self.ns(node), check=False)


@pytest.fixture
def pair():
    needs_root()
    for tool in ("keepalived", "conntrackd", "conntrack", "setpriv", "nft"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (Debian packages keepalived, conntrackd, conntrack, "
                        "util-linux, nftables)")
    base = Path(tempfile.mkdtemp(prefix="lbadmin-ha-", dir="/tmp"))
    built = Pair(unique_test_prefix(), base)
    try:
        built.build()
        built.render()
        yield built
    finally:
        built.stop()
        built.remove()
        shutil.rmtree(base, ignore_errors=True)


def test_the_rendered_pair_elects_one_master_and_the_backup_takes_over_a_crash(pair):
    for node in ("ka1", "ka2"):
        check = pair.exec_as_user(node, ["keepalived", "-t", "-f",
                                         pair.settings[node].keepalived_config])
        assert check.returncode == 0, check.stdout + check.stderr

    for node in ("ka1", "ka2"):
        pair.start(node, conntrackd_command(pair.settings[node]), CONNTRACKD_CAPABILITIES,
                   "conntrackd.out.log")
    readers = {node: pair.start(node, notify_command(pair.settings[node], sys.executable),
                                NOTIFY_CAPABILITIES, "notify.log")
               for node in ("ka1", "ka2")}
    for node in ("ka1", "ka2"):  # conntrackd before keepalived (ha-recipe.md, F8)
        socket_path = Path(pair.settings[node].state_dir) / "conntrackd.ctl"
        assert wait_for(socket_path.exists, 3), pair.logs()
        fifo = Path(pair.settings[node].fifo_path)  # the reader makes it, 0600
        assert wait_for(fifo.exists, 5), pair.logs()
        assert stat.S_ISFIFO(fifo.stat().st_mode) and stat.S_IMODE(fifo.stat().st_mode) == 0o600
    keepalived = {node: pair.start(node, keepalived_command(pair.settings[node]),
                                   KEEPALIVED_CAPABILITIES, "keepalived.log")
                  for node in ("ka1", "ka2")}

    def settled():
        holders = pair.holders()
        if len(holders) == 1 and pair.vrrp_state(holders[0]) == "master" \
                and pair.vrrp_state(PEER[holders[0]]) == "backup":
            return holders[0]
        return None

    master = wait_for(settled, 5)
    assert master, (pair.holders(), pair.logs())
    backup = PEER[master]
    assert f"inet {FLOATING_IP}/32" in run("ip", "-n", pair.ns(master), "addr").stdout

    # keepalived holds exactly NET_ADMIN and NET_RAW (no SETGID: it runs no script), the
    # reader nothing at all
    want = sum(1 << CAPABILITY_BITS[cap] for cap in KEEPALIVED_CAPABILITIES)
    assert want == (1 << 12) | (1 << 13)
    for node in ("ka1", "ka2"):
        found = pair.effective_capabilities(keepalived[node].pid)
        assert len(found) == 2 and set(found.values()) == {want}, found  # main + VRRP child
        assert set(pair.effective_capabilities(readers[node].pid).values()) == {0}

    for node in ("ka1", "ka2"):
        stats = pair.exec_as_user(node, ["conntrackd", "-C",
                                         pair.settings[node].conntrackd_config, "-s"])
        assert stats.returncode == 0 and "cache internal" in stats.stdout, stats

    # a flow through the master reaches the backup's external cache...
    run("ip", "-n", pair.ns(master), "addr", "add", f"{FLOW_SOURCE}/32", "dev", "eth0")
    run("ip", "netns", "exec", pair.ns(master), sys.executable, "-c",
        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        f"s.bind(('{FLOW_SOURCE}', 0)); s.sendto(b'x', ('{FLOW_DESTINATION}', 9))")

    def replicated():
        external = pair.exec_as_user(backup, ["conntrackd", "-C",
                                              pair.settings[backup].conntrackd_config, "-e"])
        return f"src={FLOW_SOURCE}" in external.stdout

    assert wait_for(replicated, 3, every=0.1), pair.logs()
    assert f"src={FLOW_SOURCE}" not in run("ip", "netns", "exec", pair.ns(backup),
                                           "conntrack", "-L").stdout

    # ...then the master's keepalived dies without a word (no priority-0 advert), so the backup
    # waits out 3 adverts and its skew: 3 x 0.2 + (256 - priority) / 256 x 0.2 seconds
    crashed = time.monotonic()
    os.killpg(keepalived[master].pid, signal.SIGKILL)
    assert wait_for(lambda: pair.holds_vip(backup), 2, every=0.005), pair.logs()
    takeover = time.monotonic() - crashed
    assert wait_for(lambda: pair.vrrp_state(backup) == "master", 2 - takeover), pair.logs()
    print(f"\ntakeover after SIGKILL of {master}'s keepalived: {takeover * 1000:.0f} ms")

    # the reader's `conntrackd -c` (service user, no capability) put the flow in the kernel
    def committed():
        return f"src={FLOW_SOURCE}" in run("ip", "netns", "exec", pair.ns(backup),
                                           "conntrack", "-L").stdout

    assert wait_for(committed, 2, every=0.05), pair.logs()

    # keepalived comes back on the crashed node: the reader there, still running, reads the
    # new keepalived's lines from the same FIFO; the node stays passive (nopreempt)
    os.remove(pair.settings[master].state_file)
    keepalived[master].wait(timeout=3)  # reaped: a zombie's pid file says "already running"
    vrrp_child = int(Path(pair.settings[master].vrrp_pid).read_text())
    assert wait_for(lambda: not Path(f"/proc/{vrrp_child}").exists(), 3)
    keepalived[master] = pair.start(master, keepalived_command(pair.settings[master]),
                                    KEEPALIVED_CAPABILITIES, "keepalived.log")
    assert wait_for(lambda: pair.vrrp_state(master) == "backup", 5), pair.logs()
    assert pair.holders() == [backup]
    assert readers[master].poll() is None and readers[backup].poll() is None


def test_a_file_without_addresses_passes_the_keepalived_check():
    needs_root()
    if shutil.which("keepalived") is None:
        pytest.skip("needs keepalived (Debian package keepalived)")
    base = Path(tempfile.mkdtemp(prefix="lbadmin-ha-", dir="/tmp"))
    try:
        settings = PairSettings(role="primary", router_id="ka1", local_ip=FRONT["ka1"],
                                peer_ip=FRONT["ka2"], interface="eth1", virtual_router_id=51,
                                state_dir=str(base))
        Path(settings.keepalived_config).write_text(keepalived_conf(settings))
        shutil.chown(base, SERVICE_USER, SERVICE_USER)
        shutil.chown(settings.keepalived_config, SERVICE_USER, SERVICE_USER)
        check = run(*as_service_user(KEEPALIVED_CAPABILITIES), "keepalived", "-t", "-f",
                    settings.keepalived_config, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        shutil.rmtree(base, ignore_errors=True)
