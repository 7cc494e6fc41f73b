"""The HA pair's settings -> keepalived.conf and conntrackd.conf, as pure functions
(golden-tested in tests/unit). No Django here: the caller (ha.vrrp) reads the configuration and
writes the files; tests/netns/test_ha_vrrp.py runs them with Debian's keepalived and conntrackd
and the reader of keepalived's notify FIFO (ha.notify).

The shape (DESIGN.md, "The HA pair"; ha-recipe.md beside it for every measured fact):

- keepalived: one VRRP instance carries every VIP and floating IP, so they always move
  together. Both nodes start `state BACKUP` with `nopreempt`: a node that comes back stays
  passive, so a failure costs one interruption, not two. The priority (150 primary, 100
  secondary) only decides who wins when both start together. VRRPv3 with 0.2 s adverts over
  unicast: a link failure is noticed after 3 x 0.2 s plus the skew, under a second.
- conntrackd in FTFW mode replicates the connection tracking table (NAT mapping and mark
  included) over UDP unicast between the two nodes, so open connections survive a takeover.
- keepalived runs no script at all: it writes each transition as a line to a FIFO
  (`notify_fifo`), and ha.notify, a process of its own with no capability, reads it, records
  the state and runs conntrackd's commit/flush/resync steps (conntrackd's own
  doc/sync/primary-backup.sh) over conntrackd's unix socket.

Why no notify script: keepalived 2.2.7 calls setgroups() before every script, so it would need
CAP_SETGID, and its scripts inherit its capabilities; the script and the configuration live in
`state_dir`, which the WebUI's user can write. A script would hand CAP_NET_ADMIN, CAP_NET_RAW and
CAP_SETGID to whoever owns the WebUI. With the FIFO, keepalived holds NET_ADMIN and NET_RAW and
runs nothing; what the WebUI's user could still do with the configuration is what keepalived
itself does (move the pair's addresses), not more.

Both daemons run as the service user with only the capabilities named below, as ambient
capabilities; every file they write (pid files, lock, control socket, logs, FIFO, state) lives
in `state_dir`.
"""

import ipaddress
import re
from dataclasses import dataclass

ROLES = ("primary", "secondary")
PRIORITY = {"primary": 150, "secondary": 100}
NOTIFY_STATES = ("master", "backup", "fault")
INSTANCE = "lbadmin"
SERVICE_USER = "lbadmin"  # the user keepalived, conntrackd and the FIFO reader run as
SCRIPT_USER = SERVICE_USER  # the old name (tests, callers)
# What each process needs, run as SERVICE_USER with these as ambient capabilities (measured
# with keepalived 2.2.7 and conntrackd 1.4.7 in tests/netns/test_ha_vrrp.py):
# - keepalived: NET_ADMIN (addresses) and NET_RAW (VRRP and ARP sockets). It runs no script,
#   so it needs no SETGID (it would call setgroups() before each one).
# - conntrackd: NET_ADMIN alone (ctnetlink, forced socket buffers; binding to the interface
#   works without NET_RAW). Without SYS_NICE it warns "scheduler configuration failed" and
#   keeps the default scheduler.
# - the FIFO reader (ha.notify): none; the conntrackd client only talks to the daemon's socket.
KEEPALIVED_CAPABILITIES = ("net_admin", "net_raw")
CONNTRACKD_CAPABILITIES = ("net_admin",)
NOTIFY_CAPABILITIES = ()
FIFO_NAME = "vrrp.fifo"  # in state_dir; keepalived writes it, ha.notify reads it
GARP_MASTER_DELAY = 1  # seconds before the second round of gratuitous ARPs (keepalived: 5)
# While master, a gratuitous ARP every minute: a switch or a server that lost its entry (or
# learnt a wrong one while the link flapped) finds the active node again without waiting for
# an ARP request (keepalived's default: never).
GARP_MASTER_REFRESH = 60
# conntrackd 1.4.7 silently refuses every `-f` after the first `-c` with HashSize <= 8192
# (ha-recipe.md, F6): a commit done in one step never clears its "in progress" marker.
HASH_SIZE = 32768
HASH_LIMIT = 524288  # conntrackd's advice: twice nf_conntrack_max (262144 by default)
PURGE_TIMEOUT = 60  # seconds from `conntrackd -t` to the flush of the kernel table (F7)
# keepalived 2.2.7 cannot set an address's IFA_PROTO (the mark lbadmin's own VIPs carry), so its
# IPv4 addresses carry the label "<device>:ha" instead: network.netlink then tells them from the
# administrator's and never removes them when it applies Local Configuration (it did, on every
# replicated change: the active node lost its floating IP and handed the pair over). A label is
# at most 15 characters; an address on a longer device name goes without one.
ADDRESS_LABEL_SUFFIX = ":ha"  # network.netlink.PAIR_LABEL_SUFFIX
MAX_LABEL = 15

NAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")  # an interface name, as the kernel allows
WORD = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
PATH = re.compile(r"^(/[A-Za-z0-9_.-]+)+$")  # quoted nowhere, so no spaces or quotes


@dataclass(frozen=True)
class PairSettings:
    """One node's view of the pair. `addresses` are (address, prefixlen, device)."""

    role: str  # "primary" or "secondary"
    router_id: str  # this node's name in keepalived's logs, e.g. the hostname
    local_ip: str  # VRRP adverts and conntrackd's sync leave from here...
    peer_ip: str  # ...to the other node
    interface: str  # the interface holding local_ip
    virtual_router_id: int  # 1..255, the same on both nodes and unique on the link
    state_dir: str
    addresses: tuple = ()  # VIPs and floating IPs, held by the active node only
    track_interfaces: tuple = ()  # a failure of any of these puts this node in FAULT
    advert_int: float = 0.2
    sync_port: int = 3780
    ignore_addresses: tuple = ()  # the nodes' own and the pair's addresses: not replicated

    def __post_init__(self):
        for name in ("addresses", "track_interfaces", "ignore_addresses"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(
            self, "addresses",
            tuple((str(a), int(p), str(d)) for a, p, d in self.addresses))
        _validate(self)

    @property
    def priority(self):
        return PRIORITY[self.role]

    @property
    def keepalived_config(self):
        return f"{self.state_dir}/keepalived.conf"

    @property
    def conntrackd_config(self):
        return f"{self.state_dir}/conntrackd.conf"

    @property
    def fifo_path(self):
        return f"{self.state_dir}/{FIFO_NAME}"

    @property
    def state_file(self):
        return f"{self.state_dir}/vrrp-state"

    @property
    def keepalived_pid(self):
        return f"{self.state_dir}/keepalived.pid"

    @property
    def vrrp_pid(self):
        return f"{self.state_dir}/keepalived-vrrp.pid"


def _validate(settings):
    """Light checks, so that nothing unexpected reaches a rendered file; the forms hold the
    rules a user meets."""
    if settings.role not in ROLES:
        raise ValueError(f"role must be primary or secondary, not {settings.role!r}")
    if not WORD.match(settings.router_id):
        raise ValueError(f"router_id {settings.router_id!r} must be one word of letters, "
                         "digits, '.', '_' or '-'")
    if not isinstance(settings.virtual_router_id, int) \
            or not 1 <= settings.virtual_router_id <= 255:
        raise ValueError(f"virtual_router_id must be 1 to 255, not {settings.virtual_router_id!r}")
    if not 1 <= settings.sync_port <= 65535:
        raise ValueError(f"sync_port must be 1 to 65535, not {settings.sync_port!r}")
    # VRRPv3 counts adverts in centiseconds, at most 4095
    if not 0.01 <= settings.advert_int <= 40.95:
        raise ValueError(f"advert_int must be 0.01 to 40.95 seconds, not {settings.advert_int!r}")
    local, peer = _address(settings.local_ip, "local_ip"), _address(settings.peer_ip, "peer_ip")
    if local == peer:
        raise ValueError("local_ip and peer_ip must differ")
    if local.version != peer.version:
        raise ValueError("local_ip and peer_ip must be of the same IP version")
    for device in (settings.interface, *settings.track_interfaces):
        _interface(device)
    for address, prefixlen, device in settings.addresses:
        ip = _address(address, "address")
        if not 0 <= prefixlen <= ip.max_prefixlen:
            raise ValueError(f"prefix length of {address} must be 0 to {ip.max_prefixlen}, "
                             f"not {prefixlen}")
        _interface(device)
    for network in settings.ignore_addresses:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ValueError(f"{network!r} in ignore_addresses is not an address or a network") \
                from None
    if not PATH.match(settings.state_dir):
        raise ValueError(f"state_dir must be an absolute path of letters, digits, '.', '_', '-' "
                         f"and '/', not {settings.state_dir!r}")


def _address(value, what):
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{what} {value!r} is not an IP address") from None


def _interface(name):
    if not NAME.match(name):
        raise ValueError(f"{name!r} is not an interface name")


def _number(value):
    """0.2 -> "0.2", 1.0 -> "1": keepalived reads both."""
    return format(value, "g")


def _label(address, device):
    """" label eth0:ha" for an IPv4 address (the kernel labels IPv4 addresses only)."""
    label = f"{device}{ADDRESS_LABEL_SUFFIX}"
    if ipaddress.ip_address(address).version != 4 or len(label) > MAX_LABEL:
        return ""
    return f" label {label}"


def keepalived_conf(settings):
    """With no address there is nothing to hold, and keepalived refuses a VRRPv3 instance
    without one ("No VIP specified; at least one is required"), so the file has no instance:
    keepalived then idles ("no configuration to run") until a reload brings one."""
    lines = [
        "# Rendered by lbadmin (ha/render.py): rewritten on every change, do not edit.",
        "global_defs {",
        f"    router_id {settings.router_id}",
        "    vrrp_version 3                # sub-second adverts",
        f"    vrrp_garp_master_refresh {GARP_MASTER_REFRESH}",
        # each transition as a line (INSTANCE "lbadmin" MASTER 150), read by ha.notify: no
        # script runs, so keepalived needs no capability beyond NET_ADMIN and NET_RAW
        f"    notify_fifo {settings.fifo_path}",
        "}",
    ]
    if not settings.addresses:
        lines += ["# no addresses to hold: no VRRP instance"]
        return "\n".join(lines) + "\n"
    lines += [
        "",
        f"vrrp_instance {INSTANCE} {{",
        "    state BACKUP                  # on both nodes: the priority decides at start",
        "    nopreempt                     # a node that comes back stays passive",
        f"    interface {settings.interface}",
        f"    virtual_router_id {settings.virtual_router_id}",
        f"    priority {settings.priority}",
        f"    advert_int {_number(settings.advert_int)}",
        f"    garp_master_delay {GARP_MASTER_DELAY}",
        f"    unicast_src_ip {settings.local_ip}",
        "    unicast_peer {",
        f"        {settings.peer_ip}",
        "    }",
    ]
    if settings.track_interfaces:
        lines += ["    track_interface {"]
        lines += [f"        {device}" for device in settings.track_interfaces]
        lines += ["    }"]
    lines += ["    virtual_ipaddress {"]
    lines += [f"        {address}/{prefixlen} dev {device}{_label(address, device)}"
              for address, prefixlen, device in settings.addresses]
    lines += ["    }"]
    lines += ["}"]
    return "\n".join(lines) + "\n"


def conntrackd_conf(settings):
    family = "IPv4" if ipaddress.ip_address(settings.local_ip).version == 4 else "IPv6"
    ignored = ["127.0.0.1", *settings.ignore_addresses]
    ignore_lines = [
        f"            {'IPv6' if ':' in address else 'IPv4'}_address {address}"
        for address in dict.fromkeys(ignored)
    ]
    return "\n".join([
        "# Rendered by lbadmin (ha/render.py): rewritten on every change, do not edit.",
        "Sync {",
        "    Mode FTFW {",
        "        DisableExternalCache off",
        f"        PurgeTimeout {PURGE_TIMEOUT}",
        "    }",
        "    UDP {",
        f"        {family}_address {settings.local_ip}",
        f"        {family}_Destination_Address {settings.peer_ip}",
        f"        Port {settings.sync_port}",
        f"        Interface {settings.interface}",
        "        SndSocketBuffer 1249280",
        "        RcvSocketBuffer 1249280",
        "        Checksum on",
        "    }",
        "}",
        "",
        "General {",
        "    Systemd off",
        f"    HashSize {HASH_SIZE}",
        f"    HashLimit {HASH_LIMIT}",
        f"    LogFile {settings.state_dir}/conntrackd.log",
        "    Syslog off",
        f"    LockFile {settings.state_dir}/conntrackd.lock",
        "    UNIX {",
        f"        Path {settings.state_dir}/conntrackd.ctl",
        "    }",
        "    NetlinkBufferSize 2097152",
        "    NetlinkBufferSizeMaxGrowth 8388608",
        "    Filter From Userspace {",
        "        Protocol Accept {",
        "            TCP",
        "            UDP",
        "        }",
        "        Address Ignore {",
        *ignore_lines,
        "        }",
        "    }",
        "}",
    ]) + "\n"


def keepalived_command(settings):
    """Foreground (-n), logging to stderr (-l) in detail (-D), VRRP only (-P), with pid files of
    its own so that two instances on one host do not meet.

    Check a file with `keepalived -t -f <file>` run as SERVICE_USER, in the namespace holding
    the interfaces."""
    return ["keepalived", "-n", "-l", "-D", "-P", "-f", settings.keepalived_config,
            "-p", settings.keepalived_pid, "-r", settings.vrrp_pid]


def conntrackd_command(settings):
    """conntrackd stays in the foreground unless given -d."""
    return ["conntrackd", "-C", settings.conntrackd_config]


def notify_command(settings, python="python3"):
    """The FIFO reader (ha.notify), in the foreground, run as SERVICE_USER with no capability
    from the project's root directory (it imports only the standard library and ha.notify)."""
    return [python, "-m", "ha.notify", "--state-dir", settings.state_dir,
            "--conntrackd-config", settings.conntrackd_config]
