"""Installing a verified update, as far as it is built: stage the release beside the running
one and prove its migrations apply to a copy of the database. The switch-over (restarting the
services from the staged release, checking they answer, switching back on failure) needs a
supervisor outside the workers being replaced and is not built yet.
"""

import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from django.conf import settings
from django.utils import timezone

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
        _step(job, 10, f"staging {job.to_version} beside the running {job.from_version}")
        release = stage(job.archive, job.to_version)
        _step(job, 50, f"staged in {release}; checking its migrations on a copy of the database")
        check_migrations(release)
        _step(job, 90, "migrations apply cleanly")
        _step(job, 100, "staged. Switching the services over to it is not built yet: the "
                        f"running {job.from_version} keeps serving.")
        job.status = UpdateJob.Status.STAGED
    except (UpdateError, OSError, tarfile.TarError, subprocess.SubprocessError) as error:
        job.log += f"{timezone.now():%H:%M:%S} FAILED: {error}\nThe running {job.from_version} "\
                   "keeps serving; nothing was switched.\n"
        job.status = UpdateJob.Status.FAILED
    job.finished = timezone.now()
    job.save()
    return job.status
