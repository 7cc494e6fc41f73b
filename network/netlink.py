"""The one seam to the kernel's network configuration (pyroute2 / netlink).

It acts in the network namespace of the process that calls it: the dataplane worker is started
inside the appliance's namespace (the host's in production, the lab's lb namespace in the demo
and tests), so nothing here names a namespace.

Addresses lbadmin adds for virtual services and floating IPs carry an IFA_PROTO of their own,
routes it adds an RTPROT of its own, VLANs it creates the alias "lbadmin": so it can tell them
from the admin's and never removes what it did not add. A static route is added, never put in
place of one that is there (the kernel's own subnet route above all), and only lbadmin's own
routes, with their exact gateway, are ever deleted.

Every step of a change that the kernel refuses raises StepRefused, saying which step it was
(network.kernel puts it in the administrator's words).
"""

import contextlib
import errno
import ipaddress

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import rt_proto, rt_scope

VIP_PROTO = 250  # IFA_PROTO: addresses lbadmin added for virtual services
FLOATING_PROTO = 251  # IFA_PROTO: floating IPs
ROUTE_PROTO = 250  # RTPROT: routes lbadmin added
OURS = {VIP_PROTO, FLOATING_PROTO}
# The HA pair's keepalived holds the VIPs and floating IPs on the active node; it cannot set an
# IFA_PROTO, so ha.render labels them "<device>:ha" (IPv4): never the admin's, never removed here.
PAIR_LABEL_SUFFIX = ":ha"
VLAN_ALIAS = "lbadmin"

MAIN_TABLE = 254
KERNEL_PROTO = 2  # RTPROT_KERNEL: the routes the kernel makes for an address's subnet
LINK_SCOPE = 253
IFA_F_SECONDARY = 0x01
IFA_F_NOPREFIXROUTE = 0x200

__all__ = ["NetlinkError", "StepRefused"]


class StepRefused(Exception):
    """The kernel refused one step of a change. `kind` is "route", "gateway", "address",
    "mtu", "link" or "vlan"; `what` names the step ("10.0.0.0/8 via 192.0.2.9"); `field` is
    the form field it came from ("routes", "addresses_eth1"); `code` and `words` are the
    kernel's errno and message."""

    def __init__(self, kind, what, field, code, words):
        super().__init__(f"{what}: {words}")
        self.kind, self.what, self.field, self.code, self.words = kind, what, field, code, words


@contextlib.contextmanager
def _step(kind, what, field):
    try:
        yield
    except StepRefused:
        raise
    except NetlinkError as error:
        words = error.args[1] if len(error.args) > 1 and isinstance(error.args[1], str) \
            else str(error)
        raise StepRefused(kind, what, field, error.code, words) from error
    except (OSError, ValueError) as error:  # pyroute2's own checks (inet_pton) included
        code = getattr(error, "errno", None)
        raise StepRefused(kind, what, field, code, getattr(error, "strerror", None)
                          or str(error)) from error


def _speed(name):
    try:
        with open(f"/sys/class/net/{name}/speed") as handle:
            speed = int(handle.read().strip())
    except (OSError, ValueError):
        return None
    return speed if speed > 0 else None


def list_interfaces():
    """Every interface with its link state, speed, MAC, MTU and addresses in CIDR form; the
    addresses lbadmin placed are marked ("vip" or "floating"), and those the HA pair's
    keepalived holds "pair"."""
    with IPRoute() as ipr:
        addresses = {}
        for message in ipr.get_addr():
            cidr = f"{message.get('address')}/{message['prefixlen']}"
            role = {VIP_PROTO: "vip", FLOATING_PROTO: "floating"}.get(message.get("IFA_PROTO"), "")
            if not role and _held_by_the_pair(message):
                role = "pair"
            addresses.setdefault(message["index"], []).append({"cidr": cidr, "role": role})
        result = []
        for link in ipr.get_links():
            name = link.get("ifname")
            info = link.get("IFLA_LINKINFO")
            kind = info.get("IFLA_INFO_KIND") if info else None
            result.append({
                "name": name, "state": link.get("operstate"), "mac": link.get("address"),
                "mtu": link.get("mtu"), "speed": _speed(name), "kind": kind or "",
                "alias": link.get("IFLA_IFALIAS") or "",
                "addresses": [a["cidr"] for a in addresses.get(link["index"], [])],
                "marked": addresses.get(link["index"], []),
            })
        return result


