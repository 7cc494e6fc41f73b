"""The one seam to the kernel's network configuration (pyroute2 / netlink).

It acts in the network namespace of the process that calls it: the dataplane worker is started
inside the appliance's namespace (the host's in production, the lab's lb namespace in the demo
and tests), so nothing here names a namespace.

Addresses lbadmin adds for virtual services and floating IPs carry an IFA_PROTO of their own,
routes it adds an RTPROT of its own, VLANs it creates the alias "lbadmin": so it can tell them
from the admin's and never removes what it did not add.
"""

import ipaddress

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

VIP_PROTO = 250  # IFA_PROTO: addresses lbadmin added for virtual services
FLOATING_PROTO = 251  # IFA_PROTO: floating IPs
ROUTE_PROTO = 250  # RTPROT: routes lbadmin added
OURS = {VIP_PROTO, FLOATING_PROTO}
VLAN_ALIAS = "lbadmin"

__all__ = ["NetlinkError"]


def _speed(name):
    try:
        with open(f"/sys/class/net/{name}/speed") as handle:
            speed = int(handle.read().strip())
    except (OSError, ValueError):
        return None
    return speed if speed > 0 else None


def list_interfaces():
    """Every interface with its link state, speed, MAC, MTU and addresses in CIDR form; the
    addresses lbadmin placed are marked ("vip" or "floating")."""
    with IPRoute() as ipr:
        addresses = {}
        for message in ipr.get_addr():
            cidr = f"{message.get('address')}/{message['prefixlen']}"
            role = {VIP_PROTO: "vip", FLOATING_PROTO: "floating"}.get(message.get("IFA_PROTO"), "")
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
        raise NetlinkError(19, f"there is no interface {name}")
    return found[0]


def _own_addresses(ipr, index):
    """The admin's addresses of an interface: not lbadmin's VIPs or floating IPs, not IPv6
    link-local ones (the kernel makes those)."""
    found = []
    for message in ipr.get_addr(index=index):
        if message.get("IFA_PROTO") in OURS:
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
    with IPRoute() as ipr:
        index = _index(ipr, name)
        if mtu:
            ipr.link("set", index=index, mtu=mtu)
        ipr.link("set", index=index, state="up")
        wanted = {str(ipaddress.ip_interface(a)) for a in addresses}
        present = set(_own_addresses(ipr, index))
        # Removals first: deleting a subnet's primary IPv4 address also deletes the secondary
        # ones in that subnet, which would take a just-added address with it.
        for cidr in sorted(present - wanted):
            interface = ipaddress.ip_interface(cidr)
            ipr.addr("del", index=index, address=str(interface.ip),
                     prefixlen=interface.network.prefixlen)
        for cidr in sorted(wanted - set(_own_addresses(ipr, index))):
            interface = ipaddress.ip_interface(cidr)
            ipr.addr("add", index=index, address=str(interface.ip),
                     prefixlen=interface.network.prefixlen)


def read_vlans():
    """[(parent, vlan id)] of the VLANs lbadmin made."""
    with IPRoute() as ipr:
        names = {link["index"]: link.get("ifname") for link in ipr.get_links()}
        found = []
        for link in ipr.get_links():
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
            ipr.link("add", ifname=name, kind="vlan", link=_index(ipr, parent), vlan_id=vid)
            index = _index(ipr, name)
            ipr.link("set", index=index, ifalias=VLAN_ALIAS, state="up")
        for parent, vid in sorted(present - wanted):
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


def read_routes():
    """{"gateway4", "gateway6", "routes": [{"destination", "gateway"}]} as lbadmin set them."""
    result = {"gateway4": "", "gateway6": "", "routes": []}
    with IPRoute() as ipr:
        for family in (2, 10):
            for route in ipr.get_routes(family=family, table=254):
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


def set_routes(gateway4, gateway6, routes):
    """Default gateways and static routes, marked as lbadmin's; lbadmin's others go."""
    before = read_routes()
    with IPRoute() as ipr:
        for family, gateway, key in ((2, gateway4, "gateway4"), (10, gateway6, "gateway6")):
            default = "0.0.0.0/0" if family == 2 else "::/0"
            if gateway:
                ipr.route("replace", dst=default, gateway=gateway, proto=ROUTE_PROTO,
                          family=family)
            elif before[key]:
                ipr.route("del", dst=default, gateway=before[key], proto=ROUTE_PROTO,
                          family=family)
        wanted = {(r["destination"], r["gateway"]) for r in routes}
        for destination, gateway in sorted(wanted):
            ipr.route("replace", dst=destination, gateway=gateway, proto=ROUTE_PROTO,
                      family=10 if ":" in destination else 2)
        for route in before["routes"]:
            if (route["destination"], route["gateway"]) not in wanted:
                ipr.route("del", dst=route["destination"], gateway=route["gateway"],
                          proto=ROUTE_PROTO, family=10 if ":" in route["destination"] else 2)


