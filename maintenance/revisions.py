"""A revision of the configuration for every saved change (Backup & Restore › History)."""

import difflib

from . import backup
from .models import Revision

KEEP = 500  # the newest revisions kept


def record_revision(user, action, **kwargs):
    """Receiver of core.signals.configuration_changed, sent once a change has committed (after
    its apply was sent, so a Halt is not slowed by the snapshot): snapshot the configuration."""
    Revision.objects.create(user=user, action=action[:300], xml=backup.export_xml().decode())
    stale = Revision.objects.values_list("id", flat=True)[KEEP:]
    Revision.objects.filter(id__in=list(stale)).delete()


def diff(older, newer):
    return "".join(difflib.unified_diff(
        older.xml.splitlines(keepends=True), newer.xml.splitlines(keepends=True),
        fromfile=f"revision {older.pk} ({older.at:%Y-%m-%d %H:%M:%S})",
        tofile=f"revision {newer.pk} ({newer.at:%Y-%m-%d %H:%M:%S})"))
