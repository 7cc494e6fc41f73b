"""The supervisor: Restart Services, and the switch-over of a software update.

It runs in the process that started the services (`make demo`'s runner, a test's Stack),
outside every service it restarts: a worker cannot restart itself, nor replace its own code.
Requests arrive on a Redis list; what it runs (services, pids, the release) is published in
Redis every second for the Restart Services page. The supervisor's own code is the checkout it
was started from; an update replaces the services' code, not the supervisor's.
"""

import contextlib
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import redis

from core.runtime import SUPERVISOR_REQUESTS_KEY as REQUESTS_KEY
from core.runtime import SUPERVISOR_STATE_KEY as STATE_KEY
from core.runtime import SUPERVISOR_STATE_TTL as STATE_TTL

from .stack import StartError


def copy_database(source, target):
    """A consistent copy with SQLite's backup API (the WAL's pages included)."""
    with contextlib.closing(sqlite3.connect(source)) as src, \
            contextlib.closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


class JobReport:
    """Progress and log of an UpdateJob, written straight into its row with sqlite3.

    The supervisor cannot use the ORM: it is not a Django process, and between migrating and
    switching back the database may hold either release's schema. The update table's columns
    (progress, log, status, finished) are kept by every release for this reason. The whole log
    is written each time, so it survives the database being restored to its snapshot.
    """

    def __init__(self, database, job_id):
        self.database = database
        self.job_id = job_id
        with contextlib.closing(sqlite3.connect(database, timeout=30)) as db:
            row = db.execute("SELECT log FROM maintenance_updatejob WHERE id = ?",
                             (job_id,)).fetchone()
        self.log = row[0] if row else ""
        self.progress = 0

    def step(self, progress, line, status=None):
        self.progress = progress
        self.log += f"{time.strftime('%H:%M:%S')} {line}\n"
        self.write(status)

    def write(self, status=None):
        with contextlib.closing(sqlite3.connect(self.database, timeout=30)) as db, db:
            db.execute("UPDATE maintenance_updatejob SET progress = ?, log = ? WHERE id = ?",
                       (self.progress, self.log, self.job_id))
            if status:
                db.execute("UPDATE maintenance_updatejob SET status = ?, finished = "
                           "strftime('%Y-%m-%d %H:%M:%f', 'now') WHERE id = ?",
                           (status, self.job_id))


def settle_interrupted_switches(database):
    """A switch-over the supervisor did not finish (it was stopped during one) is marked
    failed, naming the database snapshot it took; the services run the release `current`
    names, which only a completed switch-over changes."""
    # no update table yet (a first start): nothing was ever switched
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as db, db, \
            contextlib.suppress(sqlite3.OperationalError):
        db.execute(
            "UPDATE maintenance_updatejob SET status = 'failed', progress = 100, "
            "finished = strftime('%Y-%m-%d %H:%M:%f', 'now'), log = log || ? "
            "WHERE status = 'switching'",
            (f"{time.strftime('%H:%M:%S')} FAILED: the supervisor stopped during the "
             "switch-over. The database as it was before it is in "
             "releases/database-before-<version>.sqlite3.\n",))


class Supervisor:
    def __init__(self, stack):
        self.stack = stack
        self.client = redis.Redis(unix_socket_path=str(stack.redis_socket), socket_timeout=5)
        self.restarts = {}  # service -> {"at", "by", "result"}: the last restart of each

    def run(self, stop=None):
        """Serve requests until `stop` (a threading.Event) is set, or forever."""
        settle_interrupted_switches(self.stack.database)
        while stop is None or not stop.is_set():
            try:
                self.publish()
                item = self.client.blpop([REQUESTS_KEY], timeout=1)
            except (redis.RedisError, OSError):
                time.sleep(0.5)  # Redis is being restarted, or not up yet
                continue
            if item:
                self.handle(json.loads(item[1]))

    def publish(self):
        state = self.stack.describe()
        state["restarts"] = self.restarts
        self.client.set(STATE_KEY, json.dumps(state), ex=STATE_TTL)

    def handle(self, request):
        if "restart" in request:
            self.restart(request["restart"], request.get("by", ""))
        elif "switch" in request:
            self.switch(**request["switch"])

    def restart(self, name, by=""):
        self.restarts[name] = {"at": time.time(), "by": by, "result": "restarting"}
        try:
            self.stack.restart_service(name)
            if name.startswith("worker-"):
                self.stack.wait_for_workers()
        except (StartError, OSError) as error:
            self.restarts[name]["result"] = f"failed: {error}"
        else:
            self.restarts[name]["result"] = "restarted"
        with contextlib.suppress(redis.RedisError, OSError):
            self.publish()

    def check_services(self, version):
        """The services of `version` answer: the web (start_web waits for its login page),
        a worker on every queue, beat running, and the code they import says `version`."""
        self.stack.wait_for_workers(timeout=60)
        imported = self.stack.imported_version()
        if imported != version:
            raise StartError(f"the services import version {imported}, not {version}")
        time.sleep(1)
        if dead := self.stack.dead_processes():
            raise StartError(f"exited after starting: {', '.join(dead)}")

    def switch(self, job, release, version):
        """Stop the services, migrate, start them from `release`, check they answer; on any
        failure restore the database snapshot and start the previous release again."""
        stack = self.stack
        report = JobReport(stack.database, job)
        old_dir, old_version = stack.code_dir, stack.version
        report.step(60, f"stopping the WebUI, the workers and beat of {old_version} (the data "
                        "plane keeps forwarding: its rules stay in the kernel)")
        stack.stop_services()
        snapshot = stack.data_dir / "releases" / f"database-before-{version}.sqlite3"
        copy_database(stack.database, snapshot)
        report.step(65, f"database saved to {snapshot.name}; migrating it for {version}")
        try:
            stack.migrate(release)
            report.step(75, f"starting the services from {version}")
            stack.code_dir = Path(release)
            stack.start_services()
            report.step(90, "checking the WebUI and every worker queue answer and beat runs")
            self.check_services(version)
        except (StartError, OSError, subprocess.SubprocessError) as error:
            self._switch_back(report, error, old_dir, old_version, snapshot)
            return
        stack.make_current(release)
        report.step(100, f"Update completed successfully: {version} is serving.",
                    status="completed")

    def _switch_back(self, report, error, old_dir, old_version, snapshot):
        stack = self.stack
        stack.stop_services()
        copy_database(snapshot, stack.database)  # undoes the new release's migrations
        stack.code_dir = old_dir
        report.step(80, f"FAILED: {error}")
        report.step(85, f"switching back: database restored from {snapshot.name}; starting "
                        f"{old_version} again")
        try:
            stack.start_services()
            self.check_services(old_version)
        except (StartError, OSError, subprocess.SubprocessError) as again:
            report.step(100, f"{old_version} did not come back either: {again}. See the logs "
                             f"in {stack.log_dir}.", status="failed")
            print(f"supervisor: {old_version} did not come back: {again}", file=sys.stderr)
            return
        report.step(100, f"Update failed; switched back: {old_version} is serving again.",
                    status="failed")
