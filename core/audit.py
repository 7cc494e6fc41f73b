"""The audit trail (Logs > User Log) and the notice that the configuration changed."""

from django.db import transaction

from . import signals
from .models import AuditEntry


def user_name(user):
    return getattr(user, "username", str(user))


def record_audit(user, action):
    """One line in Logs > User Log. Called inside the action's transaction."""
    AuditEntry.objects.create(user=user_name(user), action=action[:300])


def record_change(user, action):
    """A change of the configuration: the audit line now, and once the transaction commits,
    `configuration_changed` (Maintenance snapshots a revision on it)."""
    record_audit(user, action)
    name = user_name(user)
    transaction.on_commit(
        lambda: signals.configuration_changed.send(sender=None, user=name, action=action),
        robust=True)
