import contextlib
import subprocess

import pytest
import redis
from django.conf import settings
from pyroute2 import netns

from clusters import tasks
from clusters.dataplane import apply


@pytest.fixture(scope="session")
def redis_server():
    """Redis on the unix socket the test settings name, for runtime state."""
    socket_path = settings.REDIS_SOCKET
    process = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", str(socket_path), "--save", "",
         "--appendonly", "no"], stdout=subprocess.DEVNULL)
    client = redis.Redis(unix_socket_path=str(socket_path))
    try:
        for _ in range(100):
            with contextlib.suppress(redis.ConnectionError, FileNotFoundError):
                client.ping()
                break
            subprocess.run(["sleep", "0.05"])
        yield client
    finally:
        process.terminate()
        process.wait()


@contextlib.contextmanager
def inside(namespace):
    """Run this process's calls (and the commands it starts) in another network namespace."""
    netns.pushns(namespace)
    try:
        yield
    finally:
        netns.popns()


@pytest.fixture
def dataplane(lab, redis_server, transactional_db, monkeypatch):
    """Apply the database's configuration in the lab's lb namespace, as the worker does."""
    redis_server.flushall()
    apply.forget_live()

    class Dataplane:
        def apply(self, full=False, expect_ok=True):
            with inside(lab.ns("lb")):
                result = apply.apply_dataplane(full=full)
            if expect_ok:
                assert result["ok"], result
            return result

        def nft(self, *args):
            return subprocess.run([*lab.exec_prefix("lb"), "nft", *args], capture_output=True,
                                  text=True, check=True).stdout

        def compare(self):
            with inside(lab.ns("lb")):
                return apply.compare_live()

        def sample(self):
            monkeypatch.setattr(tasks.apply_dataplane, "delay", lambda: None)  # applied here
            with inside(lab.ns("lb")):
                return tasks.sample_connections()

    yield Dataplane()
    apply.forget_live()
    apply.nft.close_contexts()
    apply.conntrack.close_sockets()
