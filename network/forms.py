"""Local Configuration forms: the rules for every writer of the network configuration (the
WebUI, backup restore, revision rollback). The interfaces are passed in: the live listing the
dataplane worker read, or for a restore the names the backup gives (`listing_of`)."""

import ipaddress
import re

from django import forms
from django.core.exceptions import ValidationError

from core.configuration import INTERFACE, address_clash, holders

from .models import GraphingSettings

VLAN_PARENT_KINDS = ("", "veth", "bond", "bridge")  # physical NICs have no kind
# What Linux takes as an interface name, less what would be awkward to type or show.
INTERFACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")
# The shortest prefix an interface address may have: a shorter one makes a huge range look
# directly connected (/0: every address), so every VIP is added with it and routes vanish.
SHORTEST_PREFIX = {4: 8, 6: 16}
EXAMPLE = {4: "198.51.100.1/24", 6: "2001:db8::1/64"}


def clean_interface_name(name):
    if not INTERFACE_NAME.match(name or ""):
        raise ValidationError(f"“{name}” is not an interface name: 1 to 15 letters, digits, "
                              "dots, hyphens or underscores.")
    return name


def listing_of(names):
    """Interfaces known only by name (a restore: the backup's), shaped as the live listing."""
    return [{"name": name, "kind": "", "mtu": None, "addresses": [], "marked": []}
            for name in names]


def parse_host_cidr(text, what="address"):
    """'198.51.100.1/24' -> IPv4Interface; refuses a bare address, a prefix shorter than
    SHORTEST_PREFIX, a network address or a broadcast address used as a host address."""
    text = text.strip()
    if "/" not in text:
        raise ValidationError(f"“{text}”: give the {what} in CIDR form, e.g. 198.51.100.1/24.")
    try:
        interface = ipaddress.ip_interface(text)
    except ValueError:
        raise ValidationError(f"“{text}” is not an address in CIDR form.") from None
    network = interface.network
    shortest = SHORTEST_PREFIX[interface.version]
    if network.prefixlen < shortest:
        raise ValidationError(
            f"{interface}: the prefix /{network.prefixlen} is too short for an interface "
            f"address — the appliance would take all of {network} as directly connected. "
            f"Give the subnet's own prefix (/{shortest} or longer), e.g. "
            f"{EXAMPLE[interface.version]}.")
    if interface.version == 4 and network.prefixlen < 31:
        if interface.ip == network.network_address:
            raise ValidationError(f"{interface.ip} is the network address of {network}, "
                                  "not a host address.")
        if interface.ip == network.broadcast_address:
            raise ValidationError(f"{interface.ip} is the broadcast address of {network}, "
                                  "not a host address.")
    if interface.ip.is_multicast or interface.ip.is_unspecified or interface.ip.is_loopback:
        raise ValidationError(f"{interface.ip} cannot be a host address.")
    return interface


def split_list(text):
    return [item for item in text.replace(",", "\n").split() if item]


class InterfacesForm(forms.Form):
    """IP Address Assignment: addresses (CIDR, several) and MTU of every interface."""

    def __init__(self, *args, interfaces, configured, **kwargs):
        super().__init__(*args, **kwargs)
        self.interface_names = [i["name"] for i in interfaces if i["name"] != "lo"]
        own = {i["name"]: [a["cidr"] for a in i["marked"] if not a["role"]
                           and not (":" in a["cidr"] and a["cidr"].lower().startswith("fe80"))]
               for i in interfaces}
        mtus = {i["name"]: i["mtu"] for i in interfaces}
        for name in self.interface_names:
            current = configured.get(name, {}).get("addresses", own.get(name, []))
            self.fields[f"addresses_{name}"] = forms.CharField(
                label=name, required=False, initial="\n".join(current),
                widget=forms.Textarea(attrs={"rows": 2, "cols": 36}),
                help_text="One address per line, CIDR form (IPv4 or IPv6).")
            # blank: the MTU is left as the interface has it
            self.fields[f"mtu_{name}"] = forms.IntegerField(
                label=f"{name} MTU bytes", min_value=68, max_value=9216, required=False,
                initial=configured.get(name, {}).get("mtu") or mtus.get(name),
                error_messages={"min_value": "The MTU must be between 68 and 9216.",
                                "max_value": "The MTU must be between 68 and 9216.",
                                "invalid": "Enter the MTU as a whole number."})

    def rows(self):
        return [(name, self[f"addresses_{name}"], self[f"mtu_{name}"])
                for name in self.interface_names]

    def clean(self):
        cleaned = super().clean()
        # The form replaces every interface's addresses: check against everything else.
        others = [h for h in holders() if h.kind != INTERFACE]
        seen = {}
        for name in self.interface_names:
            field = f"addresses_{name}"
            if field not in cleaned:
                continue
            parsed = []
            for item in split_list(cleaned[field]):
                try:
                    interface = parse_host_cidr(item)
                except ValidationError as error:
                    self.add_error(field, error)
                    continue
                address = str(interface.ip)
                clash = address_clash(address, INTERFACE, among=others)
                if clash:
                    self.add_error(field, clash)
                elif address in seen:
                    self.add_error(field, f"{address} is already on {seen[address]}.")
                else:
                    seen[address] = name
                    parsed.append(str(interface))
            cleaned[field] = parsed
        return cleaned

    def configuration(self):
        return {name: {"addresses": self.cleaned_data[f"addresses_{name}"],
                       "mtu": self.cleaned_data[f"mtu_{name}"]}
                for name in self.interface_names}


