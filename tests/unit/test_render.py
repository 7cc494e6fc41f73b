"""render(): a configuration in, the expected nft text out (golden files, as nftlb's tests).

Set LBADMIN_UPDATE_GOLDEN=1 to rewrite the files after a deliberate change, then read the diff.
"""

import os
from dataclasses import replace
from pathlib import Path

import pytest

from clusters.dataplane.desired import NONE_MARK, Desired, Fallback, Server, Service, fallback_mark
from clusters.dataplane.render import diff_script, full_script, render, schedule, share

GOLDEN = Path(__file__).parent / "golden"
SEVEN = ((12000, 12000), (12100, 12100), (12200, 12200), (12300, 12301), (12800, 12800),
         (12950, 12950))


def server(mark, ip, weight=100, state="online", port=None, max_connections=0):
    return Server(mark=mark, ip=ip, port=port, weight=weight,
                  available=state == "online", sticky=state in ("online", "drain"),
                  cut=state == "halt", max_connections=max_connections)


def vna(state="online"):
    """The guide's VNA service: seven ports, the primary, the secondary as MASQ fallback."""
    return Service(id=1, vip="198.51.100.100", port_ranges=SEVEN, protocols=("tcp",),
                   scheduler="wrr", persistence_timeout=None,
                   servers=(server(7, "192.0.2.110", state=state),),
                   fallback=Fallback(fallback_mark(1, True), "192.0.2.120", None))


def weighted():
    return Service(id=2, vip="198.51.100.101", port_ranges=((80, 80), (800, 900)),
                   protocols=("tcp", "udp"), scheduler="wrr", persistence_timeout=300,
                   servers=(server(8, "192.0.2.110", 100, max_connections=50),
                            server(9, "192.0.2.120", 300, port=8080)),
                   fallback=None)


def check_golden(name, text):
    path = GOLDEN / name
    if os.environ.get("LBADMIN_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_the_guides_vna_service_renders_as_the_golden_file():
    check_golden("vna.nft", full_script(render(Desired((vna(),)))))


def test_weights_persistence_udp_and_a_maximum_render_as_the_golden_file():
    check_golden("weighted.nft", full_script(render(Desired((weighted(),)))))


def test_halting_the_primary_changes_only_map_elements():
    before, after = render(Desired((vna(),))), render(Desired((vna("halt"),)))
    script = diff_script(before, after)
    check_golden("vna-halt.diff.nft", script)
    assert "chain" not in script and "rule" not in script
    assert after.cut_marks == {7}


def test_an_unchanged_configuration_needs_no_statement():
    assert diff_script(render(Desired((vna(),))), render(Desired((vna(),)))) == ""


def test_deleting_a_service_removes_its_chain_maps_and_elements():
    script = diff_script(render(Desired((vna(), weighted()))), render(Desired((vna(),))))
    check_golden("delete-weighted.diff.nft", script)


def test_shares_follow_the_weights_and_cover_every_bucket():
    assert share(4, [(1, 100), (2, 300)]) == [(0, 0, 1), (1, 3, 2)]
    ranges = share(1000, [(1, 1), (2, 1), (3, 1)])
    assert [high - low + 1 for low, high, _ in ranges] == [334, 333, 333]
    assert ranges[0][0] == 0 and ranges[-1][1] == 999


def test_round_robin_reduces_weights_and_keeps_the_modulus_when_a_server_goes():
    service = replace(vna(), servers=(server(1, "192.0.2.1", 200), server(2, "192.0.2.2", 600)))
    assert schedule(service, {}) == ("inc", 4, [(0, 0, 1), (1, 3, 2)])
    halted = replace(service, servers=(server(1, "192.0.2.1", 200, "halt"),
                                       server(2, "192.0.2.2", 600)))
    assert schedule(halted, {}) == ("inc", 4, [(0, 3, 2)])


def test_nothing_available_goes_to_the_fallback_or_nowhere():
    assert schedule(vna("drain"), {})[2] == [(0, 0, fallback_mark(1, True))]
    lonely = replace(vna("halt"), fallback=None)
    assert schedule(lonely, {})[2] == [(0, 0, NONE_MARK)]


def test_least_connection_favours_the_server_with_fewer_connections():
    service = replace(vna(), scheduler="wlc",
                      servers=(server(1, "192.0.2.1"), server(2, "192.0.2.2")))
    generator, total, ranges = schedule(service, {1: 9, 2: 0})
    assert generator == "random" and total == 1000
    sizes = {mark: high - low + 1 for low, high, mark in ranges}
    assert sizes[2] == pytest.approx(10 * sizes[1], rel=0.01)


def test_large_configurations_are_split_into_statements_of_1000_elements():
    services = tuple(replace(vna(), id=i, vip=f"198.51.{100 + i // 250}.{i % 250 + 1}",
                             servers=(server(i, "192.0.2.110"),),
                             fallback=Fallback(fallback_mark(i, True), "192.0.2.120", None))
                     for i in range(1, 401))
    script = full_script(render(Desired(services)))
    service_lines = [line for line in script.splitlines()
                     if line.startswith("add element ip lbadmin services")]
    assert len(service_lines) == 3  # 2,400 elements
    assert max(line.count(" : jump ") for line in service_lines) == 1000
