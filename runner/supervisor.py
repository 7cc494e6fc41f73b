"""The supervisor: Restart Services, and the switch-over of a software update.

It runs in the process that started the services (`make demo`'s runner, a test's Stack),
outside every service it restarts: a worker cannot restart itself, nor replace its own code.
A service that exits unasked is restarted with backoff and a limit (Restart=on-failure).
Requests arrive on its own unix socket (<data>/supervisor.sock, which needs no Redis) and on
a Redis list; what it runs (services, pids, the release, restarts) is published in Redis
every second and answered on the socket for the Restart Services page. The supervisor's own
code is the checkout it was started from; an update replaces the services' code, not the
supervisor's.

The HA pair's keepalived, conntrackd and vrrp-notify are services like the others: the ha
app writes <data>/ha and asks {"start": "conntrackd"}, {"start": "vrrp-notify"}, {"start":
"keepalived"} (core.workers.ask_supervisor), and stops them in the reverse order to break the
pair; a start without <data>/ha/keepalived.conf fails, and says so, as "not configured".
"""

import contextlib
import copy
import json
import os
import queue
import socketserver
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from core.alerts import raise_alert
from core.runtime import SERVICES
from core.runtime import SUPERVISOR_REQUESTS_KEY as REQUESTS_KEY
from core.runtime import SUPERVISOR_SOCKET_NAME as SOCKET_NAME
from core.runtime import SUPERVISOR_STATE_KEY as STATE_KEY
from core.runtime import SUPERVISOR_STATE_TTL as STATE_TTL

from .stack import StartError, release_version


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


# Restart=on-failure, as systemd does it: a service that exits without being asked to is
# started again after 1 s, 2 s, 4 s ... (at most 30 s); after RESTART_LIMIT restarts within
# RESTART_WINDOW seconds it stays down, and Restart Services says so (a restart there, or a
# start, gives it a fresh budget).
RESTART_LIMIT = 5
RESTART_WINDOW = 60.0
RESTART_DELAY_MAX = 30.0
REQUEST_KINDS = ("restart", "stop", "start", "switch", "reload")


# Logs: every <data>/logs/*.out and *.log past LOG_ROTATE_BYTES is rotated, copytruncate: its
# content is copied to <name>.1 (.1 -> .2 -> .3, LOGS_KEPT kept) and the file itself is
# truncated in place, so the services keep writing to the descriptor they opened with O_APPEND
# (the stack opens their output "ab"; Django's WatchedFileHandler appends too). Checked every
# LOG_ROTATE_EVERY seconds by the watch loop. Lines written between the copy and the
# truncation (microseconds) are lost, as with logrotate's copytruncate.
LOG_ROTATE_BYTES = 10 * 1024 * 1024
LOGS_KEPT = 3
LOG_ROTATE_EVERY = 10.0
LOG_PATTERNS = ("*.out", "*.log")


def _open_own(path, flags):
    """A file in the service user's directory, opened by root without following a link that
    user may have put there."""
    return os.open(path, flags | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o600)


