"""The seam between the pair's configuration and its VRRP side: keepalived.conf and
conntrackd.conf in <DATA_DIR>/ha/, and the processes that read them (keepalived, conntrackd and
the FIFO reader ha.notify, which the supervisor runs as the service user).

It runs in the maintenance worker (pairing: `configure`, `unconfigure`) and in the dataplane
worker (the address owner's `hand_over`, on every change of the VIPs or floating IPs), both as
the service user in the appliance's namespace, so what it reads of the interfaces is the
appliance's own (network.netlink, read-only here).

- `settings_for(pair, floating_ips, vips)`: this node's PairSettings. The VRRP interface holds
  pair.local_ip; each address goes on the interface whose connected subnet holds it (as a /32,
  or /128); every other interface that is up is tracked (its failure puts the node in FAULT).
- `write(settings)`: both files, atomically, mode 0600; True when keepalived.conf changed.
- `reload()`: SIGHUP to keepalived (from its pid file) when it runs.
- `configure(pair)` / `unconfigure()`: write and start, or stop and remove.
- `AddressOwner`: what the ha app registers in core.pairing, so the dataplane worker hands the
  addresses to keepalived instead of placing them.
"""

import contextlib
import ipaddress
import logging
import os
import re
import signal
import socket
from pathlib import Path

from django.conf import settings as django_settings

from core import workers
from core.files import write_atomically
from core.runtime import (
    CONNTRACKD_CONF_NAME,
    HA_DIR_NAME,
    KEEPALIVED_CONF_NAME,
    KEEPALIVED_PID_NAME,
    VRRP_STATE_NAME,
)
from network import netlink

from .render import PairSettings, conntrackd_conf, keepalived_conf

log = logging.getLogger("lbadmin.ha")

# The supervisor's services, in start order: conntrackd before keepalived (ha-recipe.md, F8),
# and the FIFO reader before keepalived, so that keepalived finds the FIFO the reader made.
NOTIFY_SERVICE = "vrrp-notify"
START_ORDER = ("conntrackd", NOTIFY_SERVICE, "keepalived")
STOP_ORDER = ("keepalived", NOTIFY_SERVICE, "conntrackd")
BY = "HA pair"
ask_supervisor = workers.ask_supervisor  # the seam: tests replace it
HOSTNAME_WORD = re.compile(r"[^A-Za-z0-9_.-]")


def state_dir():
    return Path(django_settings.DATA_DIR) / HA_DIR_NAME


def router_id():
    """The hostname, as one word keepalived's logs can show."""
    name = HOSTNAME_WORD.sub("-", socket.gethostname())[:64].strip("-.")
    return name or "lbadmin"


def _host(address):
    return ipaddress.ip_address(address).max_prefixlen


def plan(pair, floating_ips, vips):
    """(PairSettings, the addresses no interface's connected subnet holds)."""
    wanted = sorted(set(vips) | set(floating_ips), key=ipaddress.ip_address)
    interfaces = netlink.list_interfaces()
    local_ip = str(pair.local_ip)
    interface, own = None, []
    for link in interfaces:
        for entry in link.get("marked", [{"cidr": c, "role": ""} for c in link["addresses"]]):
            address = str(ipaddress.ip_interface(entry["cidr"]).ip)
            if address == local_ip:
                interface = link["name"]
            parsed = ipaddress.ip_address(address)
            if entry.get("role") or parsed.is_loopback or parsed.is_link_local \
                    or address in wanted:
                continue
            own.append(address)
    if interface is None:
        raise ValueError(f"no interface holds this node's pair address {local_ip}")
    homes = netlink.connected_interfaces(wanted)
    placed = tuple((address, _host(address), homes[address]) for address in wanted
                   if homes.get(address))
    unplaced = [address for address in wanted if not homes.get(address)]
    tracked = tuple(sorted(link["name"] for link in interfaces
                           if link["name"] not in (interface, "lo")
                           and str(link.get("state", "")).upper() == "UP"))
    ignore = tuple(dict.fromkeys([*own, str(pair.peer_ip), *wanted]))
    pair_settings = PairSettings(
        role=pair.role, router_id=router_id(), local_ip=local_ip, peer_ip=str(pair.peer_ip),
        interface=interface, virtual_router_id=int(pair.virtual_router_id),
        state_dir=str(state_dir()), addresses=placed, track_interfaces=tracked,
        ignore_addresses=ignore)
    return pair_settings, unplaced


