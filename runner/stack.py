"""Start and stop the appliance's processes: Redis, gunicorn, the four workers and beat, and
the HA pair's keepalived and conntrackd where the ha app has configured them.

`make demo` and the system tests both use this, so what the tests prove is what the demo runs.
With a lab, every service but Redis (a unix socket reaches every namespace) runs where an
appliance's run, in the appliance's network namespace: the lab's lb, entered with `ip netns
exec` — the one place that decides where they run. The workers act there (nft, netlink,
conntrack, health checks, downloads from an update server), and the WebUI then
listens on the appliance's own addresses there, on port 9443 (the lab's client reaches
https://198.51.100.1:9443/lbadmin/), and the lab forwards `listen_address:https_port` on the
host to it, so the host's browser and the tests still reach it there. Without a lab everything
runs in the host's namespace and the WebUI listens on `listen_address:https_port`, as on a real
appliance. A pair lab (Lab(pair=True)) has a second appliance namespace, lb2: a second Stack
with `lab_role="lb2"` (its own data directory, Redis socket and supervisor) runs a second
whole appliance there, its WebUI on lb2's own addresses (https://198.51.100.2:9443/lbadmin/).

keepalived (VRRP) and conntrackd (FTFW) are services of the Stack like the others, with
vrrp-notify (ha.notify, the reader of keepalived's notify FIFO: keepalived runs no script):
where <data>/ha/keepalived.conf exists, `start_services` starts conntrackd, vrrp-notify and
then keepalived (all in the foreground, in the appliance's namespace), and they are stopped
first, keepalived before anything else (SIGTERM: it sends a priority-0 advert and drops its
addresses, so the peer takes over at once). The ha app writes the files and asks the
supervisor to start or stop them.

chronyd (NTP, Local Configuration > System Date & time) runs likewise, in the appliance's
namespace, wherever the network app wrote <etc>/chrony/chrony.conf; the page asks the
supervisor to restart it after a save. It sets the clock only on an appliance (root, no lab:
CAP_SYS_TIME); in a lab it runs with -x (chrony_sets_clock).

Started as root (`make demo`, the system tests), the Stack gives every service only what its
job needs (DESIGN.md, "Privileges"): the data directory belongs to the service user
(`lbadmin`, mode 0700), every service runs with umask 077 as that user, entered through
util-linux `setpriv` after `ip netns exec` (entering the namespace needs root), with the
capabilities of CAPABILITIES as ambient ones and nothing else in its bounding set. Started by
anyone else (a developer's laptop), everything runs as that user, as before.
"""

import contextlib
import os
import pwd
import re
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis
from celery import Celery
from redis.backoff import NoBackoff
from redis.retry import Retry

from core.cgroups import cgroup2_mount
from core.queues import TASK_ROUTES
from core.runtime import (
    CHRONY_CONF_PATH,
    CHRONY_DIR_NAME,
    CHRONY_PID_NAME,
    CHRONY_SOCKET_NAME,
    CONNTRACKD_CONF_NAME,
    CONNTRACKD_LOCK_NAME,
    CONNTRACKD_SOCKET_NAME,
    HA_DIR_NAME,
    HA_SERVICES,
    KEEPALIVED_CONF_NAME,
    KEEPALIVED_PID_NAME,
    KEEPALIVED_VRRP_PID_NAME,
    SERVICES,
    SNMP_DIR_NAME,
    SNMP_PERSIST_DIR_NAME,
    SNMPD_CONF_NAME,
    workers_by_queue,
)
from core.versions import VersionError, version_tuple

ROOT = Path(__file__).resolve().parent.parent

# queue -> pool arguments
WORKERS = {
    # exactly one writer of the data plane, in one process: the tasks and the generation
    # watcher (clusters/tasks.py, which applies while Redis is down) share what is live
    "dataplane": ["-P", "solo"],
    # checks wait on the network and on scripts: threads, so a slow one holds one thread only
    "checks": ["-P", "threads", "-c", "64"],
    # read-only kernel reads (core.queues): the samplers and Current Connections' listing, in
    # threads, so a page never waits behind a sampler; each sampler runs one at a time itself
    "reader": ["-P", "threads", "-c", "4"],
    "maintenance": ["-c", "1"],
}


# The WebUI's port inside the lab's lb namespace: the appliance's own. Each lab has its own
# namespace, so it is always free there whatever port the host forwards to it.
LAB_HTTPS_PORT = 9443
# The guide's plain-HTTP port (5.5: "WebUI - HTTP (disabled by default)"): web-http listens on
# it while Local Configuration › Security's "HTTP to HTTPS Redirect" is on — in a lab's
# namespace always; on a host unless the Stack's http_port names another.
HTTP_PORT = 9080
# That setting, read with plain SQL: the runner is no Django process (maintenance.models).
HTTP_SETTING_SQL = "SELECT http_redirect FROM maintenance_securitysettings WHERE id = 1"
# The lab namespace a Stack's appliance runs in unless told otherwise (a pair's second: "lb2").
LAB_ROLE = "lb"


