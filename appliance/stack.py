"""Start and stop the appliance's processes: Redis, gunicorn, the three workers and beat.

`make demo` and the system tests both use this, so what the tests prove is what the demo runs.
With a lab, the privileged workers (dataplane, checks) are started inside its lb namespace with
`ip netns exec` — the one place that decides where they act. Without a lab they act in the
host's namespace, as on a real appliance.
"""

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent

# queue -> (pool arguments, runs in the appliance's network namespace)
WORKERS = {
    "dataplane": (["-c", "1"], True),  # exactly one writer of the data plane
    # checks wait on the network and on scripts: threads, so a slow one holds one thread only
    "checks": (["-P", "threads", "-c", "64"], True),
    "maintenance": (["-c", "1"], False),
}


class StartError(RuntimeError):
    pass


class Stack:
    def __init__(self, data_dir, lab=None, https_port=9443, listen_address="0.0.0.0",  # noqa: S104
                 http_port=0, extra_env=None):
        self.data_dir = Path(data_dir).resolve()
        self.lab = lab
        self.https_port = https_port
        self.listen_address = listen_address
        self.http_port = http_port
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
        self.generated_password = None

    @property
    def redis_socket(self):
        return Path(self.env["LBADMIN_REDIS_SOCKET"])

    @property
    def log_dir(self):
        return self.data_dir / "logs"

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        try:
            self.start_redis()
            self.setup()
            self.start_web()
            for queue in WORKERS:
                self.start_worker(queue)
            self.start_beat()
        except BaseException:
            self.stop()
            raise

    def _spawn(self, name, command, in_lab=False):
        if in_lab and self.lab is not None:
            command = [*self.lab.exec_prefix("lb"), *command]
        log = open(self.log_dir / f"{name}.out", "ab")  # noqa: SIM115 - kept for the process
        # Own session: Ctrl-C in the terminal reaches only the runner, which stops these in
        # order; and a worker's pool children share its process group, so killpg gets them.
        process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.processes[name] = process
        return process

    def start_redis(self):
        if self.redis_socket.exists():
            self.redis_socket.unlink()
        self._spawn("redis", [
            "redis-server", "--port", "0", "--unixsocket", str(self.redis_socket),
            "--unixsocketperm", "700", "--dir", str(self.data_dir), "--save", "",
            "--appendonly", "no", "--daemonize", "no",
        ])
        client = redis.Redis(unix_socket_path=str(self.redis_socket), socket_timeout=1)
        self._wait("redis", lambda: client.ping())

    def setup(self):
        """Migrate, make the certificate, create the user (see lbadmin_setup)."""
        result = subprocess.run([sys.executable, "manage.py", "lbadmin_setup"], cwd=ROOT,
                                env=self.env, capture_output=True, text=True)
        if result.returncode:
            raise StartError(f"lbadmin_setup failed:\n{result.stdout}{result.stderr}")
        for line in result.stdout.splitlines():
            if line.startswith("LBADMIN_GENERATED_PASSWORD="):
                self.generated_password = line.partition("=")[2]

    def start_web(self):
        self._spawn("web", [sys.executable, "-m", "gunicorn", "-c",
                            "python:appliance.gunicorn_conf", "appliance.wsgi"])
        self._wait("web", lambda: self._https_answers())
        if self.http_port:
            self._spawn("web-http", [
                sys.executable, "-m", "gunicorn", "--workers", "1", "--no-control-socket", "--bind",
                f"{self.listen_address}:{self.http_port}", "appliance.wsgi:redirect_to_https",
            ])
            self._wait("web-http", lambda: socket.create_connection(
                (self.local_address, self.http_port), timeout=1).close())

    @property
    def local_address(self):
        return "127.0.0.1" if self.listen_address in ("0.0.0.0", "") else self.listen_address  # noqa: S104

    def _https_answers(self):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # our own self-signed certificate
        with socket.create_connection((self.local_address, self.https_port), timeout=1) as raw, \
                context.wrap_socket(raw) as tls:
            tls.sendall(b"GET /lbadmin/login/ HTTP/1.0\r\nHost: localhost\r\n\r\n")
            if not tls.recv(64).startswith(b"HTTP/1"):
                raise StartError("no HTTP answer")

    def start_worker(self, queue):
        pool, in_lab = WORKERS[queue]
        self._spawn(f"worker-{queue}", [
            sys.executable, "-m", "celery", "-A", "appliance", "worker", "-Q", queue,
            *pool, "-n", f"{queue}@%h", "--loglevel", "INFO",
        ], in_lab=in_lab)

    def start_beat(self):
        self._spawn("beat", [
            sys.executable, "-m", "celery", "-A", "appliance", "beat", "--loglevel", "INFO",
            "-s", str(self.data_dir / "celerybeat-schedule"), "--pidfile=",
        ])

    def celery_app(self):
        """A Celery client of this stack's Redis (the caller's settings may name another)."""
        from celery import Celery

        from .celery import app

        client = Celery("lbadmin-client", broker=f"redis+socket://{self.redis_socket}",
                        backend=f"redis+socket://{self.redis_socket}")
        client.conf.task_routes = app.conf.task_routes
        return client

    def wait_for_workers(self, timeout=60):
        """Block until every queue has a worker answering a ping (used by tests and the demo)."""
        from .runtime import workers_by_queue

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

    def dead_processes(self):
        return {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}

    def stop_process(self, name, timeout=10):
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
        for name in reversed(list(self.processes)):
            self.stop_process(name)
