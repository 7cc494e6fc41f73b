"""ha.render: the pair's settings in, keepalived.conf and conntrackd.conf out (golden files under
golden/ha/). tests/netns/test_ha_vrrp.py runs the same files for real.

Set LBADMIN_UPDATE_GOLDEN=1 to rewrite the files after a deliberate change, then read the diff.
"""

import difflib
import os
from dataclasses import replace
from pathlib import Path

import pytest

from core import runtime
from ha.render import (
    FIFO_NAME,
    KEEPALIVED_CAPABILITIES,
    PairSettings,
    conntrackd_command,
    conntrackd_conf,
    keepalived_command,
    keepalived_conf,
    notify_command,
)

GOLDEN = Path(__file__).parent / "golden" / "ha"
PAIR_ADDRESSES = ("198.51.100.2", "198.51.100.3", "198.51.100.100", "192.0.2.2", "192.0.2.3",
                  "192.0.2.254")


def primary(**changes):
    """lb1 of the guide's pair: the VIP on the front, the floating IP (gateway) on the back."""
    settings = PairSettings(
        role="primary", router_id="lb1", local_ip="198.51.100.2", peer_ip="198.51.100.3",
        interface="eth1", virtual_router_id=51, state_dir="/var/lib/lbadmin/ha",
        addresses=(("198.51.100.100", 32, "eth1"), ("192.0.2.254", 32, "eth0")),
        track_interfaces=("eth0",), ignore_addresses=PAIR_ADDRESSES)
    return replace(settings, **changes)


def secondary(**changes):
    return primary(role="secondary", router_id="lb2", local_ip="198.51.100.3",
                   peer_ip="198.51.100.2", **changes)


