from celery import shared_task
from django.conf import settings
from django.utils import timezone

from . import alerts, backup, online
from .install import run_job


@shared_task(ignore_result=True)
def scheduled_backup():
    """Daily (beat): the configuration into <data>/backups, keeping the newest
    LBADMIN_BACKUPS_KEPT files."""
    return write_local_backup(settings.BACKUP_DIR, settings.BACKUPS_KEPT)


def write_local_backup(directory, keep):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / timezone.now().strftime("lbadmin-backup-%Y%m%d-%H%M%S.xml")
    path.write_bytes(backup.export_xml())
    path.chmod(0o600)
    for old in sorted(directory.glob("lbadmin-backup-*.xml"))[:-keep]:
        old.unlink()
    return str(path)


@shared_task(ignore_result=True)
def install_update(job_id):
    return run_job(job_id)


@shared_task(ignore_result=True)
def check_for_update():
    """Daily (beat), and when the settings are saved or Check now is clicked (the WebUI sends
    it here, never asks the server itself): ask the update server what it offers and store
    the answer, or the reason the check failed, for the pages to show."""
    return online.check().available_version


@shared_task(ignore_result=True)
def deliver_alerts():
    """Beat, every 2 s: send the queued alerts (core.alerts) by email, webhook and SNMP trap."""
    return alerts.deliver_queued()