class VlanForm(forms.Form):
    parent = forms.ChoiceField(label="Adapter")
    vlan_id = forms.IntegerField(label="VLAN ID", min_value=1, max_value=4094, error_messages={
        "min_value": "A VLAN ID is 1 to 4094.", "max_value": "A VLAN ID is 1 to 4094.",
        "invalid": "Enter the VLAN ID as a whole number.",
        "required": "Enter the VLAN ID (1 to 4094)."})

    def __init__(self, *args, interfaces, vlans, **kwargs):
        super().__init__(*args, **kwargs)
        self.vlans = {tuple(v) for v in vlans}
        self.fields["parent"].choices = [
            (i["name"], i["name"]) for i in interfaces
            if i["name"] != "lo" and i["kind"] in VLAN_PARENT_KINDS]

    def clean(self):
        cleaned = super().clean()
        parent, vid = cleaned.get("parent"), cleaned.get("vlan_id")
        if parent and vid:
            if (parent, vid) in self.vlans:
                self.add_error("vlan_id", f"{parent}.{vid} exists already.")
            elif len(f"{parent}.{vid}") > 15:
                self.add_error("parent", "The VLAN's name would be longer than 15 characters.")
        return cleaned


class Connected(list):
    """The connected subnets (a list of networks, as every form takes them), knowing which
    interface each is on (`owners`) and the appliance's own addresses (`own`)."""

    def __init__(self, networks=(), owners=None, own=None):
        super().__init__(networks)
        self.owners = owners or {}
        self.own = own or {}


def connected_networks(interfaces, configured=None):
    """Every subnet the appliance is on: live addresses, and those about to be configured."""
    found = [(interface["name"], cidr) for interface in interfaces
             for cidr in interface["addresses"]]
    found += [(name, cidr) for name, settings in (configured or {}).items()
              for cidr in settings.get("addresses", [])]
    connected = Connected()
    for name, cidr in found:
        interface = ipaddress.ip_interface(cidr)
        network = interface.network
        if network.is_loopback or network.is_link_local:
            continue
        connected.append(network)
        connected.owners.setdefault(network, name)
        connected.own.setdefault(interface.ip, name)
    return connected


def _kind_of_destination(network):
    """Words for a destination no static route can have, or None."""
    if network.is_loopback:
        return "a loopback destination: it never leaves the appliance"
    if network.is_multicast:
        return "a multicast destination: multicast is not routed through a gateway"
    if network.is_link_local:
        return "a link-local destination: it exists on each link alone, never behind a gateway"
    if network.is_unspecified:
        return "the unspecified address, not a destination"
    return None


