import threading
import time
from pathlib import Path

import pytest

from clusters.views import duration_words
from core import runtime, workers
from runner import supervisor

MEMINFO = """MemTotal:       24000000 kB
MemFree:         1000000 kB
MemAvailable:   18000000 kB
Buffers:          100000 kB
"""


def test_meminfo_gives_total_and_available():
    assert runtime.read_meminfo(MEMINFO) == (24000000, 18000000)


def test_memory_used_is_what_is_not_available():
    figures = runtime.HostFigures(10.0, (0.1, 0.2, 0.3), 24000000, 18000000)
    assert figures.memory_used_percent == 25


def test_host_figures_are_read_from_this_machine():
    figures = runtime.host_figures()
    assert figures.uptime_seconds > 0
    assert figures.memory_total_kib > figures.memory_available_kib > 0
    assert len(figures.load) == 3


def test_uptime_reads_in_days_hours_and_minutes():
    assert duration_words(59) == "0 h 0 min"
    assert duration_words(3 * 86400 + 5 * 3600 + 7 * 60 + 9) == "3 d 5 h 7 min"


def test_beat_is_down_without_a_recent_heartbeat():
    assert not runtime.ServiceStatus(True, "", [], None).beat_ok
    assert not runtime.ServiceStatus(True, "", [], 31.0).beat_ok
    assert runtime.ServiceStatus(True, "", [], 3.0).beat_ok


def test_worker_heartbeat_keys_name_the_queue_and_the_worker():
    assert runtime.worker_heartbeat_key("checks", "checks@lb") == "lbadmin:worker:checks:checks@lb"
    keys = [b"lbadmin:worker:checks:checks@lb", b"lbadmin:worker:checks:checks@other",
            "lbadmin:worker:dataplane:dataplane@lb", b"lbadmin:worker:unknown:x@lb",
            b"lbadmin:worker:maintenance:"]
    assert runtime.workers_by_heartbeat(keys) == {
        "dataplane": ["dataplane@lb"], "checks": ["checks@lb", "checks@other"],
        "maintenance": [], "reader": []}


# The supervisor: Restart=on-failure with backoff and a limit, and its own socket.

class FakeProcess:
    pids = iter(range(1000, 100000))

    def __init__(self):
        self.pid, self.returncode = next(self.pids), None

    def poll(self):
        return self.returncode


class FakeStack:
    def __init__(self, data_dir):
        self.data_dir = self.log_dir = data_dir
        self.redis_socket = data_dir / "no-redis.sock"
        self.lock = threading.RLock()
        self.processes = {"beat": FakeProcess()}
        self.restarted = []

    def dead_pids(self):
        return {n: (p.pid, p.returncode) for n, p in self.processes.items()
                if p.returncode is not None}

    def give(self, path):
        pass  # the real stack chowns to the service user when it runs as root

    def restart_service(self, name, keep_data=True):
        self.restarted.append(name)
        self.processes[name] = FakeProcess()

    def describe(self):
        return {"version": "0.1.0", "services": {
            name: {"pid": p.pid, "running": p.returncode is None}
            for name, p in self.processes.items()}}


def test_restart_delays_double_up_to_thirty_seconds():
    assert [supervisor.restart_delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_service_that_dies_is_restarted_after_its_backoff_until_the_limit(tmp_path):
    stack = FakeStack(tmp_path)
    watching = supervisor.Supervisor(stack)
    for restart in range(supervisor.RESTART_LIMIT):
        stack.processes["beat"].returncode = -9
        watching.watch()
        entry = watching.recovery["beat"]
        assert entry["due"] - time.monotonic() == pytest.approx(2 ** restart, abs=0.5)
        assert stack.restarted == ["beat"] * restart  # not before its backoff
        entry["due"] = time.monotonic()
        watching.watch()
        assert stack.restarted == ["beat"] * (restart + 1)
    stack.processes["beat"].returncode = 1
    watching.watch()
    state = watching.state()["recovery"]["beat"]
    assert state == {"count": 5, "last_exit": 1, "last_at": state["last_at"], "gave_up": True,
                     "restarting_in": None}
    assert len(stack.restarted) == 5
    log = (tmp_path / "supervisor.log").read_text()
    assert "beat (pid" in log and "exited with status -9" in log and "stays down" in log
    # a stop is respected: what is no longer in the processes is never restarted
    del stack.processes["beat"]
    watching.watch()
    assert len(stack.restarted) == 5


def test_the_supervisor_answers_on_its_own_socket_without_redis(settings):
    stack = FakeStack(Path(settings.DATA_DIR))
    serving = supervisor.Supervisor(stack)
    server = serving.serve_socket()
    try:
        path = runtime.supervisor_socket_path()
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        assert runtime.supervisor_state()["services"]["beat"]["running"]
        workers.ask_supervisor({"restart": "beat", "by": "tester"})
        assert serving.requests.get(timeout=1) == {"restart": "beat", "by": "tester"}
        with pytest.raises(workers.WorkerUnavailable):
            workers.ask_supervisor({"nonsense": 1})
    finally:
        server.shutdown()
        server.server_close()
        path.unlink()
