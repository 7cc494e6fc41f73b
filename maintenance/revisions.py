"""A revision of the configuration for every saved change."""

import difflib

from django.db import transaction

KEEP = 500  # the newest revisions kept


def record_revision_on_commit(user, action):
    """Snapshot the configuration once the change has committed (after its apply was sent,
    so a Halt is not slowed by the snapshot)."""
    name = getattr(user, "username", str(user))

    def snapshot():
        from . import backup
        from .models import Revision

        Revision.objects.create(user=name, action=action[:300],
                                xml=backup.export_xml().decode())
        stale = Revision.objects.values_list("id", flat=True)[KEEP:]
        Revision.objects.filter(id__in=list(stale)).delete()

    transaction.on_commit(snapshot, robust=True)


def diff(older, newer):
    return "".join(difflib.unified_diff(
        older.xml.splitlines(keepends=True), newer.xml.splitlines(keepends=True),
        fromfile=f"revision {older.pk} ({older.at:%Y-%m-%d %H:%M:%S})",
        tofile=f"revision {newer.pk} ({newer.at:%Y-%m-%d %H:%M:%S})"))