# The unprivileged system user the services run as when the stack is started as root.
SERVICE_USER = "lbadmin"
CREATE_SERVICE_USER = (f"useradd --system --no-create-home --shell /usr/sbin/nologin "
                       f"{SERVICE_USER}")
# What each process keeps (ambient capabilities, the whole bounding set); anything not named
# here (the WebUI, beat, the maintenance worker, Redis, lbadmin_setup, migrations) keeps none.
# The HA pair's daemons, measured with keepalived 2.2.7 and conntrackd 1.4.7 (ha/render.py
# and tests/netns/test_ha_vrrp.py; change them here, in one place):
# - keepalived adds and removes the VIPs (NET_ADMIN) and sends VRRP adverts and gratuitous ARPs
#   on raw sockets (NET_RAW). Never SETGID: keepalived calls setgroups(2) before running any
#   script, so without it keepalived.conf (which the WebUI's user can write) cannot make it run
#   a script with these capabilities; it writes its transitions to a FIFO instead.
# - conntrackd reads and writes the conntrack table over netlink and forces its socket buffer
#   sizes (NET_ADMIN).
# - vrrp-notify (ha.notify) reads that FIFO and runs conntrackd's client over its unix socket:
#   nothing.
HA_CAPABILITIES = {
    "keepalived": ("net_admin", "net_raw"),
    "conntrackd": ("net_admin",),
    "vrrp-notify": (),
}
# chronyd (System Date & time), measured with chrony 4.3: as an NTP client (`port 0`: it
# serves nobody, so no NET_BIND_SERVICE) with its command socket in <data>/chrony it needs no
# capability at all, except SYS_TIME to set the clock (without it: "adjtimex(0x8001) failed:
# Operation not permitted"). In a lab it runs with -x (it never sets the clock, which every
# namespace shares with this machine) and keeps nothing (Stack.as_service).
CLOCK_CAPABILITIES = {"chronyd": ("sys_time",)}
CAPABILITIES = {
    # nft, netlink, conntrack
    "worker-dataplane": ("net_admin",),
    # reading conntrack (a dump needs CAP_NET_ADMIN) and nftables' counters
    "worker-reader": ("net_admin",),
    # ping; scripts drop to nobody. Never CAP_NET_ADMIN: checks cannot change nftables.
    "worker-checks": ("net_raw", "setuid", "setgid"),
    **HA_CAPABILITIES,
    **CLOCK_CAPABILITIES,
    # snmpd binds UDP 161 (measured with net-snmp 5.9.3: nothing else). The ambient capability
    # would pass to its pass_persist child (reports.snmp_agent), so snmpd.conf runs that
    # through `setpriv --inh-caps=-all --ambient-caps=-all` (network.snmp): it keeps none.
    "snmpd": ("net_bind_service",),
}
UMASK = 0o077
# The checks worker's cgroup v2 subtree (healthchecks/cgroup.py's parent), handed to the
# service user so the worker can put each script in a cgroup of its own and kill it whole.
CHECKS_CGROUP = "lbadmin-checks"


class StartError(RuntimeError):
    pass


# Stack._http_answers inside a lab's namespace: a status line from 127.0.0.1:<port>, or exit 1.
HTTP_PROBE = """import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3) as raw:
    raw.sendall(b"GET / HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n")
    sys.exit(0 if raw.recv(64).startswith(b"HTTP/1") else 1)
"""