def check_golden(name, text):
    path = GOLDEN / name
    if os.environ.get("LBADMIN_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()


def changed_lines(before, after):
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(),
                                                  lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_the_primary_renders_as_the_golden_files():
    check_golden("primary-keepalived.conf", keepalived_conf(primary()))
    check_golden("primary-conntrackd.conf", conntrackd_conf(primary()))


def test_the_secondary_renders_as_the_golden_files():
    check_golden("secondary-keepalived.conf", keepalived_conf(secondary()))
    check_golden("secondary-conntrackd.conf", conntrackd_conf(secondary()))


def test_the_two_nodes_differ_only_in_name_priority_and_direction():
    assert changed_lines(keepalived_conf(primary()), keepalived_conf(secondary())) == [
        "-    router_id lb1", "+    router_id lb2",
        "-    priority 150", "+    priority 100",
        "-    unicast_src_ip 198.51.100.2", "+    unicast_src_ip 198.51.100.3",
        "-        198.51.100.3", "+        198.51.100.2",
    ]


def test_both_nodes_start_as_backup_and_a_returning_node_does_not_preempt():
    for settings in (primary(), secondary()):
        text = keepalived_conf(settings)
        assert "    state BACKUP" in text
        assert "    nopreempt" in text
        assert "    vrrp_version 3" in text
        assert "    advert_int 0.2\n" in text


def test_no_addresses_render_a_file_without_an_instance():
    text = keepalived_conf(primary(addresses=()))
    check_golden("no-addresses-keepalived.conf", text)
    assert "vrrp_instance" not in text


def test_several_addresses_on_two_devices_render_in_one_instance():
    addresses = (("198.51.100.100", 32, "eth1"), ("198.51.100.101", 32, "eth1"),
                 ("198.51.100.102", 24, "eth1"), ("192.0.2.254", 32, "eth0"),
                 ("192.0.2.253", 32, "eth0"))
    text = keepalived_conf(primary(addresses=addresses, track_interfaces=("eth0", "eth2")))
    check_golden("several-addresses-keepalived.conf", text)
    assert text.count("vrrp_instance") == 1


def test_changing_only_the_addresses_changes_only_the_virtual_ipaddress_block():
    before = keepalived_conf(primary())
    after = keepalived_conf(primary(addresses=(("198.51.100.100", 32, "eth1"),
                                               ("198.51.100.120", 32, "eth1"))))
    assert changed_lines(before, after) == ["-        192.0.2.254/32 dev eth0 label eth0:ha",
                                            "+        198.51.100.120/32 dev eth1 label eth1:ha"]
    block = after[after.index("virtual_ipaddress {"):]
    assert block.index("198.51.100.120/32 dev eth1") < block.index("}")


def test_the_addresses_do_not_change_conntrackd():
    other = primary(addresses=(("198.51.100.100", 32, "eth1"),))
    assert conntrackd_conf(other) == conntrackd_conf(primary())


def test_keepalived_runs_no_script_and_writes_its_transitions_to_a_fifo():
    for settings in (primary(), secondary(), primary(addresses=())):
        text = keepalived_conf(settings)
        assert "    notify_fifo /var/lib/lbadmin/ha/vrrp.fifo\n" in text
        for word in ("notify_master", "notify_backup", "notify_fault", "notify_stop",
                     "notify_fifo_script", "script_user", "vrrp_script", "track_script",
                     "enable_script_security"):
            assert word not in text
        assert '"' not in text  # nothing quoted: no command line anywhere


def test_keepalived_holds_only_net_admin_and_net_raw():
    assert sorted(KEEPALIVED_CAPABILITIES) == ["net_admin", "net_raw"]


def test_the_master_refreshes_its_gratuitous_arps():
    assert "    vrrp_garp_master_refresh 60\n" in keepalived_conf(primary())


def test_the_file_names_are_the_ones_the_runner_uses():
    settings = primary()
    assert settings.keepalived_config.endswith("/" + runtime.KEEPALIVED_CONF_NAME)
    assert settings.conntrackd_config.endswith("/" + runtime.CONNTRACKD_CONF_NAME)
    assert settings.keepalived_pid.endswith("/" + runtime.KEEPALIVED_PID_NAME)
    assert settings.vrrp_pid.endswith("/" + runtime.KEEPALIVED_VRRP_PID_NAME)
    assert settings.state_file.endswith("/" + runtime.VRRP_STATE_NAME)
    assert settings.fifo_path == f"/var/lib/lbadmin/ha/{FIFO_NAME}"
    assert f"Path /var/lib/lbadmin/ha/{runtime.CONNTRACKD_SOCKET_NAME}\n" in \
        conntrackd_conf(settings)


def test_conntrackd_syncs_over_unicast_with_a_hash_size_that_lets_flush_work():
    text = conntrackd_conf(secondary())
    assert "IPv4_address 198.51.100.3\n" in text
    assert "IPv4_Destination_Address 198.51.100.2\n" in text
    assert "Interface eth1\n" in text
    assert "HashSize 32768\n" in text  # <= 8192 silently refuses -f (ha-recipe.md, F6)
    assert "Path /var/lib/lbadmin/ha/conntrackd.ctl\n" in text


def test_conntrackd_ignores_loopback_and_the_pairs_addresses_once_each():
    text = conntrackd_conf(primary(ignore_addresses=PAIR_ADDRESSES + ("127.0.0.1",
                                                                      "10.255.0.0/30")))
    ignored = [line.split()[1] for line in text.splitlines()
               if line.strip().startswith("IPv4_address")][1:]  # the first is UDP's own
    assert ignored == ["127.0.0.1", *PAIR_ADDRESSES, "10.255.0.0/30"]


def test_keepalived_runs_in_the_foreground_with_pid_files_of_its_own():
    assert keepalived_command(primary()) == [
        "keepalived", "-n", "-l", "-D", "-P", "-f", "/var/lib/lbadmin/ha/keepalived.conf",
        "-p", "/var/lib/lbadmin/ha/keepalived.pid",
        "-r", "/var/lib/lbadmin/ha/keepalived-vrrp.pid"]
    assert conntrackd_command(primary()) == [
        "conntrackd", "-C", "/var/lib/lbadmin/ha/conntrackd.conf"]


def test_the_fifo_reader_is_started_with_the_state_dir_and_conntrackds_file():
    assert notify_command(primary(), python="/usr/bin/python3") == [
        "/usr/bin/python3", "-m", "ha.notify", "--state-dir", "/var/lib/lbadmin/ha",
        "--conntrackd-config", "/var/lib/lbadmin/ha/conntrackd.conf"]


@pytest.mark.parametrize(("changes", "words"), [
    ({"role": "tertiary"}, "role must be primary or secondary"),
    ({"virtual_router_id": 0}, "virtual_router_id must be 1 to 255"),
    ({"virtual_router_id": 256}, "virtual_router_id must be 1 to 255"),
    ({"peer_ip": "198.51.100.2"}, "local_ip and peer_ip must differ"),
    ({"peer_ip": "lb2"}, "peer_ip 'lb2' is not an IP address"),
    ({"addresses": (("198.51.100.100", 33, "eth1"),)}, "prefix length of 198.51.100.100"),
    ({"interface": "eth1 {"}, "is not an interface name"),
    ({"state_dir": "relative/dir"}, "state_dir must be an absolute path"),
    ({"state_dir": "/var/lib/with space"}, "state_dir must be an absolute path"),
    ({"advert_int": 0}, "advert_int must be 0.01 to 40.95 seconds"),
    ({"sync_port": 0}, "sync_port must be 1 to 65535"),
])
def test_settings_out_of_range_are_refused_in_words(changes, words):
    with pytest.raises(ValueError, match=words):
        primary(**changes)


def test_keepalived_labels_its_ipv4_addresses_so_local_configuration_leaves_them_alone():
    from ha.render import ADDRESS_LABEL_SUFFIX
    from network.netlink import PAIR_LABEL_SUFFIX

    assert ADDRESS_LABEL_SUFFIX == PAIR_LABEL_SUFFIX
    text = keepalived_conf(primary(addresses=(
        ("198.51.100.100", 32, "eth1"), ("2001:db8::100", 128, "eth1"),
        ("192.0.2.254", 32, "enp0s31f6.1000"))))
    assert "        198.51.100.100/32 dev eth1 label eth1:ha\n" in text
    # the kernel labels IPv4 addresses only, and a label has at most 15 characters
    assert "        2001:db8::100/128 dev eth1\n" in text
    assert "        192.0.2.254/32 dev enp0s31f6.1000\n" in text
