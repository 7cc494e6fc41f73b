"""The audit trail (Logs > User Log) and the notice that the configuration changed."""

import contextlib
import contextvars

from django.db import transaction

from . import signals
from .models import AuditEntry


def user_name(user):
    """The user's name; a change made with an API key names the key too (api.keys.user_for
    sets `api_key_name` on the key's user), so the log tells a script from its owner."""
    name = getattr(user, "username", str(user))
    key = getattr(user, "api_key_name", None)
    return f"{name} (API key {key})"[:150] if key else name


def record_audit(user, action):
    """One line in Logs > User Log. Called inside the action's transaction."""
    AuditEntry.objects.create(user=user_name(user), action=action[:300])


def record_change(user, action):
    """A change of the configuration: the audit line now, and once the transaction commits,
    `configuration_changed` (Maintenance snapshots a revision on it) — once per batch inside
    `one_change()`."""
    record_audit(user, action)
    batch = _batch.get()
    if batch is not None:
        batch.actions.append(action)
        return
    _changed_on_commit(user_name(user), action)


def _changed_on_commit(name, action):
    transaction.on_commit(
        lambda: signals.configuration_changed.send(sender=None, user=name, action=action),
        robust=True)


class _Batch:
    def __init__(self):
        self.actions = []  # every change's audit words, in order
        self.done = {}  # once_per_change's results by key


# The batch the current thread (or task) is inside, if any. A context variable, not a global:
# gunicorn's threads each run their own request.
_batch = contextvars.ContextVar("lbadmin_change_batch", default=None)


@contextlib.contextmanager
def one_change(user, summary):
    """Many actions as one change of the configuration (API v2's batch, the REST API's): one
    transaction, each action's own audit line, and — once, on commit — one configuration
    generation, one apply request (both through once_per_change) and one
    `configuration_changed`, so one revision: a revision per action would make 1,000 services
    take minutes (each exports the whole configuration). An exception rolls everything back,
    and then nothing is sent. `summary(actions)` words the revision from the audit lines."""
    if _batch.get() is not None:  # already inside one: it is the one change
        yield _batch.get()
        return
    with transaction.atomic():
        batch = _Batch()
        token = _batch.set(batch)
        try:
            yield batch
        finally:
            _batch.reset(token)
        if batch.actions:
            _changed_on_commit(user_name(user), summary(batch.actions))


def once_per_change(key, effect):
    """`effect()`'s result; inside `one_change()` it runs only the first time `key` is asked
    for, and later calls get that first result (the batch's one generation)."""
    batch = _batch.get()
    if batch is None:
        return effect()
    if key not in batch.done:
        batch.done[key] = effect()
    return batch.done[key]