def rotate_logs(log_dir, max_bytes=LOG_ROTATE_BYTES, keep=LOGS_KEPT, give=None):
    """Rotate the logs in `log_dir` larger than `max_bytes` (copytruncate, `keep` old ones);
    `give(path)` hands each new file to the service user. Returns what it did, in words.
    Links and files with several names are left alone (the directory is the service user's;
    this runs as root)."""
    done = []
    log_dir = Path(log_dir)
    paths = sorted({path for pattern in LOG_PATTERNS for path in log_dir.glob(pattern)})
    for path in paths:
        try:
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode) or info.st_size <= max_bytes:
                continue
            if info.st_nlink != 1:
                done.append(f"not rotating logs/{path.name}: it has {info.st_nlink} names")
                continue
            for n in range(keep, 1, -1):  # .2 -> .3, .1 -> .2 (the oldest is replaced)
                older = path.with_name(f"{path.name}.{n - 1}")
                if older.exists() or older.is_symlink():
                    os.replace(older, path.with_name(f"{path.name}.{n}"))
            copy = path.with_name(f"{path.name}.1.tmp")
            with contextlib.suppress(FileNotFoundError):
                copy.unlink()
            source = _open_own(path, os.O_RDWR)
            try:
                target = _open_own(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
                try:
                    while chunk := os.read(source, 1 << 20):  # to the end, new lines included
                        os.write(target, chunk)
                    os.ftruncate(source, 0)
                finally:
                    os.close(target)
            finally:
                os.close(source)
            if give is not None:
                give(copy)
            os.replace(copy, path.with_name(f"{path.name}.1"))
            done.append(f"rotated logs/{path.name} ({info.st_size / 1048576:.1f} MiB; "
                        f"{keep} older kept)")
        except OSError as error:
            done.append(f"could not rotate logs/{path.name}: {error}")
    return done


def restart_delay(recent):
    """Seconds to wait before the restart that follows `recent` restarts in the window."""
    return min(RESTART_DELAY_MAX, 2.0 ** recent)


class SocketHandler(socketserver.StreamRequestHandler):
    """One JSON line in, one out: {"state": true} -> {"state": ...}; {"request": {...}} ->
    {"queued": true}."""

    def handle(self):
        supervisor = self.server.supervisor
        try:
            message = json.loads(self.rfile.readline(65536))
            if message.get("state"):
                reply = {"state": supervisor.state()}
            elif isinstance(message.get("request"), dict) and \
                    any(kind in message["request"] for kind in REQUEST_KINDS):
                supervisor.requests.put(message["request"])
                reply = {"queued": True}
            else:
                reply = {"error": "unknown message"}
        except (ValueError, AttributeError) as error:
            reply = {"error": f"unreadable message: {error}"}
        self.wfile.write(json.dumps(reply).encode() + b"\n")


class SocketServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class Supervisor:
    def __init__(self, stack):
        self.stack = stack
        # one immediate retry (a connection Redis closed), no backoff: with Redis down the
        # threads publishing and reading the list must not hang on it
        self.client = redis.Redis(unix_socket_path=str(stack.redis_socket), socket_timeout=5,
                                  socket_connect_timeout=1, retry=Retry(NoBackoff(), 1))
        self.restarts = {}  # service -> {"at", "by", "result"}: the last restart of each
        # service -> {"count", "recent", "last_exit", "last_at", "due", "pid", "gave_up"}:
        # the restarts of a service that exited on its own
        self.recovery = {}
        self.requests = queue.Queue()  # from the socket and from the Redis list
        self.state_lock = threading.Lock()
        self.stopping = threading.Event()
        self.log_path = stack.log_dir / "supervisor.log"
        self.next_rotation = 0.0  # time.monotonic() of the next look at the logs' sizes

    @property
    def socket_path(self):
        return self.stack.data_dir / SOCKET_NAME

    def run(self, stop=None):
        """Serve requests and restart what dies until `stop` (a threading.Event) is set, or
        forever (`make demo`: until Ctrl-C)."""
        settle_interrupted_switches(self.stack.database)
        self.stopping.clear()
        server = self.serve_socket()
        threads = [threading.Thread(target=self._publish_loop, name="supervisor-publish",
                                    daemon=True),
                   threading.Thread(target=self._redis_requests, name="supervisor-redis",
                                    daemon=True)]
        for thread in threads:
            thread.start()
        try:
            while stop is None or not stop.is_set():
                self.watch()
                try:
                    request = self.requests.get(timeout=0.2)
                except queue.Empty:
                    continue
                self.handle(request)
        finally:
            self.stopping.set()
            server.shutdown()
            server.server_close()
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
            for thread in threads:
                thread.join(timeout=10)

    def serve_socket(self):
        """The supervisor's own socket in the data directory: 0600, owned like the data
        directory (the service user's), so Restart Services needs no Redis."""
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        server = SocketServer(str(self.socket_path), SocketHandler)
        # bound with the process's umask, which leaves others no write (connect) right
        os.chmod(self.socket_path, 0o600)
        owner = self.stack.data_dir.stat()
        os.chown(self.socket_path, owner.st_uid, owner.st_gid)
        server.supervisor = self
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5},
                         name="supervisor-socket", daemon=True).start()
        return server

    def _redis_requests(self):
        """Requests queued on the Redis list (releases before the socket, and a fallback)."""
        while not self.stopping.is_set():
            try:
                item = self.client.blpop([REQUESTS_KEY], timeout=1)
            except (redis.RedisError, OSError):
                self.stopping.wait(0.5)  # Redis is being restarted, or not up yet
                continue
            if item:
                with contextlib.suppress(ValueError):
                    self.requests.put(json.loads(item[1]))

    def _publish_loop(self):
        while not self.stopping.is_set():
            with contextlib.suppress(redis.RedisError, OSError):
                self.publish()
            self.stopping.wait(1)

    def state(self):
        state = self.stack.describe()
        with self.state_lock:
            state["restarts"] = copy.deepcopy(self.restarts)
            state["recovery"] = {
                name: {"count": entry["count"], "last_exit": entry["last_exit"],
                       "last_at": entry["last_at"], "gave_up": entry["gave_up"],
                       "restarting_in": (max(0.0, entry["due"] - time.monotonic())
                                         if entry["due"] is not None else None)}
                for name, entry in self.recovery.items()}
        return state

    def publish(self):
        self.client.set(STATE_KEY, json.dumps(self.state()), ex=STATE_TTL)

    def log(self, line):
        text = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}"
        print(f"supervisor: {line}", file=sys.stderr, flush=True)
        with contextlib.suppress(OSError):
            with open(self.log_path, "a") as handle:
                handle.write(text + "\n")
            self.stack.give(self.log_path)

    def watch(self):
        """Restart=on-failure: notice services that exited unasked, restart each when its
        backoff is over; past the limit, leave it down and say so. A stopped service is no
        longer in the stack's processes, so a stop is never fought."""
        now = time.monotonic()
        if now >= self.next_rotation:
            self.next_rotation = now + LOG_ROTATE_EVERY
            for line in rotate_logs(self.stack.log_dir, give=self.stack.give):
                self.log(line)
        with self.stack.lock:  # not while a restart or a switch-over is under way
            dead = self.stack.dead_pids()
        for name, (pid, status) in dead.items():
            service = "web" if name == "web-http" else name
            if service not in SERVICES:
                continue
            with self.state_lock:
                entry = self.recovery.setdefault(service, {
                    "count": 0, "recent": [], "last_exit": None, "last_at": None,
                    "due": None, "pid": None, "gave_up": False})
                if entry["pid"] == pid:
                    continue  # noticed already: waiting for its backoff, or given up
                entry["pid"], entry["last_exit"], entry["last_at"] = pid, status, time.time()
                entry["recent"] = [t for t in entry["recent"] if now - t < RESTART_WINDOW]
                if len(entry["recent"]) >= RESTART_LIMIT:
                    entry["gave_up"], entry["due"] = True, None
                else:
                    entry["due"] = now + restart_delay(len(entry["recent"]))
                gave_up, delay = entry["gave_up"], (entry["due"] or now) - now
            if gave_up:
                self.log(f"{name} (pid {pid}) exited with status {status}; {RESTART_LIMIT} "
                         f"restarts within {RESTART_WINDOW:.0f} s already: it stays down "
                         "until restarted from Restart Services")
                raise_alert("service-died", f"The service {service} (pid {pid}) exited with "
                            f"status {status}; it exited {RESTART_LIMIT} times within "
                            f"{RESTART_WINDOW:.0f} s, so it stays down until restarted from "
                            "Maintenance › Restart Services.", details={
                                "service": service, "pid": pid, "status": status,
                                "restarted": False}, client=self.client)
            else:
                self.log(f"{name} (pid {pid}) exited with status {status}; restarting "
                         f"{service} in {delay:.0f} s")
        for service, entry in list(self.recovery.items()):
            if entry["due"] is not None and entry["due"] <= time.monotonic():
                self._recover(service, entry)

    def _recover(self, service, entry):
        names = ("web", "web-http") if service == "web" else (service,)
        with self.stack.lock:
            processes = [self.stack.processes.get(name) for name in names]
            if not any(p is not None and p.pid == entry["pid"] for p in processes):
                entry["due"] = None  # stopped or restarted meanwhile by someone else
                return
            with self.state_lock:
                entry["due"] = None
                entry["count"] += 1
                entry["recent"].append(time.monotonic())
            try:
                self.stack.restart_service(service, keep_data=False)
            except (StartError, OSError) as error:
                self.log(f"restart {entry['count']} of {service} failed: {error}")
                return
        process = self.stack.processes.get(service)
        self.log(f"{service} restarted (restart {entry['count']}, "
                 f"pid {process.pid if process else '?'})")
        # after the restart: a Redis that died is back to take its own alert
        raise_alert("service-died", f"The service {service} (pid {entry['pid']}) exited with "
                    f"status {entry['last_exit']}; the supervisor restarted it (restart "
                    f"{entry['count']}).", details={"service": service, "pid": entry["pid"],
                                                    "status": entry["last_exit"],
                                                    "restarted": True},
                    client=self.client)

    def _fresh_budget(self, name):
        """An administrator's restart, start or stop ends the automatic restarts' history."""
        with self.state_lock:
            entry = self.recovery.get(name)
            if entry is not None:
                entry.update(recent=[], due=None, gave_up=False)

    def handle(self, request):
        if "reload" in request:
            self.reload(request["reload"], request.get("by", ""))
        elif "restart" in request:
            self.restart(request["restart"], request.get("by", ""))
        elif "stop" in request:
            self.stop(request["stop"], request.get("by", ""))
        elif "start" in request:
            self.restart(request["start"], request.get("by", ""), verb="started")
        elif "switch" in request:
            params = request["switch"]
            if isinstance(params, dict) and set(params) == {"job", "release", "version"}:
                self.switch(**params)
            else:
                self.log(f"switch-over request {params!r} REFUSED: not a job, a release and "
                         "a version")

    def reload(self, name, by=""):
        """Local Configuration › Security saved: the WebUI re-reads its certificate without
        a restart and plain HTTP follows the setting (Stack.reload_web). Only the WebUI
        reloads."""
        if name != "web":
            self.log(f"reload of {name!r} REFUSED: only the WebUI (web) reloads")
            return
        self._mark(name, by, "reloading")
        try:
            self.stack.reload_web()
        except (StartError, OSError) as error:
            self._mark(name, by, f"reload failed: {error}")
            self.log(f"reload of web failed: {error}")
        else:
            self._mark(name, by, "reloaded")
            self.log(f"web reloaded: its certificate read again, plain HTTP "
                     f"{'on' if self.stack.http_wanted_now else 'off'} (by {by or 'request'})")
        with contextlib.suppress(redis.RedisError, OSError):
            self.publish()

    def _mark(self, name, by, result):
        with self.state_lock:
            self.restarts[name] = {"at": time.time(), "by": by, "result": result}

    def stop(self, name, by=""):
        """The administrator's stop: the service stays down until a start or a restart."""
        self._mark(name, by, "stopping")
        self._fresh_budget(name)
        try:
            self.stack.stop_service(name)
        except (StartError, OSError) as error:
            self._mark(name, by, f"failed: {error}")
            return
        self._mark(name, by, "stopped")
        self.log(f"{name} stopped (by {by or 'request'})")

    def restart(self, name, by="", verb="restarted"):
        self._mark(name, by, "restarting")
        self._fresh_budget(name)
        try:
            self.stack.restart_service(name)
            if name.startswith("worker-"):
                self.stack.wait_for_workers()
        except (StartError, OSError) as error:
            self._mark(name, by, f"failed: {error}")
        else:
            self._mark(name, by, verb)
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

    def release_refused(self, release, version):
        """Why `release` may not be switched to, or None. Only a release the maintenance
        worker staged and verified is accepted: a directory under <data>/releases/ (the path
        resolved, so no `..` or symbolic link leads out) whose version file says `version`."""
        releases = (self.stack.data_dir / "releases").resolve()
        try:
            path = Path(release).resolve()
        except (TypeError, ValueError, OSError) as error:
            return f"unreadable path ({error})"
        if path == releases or not path.is_relative_to(releases):
            return f"{path} is not under {releases}"
        if not path.is_dir():
            return f"{path} is not a directory"
        try:
            found = release_version(path)
        except (OSError, AttributeError) as error:
            return f"{path} holds no version file ({error})"
        if found != version:
            return f"{path} is version {found}, not {version}"
        return None

    def switch(self, job, release, version):
        """Stop the services, migrate, start them from `release`, check they answer; on any
        failure restore the database snapshot and start the previous release again. A
        release that is not a staged one (release_refused) is refused: nothing stops."""
        stack = self.stack
        if reason := self.release_refused(release, version):
            self.log(f"switch-over to {release!r} ({version}) for update job {job} REFUSED: "
                     f"{reason}")
            with contextlib.suppress(sqlite3.Error, OSError):
                JobReport(stack.database, job).step(
                    100, f"REFUSED: the supervisor switches only to a release staged under "
                         f"releases/: {reason}", status="failed")
            return
        report = JobReport(stack.database, job)
        old_dir, old_version = stack.code_dir, stack.version
        report.step(60, f"stopping the WebUI, the workers and beat of {old_version} (the data "
                        "plane keeps forwarding: its rules stay in the kernel)")
        stack.stop_services()
        snapshot = stack.data_dir / "releases" / f"database-before-{version}.sqlite3"
        copy_database(stack.database, snapshot)
        stack.give(snapshot)
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
