"""Actions on Layer 4 services: each saves, bumps the configuration generation, writes the
audit line, and asks the dataplane worker to apply once the transaction has committed.

Views, tests and (later) restore call these; nothing else writes these models.
"""

from django.db import transaction

from core import health
from core.audit import once_per_change, record_change
from core.workers import send_on_commit

from .models import ConfigGeneration, FloatingIP, RealServer
from .tasks import apply_dataplane


def _changed(user, action):
    """The audit line; a new generation and an apply request — once for a whole batch
    (core.audit.one_change), whose actions then share the generation."""
    record_change(user, action)
    return once_per_change("dataplane", _bump_and_apply)


def _bump_and_apply():
    generation = ConfigGeneration.bump()
    send_on_commit(apply_dataplane)
    return generation


def _forget_health_on_commit(server_ids):
    """Deleted servers' health states go once this commits. Edits never forget a state (a
    failed server would take connections again): when what is checked changes, the checks
    worker counts the new check's failures afresh and keeps the state (core.health.rebase)."""
    transaction.on_commit(lambda: health.forget(server_ids), robust=True)


def place_addresses_again(**kwargs):
    """Receiver of core.signals.network_applied: VIPs and floating IPs may now have a subnet
    to live in (or have lost theirs), so the data plane is applied whole."""
    apply_dataplane.apply_async(kwargs={"full": True})


@transaction.atomic
def do_save_service(service, user):
    """Create or update a virtual service that has passed full_clean()."""
    created = service.pk is None
    service.save()
    verb = "added" if created else "modified"
    _changed(user, f"{verb} virtual service {service.label} ({service.vip}:{service.ports})")
    return service


@transaction.atomic
def do_delete_service(service, user):
    label = service.label
    _forget_health_on_commit(list(service.real_servers.values_list("id", flat=True)))
    service.delete()
    _changed(user, f"deleted virtual service {label}")


@transaction.atomic
def do_save_real_server(server, user):
    created = server.pk is None
    server.save()
    verb = "added" if created else "modified"
    generation = _changed(
        user, f"{verb} real server {server.label} ({server.ip}) of {server.service.label}")
    RealServer.objects.filter(pk=server.pk).update(changed_generation=generation)
    server.changed_generation = generation
    return server


@transaction.atomic
def do_delete_real_server(server, user):
    label, service = server.label, server.service.label
    _forget_health_on_commit([server.pk])
    server.delete()
    _changed(user, f"deleted real server {label} of {service}")


@transaction.atomic
def do_set_state(server, state, user):
    """Online, Drain or Halt, as the System Overview buttons set it (the guide's 7.2)."""
    state = RealServer.State(state)
    generation = _changed(user, f"set real server {server.label} of {server.service.label} "
                                f"to {state.label}")
    RealServer.objects.filter(pk=server.pk).update(state=state, changed_generation=generation)
    server.state, server.changed_generation = state, generation
    return generation


@transaction.atomic
def do_add_floating_ip(address, user):
    floating = FloatingIP.objects.create(address=address)
    _changed(user, f"added floating IP {address}")
    return floating


@transaction.atomic
def do_remove_floating_ip(floating, user):
    address = floating.address
    floating.delete()
    _changed(user, f"removed floating IP {address}")


@transaction.atomic
def do_save_alert_settings(settings, user):
    """Layer 4 – Advanced Configuration › Alerts, after full_clean(). A new configuration
    generation, so the HA pair replicates it as it does any change."""
    settings.pk = 1
    settings.save()
    channels = ", ".join(settings.channels) or "none"
    _changed(user, f"set the alerts (channels: {channels})")
    return settings
