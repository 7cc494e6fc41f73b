"""Installing a verified update as far as it is built: staging beside the running release
and its migrations checked on a copy of the database."""

import shutil
from pathlib import Path

import pytest

from appliance import __version__
from maintenance import install, updates
from maintenance.models import UpdateJob

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)

FAILING_MIGRATION = b'''from django.db import migrations


def fail(apps, schema_editor):
    raise RuntimeError("this migration fails on purpose")


class Migration(migrations.Migration):
    dependencies = [("clusters", "0003_floatingip")]
    operations = [migrations.RunPython(fail)]
'''


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    updates.make_key(folder / "release.pem", folder / "release.pub")
    return (folder / "release.pem").read_bytes()


def checkout_copy(tmp_path, extra=None):
    names = updates.release_files(ROOT)
    for name in names:
        if (ROOT / name).is_file():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tmp_path / name)
    for name, data in (extra or {}).items():
        (tmp_path / name).write_bytes(data)
        names.append(name)
    return names


def job_for(archive, version):
    return UpdateJob.objects.create(user="tester", from_version=__version__,
                                    to_version=version, archive=str(archive))


def test_a_release_of_this_checkout_is_staged_and_its_migrations_checked(key, tmp_path):
    names = checkout_copy(tmp_path / "src")
    archive = updates.build_release(tmp_path / "src", "9.0.0", "0.1.0", "", key,
                                    tmp_path / "dist", files=names)
    job = job_for(archive, "9.0.0")
    assert install.run_job(job.pk) == UpdateJob.Status.STAGED
    job.refresh_from_db()
    assert job.progress == 100 and "migrations apply cleanly" in job.log
    assert (install.releases_dir() / "9.0.0" / "manage.py").is_file()


def test_a_release_whose_migration_fails_is_refused_and_the_database_untouched(key, tmp_path):
    from django.db import connection

    names = checkout_copy(tmp_path / "src", {
        "clusters/migrations/0099_fails.py": FAILING_MIGRATION})
    archive = updates.build_release(tmp_path / "src", "9.0.1", "0.1.0", "", key,
                                    tmp_path / "dist", files=names)
    job = job_for(archive, "9.0.1")
    assert install.run_job(job.pk) == UpdateJob.Status.FAILED
    job.refresh_from_db()
    assert "this migration fails on purpose" in job.log
    assert "keeps serving" in job.log
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM django_migrations WHERE name = '0099_fails'")
        assert cursor.fetchone()[0] == 0
