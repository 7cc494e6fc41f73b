"""The graphs' store (reports.store: whisper rings of a fixed size) and the sampler's
arithmetic (reports.sampler: rates from two counter samples)."""

import os

import pytest

from clusters.dataplane.desired import FALLBACK_BIT, MASQ_BIT
from core.graphing import ARCHIVES, SERIES_BYTES
from reports import sampler, store

T0 = 1_800_000_000  # a fixed clock, on a 6 h boundary


def test_a_series_file_has_a_fixed_size_that_time_does_not_grow(tmp_path):
    store.write({"system/load1": 1.0}, at=T0, root=tmp_path)
    path = tmp_path / "system" / "load1.wsp"
    size = path.stat().st_size
    assert size == SERIES_BYTES == 64540
    for i in range(1, 3000):  # past the hour ring's 720 points
        store.write({"system/load1": float(i)}, at=T0 + 5 * i, root=tmp_path)
    assert path.stat().st_size == size
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_the_hour_ring_keeps_every_sample_and_the_day_ring_their_average(tmp_path):
    for i in range(12 * 10):  # ten minutes, one sample every 5 s, values 0..119
        store.write({"vs/1/conns": float(i + 1)}, at=T0 + 5 * i, root=tmp_path)
    now = T0 + 5 * 119
    times, values = store.fetch("vs/1/conns", "hour", now=now, root=tmp_path)
    assert times[1] - times[0] == 5 and len(values) == 720
    assert [v for v in values if v is not None] == [float(i + 1) for i in range(120)]
    times, values = store.fetch("vs/1/conns", "day", now=now, root=tmp_path)
    assert times[1] - times[0] == 60
    minutes = [v for v in values if v is not None]
    assert minutes[0] == sum(range(1, 13)) / 12  # the first minute: average of its 12 samples
    assert len(minutes) == 10


def test_every_range_reads_its_own_ring(tmp_path):
    store.write({"system/load1": 2.0}, at=T0, root=tmp_path)
    for name, step, points in ARCHIVES:
        times, values = store.fetch("system/load1", name, now=T0 + 1, root=tmp_path)
        assert times[1] - times[0] == step and len(values) in (points, points + 1)
        assert 2.0 in values


def test_a_service_without_traffic_costs_no_file(tmp_path):
    assert store.write({"vs/1/conns": 0.0, "system/load1": 0.0}, at=T0,
                       always=("system/",), root=tmp_path) == 1
    assert store.series(root=tmp_path) == ["system/load1"]
    assert store.fetch("vs/1/conns", root=tmp_path) == ([], [])


def test_a_series_name_cannot_leave_the_directory(tmp_path):
    with pytest.raises(store.UnknownSeries):
        store.path_of("../secret_key", tmp_path)
    with pytest.raises(store.UnknownSeries):
        store.fetch("system/load1", "decade", root=tmp_path)


def test_rates_come_from_the_difference_of_two_counter_samples():
    before = sampler.flatten({"flows": {(7, "original"): (10, 1000), (7, "reply"): (8, 4000)},
                              "opened": {7: 2}})
    after = sampler.flatten({"flows": {(7, "original"): (60, 6000), (7, "reply"): (48, 24000),
                                       (FALLBACK_BIT | MASQ_BIT | 1, "original"): (5, 500)},
                             "opened": {7: 12}})
    counted = sampler.deltas(before, after)
    rates = sampler.rates(counted, 5.0, {7: 1})
    assert rates["servers"]["1/7"] == {"conns": 2.0, "packets_in": 10.0, "packets_out": 8.0,
                                       "bytes_in": 1000.0, "bytes_out": 4000.0}
    # the fallback's element appeared since: all it counted is new
    assert rates["servers"]["1/fallback"]["packets_in"] == 1.0
    assert rates["services"]["1"]["packets_in"] == 11.0
    assert rates["services"]["1"]["bytes_out"] == 4000.0


def test_a_counter_that_went_down_was_started_again_and_counts_from_zero():
    assert sampler.deltas({(7, "conns"): 100}, {(7, "conns"): 3}) == {(7, "conns"): 3}


def test_a_mark_no_real_server_holds_is_left_out():
    rates = sampler.rates({(99, "conns"): 4}, 2.0, {7: 1})
    assert rates == {"services": {}, "servers": {}}


def test_interfaces_are_read_from_proc_net_dev_without_loopback():
    text = ("Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame "
            "compressed multicast|bytes packets\n"
            "    lo:  100 2 0 0 0 0 0 0 100 2 0 0 0 0 0 0\n"
            "  eth1: 1500 10 0 0 0 0 0 0 3000 20 0 0 0 0 0 0\n")
    assert sampler.read_interfaces(text) == {"eth1": (1500, 10, 3000, 20)}


def test_the_store_lives_in_the_data_directory(settings):
    from core.graphing import graphs_dir

    assert graphs_dir() == settings.DATA_DIR / "graphs"
    assert not os.path.isabs("system/load1")
