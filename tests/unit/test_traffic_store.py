"""The graphs' store (core.rings: columnar round-robin files of a fixed size) and the sampler's
arithmetic (reports.sampler: rates from two counter samples, when a sample is due)."""

import os

import pytest

from clusters.dataplane import nft
from clusters.dataplane.desired import FALLBACK_BIT, MASQ_BIT
from core import rings
from core.graphing import ARCHIVES, layout, series_bytes
from reports import sampler

T0 = 1_800_000_000  # a fixed clock, on a 6 h boundary


def ring_files(root):
    return sorted(path.name for path in root.glob("*.ring"))


def test_the_files_have_a_fixed_size_that_time_does_not_grow(tmp_path):
    rings.write({"system/load1": 1.0}, at=T0, root=tmp_path)
    assert ring_files(tmp_path) == sorted(f"000-{name}.ring" for name, _, _ in ARCHIVES)
    sizes = {path.name: path.stat().st_size for path in tmp_path.glob("*.ring")}
    for name, _, points in ARCHIVES:
        assert sizes[f"000-{name}.ring"] == rings.ring_file_bytes(points) == \
            rings.HEADER_BYTES + points * (8 + rings.BLOCK * 4)
    for i in range(1, 3000):  # past the hour ring's 720 points
        rings.write({"system/load1": float(i)}, at=T0 + 5 * i, root=tmp_path)
    assert {path.name: path.stat().st_size for path in tmp_path.glob("*.ring")} == sizes
    for path in tmp_path.glob("*"):
        assert oct(path.stat().st_mode & 0o777) == "0o600", path
    assert rings.usage(tmp_path) == (1, sum(sizes.values())
                                     + (tmp_path / "index.json").stat().st_size)


def test_what_a_series_costs_is_its_share_of_the_files():
    # 720 + 1,440 + 1,008 + 744 + 1,460 points, a float32 each
    assert series_bytes(5) == 4 * 5372 == 21488
    assert series_bytes(30) == 4 * (120 + 1440 + 1008 + 744 + 1460)
    block = sum(rings.ring_file_bytes(points) for _, _, points in layout(5))
    assert block == rings.BLOCK * series_bytes(5) + 5 * rings.HEADER_BYTES + 8 * 5372


def test_the_hour_ring_keeps_every_sample_and_the_day_ring_their_average(tmp_path):
    for i in range(12 * 10):  # ten minutes, one sample every 5 s, values 1..120
        rings.write({"vs/1/conns": float(i + 1)}, at=T0 + 5 * i, root=tmp_path)
    now = T0 + 5 * 119
    times, values = rings.fetch("vs/1/conns", "hour", now=now, root=tmp_path)
    assert times[1] - times[0] == 5 and len(values) == 720 and times[-1] == now
    assert [v for v in values if v is not None] == [float(i + 1) for i in range(120)]
    times, values = rings.fetch("vs/1/conns", "day", now=now, root=tmp_path)
    assert times[1] - times[0] == 60 and len(values) == 1440
    minutes = [v for v in values if v is not None]
    assert minutes[0] == sum(range(1, 13)) / 12  # the first minute: average of its 12 samples
    assert minutes[-1] == sum(range(109, 121)) / 12
    assert len(minutes) == 10


