import contextlib
import subprocess

import pytest
from pyroute2 import netns

from clusters import tasks
from clusters.dataplane import apply


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
