"""Starting a software update's install on the maintenance worker: the WebUI's Upload and
Install and Download and Install, and the REST API's /updates/install, all start it here."""

from core.audit import record_audit
from core.version import __version__
from core.workers import WorkerUnavailable, send_task

from . import online
from .models import UpdateJob
from .tasks import install_update


def online_job(user):
    """A job for what the update server offers, or None when nothing is on offer."""
    offer = online.offered()
    if offer is None:
        return None
    return UpdateJob.objects.create(user=user.get_username(), from_version=__version__,
                                    to_version=offer.available_version, archive="",
                                    source_url=offer.available_archive)


def start_install(job, user):
    """Send `job` to the maintenance worker. WorkerUnavailable when it cannot be reached: the
    job is then marked failed, saying why (it never runs later by surprise)."""
    record_audit(user, f"started the update to {job.to_version}")
    try:
        send_task(install_update, job.pk)
    except WorkerUnavailable as problem:
        job.status = UpdateJob.Status.FAILED
        job.log += f"Not started: {problem}\n"
        job.save(update_fields=["status", "log"])
        raise