def _index(ipr, name):
    found = ipr.link_lookup(ifname=name)
    if not found:
        raise NetlinkError(errno.ENODEV, f"No such device: {name}")
    return found[0]


def _held_by_the_pair(message):
    """An address the HA pair's keepalived placed (labelled "<device>:ha")."""
    return str(message.get("IFA_LABEL") or "").endswith(PAIR_LABEL_SUFFIX)


def _own_addresses(ipr, index):
    """The admin's addresses of an interface: not lbadmin's VIPs or floating IPs, not those
    the HA pair's keepalived holds, not IPv6 link-local ones (the kernel makes those)."""
    found = []
    for message in ipr.get_addr(index=index):
        if message.get("IFA_PROTO") in OURS or _held_by_the_pair(message):
            continue
        address = message.get("address")
        if ipaddress.ip_address(address).is_link_local and ":" in address:
            continue
        found.append(f"{address}/{message['prefixlen']}")
    return found


def read_interfaces(names):
    """{name: {"addresses": [...], "mtu": n}} of the named interfaces that exist."""
    with IPRoute() as ipr:
        result = {}
        for name in names:
            found = ipr.link_lookup(ifname=name)
            if found:
                link = ipr.get_links(found[0])[0]
                result[name] = {"addresses": _own_addresses(ipr, found[0]),
                                "mtu": link.get("mtu")}
        return result


def set_interface(name, addresses, mtu=None):
    """Make the interface's own addresses exactly `addresses` (CIDR) and set its MTU."""
    field = f"addresses_{name}"
    with IPRoute() as ipr:
        with _step("link", f"the settings of {name}", field):
            index = _index(ipr, name)
        if mtu:
            with _step("mtu", f"MTU {mtu} on {name}", f"mtu_{name}"):
                ipr.link("set", index=index, mtu=mtu)
        with _step("link", f"bringing {name} up", field):
            ipr.link("set", index=index, state="up")
        wanted = {str(ipaddress.ip_interface(a)) for a in addresses}
        present = set(_own_addresses(ipr, index))
        # Removals first: deleting a subnet's primary IPv4 address also deletes the secondary
        # ones in that subnet, which would take a just-added address with it.
        for cidr in sorted(present - wanted):
            interface = ipaddress.ip_interface(cidr)
            with _step("address", f"removing {cidr} from {name}", field):
                ipr.addr("del", index=index, address=str(interface.ip),
                         prefixlen=interface.network.prefixlen)
        for cidr in sorted(wanted - set(_own_addresses(ipr, index))):
            interface = ipaddress.ip_interface(cidr)
            with _step("address", f"{cidr} on {name}", field):
                ipr.addr("add", index=index, address=str(interface.ip),
                         prefixlen=interface.network.prefixlen)


def read_vlans():
    """[(parent, vlan id)] of the VLANs lbadmin made."""
    with IPRoute() as ipr:
        links = ipr.get_links()
        names = {link["index"]: link.get("ifname") for link in links}
        found = []
        for link in links:
            info = link.get("IFLA_LINKINFO")
            if info and info.get("IFLA_INFO_KIND") == "vlan" and \
                    link.get("IFLA_IFALIAS") == VLAN_ALIAS:
                data = info.get("IFLA_INFO_DATA")
                found.append((names.get(link.get("IFLA_LINK")), data.get("IFLA_VLAN_ID")))
        return found


def set_vlans(vlans):
    """Make lbadmin's VLANs exactly `vlans` ([(parent, id)]), named parent.id."""
    wanted = {(parent, int(vid)) for parent, vid in vlans}
    present = set(read_vlans())
    with IPRoute() as ipr:
        for parent, vid in sorted(wanted - present):
            name = f"{parent}.{vid}"
            with _step("vlan", f"VLAN {name}", "vlan_id"):
                ipr.link("add", ifname=name, kind="vlan", link=_index(ipr, parent),
                         vlan_id=vid)
                index = _index(ipr, name)
                ipr.link("set", index=index, ifalias=VLAN_ALIAS, state="up")
        for parent, vid in sorted(present - wanted):
            with _step("vlan", f"removing VLAN {parent}.{vid}", "vlan_id"):
                ipr.link("del", index=_index(ipr, f"{parent}.{vid}"))


