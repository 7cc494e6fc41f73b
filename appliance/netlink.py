"""The one seam to the kernel's network configuration (pyroute2 / netlink).

It acts in the network namespace of the process that calls it: the dataplane worker is started
inside the appliance's namespace (the host's in production, the lab's lb namespace in the demo
and tests), so nothing here names a namespace.
"""

from pyroute2 import IPRoute

FAMILY_NAMES = {2: "IPv4", 10: "IPv6"}


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
