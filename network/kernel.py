"""Local Configuration applied to the kernel: interfaces, VLANs, routes — all of it, or, when
the kernel refuses a step, none of it (the worker puts back what it read before)."""

import errno
import logging

from pyroute2.netlink.exceptions import NetlinkError

from . import netlink

log = logging.getLogger("lbadmin.network")

# What a refusal means, by errno and by the kind of step (netlink.StepRefused.kind); "" is any
# kind. The kernel's own words follow in brackets.
UNREACHABLE = "the gateway is not reachable: no address of the appliance is on its subnet"
NOT_ALLOWED = ("the dataplane worker is not allowed to change the network (it needs "
               "CAP_NET_ADMIN)")
WORDS = {
    **{(code, kind): UNREACHABLE for code in (errno.ENETUNREACH, errno.EHOSTUNREACH)
       for kind in ("route", "gateway")},
    (errno.EEXIST, "route"): "there is a route to that destination already (the kernel's own "
                             "subnet route, or one lbadmin did not add): lbadmin does not "
                             "replace it",
    (errno.EEXIST, "address"): "the interface has that address already",
    (errno.EEXIST, "vlan"): "an interface of that name exists already",
    (errno.EINVAL, "mtu"): "the interface does not take this MTU (its driver's limits)",
    (errno.ERANGE, "mtu"): "the MTU is outside the range this interface takes",
    (errno.EINVAL, "address"): "the kernel does not take this address on this interface",
    (errno.EINVAL, "route"): "the kernel does not take this route: check the destination and "
                             "that the gateway is a host on a connected subnet",
    (errno.EINVAL, "gateway"): "the kernel does not take this gateway: it must be a host on a "
                               "connected subnet",
    (errno.EINVAL, ""): "the kernel does not take this value",
    (errno.ENODEV, ""): "there is no such interface on the appliance",
    (errno.EOPNOTSUPP, ""): "it is not supported by this kernel",
    (errno.EADDRNOTAVAIL, ""): "the address is not available on this interface",
    (errno.EPERM, ""): NOT_ALLOWED,
    (errno.EACCES, ""): NOT_ALLOWED,
    (errno.ENETDOWN, ""): "the interface is down",
    (errno.EBUSY, ""): "the interface is busy",
}


class NetworkError(Exception):
    """The kernel refused a change; the previous settings were put back. The message is the
    administrator's words with the kernel's after them; `field` names the form field the
    refused value came from ("routes", "addresses_eth1", "mtu_eth1"...; "" if none)."""

    def __init__(self, message, field=""):
        super().__init__(message)
        self.field = field


def in_words(refused):
    """'The kernel refused 10.0.0.0/8 via 192.0.2.9: the gateway is not reachable: … (kernel:
    Network is unreachable)' for a netlink.StepRefused."""
    words = WORDS.get((refused.code, refused.kind)) or WORDS.get((refused.code, "")) or \
        "the kernel refused it"
    return f"The kernel refused {refused.what}: {words} (kernel: {refused.words})."


def read_current(config):
    """What the kernel has now for everything `config` would touch."""
    vlans = netlink.read_vlans()
    names = set(config["interfaces"]) | {f"{p}.{v}" for p, v in vlans}
    routes = netlink.read_routes()
    return {
        "interfaces": netlink.read_interfaces(sorted(names)),
        "vlans": [list(v) for v in vlans],
        "gateway4": routes["gateway4"], "gateway6": routes["gateway6"],
        "routes": routes["routes"],
    }


def _apply(config):
    netlink.set_vlans(config["vlans"])
    for name, settings in sorted(config["interfaces"].items()):
        netlink.set_interface(name, settings.get("addresses", []), settings.get("mtu"))
    netlink.set_routes(config["gateway4"], config["gateway6"], config["routes"])
    restored = netlink.ensure_subnet_routes()
    if restored:
        log.warning("put back the kernel's route to %s", ", ".join(restored))


def apply_network(config):
    """Apply `config`; if the kernel refuses any step, restore what was there and raise
    NetworkError saying which step, in words, with the kernel's reason after them."""
    before = read_current(config)
    try:
        _apply(config)
    except (netlink.StepRefused, NetlinkError, OSError) as error:
        if isinstance(error, netlink.StepRefused):
            text, field = in_words(error), error.field
        else:
            reason = getattr(error, "args", [None, None])
            kernel_words = reason[1] if len(reason) > 1 and isinstance(reason[1], str) \
                else str(error)
            text, field = f"The kernel refused the change (kernel: {kernel_words}).", ""
        log.error("network change refused: %s Putting the previous settings back.", text)
        try:
            _apply(before)
        except (netlink.StepRefused, NetlinkError, OSError) as second:  # pragma: no cover
            log.error("could not fully restore the previous settings: %s", second)
        raise NetworkError(text, field) from error


def write_resolver_files(directory, hostname, dns):
    """Hostname and DNS servers, written where the appliance keeps them (LBADMIN_ETC_DIR:
    /etc on an appliance; the data directory in the lab, never the host's files)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "hostname").write_text(hostname + "\n")
    (directory / "resolv.conf").write_text(
        "# written by lbadmin (Local Configuration > Hostname & DNS)\n"
        + "".join(f"nameserver {server}\n" for server in dns))