def test_the_coarser_rings_average_the_finer_ones_and_show_the_current_point(tmp_path):
    # 20 minutes: minute m's samples are all m; the 10-minute points average the minutes
    for i in range(12 * 20):
        rings.write({"system/memory": float(i // 12)}, at=T0 + 5 * i, root=tmp_path,
                    always=("system/",))
    now = T0 + 5 * (12 * 20 - 1)
    _, week = rings.fetch("system/memory", "week", now=now, root=tmp_path)
    assert [v for v in week if v is not None] == [4.5, 14.5]
    for name in ("month", "year"):  # the current point, not yet complete, is there already
        _, values = rings.fetch("system/memory", name, now=now, root=tmp_path)
        assert [v for v in values if v is not None] == [9.5]


def test_every_range_reads_its_own_ring(tmp_path):
    rings.write({"system/load1": 2.0}, at=T0, root=tmp_path)
    for name, step, points in ARCHIVES:
        times, values = rings.fetch("system/load1", name, now=T0 + 1, root=tmp_path)
        assert times[1] - times[0] == step and len(values) == points
        assert values[-1] == 2.0 and values.count(None) == points - 1


def test_a_service_without_traffic_costs_no_column(tmp_path):
    assert rings.write({"vs/1/conns": 0.0, "system/load1": 0.0}, at=T0,
                       always=("system/",), root=tmp_path) == 1
    assert rings.series(root=tmp_path) == ["system/load1"]
    assert rings.fetch("vs/1/conns", root=tmp_path) == ([], [])


def test_traffic_that_stopped_is_written_as_0_and_a_gone_interface_as_nothing(tmp_path):
    rings.write({"vs/1/conns": 3.0, "if/eth9/rx_bits": 8.0}, at=T0, root=tmp_path,
                always=("if/",))
    rings.write({}, at=T0 + 5, root=tmp_path, zero=("vs/",))
    assert rings.fetch("vs/1/conns", now=T0 + 5, root=tmp_path)[1][-2:] == [3.0, 0.0]
    assert rings.fetch("if/eth9/rx_bits", now=T0 + 5, root=tmp_path)[1][-2:] == [8.0, None]


def test_the_index_grows_past_a_block_and_a_later_series_starts_empty(tmp_path):
    first = {f"rs/1/{i}/conns": 1.0 for i in range(rings.BLOCK + 10)}
    rings.write(first, at=T0, root=tmp_path)
    assert len(ring_files(tmp_path)) == 2 * len(ARCHIVES)  # a second block of files
    rings.write({**first, "vs/1/bytes_in": 7.0}, at=T0 + 5, root=tmp_path)
    _, late = rings.fetch("vs/1/bytes_in", now=T0 + 5, root=tmp_path)
    assert late[-2:] == [None, 7.0]  # nothing before it was made
    _, early = rings.fetch(f"rs/1/{rings.BLOCK + 5}/conns", now=T0 + 5, root=tmp_path)
    assert early[-2:] == [1.0, 1.0]
    assert len(rings.series("rs", root=tmp_path)) == rings.BLOCK + 10


def test_a_forgotten_series_frees_its_column_for_the_next_which_shows_none_of_it(tmp_path):
    rings.write({"vs/1/conns": 5.0, "vs/2/conns": 6.0}, at=T0, root=tmp_path)
    column = rings.read_index(tmp_path)["columns"]["vs/1/conns"]
    assert rings.forget(["vs/1/conns", "vs/9/conns"], root=tmp_path) == 1
    assert rings.series(root=tmp_path) == ["vs/2/conns"]
    rings.write({"vs/3/conns": 1.0, "vs/4/conns": 2.0}, at=T0 + 5, root=tmp_path)
    columns = rings.read_index(tmp_path)["columns"]
    assert columns["vs/3/conns"] == column and len(set(columns.values())) == 3
    for name, _, _ in ARCHIVES:
        values = rings.fetch("vs/3/conns", name, now=T0 + 5, root=tmp_path)[1]
        assert [v for v in values if v is not None] == [1.0], name  # not vs/1's 5.0
    assert 6.0 in rings.fetch("vs/2/conns", now=T0 + 5, root=tmp_path)[1]


def test_new_series_never_share_a_column_when_the_last_one_was_freed(tmp_path):
    rings.write({"vs/1/conns": 1.0, "vs/2/conns": 1.0}, at=T0, root=tmp_path)
    rings.forget(["vs/2/conns"], root=tmp_path)  # the highest column
    rings.write({"vs/3/conns": 3.0, "vs/4/conns": 4.0}, at=T0 + 5, root=tmp_path)
    columns = rings.read_index(tmp_path)["columns"]
    assert sorted(columns.values()) == [0, 1, 2]
    assert rings.fetch("vs/3/conns", now=T0 + 5, root=tmp_path)[1][-1] == 3.0
    assert rings.fetch("vs/4/conns", now=T0 + 5, root=tmp_path)[1][-1] == 4.0


def test_a_damaged_or_missing_file_is_made_again_and_read_as_nothing_meanwhile(tmp_path):
    rings.write({"system/load1": 1.0}, at=T0, root=tmp_path)
    hour, year = tmp_path / "000-hour.ring", tmp_path / "000-year.ring"
    year_file = year.stat().st_ino
    hour.write_bytes(b"not a ring")
    assert rings.fetch("system/load1", now=T0, root=tmp_path) == ([], [])
    (tmp_path / "000-day.ring").unlink()
    assert rings.fetch("system/load1", "day", now=T0, root=tmp_path) == ([], [])
    rings.write({"system/load1": 2.0}, at=T0 + 5, root=tmp_path)
    assert hour.stat().st_size == rings.ring_file_bytes(720)
    assert [v for v in rings.fetch("system/load1", now=T0 + 5, root=tmp_path)[1]
            if v is not None] == [2.0]
    # the current point of the coarser rings is the average of what the finer ones hold now
    assert [v for v in rings.fetch("system/load1", "year", now=T0 + 5, root=tmp_path)[1]
            if v is not None] == [2.0]
    assert year.stat().st_ino == year_file  # the sound files are kept as they are


def test_a_damaged_index_starts_the_graphs_again_without_failing(tmp_path):
    rings.write({"system/load1": 1.0}, at=T0, root=tmp_path)
    (tmp_path / "index.json").write_text("{\"columns\": ")
    assert rings.series(root=tmp_path) == []
    assert rings.fetch("system/load1", root=tmp_path) == ([], [])
    rings.write({"system/load1": 3.0}, at=T0 + 5, root=tmp_path)
    assert rings.series(root=tmp_path) == ["system/load1"]


def test_a_new_interval_makes_the_hour_ring_again_and_keeps_the_day(tmp_path):
    for i in range(24):
        rings.write({"system/load1": 1.0}, at=T0 + 5 * i, root=tmp_path, interval=5)
    rings.write({"system/load1": 4.0}, at=T0 + 150, root=tmp_path, interval=30)
    times, values = rings.fetch("system/load1", "hour", now=T0 + 150, root=tmp_path)
    assert times[1] - times[0] == 30 and len(values) == 120
    assert [v for v in values if v is not None] == [4.0]
    assert rings.ring_file_bytes(120) == (tmp_path / "000-hour.ring").stat().st_size
    _, day = rings.fetch("system/load1", "day", now=T0 + 150, root=tmp_path)
    assert [v for v in day if v is not None] == [1.0, 1.0, 4.0]  # the first two minutes kept


def test_the_whisper_files_of_earlier_releases_go_at_the_first_sample(tmp_path):
    (tmp_path / "vs" / "3").mkdir(parents=True)
    (tmp_path / "vs" / "3" / "conns.wsp").write_bytes(bytes(64540))
    (tmp_path / "system").mkdir()
    (tmp_path / "system" / "load1.wsp").write_bytes(bytes(64540))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "kept.txt").write_text("not ours")
    rings.write({"system/load1": 1.0}, at=T0, root=tmp_path)
    assert not list(tmp_path.rglob("*.wsp")) and not (tmp_path / "vs").exists()
    assert (tmp_path / "notes" / "kept.txt").exists()


def test_a_series_name_cannot_leave_the_directory(tmp_path):
    with pytest.raises(rings.UnknownSeries):
        rings.write({"../secret_key": 1.0}, at=T0, root=tmp_path)
    with pytest.raises(rings.UnknownSeries):
        rings.fetch("system/load1", "decade", root=tmp_path)


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


def test_the_counters_are_read_from_nfts_listing_of_the_two_sets(monkeypatch):
    listings = {
        "flows": "table ip lbadmin {\n\tset flows {\n\t\ttypeof ct mark . ct direction\n"
                 "\t\telements = { 0x00000007 . original counter packets 10 bytes 1000 "
                 "expires 59m58s, 0x00000007 . reply counter packets 8 bytes 4000 expires "
                 "59m58s,\n\t\t\t     0xc0000001 . original counter packets 5 bytes 500 "
                 "expires 1s }\n\t}\n}\n",
        "opened": "table ip lbadmin {\n\tset opened {\n\t\ttypeof ct mark\n\t\tsize 262144\n"
                  "\t\telements = { 0x00000007 counter packets 2 bytes 120 expires 1h }\n"
                  "\t}\n}\n",
    }
    monkeypatch.setattr(nft, "_run", lambda command, *a: (True, listings[command.split()[-1]],
                                                          ""))
    assert nft.read_counters() == {
        "flows": {(7, "original"): (10, 1000), (7, "reply"): (8, 4000),
                  (0xC0000001, "original"): (5, 500)},
        "opened": {7: 2}}
    monkeypatch.setattr(nft, "_run", lambda *a: (False, "", "Error: No such file or directory"))
    assert nft.read_counters() == {"flows": {}, "opened": {}}


def test_beat_samples_only_when_the_configured_interval_is_due(monkeypatch, db):
    from network.models import GraphingSettings

    GraphingSettings.objects.create(pk=1, interval=30)
    clock, taken = [1000.0], []
    monkeypatch.setattr(sampler.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(sampler, "_last_sampled", None)
    monkeypatch.setattr(sampler, "sample", lambda graphing: taken.append(graphing.interval))
    for tick in range(13):  # a minute of beat's ticks, each a little late or early
        clock[0] = 1000.0 + 5 * tick + (0.3 if tick % 2 else -0.3)
        sampler.sample_if_due()
    assert taken == [30, 30, 30]  # at 0, 30 and 60 s
    GraphingSettings.objects.filter(pk=1).update(interval=5)
    clock[0] += 4.8
    assert sampler.sample_if_due() and sampler.sample_if_due() is False


def test_a_deleted_service_or_real_server_frees_its_series(monkeypatch, db, tmp_path):
    from clusters.models import ConfigGeneration, RealServer, VirtualService

    monkeypatch.setattr(rings, "graphs_dir", lambda: tmp_path)

    kept = VirtualService.objects.create(label="VNA", vip="198.51.100.100", ports="12000")
    gone = VirtualService.objects.create(label="old", vip="198.51.100.101", ports="12000")
    primary = RealServer.objects.create(service=kept, label="primary", ip="192.0.2.110")
    secondary = RealServer.objects.create(service=kept, label="secondary", ip="192.0.2.120")
    names = [f"vs/{kept.id}/conns", f"vs/{gone.id}/conns", f"rs/{kept.id}/{primary.id}/conns",
             f"rs/{kept.id}/{secondary.id}/conns", f"rs/{kept.id}/fallback/conns",
             f"rs/{gone.id}/fallback/conns"]
    rings.write(dict.fromkeys(names, 1.0), at=T0)
    monkeypatch.setattr(sampler, "_generation", {})
    assert sampler.owners() == {primary.id: kept.id, secondary.id: kept.id}
    assert rings.series() == sorted(names)  # nothing was deleted
    gone.delete()
    secondary.delete()
    ConfigGeneration.bump()
    sampler.owners()
    assert rings.series() == sorted([f"vs/{kept.id}/conns", f"rs/{kept.id}/{primary.id}/conns",
                                     f"rs/{kept.id}/fallback/conns"])


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
