"""Installing a verified update, the worker's part: stage beside the running release, check its
packages and its migrations on a copy of the database, hand over to the supervisor. (The
switch-over itself is proven on a real stack: tests/browser/test_update.py.)"""

import sqlite3
import tomllib

import pytest
from django.db import connection

from core.version import __version__
from maintenance import install, restarts, updates
from maintenance.models import UpdateJob
from runner.stack import ROOT, active_release
from runner.supervisor import JobReport, settle_interrupted_switches
from tests import releases

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    return releases.signing_key(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def supervisor(monkeypatch):
    """Stands in for the supervisor process: records what it is asked."""
    asked = []
    monkeypatch.setattr(install, "supervisor_state", lambda: {"services": {}})
    monkeypatch.setattr(install, "ask_supervisor", asked.append)
    return asked


def job_for(archive, version):
    return UpdateJob.objects.create(user="tester", from_version=__version__,
                                    to_version=version, archive=str(archive))


def test_a_release_is_staged_checked_and_handed_to_the_supervisor(key, tmp_path, supervisor):
    archive = releases.build(tmp_path, "9.0.0", key)
    job = job_for(archive, "9.0.0")
    assert install.run_job(job.pk) == UpdateJob.Status.SWITCHING
    job.refresh_from_db()
    assert job.progress == 50 and "migrations apply cleanly" in job.log
    release = install.releases_dir() / "9.0.0"
    assert supervisor == [{"switch": {"job": job.pk, "release": str(release),
                                      "version": "9.0.0"}}]
    assert (release / "manage.py").is_file()
    # the staged code says its own version: where it imports it, and where 0.1.0 reads it
    for name in updates.VERSION_FILES:
        assert '__version__ = "9.0.0"' in (release / name).read_text(), name


def test_a_release_whose_migration_fails_is_refused_and_the_database_untouched(
        key, tmp_path, supervisor):
    archive = releases.build(tmp_path, "9.0.1", key, {
        "clusters/migrations/0099_fails.py": releases.FAILING_MIGRATION})
    job = job_for(archive, "9.0.1")
    assert install.run_job(job.pk) == UpdateJob.Status.FAILED
    job.refresh_from_db()
    assert "this migration fails on purpose" in job.log
    assert "keeps serving" in job.log
    assert supervisor == []
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM django_migrations WHERE name = '0099_fails'")
        assert cursor.fetchone()[0] == 0


def test_a_release_needing_other_packages_is_refused_naming_them(key, tmp_path, supervisor):
    pyproject = (releases.ROOT / "pyproject.toml").read_text().replace(
        '"defusedxml==0.7.1",', '"defusedxml==0.7.1", "left-pad==1.0",')
    archive = releases.build(tmp_path, "9.0.2", key, {"pyproject.toml": pyproject.encode()})
    job = job_for(archive, "9.0.2")
    assert install.run_job(job.pk) == UpdateJob.Status.FAILED
    job.refresh_from_db()
    assert "needs Python packages this appliance does not have: left-pad==1.0" in job.log
    assert supervisor == []


def test_the_dependency_check_reads_what_is_installed_not_the_running_releases_pins(tmp_path):
    """A package the running release does not pin but the virtualenv has at that version is
    no obstacle; another version of an installed package is (the virtualenv stays)."""
    pins = tomllib.loads((releases.ROOT / "pyproject.toml").read_text())["project"]
    django_pin = next(p for p in pins["dependencies"] if p.startswith("Django=="))
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\ndependencies = ["{django_pin}", "pytest=={pytest.__version__}"]\n')
    install.check_dependencies(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[project]\ndependencies = ["Django==1.0.0"]\n')
    with pytest.raises(install.UpdateError, match="does not have: Django==1.0.0"):
        install.check_dependencies(tmp_path)


def test_without_a_supervisor_nothing_is_staged(key, tmp_path, monkeypatch):
    monkeypatch.setattr(install, "supervisor_state", lambda: None)
    archive = releases.build(tmp_path, "9.0.3", key)
    job = job_for(archive, "9.0.3")
    assert install.run_job(job.pk) == UpdateJob.Status.FAILED
    job.refresh_from_db()
    assert "no supervisor is running" in job.log
    assert not (install.releases_dir() / "9.0.3").exists()


def test_restart_needed_names_dead_stopped_and_outdated_services():
    running = {"pid": 10, "running": True, "version": "9.0.0"}
    state = {"version": "9.0.0", "services": {
        "redis": running, "web": {**running, "version": "0.1.0"},
        "worker-dataplane": running, "worker-checks": {"pid": None},
        "worker-maintenance": running, "worker-reader": running,
        "beat": {"pid": 12, "running": False, "exit_code": -9}}}
    assert {row.name: row.restart_reason for row in restarts.restart_needed(state)} == {
        "web": "runs 0.1.0, the installed release is 9.0.0",
        "worker-checks": "not running", "beat": "exited with code -9"}
    assert restarts.restart_needed(None) == []
    with pytest.raises(ValueError, match="no service named nginx"):
        restarts.request_restart(["nginx"], user=None)


def test_a_service_an_older_supervisor_does_not_know_says_how_to_start_it():
    """After an update from a release without the reader worker, the supervisor (still the old
    release's code) neither runs nor knows worker-reader: the page says so and offers no
    restart it would refuse; a service that runs only where configured stays "not configured"."""
    running = {"pid": 10, "running": True, "version": "9.0.0"}
    state = {"version": "9.0.0", "services": {name: running for name in (
        "redis", "web", "worker-dataplane", "worker-checks", "worker-maintenance", "beat")}}
    rows = {row.name: row for row in restarts.service_rows(state)}
    assert rows["worker-reader"].restart_reason == restarts.UNKNOWN_TO_SUPERVISOR
    assert not rows["worker-reader"].known
    assert rows["snmpd"].restart_reason == "" and not rows["snmpd"].configured
    assert rows["chronyd"].restart_reason == "" and not rows["keepalived"].configured
    assert [row.name for row in restarts.restart_needed(state)] == ["worker-reader"]


def test_a_switch_the_supervisor_did_not_finish_is_marked_failed_at_its_next_start(tmp_path):
    database = tmp_path / "lbadmin.sqlite3"
    settle_interrupted_switches(database)  # a first start: no table yet, nothing to do
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE maintenance_updatejob (id integer primary key, status text, "
                   "progress integer, log text, finished text)")
        db.execute("INSERT INTO maintenance_updatejob VALUES (1, 'switching', 50, '', NULL), "
                   "(2, 'completed', 100, 'done\n', '2026-11-26')")
    JobReport(database, 1).step(65, "migrating it for 9.0.0")
    settle_interrupted_switches(database)
    with sqlite3.connect(database) as db:
        rows = dict((row[0], row[1:]) for row in db.execute(
            "SELECT id, status, progress, log, finished IS NOT NULL FROM maintenance_updatejob"))
    status, progress, log, finished = rows[1]
    assert (status, progress, finished) == ("failed", 100, 1)
    assert "migrating it for 9.0.0" in log
    assert "the supervisor stopped during the switch-over" in log
    assert rows[2] == ("completed", 100, "done\n", 1)


def test_one_update_at_a_time_and_never_to_an_older_version(supervisor):
    running = UpdateJob.objects.create(user="a", from_version=__version__, to_version="9.0.0",
                                       archive="x", status=UpdateJob.Status.SWITCHING)
    second = job_for("y", "9.1.0")
    assert install.run_job(second.pk) == UpdateJob.Status.FAILED
    second.refresh_from_db()
    assert "another update (9.0.0) is in progress" in second.log
    running.delete()
    stale = job_for("z", __version__)  # verified before another update switched over
    assert install.run_job(stale.pk) == UpdateJob.Status.FAILED
    stale.refresh_from_db()
    assert f"{__version__} is not newer than the running {__version__}" in stale.log
    assert supervisor == []


@pytest.mark.parametrize("version_file", updates.VERSION_FILES)  # a release of now, of 0.1.0
def test_the_services_run_the_switched_to_release_unless_the_checkout_is_newer(
        tmp_path, version_file):
    assert active_release(tmp_path) == ROOT  # nothing switched to yet
    release = tmp_path / "releases" / "9.9.9"
    (release / version_file).parent.mkdir(parents=True)
    (release / version_file).write_bytes(updates.version_file("9.9.9"))
    (tmp_path / "current").symlink_to(release)
    assert active_release(tmp_path) == release
    (release / version_file).write_bytes(updates.version_file("0.0.1"))
    assert active_release(tmp_path) == ROOT  # e.g. after a `git pull` of a newer checkout
