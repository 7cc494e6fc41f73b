"""The supervisor switches only to a release the maintenance worker staged under
<data>/releases/: any other path (from Redis, from its socket) is refused and logged, and
nothing is stopped."""

import contextlib
import sqlite3
import threading

import pytest

from runner import supervisor


class SwitchStack:
    def __init__(self, data_dir):
        self.data_dir = self.log_dir = data_dir
        self.database = data_dir / "lbadmin.sqlite3"
        self.redis_socket = data_dir / "no-redis.sock"
        self.lock = threading.RLock()
        self.stopped = []
        self.code_dir, self.version = data_dir, "0.1.0"
        with contextlib.closing(sqlite3.connect(self.database)) as db, db:
            db.execute("CREATE TABLE maintenance_updatejob (id INTEGER PRIMARY KEY, "
                       "progress INTEGER, log TEXT, status TEXT, finished TEXT)")
            db.execute("INSERT INTO maintenance_updatejob VALUES (1, 50, '', 'switching', "
                       "NULL)")

    def give(self, path):
        pass

    def stop_services(self):
        self.stopped.append("services")
        raise RuntimeError("a refused release must not stop anything")


def release(directory, version="9.0.0"):
    (directory / "core").mkdir(parents=True)
    (directory / "core" / "version.py").write_text(f'__version__ = "{version}"\n')
    return directory


def job_row(stack):
    with contextlib.closing(sqlite3.connect(stack.database)) as db:
        return db.execute("SELECT status, log FROM maintenance_updatejob WHERE id = 1").fetchone()


@pytest.fixture
def stack(tmp_path):
    data = tmp_path / "data"
    (data / "releases").mkdir(parents=True)
    return SwitchStack(data)


@pytest.mark.parametrize("where", [
    "outside",              # a release anywhere else on the disk
    "dotdot",               # releases/../outside: resolved, it is outside
    "symlink",              # releases/evil -> outside
    "releases",             # the releases directory itself
    "missing",              # nothing there
    "no-version",           # a directory without a version file
    "other-version",        # a staged release of another version
])
def test_a_switch_over_to_anything_but_a_staged_release_is_refused_and_logged(
        stack, tmp_path, where):
    outside = release(tmp_path / "outside")
    releases = stack.data_dir / "releases"
    path = {
        "outside": outside,
        "dotdot": releases / ".." / ".." / "outside",
        "symlink": releases / "evil",
        "releases": releases,
        "missing": releases / "9.0.0",
        "no-version": releases / "empty",
        "other-version": release(releases / "8.0.0", "8.0.0"),
    }[where]
    if where == "symlink":
        path.symlink_to(outside)
    if where == "no-version":
        path.mkdir()
    supervisor.Supervisor(stack).handle(
        {"switch": {"job": 1, "release": str(path), "version": "9.0.0"}})
    assert stack.stopped == []
    log = (stack.data_dir / "supervisor.log").read_text()
    assert "REFUSED" in log and str(path) in log
    status, job_log = job_row(stack)
    assert status == "failed" and "REFUSED" in job_log


def test_a_staged_release_is_accepted(stack):
    staged = release(stack.data_dir / "releases" / "9.0.0")
    watching = supervisor.Supervisor(stack)
    assert watching.release_refused(str(staged), "9.0.0") is None
    with pytest.raises(RuntimeError, match="must not stop"):  # it went on to stop the services
        watching.switch(1, str(staged), "9.0.0")


def test_a_malformed_switch_request_is_refused_and_logged(stack):
    supervisor.Supervisor(stack).handle({"switch": {"release": "/tmp"}})
    assert stack.stopped == []
    assert "REFUSED" in (stack.data_dir / "supervisor.log").read_text()
