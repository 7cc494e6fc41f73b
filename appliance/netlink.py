"""The one seam to the kernel's network configuration (pyroute2 / netlink).

It acts in the network namespace of the process that calls it: the dataplane worker is started
inside the appliance's namespace (the host's in production, the lab's lb namespace in the demo
and tests), so nothing here names a namespace.
"""

import ipaddress

from pyroute2 import IPRoute


def list_interfaces():
    """Every interface with its link state, MAC, MTU and addresses in CIDR form."""
    with IPRoute() as ipr:
        addresses = {}
        for message in ipr.get_addr():
            cidr = f"{message.get('address')}/{message['prefixlen']}"
            addresses.setdefault(message["index"], []).append(cidr)
        return [
            {
                "name": link.get("ifname"),
                "state": link.get("operstate"),
                "mac": link.get("address"),
                "mtu": link.get("mtu"),
                "addresses": addresses.get(link["index"], []),
            }
            for link in ipr.get_links()
        ]


VIP_PROTO = 250  # IFA_PROTO marking addresses lbadmin added for virtual services


def _connected_networks(ipr):
    """[(interface index, network)] of every IPv4 address the admin gave (not ours)."""
    networks = []
    for message in ipr.get_addr(family=2):
        if message.get("IFA_PROTO") == VIP_PROTO:
            continue
        address = f"{message.get('address')}/{message['prefixlen']}"
        networks.append((message["index"], ipaddress.IPv4Interface(address).network))
    return networks


def ensure_vips(vips):
    """Make the VIPs exactly the addresses marked as lbadmin's: add the missing ones to the
    interface whose subnet holds them, remove the ones no service uses any more.

    Returns the VIPs no connected subnet holds (they cannot be answered for)."""
    wanted = set(vips)
    unplaced = []
    with IPRoute() as ipr:
        addresses = ipr.get_addr(family=2)
        present = {m.get("address"): m for m in addresses if m.get("IFA_PROTO") == VIP_PROTO}
        # A VIP the admin already put on an interface is answered for as it is.
        configured = {m.get("address") for m in addresses}
        networks = _connected_networks(ipr)
        for vip in sorted(wanted - configured):
            address = ipaddress.IPv4Address(vip)
            home = next(((index, net) for index, net in networks if address in net), None)
            if home is None:
                unplaced.append(vip)
                continue
            ipr.addr("add", index=home[0], address=vip, prefixlen=home[1].prefixlen,
                     IFA_PROTO=VIP_PROTO)
        for vip in present.keys() - wanted:
            message = present[vip]
            ipr.addr("del", index=message["index"], address=vip,
                     prefixlen=message["prefixlen"])
    return unplaced
