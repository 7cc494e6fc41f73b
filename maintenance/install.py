"""Installing a verified update. The maintenance worker stages the release beside the
running one, checks it needs no other Python packages and that its migrations apply to a copy
of the database; then it hands over to the supervisor (runner/supervisor.py), which stops
the services, migrates, starts them from the new release, checks they answer, and switches
back on any failure. A worker cannot do that last part: it would be stopping itself.
"""

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from importlib import metadata
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from core.runtime import supervisor_state
from core.version import __version__
from core.workers import WorkerUnavailable, ask_supervisor

from . import online, updates
from .models import UpdateJob
from .updates import UpdateError


def releases_dir():
    return settings.DATA_DIR / "releases"


def stage(archive_path, version):
    """Unpack release/ of a verified archive into <data>/releases/<version>/ (data filter:
    regular files and directories only, nothing outside)."""
    releases_dir().mkdir(parents=True, exist_ok=True)
    target = releases_dir() / version
    if target.exists():
        shutil.rmtree(target)
    unpack = Path(tempfile.mkdtemp(dir=releases_dir().parent))
    try:
        with tarfile.open(archive_path, "r:gz") as tar:
            tar.extractall(unpack, filter="data")
        (unpack / "release").rename(target)
    finally:
        shutil.rmtree(unpack, ignore_errors=True)
    return target


def check_dependencies(release):
    """An update replaces code, not the virtualenv: every package the release pins must be
    installed here already, at that version; else it is refused, naming what is missing."""
    try:
        with open(Path(release) / "pyproject.toml", "rb") as handle:
            wanted = tomllib.load(handle)["project"]["dependencies"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as error:
        raise UpdateError(f"the release's pyproject.toml cannot be read ({error})") from None
    missing = sorted(pin for pin in wanted if not installed(pin))
    if missing:
        raise UpdateError("the release needs Python packages this appliance does not have: "
                          f"{', '.join(missing)} (install it from a new appliance image "
                          "instead)")


def installed(pin):
    """Whether a pin such as "celery[redis]==5.7.0" is installed at exactly that version."""
    name, _, version = pin.partition("==")
    name = re.split(r"[\[;\s]", name.strip(), maxsplit=1)[0]
    try:
        return bool(version) and metadata.version(name) == version.split(";")[0].strip()
    except metadata.PackageNotFoundError:
        return False


def check_migrations(release):
    """Run the staged release's migrations on a copy of the database; UpdateError if they
    fail (the running database is never touched here)."""
    with tempfile.TemporaryDirectory(dir=settings.DATA_DIR) as scratch:
        # SQLite's backup API: a consistent copy, including what is still in the WAL
        with sqlite3.connect(settings.DATABASES["default"]["NAME"]) as source, \
                sqlite3.connect(Path(scratch) / "lbadmin.sqlite3") as copy:
            source.backup(copy)
        env = {**os.environ, "LBADMIN_DATA_DIR": scratch, "PYTHONPATH": str(release),
               "LBADMIN_SECRET_KEY": settings.SECRET_KEY,
               "DJANGO_SETTINGS_MODULE": "appliance.settings"}
        result = subprocess.run([sys.executable, "manage.py", "migrate", "--no-input"],
                                cwd=release, env=env, capture_output=True, text=True,
                                timeout=600)
    if result.returncode:
        tail = (result.stdout + result.stderr).strip().splitlines()[-12:]
        raise UpdateError("the new release's migrations failed:\n" + "\n".join(tail))
    return result.stdout


def _step(job, progress, line):
    job.progress = progress
    job.log += f"{timezone.now():%H:%M:%S} {line}\n"
    job.save(update_fields=["progress", "log"])


def run_job(job_id):
    job = UpdateJob.objects.get(pk=job_id)
    job.status = UpdateJob.Status.RUNNING
    job.save(update_fields=["status"])
    try:
        busy = UpdateJob.objects.filter(status__in=(UpdateJob.Status.RUNNING,
                                                    UpdateJob.Status.SWITCHING)).exclude(pk=job.pk)
        if busy.exists():
            raise UpdateError(f"another update ({busy.first().to_version}) is in progress")
        if updates.version_tuple(job.to_version) <= updates.version_tuple(__version__):
            raise UpdateError(f"{job.to_version} is not newer than the running {__version__}")
        if supervisor_state() is None:
            raise UpdateError("no supervisor is running to restart the services (it is the "
                              "process that started them: `make demo`)")
        if job.source_url:
            _step(job, 5, f"downloading {job.source_url} with its checksum and signature")
            job.archive = str(online.download(job.source_url, job.to_version))
            job.save(update_fields=["archive"])
            _step(job, 8, "downloaded; checksum, signature, manifest and version verified")
        _step(job, 10, f"staging {job.to_version} beside the running {job.from_version}")
        release = stage(job.archive, job.to_version)
        _step(job, 30, f"staged in {release}; checking its packages and its migrations on a "
                       "copy of the database")
        check_dependencies(release)
        check_migrations(release)
        _step(job, 50, "migrations apply cleanly to the copy; handing over to the supervisor")
        # saved before asking: from now on only the supervisor writes this job
        job.status = UpdateJob.Status.SWITCHING
        job.save(update_fields=["status"])
        ask_supervisor({"switch": {"job": job.pk, "release": str(release),
                                   "version": job.to_version}})
        return job.status
    except (UpdateError, WorkerUnavailable, OSError, tarfile.TarError,
            subprocess.SubprocessError) as error:
        job.log += f"{timezone.now():%H:%M:%S} FAILED: {error}\nThe running {job.from_version} "\
                   "keeps serving; nothing was switched.\n"
        job.status = UpdateJob.Status.FAILED
        job.progress = 100
    job.finished = timezone.now()
    job.save()
    return job.status