class RoutingForm(forms.Form):
    gateway4 = forms.GenericIPAddressField(label="Default Gateway IPv4", protocol="IPv4",
                                           required=False)
    gateway6 = forms.GenericIPAddressField(label="Default Gateway IPv6", protocol="IPv6",
                                           required=False)
    routes = forms.CharField(
        label="Static Routes", required=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One per line: destination in CIDR form, then the gateway, e.g. "
                  "10.20.0.0/16 192.0.2.254")

    def __init__(self, *args, networks, **kwargs):
        super().__init__(*args, **kwargs)
        self.networks = networks
        self.owners = getattr(networks, "owners", {})
        self.own = getattr(networks, "own", {})

    def _owner(self, network):
        name = self.owners.get(network)
        return f"{name}'s own subnet" if name else "a connected subnet"

    def reachable(self, field, gateway, where=""):
        """Refuse a gateway on no connected subnet, or one that is no host of it."""
        address = ipaddress.ip_address(gateway)
        home = next((n for n in self.networks
                     if address.version == n.version and address in n), None)
        if home is None:
            self.add_error(field, f"{gateway} is not on any connected subnet: the appliance "
                                  "could not reach it.")
        elif address in self.own:
            self.add_error(field, f"{where}{gateway} is the appliance's own address (on "
                                  f"{self.own[address]}), not a gateway.")
        elif address.version == 4 and home.prefixlen < 31 and \
                address in (home.network_address, home.broadcast_address):
            which = "network" if address == home.network_address else "broadcast"
            self.add_error(field, f"{where}{gateway} is the {which} address of {home}, not a "
                                  "gateway: give the address of the router on it.")

    def clean(self):
        cleaned = super().clean()
        for field in ("gateway4", "gateway6"):
            if cleaned.get(field):
                self.reachable(field, cleaned[field])
        routes, lines = [], {}
        for number, line in enumerate((cleaned.get("routes") or "").splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                self.add_error("routes", f"Line {number}: write the destination, then the "
                                         "gateway.")
                continue
            try:
                destination = ipaddress.ip_network(parts[0], strict=True)
                gateway = ipaddress.ip_address(parts[1])
            except ValueError as error:
                self.add_error("routes", f"Line {number}: {error}.")
                continue
            if self._destination_refused(number, destination, gateway):
                continue
            if destination in lines:
                self.add_error("routes", f"Line {number}: {destination} is routed on line "
                                         f"{lines[destination]} already: one gateway per "
                                         "destination.")
                continue
            lines[destination] = number
            self.reachable("routes", str(gateway), f"Line {number}: ")
            routes.append({"destination": str(destination), "gateway": str(gateway)})
        cleaned["routes"] = routes
        return cleaned

    def _destination_refused(self, number, destination, gateway):
        """Add the refusal of a destination no static route may have; True if refused."""
        where = f"Line {number}: "
        if destination.version != gateway.version:
            self.add_error("routes", f"{where}an IPv{destination.version} destination needs "
                                     f"an IPv{destination.version} gateway, not {gateway}.")
            return True
        if destination.prefixlen == 0:
            field = "Default Gateway IPv4" if destination.version == 4 else \
                "Default Gateway IPv6"
            self.add_error("routes", f"{where}{destination} is the default route: use "
                                     f"Default Gateway ({field}) above, not a static route.")
            return True
        kind = _kind_of_destination(destination)
        if kind:
            self.add_error("routes", f"{where}{destination} is {kind}.")
            return True
        for network in self.networks:
            if network.version == destination.version and destination.subnet_of(network):
                if destination == network:
                    words = f"{destination} is {self._owner(network)}"
                else:
                    words = f"{destination} lies inside {network}, {self._owner(network)}"
                self.add_error("routes", f"{where}{words}: the kernel routes it already, "
                                         "and a static route over it would take its place.")
                return True
        return False


class HostnameDnsForm(forms.Form):
    # strip, as every CharField does (RegexField does not by default): "lb1\n" would match
    # the pattern ($ matches before a final line break) and be written to /etc/hostname.
    hostname = forms.RegexField(
        regex=r"^(?=.{1,63}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$", strip=True,
        error_messages={"invalid": "A hostname is letters, digits and hyphens (1–63), not "
                                   "starting or ending with a hyphen."})
    dns1 = forms.GenericIPAddressField(label="DNS Server 1", required=False)
    dns2 = forms.GenericIPAddressField(label="DNS Server 2", required=False)
    dns3 = forms.GenericIPAddressField(label="DNS Server 3", required=False)


class GraphingForm(forms.ModelForm):
    """Local Configuration › Graphing: how often the sampler runs, what it keeps."""

    class Meta:
        model = GraphingSettings
        fields = ["interval", "real_servers"]
        help_texts = {
            "interval": "Changing it starts the Hour graphs again: their ring is made anew "
                        "with one point per interval, and what it held is lost. Day, week, "
                        "month and year keep their history (their points are 1 min and more).",
            "real_servers": "Five series per real server: new connections, packets and bytes "
                            "in and out. Off: they are no longer written (what they hold is "
                            "kept until their real server is deleted); Layer 4 Traffic Rate "
                            "and /metrics still show each real server's rates.",
        }
