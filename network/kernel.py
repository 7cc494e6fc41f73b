"""Local Configuration applied to the kernel: interfaces, VLANs, routes — all of it, or, when
the kernel refuses a step, none of it (the worker puts back what it read before)."""

import logging

from pyroute2.netlink.exceptions import NetlinkError

from . import netlink

log = logging.getLogger("lbadmin.network")


class NetworkError(Exception):
    """The kernel refused a change; the previous settings were put back."""


def read_current(config):
    """What the kernel has now for everything `config` would touch."""
    names = set(config["interfaces"]) | {f"{p}.{v}" for p, v in netlink.read_vlans()}
    routes = netlink.read_routes()
    return {
        "interfaces": netlink.read_interfaces(sorted(names)),
        "vlans": [list(v) for v in netlink.read_vlans()],
        "gateway4": routes["gateway4"], "gateway6": routes["gateway6"],
        "routes": routes["routes"],
    }


def _apply(config):
    netlink.set_vlans(config["vlans"])
    for name, settings in sorted(config["interfaces"].items()):
        netlink.set_interface(name, settings.get("addresses", []), settings.get("mtu"))
    netlink.set_routes(config["gateway4"], config["gateway6"], config["routes"])


def apply_network(config):
    """Apply `config`; if the kernel refuses any step, restore what was there and raise
    NetworkError with the kernel's reason."""
    before = read_current(config)
    try:
        _apply(config)
    except (NetlinkError, OSError) as error:
        reason = getattr(error, "args", [None, None])
        text = reason[1] if len(reason) > 1 and isinstance(reason[1], str) else str(error)
        log.error("network change refused: %s; putting the previous settings back", text)
        try:
            _apply(before)
        except (NetlinkError, OSError) as second:  # pragma: no cover - logged, not hidden
            log.error("could not fully restore the previous settings: %s", second)
        raise NetworkError(text) from error


def write_resolver_files(directory, hostname, dns):
    """Hostname and DNS servers, written where the appliance keeps them (LBADMIN_ETC_DIR:
    /etc on an appliance; the data directory in the lab, never the host's files)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "hostname").write_text(hostname + "\n")
    (directory / "resolv.conf").write_text(
        "# written by lbadmin (Local Configuration > Hostname & DNS)\n"
        + "".join(f"nameserver {server}\n" for server in dns))
