"""The one thing the lower layers need to know about the HA pair, without importing `ha`: who
holds the virtual services' addresses and the floating IPs.

A standalone appliance places them itself (the dataplane worker, network.netlink). In a pair,
keepalived holds them on the active node only, and the worker must not fight it: it hands the
addresses over to the registered owner instead, and removes those it placed itself before.

The ha app registers its owner in its AppConfig.ready(), as apps register address providers in
core.configuration. An owner has:

- `holds_addresses()` -> bool: whether the pair holds the addresses now (this node is paired);
- `hand_over(floating_ips, vips)` -> list of the addresses it cannot hold (no interface has a
  connected subnet holding them), as network.netlink.place_addresses returns them;
- `peer_address()` -> the other node's address while this node is paired, else None (the
  Firewall Lockdown always admits it).
"""

_owners = []


def register_address_owner(owner):
    """Register the owner of the floating addresses (one; registering another replaces it)."""
    _owners[:] = [owner]


def unregister_address_owner(owner=None):
    """Remove `owner` (or whichever is registered): tests."""
    if owner is None or owner in _owners:
        _owners.clear()


def address_owner():
    """The registered owner if it holds the addresses now, else None (the worker places them
    itself)."""
    for owner in _owners:
        if owner.holds_addresses():
            return owner
    return None


def peer_address():
    """The HA peer's address while this node is in a pair, else None."""
    for owner in _owners:
        peer = getattr(owner, "peer_address", None)  # an owner of an older shape has none
        return peer() if peer else None
    return None
