import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis

from lab import Lab, unique_test_prefix
from runner.stack import Stack

pytest_plugins = ["pytester"]


def needs_root():
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces, nftables and real processes")


def free_port(preferred=None):
    """`preferred` if nothing listens there (so CI uses the real 9443), else any free port."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("0.0.0.0", port))  # noqa: S104
            except OSError:
                continue
            return probe.getsockname()[1]
    raise RuntimeError("no free port")


@pytest.fixture(scope="session")
def redis_server():
    """Redis on the unix socket the test settings name, for runtime state (a client on it)."""
    from django.conf import settings

    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server (Debian package redis-server)")
    socket_path = settings.REDIS_SOCKET
    process = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", str(socket_path), "--save", "",
         "--appendonly", "no"], stdout=subprocess.DEVNULL)
    client = redis.Redis(unix_socket_path=str(socket_path))
    try:
        for _ in range(200):
            with contextlib.suppress(redis.ConnectionError, FileNotFoundError):
                client.ping()
                break
            time.sleep(0.02)
        yield client
    finally:
        process.terminate()
        process.wait()


@pytest.fixture
def lab():
    """A fresh lab with a unique prefix, always removed, also when the test fails."""
    needs_root()
    with Lab(os.environ.get("LBADMIN_TEST_LAB_PREFIX") or unique_test_prefix()) as built:
        yield built


@pytest.fixture
def pair_lab():
    """A fresh HA-pair lab (Lab(pair=True): lb and lb2 on a shared client segment), always
    removed, also when the test fails."""
    needs_root()
    with Lab(unique_test_prefix(), pair=True) as built:
        yield built


@pytest.fixture(scope="module")
def appliance_pair():
    """Two whole appliances over one pair lab, as `make demo` runs them: (primary, secondary),
    the primary's Stack in the lab's lb namespace (198.51.100.1:9443), the secondary's in lb2
    (198.51.100.2:9443), each with its own data directory, Redis, workers (ready) and
    supervisor (in a thread), and a host port forwarded to each WebUI (`stack.https_port` on
    127.0.0.1). keepalived and conntrackd do not run until a test writes <data>/ha and asks
    a supervisor to start them. Everything is stopped and removed at the end of the module,
    also when a test or the start fails."""
    with running_pair() as pair:
        yield pair


@contextlib.contextmanager
def running_pair():
    needs_root()
    data_dirs = [Path(tempfile.mkdtemp(prefix=f"lbadmin-pair-{name}-"))
                 for name in ("primary", "secondary")]
    try:
        with Lab(unique_test_prefix(), pair=True) as lab, \
                Stack(data_dirs[0], lab, https_port=free_port(),
                      listen_address="127.0.0.1") as primary, \
                Stack(data_dirs[1], lab, https_port=free_port(), listen_address="127.0.0.1",
                      lab_role="lb2") as secondary:
            primary.wait_for_workers()
            secondary.wait_for_workers()
            with supervising(primary), supervising(secondary):
                yield primary, secondary
    finally:
        for data_dir in data_dirs:
            shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def appliance_stack():
    """The whole appliance, as `make demo` runs it, over a lab and a fresh data directory:
    Redis, gunicorn on HTTPS (in the lab's lb namespace on 198.51.100.1:9443, which the lab
    forwards to 127.0.0.1:<https_port> on the host), the three workers (dataplane and checks in
    the lb namespace too), beat and the supervisor. Shared by the system tests; removed at the
    end."""
    with running_stack(https_port=free_port(9443)) as stack:
        yield stack


@contextlib.contextmanager
def running_stack(https_port=None, **lab_options):
    """A stack of its own (lab, data directory, supervisor), removed when it ends."""
    needs_root()
    data_dir = Path(tempfile.mkdtemp(prefix="lbadmin-stack-"))
    try:
        with Lab(unique_test_prefix(), **lab_options) as lab, \
                Stack(data_dir, lab, https_port=https_port or free_port(),
                      listen_address="127.0.0.1") as stack:
            stack.wait_for_workers()
            with supervising(stack):
                yield stack
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def supervising(stack):
    """The stack's supervisor in a thread, as `make demo` runs the secondary's."""
    from lab.demo import supervised_in_a_thread

    return supervised_in_a_thread(stack, name="supervisor")


SUITE_ORDER = {"unit": 0, "netns": 1, "browser": 2}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """Unit, then netns, then browser tests. Playwright's sync API keeps an event loop running
    in the main thread while its browser is open; pyroute2's sync calls made by netns tests
    in the same process would meet it."""
    items.sort(key=lambda item: SUITE_ORDER.get(Path(str(item.fspath)).parent.name, 1))