def _connected_networks(ipr):
    """[(interface index, network)] of every address the admin gave (not lbadmin's own)."""
    networks = []
    for message in ipr.get_addr():
        if message.get("IFA_PROTO") in OURS:
            continue
        address = f"{message.get('address')}/{message['prefixlen']}"
        networks.append((message["index"], ipaddress.ip_interface(address).network))
    return networks


def connected_interfaces(addresses):
    """{address: the name of the interface whose connected subnet holds it, or None}. Read
    only. A subnet is one of the admin's addresses (not lbadmin's VIPs or floating IPs, not a
    single host's /32 or /128: keepalived holds a pair's addresses so, and an address must go
    where its subnet is, not where it happens to be now)."""
    with IPRoute() as ipr:
        names = {link["index"]: link.get("ifname") for link in ipr.get_links()}
        networks = [(index, network) for index, network in _connected_networks(ipr)
                    if network.prefixlen < network.max_prefixlen]
    found = {}
    for address in addresses:
        parsed = ipaddress.ip_address(address)
        found[address] = next((names.get(index) for index, network in networks
                               if parsed.version == network.version and parsed in network),
                              None)
    return found


def place_addresses(addresses, proto):
    """Make the addresses marked `proto` exactly `addresses`: add the missing ones to the
    interface whose subnet holds them, remove the ones no longer wanted.

    Returns the addresses no connected subnet holds (they cannot be placed)."""
    wanted = set(addresses)
    unplaced = []
    with IPRoute() as ipr:
        messages = ipr.get_addr()
        present = {m.get("address"): m for m in messages if m.get("IFA_PROTO") == proto}
        # An address the admin already put on an interface is answered for as it is.
        configured = {m.get("address") for m in messages}
        networks = _connected_networks(ipr)
        for address in sorted(wanted - configured):
            parsed = ipaddress.ip_address(address)
            home = next(((index, net) for index, net in networks
                         if parsed.version == net.version and parsed in net), None)
            if home is None:
                unplaced.append(address)
                continue
            ipr.addr("add", index=home[0], address=address, prefixlen=home[1].prefixlen,
                     IFA_PROTO=proto)
        for address in present.keys() - wanted:
            message = present[address]
            ipr.addr("del", index=message["index"], address=address,
                     prefixlen=message["prefixlen"])
    return unplaced


def ensure_vips(vips):
    """The virtual services' addresses (see place_addresses)."""
    return place_addresses(vips, VIP_PROTO)


def _network(text):
    return str(ipaddress.ip_network(text, strict=False))


def read_routes():
    """{"gateway4", "gateway6", "routes": [{"destination", "gateway"}]} as lbadmin set them."""
    result = {"gateway4": "", "gateway6": "", "routes": []}
    with IPRoute() as ipr:
        for family in (2, 10):
            for route in ipr.get_routes(family=family, table=MAIN_TABLE):
                if route["proto"] != ROUTE_PROTO:
                    continue
                gateway = route.get("gateway") or ""
                if route["dst_len"] == 0:
                    result["gateway4" if family == 2 else "gateway6"] = gateway
                else:
                    result["routes"].append({
                        "destination": f"{route.get('dst')}/{route['dst_len']}",
                        "gateway": gateway})
    return result


