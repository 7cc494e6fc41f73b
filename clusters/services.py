"""Actions on Layer 4 services: each saves, bumps the configuration generation, writes the
audit line, and asks the dataplane worker to apply once the transaction has committed.

Views, tests and (later) restore call these; nothing else writes these models.
"""

from django.db import transaction

from appliance.celery import send_on_commit
from appliance.services import record_audit

from .models import ConfigGeneration, RealServer
from .tasks import apply_dataplane


def _changed(user, action):
    record_audit(user, action)
    generation = ConfigGeneration.bump()
    send_on_commit(apply_dataplane)
    return generation


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
