from clusters.views import duration_words
from core import runtime

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
        "maintenance": []}
