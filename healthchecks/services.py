"""Actions on health-check scripts."""

from django.db import transaction

from clusters.models import ConfigGeneration
from core.audit import record_change


@transaction.atomic
def do_save_script(script, user):
    created = script.pk is None
    script.save()
    record_change(user, f"{'added' if created else 'modified'} health check {script.name}")
    return script


@transaction.atomic
def do_delete_script(script, user):
    """Refused (ProtectedError) while a virtual service uses the script."""
    name = script.name
    script.delete()
    record_change(user, f"deleted health check {name}")
    ConfigGeneration.bump()
