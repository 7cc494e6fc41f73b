"""Rules of Local Configuration over the whole configuration, for every writer (the WebUI,
restore, rollback): what a change of the interfaces' addresses does to the addresses the rest
of the configuration holds (core.configuration) — never asked of the live kernel."""

import ipaddress

from core.configuration import BACKEND, FLOATING, VIP

# Addresses that must keep a connected subnet: where the data plane sends traffic (real and
# fallback servers), the floating IPs the real servers use as their gateway, and the VIPs
# (placed on the interface whose subnet holds them).
MUST_STAY_CONNECTED = (BACKEND, FLOATING, VIP)


def subnets_of(interfaces):
    """[(network, interface name)] of the stored shape {name: {"addresses": [...]}}; IPv6
    link-local and loopback addresses give no subnet the rest of the configuration can use."""
    found = []
    for name, settings in sorted(interfaces.items()):
        for cidr in settings.get("addresses", []):
            network = ipaddress.ip_interface(cidr).network
            if not network.is_link_local and not network.is_loopback:
                found.append((network, name))
    return found


def _home(address, subnets):
    parsed = ipaddress.ip_address(address)
    return next(((network, name) for network, name in subnets
                 if network.version == parsed.version and parsed in network), None)


def left_unconnected(before, after, holders):
    """What a change of the interfaces from `before` to `after` ({name: {"addresses"}}) cuts
    off: {(subnet, interface): [holder, ...]} for every holder (core.configuration.Holder) of
    MUST_STAY_CONNECTED whose address had a connected subnet before and has none after."""
    subnets_before, subnets_after = subnets_of(before), subnets_of(after)
    cut = {}
    for holder in holders:
        if holder.kind not in MUST_STAY_CONNECTED:
            continue
        try:
            home = _home(holder.address, subnets_before)
        except ValueError:
            continue
        if home is None or _home(holder.address, subnets_after) is not None:
            continue
        held = cut.setdefault(home, [])
        if holder not in held:
            held.append(holder)
    return cut


def describe_unconnected(cut):
    """The words for left_unconnected's answer: one sentence per subnet."""
    sentences = []
    for (network, name), held in cut.items():
        who = [f"{holder.words} ({holder.address})" for holder in held]
        listed = who[0] if len(who) == 1 else f"{', '.join(who[:-1])} and {who[-1]}"
        sentences.append(f"This change removes every address of {network} from {name}: "
                         f"{listed} would be unreachable.")
    return sentences