def read_all_routes():
    """Every route of the main table as the kernel has it, lbadmin's and everyone else's —
    the kernel's own subnet routes above all — for View Configuration."""
    with IPRoute() as ipr:
        names = {link["index"]: link.get("ifname") for link in ipr.get_links()}
        result = []
        for family in (2, 10):
            for route in ipr.get_routes(family=family, table=MAIN_TABLE):
                proto = route["proto"]
                length = route["dst_len"]
                result.append({
                    "destination": f"{route.get('dst')}/{length}" if length else "default",
                    "gateway": route.get("gateway") or "",
                    "device": names.get(route.get("oif"), ""),
                    "proto": "lbadmin" if proto == ROUTE_PROTO else rt_proto.get(proto,
                                                                                 str(proto)),
                    "scope": rt_scope.get(route["scope"], str(route["scope"])),
                    "metric": route.get("priority"),
                    "source": route.get("prefsrc") or "",
                    "lbadmin": proto == ROUTE_PROTO,
                    "family": 4 if family == 2 else 6,
                })
    return result


def set_routes(gateway4, gateway6, routes):
    """Default gateways and static routes, marked as lbadmin's; lbadmin's others go.

    A static route to a destination lbadmin has no route for is added, never put in place of
    another route (the kernel refuses it, "File exists", when one is there — the kernel's own
    subnet route, say); only lbadmin's own routes are deleted, with their exact gateway."""
    before = read_routes()
    ours = {_network(r["destination"]): r["gateway"] for r in before["routes"]}
    wanted = {_network(r["destination"]): r["gateway"] for r in routes}
    with IPRoute() as ipr:
        for family, gateway, key in ((2, gateway4, "gateway4"), (10, gateway6, "gateway6")):
            default = "0.0.0.0/0" if family == 2 else "::/0"
            if gateway:
                if gateway != before[key]:
                    with _step("gateway", f"the default gateway {gateway}", key):
                        ipr.route("replace", dst=default, gateway=gateway, proto=ROUTE_PROTO,
                                  family=family, table=MAIN_TABLE)
            elif before[key]:
                with _step("gateway", f"removing the default gateway {before[key]}", key):
                    _delete_ours(ipr, default, before[key], family)
        for destination, gateway in sorted(wanted.items()):
            if ours.get(destination) == gateway:
                continue
            family = 10 if ":" in destination else 2
            with _step("route", f"{destination} via {gateway}", "routes"):
                # replace only lbadmin's own route to it; else add (refused if one is there)
                ipr.route("replace" if destination in ours else "add", dst=destination,
                          gateway=gateway, proto=ROUTE_PROTO, family=family, table=MAIN_TABLE)
        for destination, gateway in sorted(ours.items()):
            if destination not in wanted:
                with _step("route", f"removing {destination} via {gateway}", "routes"):
                    _delete_ours(ipr, destination, gateway,
                                 10 if ":" in destination else 2)


def _delete_ours(ipr, destination, gateway, family):
    """Delete lbadmin's route to `destination` via `gateway` — the kernel matches the protocol
    and the gateway, so no other route can go; one already gone is no error."""
    try:
        ipr.route("del", dst=destination, gateway=gateway, proto=ROUTE_PROTO, family=family,
                  table=MAIN_TABLE)
    except NetlinkError as error:
        if error.code != errno.ESRCH:
            raise


def ensure_subnet_routes():
    """Put back the kernel's own route to the subnet of each of the admin's IPv4 addresses
    where it is missing (a route an older release put in its place, then deleted, took it);
    a subnet that has any route in the main table is left as it is.

    Returns the subnets put back."""
    restored = []
    with IPRoute() as ipr:
        routed = {(r.get("dst"), r["dst_len"])
                  for r in ipr.get_routes(family=2, table=MAIN_TABLE) if r["dst_len"]}
        for message in ipr.get_addr(family=2):
            flags = message.get("IFA_FLAGS") or message["flags"]
            if message.get("IFA_PROTO") in OURS or flags & (IFA_F_SECONDARY |
                                                            IFA_F_NOPREFIXROUTE):
                continue
            address, length = message.get("address"), message["prefixlen"]
            network = ipaddress.ip_interface(f"{address}/{length}").network
            if length >= 32 or network.is_loopback or \
                    (str(network.network_address), length) in routed:
                continue
            with contextlib.suppress(NetlinkError):
                ipr.route("add", dst=str(network), oif=message["index"], proto=KERNEL_PROTO,
                          scope=LINK_SCOPE, prefsrc=address, table=MAIN_TABLE)
                routed.add((str(network.network_address), length))
                restored.append(str(network))
    return restored
