"""Rules that span apps, without the lower app importing the higher one.

An address may be used once in the whole configuration: an interface's own address, a VIP,
a floating IP. Local Configuration (network) sits below Cluster Configuration (clusters) in
the layers, yet its forms must know the addresses clusters holds. So each app that holds
addresses registers a provider here in its AppConfig.ready(), and every writer (forms,
restore, rollback) asks `addresses_in_use()`, which reads the stored configuration plus
whatever the current transaction has written — never the kernel.
"""

_address_providers = []


def register_address_provider(provider):
    """`provider()` -> {address: what holds it, in words}, e.g. {"198.51.100.100": "the VIP of
    virtual service “VNA”"}."""
    if provider not in _address_providers:
        _address_providers.append(provider)


def addresses_in_use():
    taken = {}
    for provider in _address_providers:
        for address, holder in provider().items():
            taken.setdefault(address, holder)
    return taken