def service_account():
    """The service user's passwd entry when this process is root, else None (services then
    run as whoever started the stack). A missing user stops a root start in words."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise StartError(
            f"the service user {SERVICE_USER!r} does not exist: create it with "
            f"`{CREATE_SERVICE_USER}` (make demo and make test do)") from None


def drop_privileges(account, capabilities=()):
    """The setpriv prefix that runs a command as `account` keeping only `capabilities`
    (ambient, so they survive the exec of python and of what it runs), or [] (not root)."""
    if account is None:
        return []
    keep = ",".join(["-all", *(f"+{cap}" for cap in capabilities)])
    prefix = ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}",
              "--init-groups", f"--inh-caps={keep}", f"--bounding-set={keep}"]
    if capabilities:
        prefix.append(f"--ambient-caps={keep}")
    else:
        prefix.append("--no-new-privs")
    return [*prefix, "--"]


def release_version(code_dir):
    """The version a release's code says it is (read, not imported: it may not be running).
    Releases before 0.2.0 kept it in appliance/version.py only."""
    for name in ("core/version.py", "appliance/version.py"):
        path = Path(code_dir) / name
        if path.exists():
            return re.search(r'__version__ = "([^"]+)"', path.read_text()).group(1)
    raise FileNotFoundError(f"{code_dir} holds no version file")


def active_release(data_dir):
    """Where the services' code comes from: <data>/current (the release the last update
    switched to) when it is newer than this checkout, else this checkout — so a `git pull`
    followed by `make demo` runs the pulled code."""
    current = Path(data_dir) / "current"
    try:
        if version_tuple(release_version(current)) > version_tuple(release_version(ROOT)):
            return current.resolve()
    except (OSError, AttributeError, VersionError):
        pass  # no release switched to yet, or not a release: run the checkout
    return ROOT


class Stack:
    def __init__(self, data_dir, lab=None, https_port=9443, listen_address="0.0.0.0",  # noqa: S104
                 http_port=0, extra_env=None, lab_role=LAB_ROLE):
        self.data_dir = Path(data_dir).resolve()
        self.lab = lab
        self.lab_role = lab_role  # the lab namespace this appliance runs in: lb, or lb2
        self.https_port = https_port
        self.listen_address = listen_address
        self.http_port = http_port  # in a lab: the host port forwarded to its 9080 (0: none)
        self.http_wanted_now = False  # the HTTP setting as the last start or reload read it
        self.env = {
            **os.environ,
            "LBADMIN_DATA_DIR": str(self.data_dir),
            "LBADMIN_HTTPS_PORT": str(https_port),
            "LBADMIN_HTTP_PORT": str(http_port),
            "LBADMIN_LISTEN_ADDRESS": listen_address,
            "LBADMIN_REDIS_SOCKET": str(self.data_dir / "redis.sock"),
            "DJANGO_SETTINGS_MODULE": "appliance.settings",
            **(extra_env or {}),
        }
        self.processes = {}  # name -> Popen, in start order
        self.started = {}  # name -> (time started, version of the code it runs)
        self.generated_password = None
        self.code_dir = active_release(self.data_dir)
        self._account = None  # the service user's passwd entry, looked up at start
        # the supervisor's thread and a test's main thread both start and stop processes
        self.lock = threading.RLock()

    @property
    def version(self):
        return release_version(self.code_dir)

    @property
    def database(self):
        return self.data_dir / "lbadmin.sqlite3"

    def code_env(self, code_dir=None):
        """The environment of a process running a release's code: PYTHONPATH first, so its
        packages win over the checkout the virtualenv was installed from."""
        return {**self.env, "PYTHONPATH": str(code_dir or self.code_dir)}

    def lab_env(self):
        """What differs for a process inside the lab's appliance namespace: the WebUI's port is
        the one it listens on there (9443), not the host's port forwarded to it. A pair's nodes
        call each other's WebUI from namespace to namespace (ha.peer), where only 9443 means
        anything. Empty without a lab."""
        if self.lab is None:
            return {}
        return {"LBADMIN_HTTPS_PORT": str(self.own_https_port)}

    @property
    def redis_socket(self):
        return Path(self.env["LBADMIN_REDIS_SOCKET"])

    @property
    def log_dir(self):
        return self.data_dir / "logs"

    @property
    def ha_dir(self):
        """<data>/ha: keepalived's and conntrackd's configuration (the ha app writes it) and
        what they write while running (pid files, conntrackd's lock, socket and log)."""
        return self.data_dir / HA_DIR_NAME

    def ha_configured(self, name="keepalived"):
        """keepalived runs where keepalived.conf exists; conntrackd and vrrp-notify where
        conntrackd.conf exists too."""
        needs = [KEEPALIVED_CONF_NAME] + ([] if name == "keepalived" else [CONNTRACKD_CONF_NAME])
        return all((self.ha_dir / file).is_file() for file in needs)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def account(self):
        """The service user (a passwd entry) when started as root, else None."""
        if self._account is None:
            self._account = service_account()
        return self._account

    def give(self, path):
        """What the root runner creates in the data directory (logs, the supervisor's socket
        and database snapshots, `current`) belongs to the service user."""
        if self.account is not None:
            os.lchown(path, self.account.pw_uid, self.account.pw_gid)

    def as_service(self, name):
        """The prefix that drops a process named `name` to its user and capabilities (in a
        lab, chronyd never sets the clock: it keeps none)."""
        if self.lab is not None and name in CLOCK_CAPABILITIES:
            return drop_privileges(self.account, ())
        return drop_privileges(self.account, CAPABILITIES.get(name, ()))

    def prepare_data_dir(self):
        """The data directory: 0700, and (as root) owned, all of it, by the service user (a
        directory an older, all-root release used is handed over on its first start)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        self.ha_dir.mkdir(mode=0o700, exist_ok=True)
        self.chrony_dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        if self.account is None:
            return
        reach = subprocess.run([*drop_privileges(self.account), "test", "-x",
                                str(self.data_dir.parent)], check=False)
        if reach.returncode:
            raise StartError(f"the service user {SERVICE_USER} cannot reach the data directory "
                             f"{self.data_dir}: a directory above it gives others no search "
                             "(x) permission; choose one under a searchable directory")
        same = subprocess.run([*drop_privileges(self.account), sys.executable, "-c",
                               "import sys; print(sys.version)"],
                              capture_output=True, text=True, check=False)
        if same.stdout.strip() != sys.version:
            runs = same.stdout.strip() or same.stderr.strip()[-200:]
            raise StartError(
                f"the service user {SERVICE_USER} does not run this Python "
                f"({sys.version.split()[0]} in {sys.base_prefix}) but {runs}:"
                f" a directory above {sys.base_prefix} does not let it search (x): "
                "`make service-user` grants it (lab/reach.sh)")
        for top, dirs, files in os.walk(self.data_dir):
            self.give(top)
            for name in dirs + files:
                self.give(os.path.join(top, name))

    def checks_cgroup(self):
        """As root: the checks worker's cgroup subtree, delegated to the service user (the
        directory and its cgroup.procs/threads/subtree_control), or None without cgroup v2."""
        mount = cgroup2_mount()
        if self.account is None or mount is None:
            return None
        path = mount / CHECKS_CGROUP
        try:
            with contextlib.suppress(FileExistsError):
                path.mkdir(mode=0o755)
            for target in (path, *(path / f for f in (
                    "cgroup.procs", "cgroup.threads", "cgroup.subtree_control"))):
                os.chown(target, self.account.pw_uid, self.account.pw_gid)
        except OSError:
            return None  # the worker says why scripts are not contained (cgroup.why_not)
        return path

    def start(self):
        try:
            self.prepare_data_dir()
            self.start_redis()
            self.setup()
            self.start_services()
        except BaseException:
            self.stop()
            raise

    def start_services(self):
        """Everything but Redis: the WebUI, the workers, beat, and (configured) conntrackd,
        vrrp-notify and keepalived (an update restarts these)."""
        with self.lock:
            self.start_web()
            for queue in WORKERS:
                self.start_worker(queue)
            self.start_beat()
            for name in HA_SERVICES:
                if self.ha_configured(name):
                    self.start_ha(name)
            if self.chrony_configured():
                self.start_chronyd()
            if self.snmp_configured():
                self.start_snmpd()

    def stop_order(self):
        """The running processes in the order they stop: keepalived first (the peer takes the
        addresses over while this node still forwards), vrrp-notify and conntrackd next, then
        the rest in reverse start order."""
        names = list(reversed(list(self.processes)))
        first = [name for name in reversed(HA_SERVICES) if name in names]
        return first + [name for name in names if name not in first]

    def stop_services(self):
        with self.lock:
            for name in self.stop_order():
                if name != "redis":
                    self.stop_process(name)

    def restart_service(self, name, keep_data=True):
        """Restart Services: stop one and start it again from the active release. Redis keeps
        its data unless `keep_data` is false (after a crash there is no fresh dump: an older
        one would bring back stale state)."""
        if name not in SERVICES:
            raise StartError(f"no service named {name}")
        with self.lock:
            if name == "redis":
                self.stop_redis()
                self.start_redis(keep_data=keep_data)
                return
            self.stop_process(name)
            if name == "web":
                self.stop_process("web-http")
                self.start_web()
            elif name == "beat":
                self.start_beat()
            elif name in HA_SERVICES:
                self.start_ha(name)
            elif name == "chronyd":
                self.start_chronyd()
            elif name == "snmpd":
                self.start_snmpd()
            else:
                self.start_worker(name.removeprefix("worker-"))

    def stop_service(self, name):
        """An administrator's stop: the service stays down (the supervisor does not restart
        what is no longer in `processes`) until a start or a restart."""
        if name not in SERVICES:
            raise StartError(f"no service named {name}")
        with self.lock:
            if name == "redis":
                self.stop_redis()
                return
            self.stop_process(name)
            if name == "web":
                self.stop_process("web-http")

    def _spawn(self, name, command, in_lab=False, env=None, cgroup=None):
        """Start a service as its user with its capabilities (as root); `env` overrides part
        of the stack's environment for this one; `cgroup` is a cgroup v2 directory it starts
        in (moved there by root, before it enters the namespace and drops privileges)."""
        command = [*self.as_service(name), *command]
        if in_lab and self.lab is not None:
            command = [*self.lab.exec_prefix(self.lab_role), *command]
            env = {**self.lab_env(), **(env or {})}
        if cgroup is not None:
            command = ["sh", "-c", 'echo 0 > "$0" && exec "$@"', str(cgroup / "cgroup.procs"),
                       *command]
        log_path = self.log_dir / f"{name}.out"
        log = open(log_path, "ab")  # noqa: SIM115 - kept for the process
        self.give(log_path)
        # Own session: Ctrl-C in the terminal reaches only the runner, which stops these in
        # order; and a worker's pool children share its process group, so killpg gets them.
        process = subprocess.Popen(command, cwd=self.code_dir,
                                   env={**self.code_env(), **(env or {})}, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True,
                                   umask=UMASK)
        log.close()
        with self.lock:
            self.processes[name] = process
            self.started[name] = (time.time(), self.version)
        return process

    def start_redis(self, keep_data=False):
        """Redis on a unix socket. Its data (health states, schedules, queued tasks) lives in
        memory; only a restart from Restart Services keeps it, through a dump at shutdown."""
        if self.redis_socket.exists():
            self.redis_socket.unlink()
        dump = self.data_dir / "dump.rdb"
        if not keep_data and dump.exists():
            dump.unlink()
        self._spawn("redis", [
            "redis-server", "--port", "0", "--unixsocket", str(self.redis_socket),
            "--unixsocketperm", "700", "--dir", str(self.data_dir), "--save", "",
            "--appendonly", "no", "--daemonize", "no",
        ])
        # no retries with backoff (redis-py's default): the wait polls every 0.1 s itself
        client = redis.Redis(unix_socket_path=str(self.redis_socket), socket_timeout=1,
                             retry=Retry(NoBackoff(), 0))
        self._wait("redis", lambda: client.ping())

    def stop_redis(self):
        process = self.processes.get("redis")
        if process is not None and process.poll() is not None:
            self.stop_process("redis")  # it died: nothing to save, no client to wait out
            return
        client = redis.Redis(unix_socket_path=str(self.redis_socket), socket_timeout=5)
        with contextlib.suppress(redis.RedisError, OSError):
            client.shutdown(save=True)  # writes dump.rdb, which start_redis(keep_data) loads
        if process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        self.stop_process("redis")

    def setup(self):
        """Migrate, make the certificate, create the user (see lbadmin_setup)."""
        result = subprocess.run([*self.as_service("setup"), sys.executable, "manage.py",
                                 "lbadmin_setup"],
                                cwd=self.code_dir, env=self.code_env(), capture_output=True,
                                text=True, umask=UMASK)
        if result.returncode:
            raise StartError(f"lbadmin_setup failed:\n{result.stdout}{result.stderr}")
        for line in result.stdout.splitlines():
            if line.startswith("LBADMIN_GENERATED_PASSWORD="):
                self.generated_password = line.partition("=")[2]

    @property
    def own_https_port(self):
        """The port the WebUI listens on where it runs: 9443 inside a lab's appliance namespace
        (lb or lb2; the host reaches it on https_port through the lab's forward), else
        https_port itself."""
        return LAB_HTTPS_PORT if self.lab is not None else self.https_port

    @property
    def own_listen_address(self):
        """Inside a lab's appliance namespace the WebUI listens on every address of the
        appliance (lb's, or lb2's: each namespace has only its own)."""
        return "0.0.0.0" if self.lab is not None else self.listen_address  # noqa: S104

    def start_web(self):
        """gunicorn on HTTPS (and the optional plain-HTTP redirect). With a lab both run in its
        lb namespace and the lab forwards the host's ports to them (the lab object's
        `forward`, asked again on every start: it keeps one per port); the probe goes through
        that forward, as the host's browser does."""
        own = {"LBADMIN_LISTEN_ADDRESS": self.own_listen_address,
               "LBADMIN_HTTPS_PORT": str(self.own_https_port)}
        if self.lab is not None:
            self.lab.forward(self.listen_address, self.https_port, role=self.lab_role,
                             port=self.own_https_port)
        self._spawn("web", [sys.executable, "-m", "gunicorn", "-c",
                            "python:appliance.gunicorn_conf", "appliance.wsgi"],
                    in_lab=True, env=own)
        self._wait("web", lambda: self._https_answers())
        self.sync_http()

    @property
    def own_http_port(self):
        """The port the plain-HTTP redirect listens on where it runs: 9080 in a lab's
        namespace (the host reaches it on http_port through the lab's forward, when one is
        given), else http_port, or 9080."""
        return HTTP_PORT if self.lab is not None else (self.http_port or HTTP_PORT)

    def http_wanted(self):
        """Whether Local Configuration › Security turns plain HTTP on (off when the database
        has no such setting: a first start, or a release before it)."""
        if not self.database.exists():
            return False
        with contextlib.suppress(sqlite3.Error), \
                contextlib.closing(sqlite3.connect(self.database, timeout=10)) as db:
            row = db.execute(HTTP_SETTING_SQL).fetchone()
            return bool(row and row[0])
        return False

    def http_running(self):
        process = self.processes.get("web-http")
        return process is not None and process.poll() is None

    def sync_http(self):
        """Start or stop the plain-HTTP redirect as the setting says; it only redirects to
        the HTTPS port of the place it runs in (9443 in a lab)."""
        with self.lock:
            self.http_wanted_now = self.http_wanted()
            if not self.http_wanted_now:
                self.stop_process("web-http")
                return
            if self.http_running():
                return
            if self.lab is not None and self.http_port:
                self.lab.forward(self.listen_address, self.http_port, role=self.lab_role,
                                 port=self.own_http_port)
            self._spawn("web-http", [
                sys.executable, "-m", "gunicorn", "--workers", "1", "--no-control-socket",
                "--bind", f"{self.own_listen_address}:{self.own_http_port}",
                "appliance.wsgi:redirect_to_https",
            ], in_lab=True, env={"LBADMIN_LISTEN_ADDRESS": self.own_listen_address,
                                 "LBADMIN_HTTPS_PORT": str(self.own_https_port)})
            self._wait("web-http", lambda: self._http_answers())

    def reload_web(self):
        """Local Configuration › Security saved: gunicorn's master gets SIGHUP — it starts new
        workers, which read the certificate files again, and stops the old ones gracefully
        (they finish what they serve); the listening socket stays, and so do the sessions,
        which live in the database. Plain HTTP then follows the setting."""
        with self.lock:
            process = self.processes.get("web")
            if process is None or process.poll() is not None:
                raise StartError("the WebUI is not running: start it from Restart Services")
            os.kill(process.pid, signal.SIGHUP)  # the master only: it replaces its workers
            self.sync_http()

    @property
    def local_address(self):
        return "127.0.0.1" if self.listen_address in ("0.0.0.0", "") else self.listen_address  # noqa: S104

    def _http_answers(self):
        """The plain-HTTP port answers with a status line (through the lab's forward a bare
        connect would succeed before anything listens behind it). In a lab without a forward
        for it, asked from inside the appliance's namespace."""
        if self.lab is not None and not self.http_port:
            probe = subprocess.run(
                [*self.lab.exec_prefix(self.lab_role), sys.executable, "-c", HTTP_PROBE,
                 str(self.own_http_port)], capture_output=True, text=True, timeout=10,
                check=False)
            if probe.returncode:
                raise StartError(f"the plain-HTTP port answered nothing: {probe.stderr[-200:]}")
            return
        with socket.create_connection((self.local_address, self.http_port or HTTP_PORT),
                                      timeout=3) as raw:
            raw.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
            if not raw.recv(64).startswith(b"HTTP/1"):
                raise StartError("the plain-HTTP port answered nothing")

    def _https_answers(self):
        """The login page answers below 500: the web process loaded the application and can
        serve it, not just bound the port (400 means a restricted LBADMIN_ALLOWED_HOSTS)."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # our own self-signed certificate
        with socket.create_connection((self.local_address, self.https_port), timeout=3) as raw, \
                context.wrap_socket(raw) as tls:
            tls.sendall(b"GET /lbadmin/login/ HTTP/1.0\r\nHost: localhost\r\n\r\n")
            status_line = tls.recv(64).split(b"\r\n")[0].decode(errors="replace")
            if not status_line.startswith("HTTP/1") or status_line.split()[1] >= "500":
                raise StartError(f"the login page answered {status_line or 'nothing'}")

    def start_worker(self, queue):
        self._spawn(f"worker-{queue}", [
            sys.executable, "-m", "celery", "-A", "appliance", "worker", "-Q", queue,
            *WORKERS[queue], "-n", f"{queue}@%h", "--loglevel", "INFO",
        ], in_lab=True, cgroup=self.checks_cgroup() if queue == "checks" else None)

    def start_beat(self):
        self._spawn("beat", [
            sys.executable, "-m", "celery", "-A", "appliance", "beat", "--loglevel", "INFO",
            "-s", str(self.data_dir / "celerybeat-schedule"), "--pidfile=",
        ], in_lab=True)

    def ha_command(self, name):
        """conntrackd, the FIFO reader and keepalived, in the foreground, on <data>/ha's files
        (the commands of ha/render.py). keepalived: VRRP only (-P), logging in detail to its
        output (logs/keepalived.out), with its own pid files (two appliances on one host, as
        in the pair lab, must not share them)."""
        ha = self.ha_dir
        if name == "conntrackd":
            return ["conntrackd", "-C", str(ha / CONNTRACKD_CONF_NAME)]
        if name == "vrrp-notify":
            return [sys.executable, "-m", "ha.notify", "--state-dir", str(ha),
                    "--conntrackd-config", str(ha / CONNTRACKD_CONF_NAME)]
        return ["keepalived", "-n", "-l", "-D", "-P", "-f", str(ha / KEEPALIVED_CONF_NAME),
                "-p", str(ha / KEEPALIVED_PID_NAME), "-r", str(ha / KEEPALIVED_VRRP_PID_NAME)]

    def start_ha(self, name):
        """Start conntrackd, vrrp-notify or keepalived (StartError when <data>/ha does not
        configure it).
        What a killed one left behind goes first: conntrackd refuses to start over its lock
        file, and would not bind its socket over the old one."""
        if name not in HA_SERVICES:
            raise StartError(f"no HA service named {name}")
        if not self.ha_configured(name):
            raise StartError(f"{name} is not configured: there is no "
                             f"{self.ha_dir / KEEPALIVED_CONF_NAME}"
                             + ("" if name == "keepalived"
                                else f" or no {self.ha_dir / CONNTRACKD_CONF_NAME}"))
        stale = {"conntrackd": (CONNTRACKD_LOCK_NAME, CONNTRACKD_SOCKET_NAME),
                 "keepalived": (KEEPALIVED_PID_NAME, KEEPALIVED_VRRP_PID_NAME)}.get(name, ())
        for file in stale:
            with contextlib.suppress(FileNotFoundError):
                (self.ha_dir / file).unlink()
        return self._spawn(name, self.ha_command(name), in_lab=True)

    @property
    def chrony_dir(self):
        """<data>/chrony: chronyd's pid file, command socket and drift file (0700, the service
        user's: chronyd refuses a socket directory anyone else may enter)."""
        return self.data_dir / CHRONY_DIR_NAME

    @property
    def chrony_conf(self):
        """Where the network app writes chrony.conf: under LBADMIN_ETC_DIR, as settings reads
        it (the data directory's etc/ unless set)."""
        return Path(self.env.get("LBADMIN_ETC_DIR") or self.data_dir / "etc") / CHRONY_CONF_PATH

    def chrony_configured(self):
        return self.chrony_conf.is_file()

    @property
    def chrony_sets_clock(self):
        """Only an appliance's own chronyd sets the clock: started as root outside a lab. In a
        lab (the demo, the tests) the namespaces share this machine's clock, and a developer's
        unprivileged start has no CAP_SYS_TIME: there it runs with -x (measures, never sets)."""
        return self.lab is None and self.account is not None

    def chronyd_command(self):
        """chronyd in the foreground (-d: its log goes to logs/chronyd.out), as the service user
        without the root check (-U, -u: the Stack has dropped privileges already), with
        Debian's system call filter (-F 1), on lbadmin's chrony.conf."""
        user = self.account.pw_name if self.account else pwd.getpwuid(os.getuid()).pw_name
        return ["chronyd", "-d", "-U", "-u", user, "-F", "1", "-f", str(self.chrony_conf),
                *([] if self.chrony_sets_clock else ["-x"])]

    def start_chronyd(self):
        """Start chronyd (StartError when no chrony.conf was written: no NTP server is set).
        A killed one's pid file and socket go first: chronyd refuses to start over a pid file
        naming a live process, which a reused pid may be."""
        if not self.chrony_configured():
            raise StartError(f"chronyd is not configured: there is no {self.chrony_conf} (no "
                             "NTP server is set under Local Configuration > System Date & "
                             "time)")
        self.chrony_dir.mkdir(mode=0o700, exist_ok=True)
        self.give(self.chrony_dir)
        for file in (CHRONY_PID_NAME, CHRONY_SOCKET_NAME):
            with contextlib.suppress(FileNotFoundError):
                (self.chrony_dir / file).unlink()
        return self._spawn("chronyd", self.chronyd_command(), in_lab=True)

    @property
    def snmp_dir(self):
        """<data>/snmp: snmpd.conf (the network app writes it, 0600) and snmpd's persistent
        state."""
        return self.data_dir / SNMP_DIR_NAME

    def snmp_configured(self):
        """snmpd runs where SNMP is enabled: where <data>/snmp/snmpd.conf exists."""
        return (self.snmp_dir / SNMPD_CONF_NAME).is_file()

    def start_snmpd(self):
        """snmpd in the foreground (-f), in the appliance's namespace, logging notices and
        worse to its output (-LOn: not a line per request), reading only lbadmin's snmpd.conf
        (-C: never /etc/snmp). Its persistent file goes first: it keeps the v3 users' keys
        from their old passphrases, which would outlive a change on the page. MIBS=":" loads
        no MIB files: snmpd answers by number, and would log a warning per missing module."""
        if not self.snmp_configured():
            raise StartError(f"snmpd is not configured: there is no "
                             f"{self.snmp_dir / SNMPD_CONF_NAME} (SNMP is not enabled under "
                             "Local Configuration > SNMP Configuration)")
        persist = self.snmp_dir / SNMP_PERSIST_DIR_NAME
        persist.mkdir(mode=0o700, exist_ok=True)
        self.give(persist)
        with contextlib.suppress(FileNotFoundError):
            (persist / SNMPD_CONF_NAME).unlink()
        return self._spawn("snmpd", ["snmpd", "-f", "-LOn", "-C", "-c",
                                     str(self.snmp_dir / SNMPD_CONF_NAME)],
                           in_lab=True, env={"SNMP_PERSISTENT_DIR": str(persist), "MIBS": ":"})

    def celery_app(self):
        """A Celery client of this stack's Redis (the caller's settings may name another)."""
        client = Celery("lbadmin-client", broker=f"redis+socket://{self.redis_socket}",
                        backend=f"redis+socket://{self.redis_socket}")
        client.conf.task_routes = TASK_ROUTES
        return client

    def wait_for_workers(self, timeout=60):
        """Block until every queue has a worker answering a ping (used by tests and the demo)."""
        client = self.celery_app()

        def all_answer():
            missing = [q for q, workers in workers_by_queue(client, 1.0).items() if not workers]
            if missing:
                raise StartError(f"no worker on {', '.join(missing)}")

        self._wait("workers", all_answer, timeout)

    def _wait(self, name, probe, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            process = self.processes.get(name)
            if process is not None and process.poll() is not None:
                raise StartError(f"{name} exited with {process.returncode}; see "
                                 f"{self.log_dir / (name + '.out')}")
            try:
                probe()
                return
            except Exception as error:
                if time.monotonic() > deadline:
                    raise StartError(f"{name} did not come up in {timeout} s: {error}") from error
                time.sleep(0.1)

    def migrate(self, code_dir):
        """The release's migrations on the live database (the services are stopped)."""
        result = subprocess.run([*self.as_service("migrate"), sys.executable, "manage.py",
                                 "migrate", "--no-input"],
                                cwd=code_dir, env=self.code_env(code_dir), capture_output=True,
                                text=True, timeout=600, umask=UMASK)
        if result.returncode:
            tail = (result.stdout + result.stderr).strip().splitlines()[-8:]
            raise StartError("its migrations failed:\n" + "\n".join(tail))

    def imported_version(self):
        """The version the active release's processes import (proves PYTHONPATH wins)."""
        result = subprocess.run(
            [*self.as_service("probe"), sys.executable, "-c",
             "import appliance; print(appliance.__version__)"],
            cwd=self.code_dir, env=self.code_env(), capture_output=True, text=True, timeout=60,
            umask=UMASK)
        return result.stdout.strip() or result.stderr.strip()[-300:]

    def make_current(self, code_dir):
        """<data>/current names the release to run at the next start (atomic rename)."""
        link = self.data_dir / "current"
        new = self.data_dir / "current.new"
        with contextlib.suppress(FileNotFoundError):
            new.unlink()
        new.symlink_to(Path(code_dir).resolve())
        self.give(new)
        new.replace(link)

    def describe(self):
        """What the supervisor publishes for Restart Services. Without the lock (copies of
        the dicts): a restart holds it while its service comes up, and the page must not wait
        for that."""
        processes, started = dict(self.processes), dict(self.started)
        services = {}
        for name in SERVICES:
            process = processes.get(name)
            since, version = started.get(name, (None, None))
            exit_code = process.poll() if process else None
            services[name] = {
                "pid": process.pid if process else None,
                "running": process is not None and exit_code is None,
                "exit_code": exit_code, "since": since, "version": version,
                # an HA service without <data>/ha/keepalived.conf: "not configured", not down
                "configured": self.ha_configured(name) if name in HA_SERVICES else
                self.chrony_configured() if name == "chronyd" else
                self.snmp_configured() if name == "snmpd" else True}
        web_http = processes.get("web-http")
        return {"at": time.time(), "release": str(self.code_dir), "version": self.version,
                "services": services,
                # Local Configuration › Security shows whether port 9080 really answers
                "http": {"wanted": self.http_wanted_now, "port": self.own_http_port,
                         "running": web_http is not None and web_http.poll() is None}}

    def dead_processes(self):
        return {name: p.returncode for name, p in dict(self.processes).items()
                if p.poll() is not None}

    def dead_pids(self):
        """{name: (pid, exit status)} of the processes that exited while still wanted (a stop
        removes a process from `processes` before it signals it)."""
        return {name: (p.pid, p.returncode) for name, p in dict(self.processes).items()
                if p.poll() is not None}

    def stop_process(self, name, timeout=10):
        with self.lock:
            process = self.processes.pop(name, None)
        if process is None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # A prefork worker's pool children may outlive their parent by a moment.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def stop(self):
        with self.lock:
            for name in self.stop_order():
                self.stop_process(name)
        mount = cgroup2_mount()
        if self._account is not None and mount is not None:
            with contextlib.suppress(OSError):  # busy: another stack's checks worker
                (mount / CHECKS_CGROUP).rmdir()
