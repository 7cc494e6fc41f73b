"""Rules over the whole configuration, in one place, for every writer (the WebUI's forms,
restore, rollback, later replication and the API), checked before anything is saved.

An address may be held once across the configuration: a VIP, a real server, a fallback
server, a floating IP, one of the appliance's own interface addresses — unless the pair is a
legitimate one (MAY_SHARE). Each app that holds addresses registers a provider here in its
AppConfig.ready(), so a lower app (network) can check against a higher one's (clusters)
without importing it. Providers read the stored configuration, plus whatever the current
transaction has written (a restore) — never the kernel.
"""

import inspect
from dataclasses import dataclass

VIP = "vip"
BACKEND = "backend"  # a real server or a fallback server: where the data plane sends traffic
FLOATING = "floating"
INTERFACE = "interface"  # one of the appliance's own interface addresses
KINDS = (VIP, BACKEND, FLOATING, INTERFACE)

# Pairs of kinds that may share an address:
MAY_SHARE = {
    frozenset({VIP}),  # one VIP, several services on different ports (their own rule)
    frozenset({BACKEND}),  # a real server behind several services, or also a fallback
}


@dataclass(frozen=True)
class Holder:
    """One use of an address: `words` name the object for a refusal ("the real server
    PrimaryCluster of VNA"); `key` identifies the object, so its own address is no clash."""

    address: str
    kind: str
    words: str
    key: tuple


_providers = []


def register_address_provider(provider):
    """`provider()` -> iterable of Holder. A provider may take the keywords `address` and
    `kinds`, to be asked only for the holders of one address, of those kinds, when one address
    is checked (a restore of a thousand services checks thousands, each maybe held by
    hundreds of real servers that may share it)."""
    if provider not in _providers:
        _providers.append(provider)


def holders(address=None, kinds=None):
    """Every holder of an address; given `address` and/or `kinds`, only those."""
    found = []
    for provider in _providers:
        if address is None and kinds is None:
            found += provider()
            continue
        takes = inspect.signature(provider).parameters
        asked = {name: value for name, value in (("address", address), ("kinds", kinds))
                 if name in takes}
        found += [holder for holder in provider(**asked)
                  if (address is None or holder.address == address)
                  and (kinds is None or holder.kind in kinds)]
    return found


def address_clash(address, kind, exclude=(), among=None):
    """The refusal in words if `address`, held as `kind` by the object(s) whose keys are in
    `exclude`, is already held by another object in a way MAY_SHARE does not allow; else None.
    `among`: the holders to check against (default: every registered one)."""
    if among is None:  # only the kinds that may not share with this one
        among = holders(address, {k for k in KINDS if frozenset({kind, k}) not in MAY_SHARE})
    for holder in among:
        if holder.address != address or holder.key in exclude:
            continue
        if frozenset({kind, holder.kind}) in MAY_SHARE:
            continue
        return f"{address} is already {holder.words}."
    return None