def settings_for(pair, floating_ips, vips):
    """This node's PairSettings for the pair and these addresses."""
    return plan(pair, floating_ips, vips)[0]


def write(pair_settings):
    """Write keepalived.conf and conntrackd.conf into the state directory (made 0700 if
    missing). True when keepalived.conf changed (conntrackd reads its file when it starts;
    its content changes only with the pair's own addresses, or the ignore list, which can wait
    for the next start)."""
    directory = Path(pair_settings.state_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomically(pair_settings.conntrackd_config, conntrackd_conf(pair_settings))
    return write_atomically(pair_settings.keepalived_config, keepalived_conf(pair_settings))


def keepalived_pid():
    """keepalived's main pid from its pid file when that process is keepalived, else None."""
    try:
        pid = int((state_dir() / KEEPALIVED_PID_NAME).read_text().split()[0])
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError, IndexError):
        return None
    return pid if comm == "keepalived" else None


def reload():
    """SIGHUP to a running keepalived: it reads its file again and keeps its state. True when
    one was signalled."""
    pid = keepalived_pid()
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGHUP)
    except (ProcessLookupError, PermissionError):
        return False
    log.info("keepalived (pid %s) reloaded", pid)
    return True


def _current_addresses():
    from clusters.models import FloatingIP, VirtualService  # ha sits above clusters

    vips = set(VirtualService.objects.values_list("vip", flat=True))
    floating = set(FloatingIP.objects.values_list("address", flat=True))
    return floating, vips


def configure(pair):
    """Render this node's files from the pair and the current addresses; reload a running
    keepalived; ask the supervisor to start conntrackd, the FIFO reader and keepalived (in
    that order). Raises ValueError (no interface holds pair.local_ip) or
    core.workers.WorkerUnavailable (no supervisor)."""
    floating, vips = _current_addresses()
    changed = write(settings_for(pair, floating, vips))
    if changed:
        reload()
    for name in START_ORDER:
        ask_supervisor({"start": name, "by": BY})


def unconfigure():
    """Ask the supervisor to stop keepalived (it drops the addresses and the peer takes over),
    the FIFO reader and conntrackd; remove the files, so that nothing starts them again."""
    for name in STOP_ORDER:
        ask_supervisor({"stop": name, "by": BY})
    for name in (KEEPALIVED_CONF_NAME, CONNTRACKD_CONF_NAME, VRRP_STATE_NAME):
        with contextlib.suppress(FileNotFoundError):
            (state_dir() / name).unlink()


def _load_pair():
    from .models import Pair  # loaded when asked: the owner is registered at app loading

    return Pair.load()


class AddressOwner:
    """The pair's keepalived as the holder of the VIPs and floating IPs (core.pairing)."""

    def __init__(self, load_pair=_load_pair):
        self.load_pair = load_pair

    def holds_addresses(self):
        pair = self.load_pair()
        return bool(pair.paired and pair.local_ip and pair.peer_ip and pair.virtual_router_id)

    def peer_address(self):
        """The other node's address while paired (the firewall lockdown admits it)."""
        pair = self.load_pair()
        return str(pair.peer_ip) if pair.paired and pair.peer_ip else None

    def hand_over(self, floating_ips, vips):
        """Render keepalived.conf with these addresses; reload keepalived when it changed.
        Returns the addresses no interface's connected subnet holds."""
        pair_settings, unplaced = plan(self.load_pair(), floating_ips, vips)
        if write(pair_settings):
            reload()
        return unplaced


address_owner = AddressOwner()
