"""The HA pair's two appliances for real (issue 13): two Stacks over one pair lab, each in its
own namespace with its own WebUI, data and supervisor; keepalived, conntrackd and vrrp-notify
(ha.notify, the reader of keepalived's notify FIFO) as services of each Stack, started and
stopped by the supervisor as the ha app asks it, and the VIP held by exactly one node and
moved to the other when that node's keepalived stops."""

import json
import os
import pwd
import socket
import subprocess
import time

import pytest

from core.runtime import (
    CONNTRACKD_CONF_NAME,
    CONNTRACKD_LOCK_NAME,
    CONNTRACKD_LOG_NAME,
    CONNTRACKD_SOCKET_NAME,
    HA_NOTIFY_SCRIPT_NAME,
    KEEPALIVED_CONF_NAME,
    SUPERVISOR_SOCKET_NAME,
    VRRP_FIFO_NAME,
    VRRP_STATE_NAME,
)
from lab import FLOATING_IP, LB2_EXTERNAL_ADDRESS, LB_EXTERNAL_ADDRESS, VIP
from runner.stack import CAPABILITIES, SERVICE_USER
from tests.stacks import wait_for

from .test_privileges import status
from .test_stack import https_get, https_get_from

pytestmark = pytest.mark.netns

# capability bits (linux/capability.h)
CAP_BITS = {"setgid": 6, "setuid": 7, "net_broadcast": 11, "net_admin": 12, "net_raw": 13}

# Hand-written minimal configurations (the ha app renders the real ones): VRRP unicast between
# the two appliances' eth1 addresses, one instance carrying the VIP and the floating IP,
# transitions written to the FIFO vrrp-notify reads; conntrackd FTFW over UDP unicast between
# the same addresses (ha-recipe.md 4-6). The notify_* lines name a script, as the WebUI's user
# (who can write these files) might: keepalived, without CAP_SETGID, must never run it. The
# instance is named as ha.render names it (ha.notify reads only its lines).
KEEPALIVED_CONF = """\
global_defs {{
    router_id {name}
    script_user {user}
    vrrp_version 2
    notify_fifo {ha}/{fifo}
}}
vrrp_instance lbadmin {{
    state BACKUP
    interface eth1
    virtual_router_id 51
    priority {priority}
    advert_int 1
    unicast_src_ip {me}
    unicast_peer {{
        {peer}
    }}
    virtual_ipaddress {{
        {vip}/32 dev eth1
        {floating}/32 dev eth0
    }}
    notify_master "{ha}/{notify} master"
    notify_backup "{ha}/{notify} backup"
    notify_fault  "{ha}/{notify} fault"
}}
"""
CONNTRACKD_CONF = """\
Sync {{
    Mode FTFW {{
        DisableExternalCache off
    }}
    UDP {{
        IPv4_address {me}
        IPv4_Destination_Address {peer}
        Port 3780
        Interface eth1
        Checksum on
    }}
}}
General {{
    Systemd off
    HashSize 32768
    HashLimit 65536
    LogFile {ha}/{log}
    LockFile {ha}/{lock}
    UNIX {{
        Path {ha}/{ctl}
    }}
    NetlinkBufferSize 2097152
    NetlinkBufferSizeMaxGrowth 8388608
    Filter From Userspace {{
        Protocol Accept {{
            TCP
        }}
        Address Ignore {{
            IPv4_address 127.0.0.1
            IPv4_address {me}
            IPv4_address {peer}
            IPv4_address {vip}
            IPv4_address {floating}
        }}
    }}
}}
"""
NOTIFY_SH = """\
#!/bin/sh
echo "$1" >> {ha}/{ran}
"""
SCRIPT_RAN = "notify-script-ran"


def write_ha_config(stack, name, priority, me, peer):
    """What the ha app (running as the service user) would write into <data>/ha."""
    ha = stack.ha_dir
    values = {"name": name, "user": SERVICE_USER, "priority": priority, "me": me, "peer": peer,
              "vip": VIP, "floating": FLOATING_IP, "ha": ha, "notify": HA_NOTIFY_SCRIPT_NAME,
              "log": CONNTRACKD_LOG_NAME, "lock": CONNTRACKD_LOCK_NAME,
              "ctl": CONNTRACKD_SOCKET_NAME, "fifo": VRRP_FIFO_NAME, "ran": SCRIPT_RAN}
    files = {KEEPALIVED_CONF_NAME: KEEPALIVED_CONF, CONNTRACKD_CONF_NAME: CONNTRACKD_CONF,
             HA_NOTIFY_SCRIPT_NAME: NOTIFY_SH}
    for file, template in files.items():
        path = ha / file
        path.write_text(template.format(**values))
        os.chmod(path, 0o700 if file == HA_NOTIFY_SCRIPT_NAME else 0o600)
        stack.give(path)


def remove_ha_config(stack):
    for file in (KEEPALIVED_CONF_NAME, CONNTRACKD_CONF_NAME, HA_NOTIFY_SCRIPT_NAME):
        (stack.ha_dir / file).unlink(missing_ok=True)


def vrrp_state(stack):
    """What vrrp-notify recorded last ("master 1718000000.123456" -> "master"), or None."""
    try:
        return stack.ha_dir.joinpath(VRRP_STATE_NAME).read_text().split()[0]
    except (FileNotFoundError, IndexError):
        return None


def ask_supervisor(stack, request):
    """A request on the stack's supervisor socket, as core.workers.ask_supervisor sends it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(stack.data_dir / SUPERVISOR_SOCKET_NAME))
        sock.sendall(json.dumps({"request": {**request, "by": "tester"}}).encode() + b"\n")
        answer = sock.makefile().readline()
    assert json.loads(answer) == {"queued": True}, answer




def addresses(stack):
    output = subprocess.run(["ip", "-n", stack.lab.ns(stack.lab_role), "-o", "-4", "addr"],
                            capture_output=True, text=True, check=True).stdout
    return {field.split("/")[0] for field in output.split() if field.count(".") == 3}


def holders(pair):
    """Which stacks hold the VIP (and the floating IP with it: one VRRP instance)."""
    held = []
    for stack in pair:
        own = addresses(stack)
        assert (VIP in own) == (FLOATING_IP in own), own
        if VIP in own:
            held.append(stack)
    return held


def running(stack, name):
    process = stack.processes.get(name)
    return process is not None and process.poll() is None


def netns_inode(pid):
    return os.stat(f"/proc/{pid}/ns/net").st_ino


def test_both_webuis_answer_on_their_own_addresses_from_the_lab_client(appliance_pair):
    primary, secondary = appliance_pair
    lab = primary.lab
    assert secondary.lab is lab and lab.pair
    for stack, address in ((primary, LB_EXTERNAL_ADDRESS), (secondary, LB2_EXTERNAL_ADDRESS)):
        answer = https_get_from(lab.exec_prefix("client"), address, 9443, "/lbadmin/login/")
        assert answer.split(" ", 2)[1] == "200", answer[:300]
        assert "Log in" in answer
        # and the host's forwarded port leads to the same appliance's WebUI
        assert "Log in" in https_get(stack.https_port, "/lbadmin/login/")
        forwards = [p for p in lab.listeners if p.role == f"{stack.lab_role}-forward"]
        assert [p.forward[1] for p in forwards] == [stack.https_port]
    assert primary.https_port != secondary.https_port


def test_each_appliance_runs_in_its_own_namespace_as_the_service_user(appliance_pair):
    account = pwd.getpwnam(SERVICE_USER)
    primary, secondary = appliance_pair
    assert (primary.lab_role, secondary.lab_role) == ("lb", "lb2")
    assert primary.data_dir != secondary.data_dir
    assert primary.redis_socket != secondary.redis_socket
    for stack in appliance_pair:
        inode = os.stat(f"/run/netns/{stack.lab.ns(stack.lab_role)}").st_ino
        names = [name for name in stack.processes if name != "redis"]
        assert {"web", "worker-dataplane", "worker-checks", "worker-maintenance",
                "beat"} <= set(names)
        for name in stack.processes:
            pid = stack.processes[name].pid
            if name != "redis":  # Redis runs on the host: a socket path reaches every namespace
                assert netns_inode(pid) == inode, (stack.lab_role, name)
            assert status(pid)["Uid"].split() == [str(account.pw_uid)] * 4, name
    # the dataplane worker of each acts in its own namespace
    for stack, address in ((primary, "192.0.2.1/24"), (secondary, "192.0.2.2/24")):
        result = stack.celery_app().send_task("network.tasks.describe_network_namespace")
        interfaces = {i["name"]: i["addresses"] for i in result.get(timeout=20)}
        assert address in interfaces["eth0"]


def test_the_pair_labs_servers_route_through_the_floating_ip(appliance_pair):
    lab = appliance_pair[0].lab
    for role in ("primary", "secondary"):
        routes = subprocess.run(["ip", "-n", lab.ns(role), "route", "show", "default"],
                                capture_output=True, text=True, check=True).stdout
        assert f"default via {FLOATING_IP} dev eth0" in routes, routes


HA = ("conntrackd", "vrrp-notify", "keepalived")


def test_without_ha_configuration_the_ha_services_are_not_configured(appliance_pair):
    for stack in appliance_pair:
        services = stack.describe()["services"]
        for name in HA:
            assert services[name]["configured"] is False
            assert services[name]["pid"] is None
            assert name not in stack.processes
        assert services["web"]["configured"] is True


def test_a_started_pair_holds_the_vip_on_one_node_and_a_keepalived_stop_moves_it(
        appliance_pair):
    primary, secondary = appliance_pair
    write_ha_config(primary, "lb1", 150, LB_EXTERNAL_ADDRESS, LB2_EXTERNAL_ADDRESS)
    write_ha_config(secondary, "lb2", 100, LB2_EXTERNAL_ADDRESS, LB_EXTERNAL_ADDRESS)
    try:
        # as the ha app asks (ha.vrrp.START_ORDER): conntrackd, the FIFO reader, keepalived
        for stack in appliance_pair:
            for name in HA:
                ask_supervisor(stack, {"start": name})
        for stack in appliance_pair:
            assert wait_for(lambda s=stack: all(running(s, name) for name in HA), 30), \
                stack.dead_processes()
            assert all(stack.describe()["services"][name]["configured"] for name in HA)
        # each runs in its appliance's namespace as the service user, with its capabilities
        account = pwd.getpwnam(SERVICE_USER)
        for stack in appliance_pair:
            inode = os.stat(f"/run/netns/{stack.lab.ns(stack.lab_role)}").st_ino
            for name in HA:
                fields = status(stack.processes[name].pid)
                assert netns_inode(stack.processes[name].pid) == inode
                assert fields["Uid"].split() == [str(account.pw_uid)] * 4
                expected = sum(1 << CAP_BITS[cap] for cap in CAPABILITIES[name])
                for field in ("CapEff", "CapAmb", "CapBnd"):
                    assert int(fields[field], 16) == expected, (name, field)
            # keepalived stops first, with the rest
            assert stack.stop_order()[:3] == ["keepalived", "vrrp-notify", "conntrackd"]

        # exactly one node holds the VIP and the floating IP, and stays so
        assert wait_for(lambda: len(holders(appliance_pair)) == 1, 30), \
            [addresses(s) for s in appliance_pair]
        time.sleep(3)  # no blind wait for a state: this checks that the state holds
        [master] = holders(appliance_pair)
        [backup] = [s for s in appliance_pair if s is not master]
        assert master is primary  # the higher priority (150) wins
        # vrrp-notify read each node's transition from keepalived's FIFO
        assert wait_for(lambda: vrrp_state(master) == "master", 15), vrrp_state(master)
        assert wait_for(lambda: vrrp_state(backup) == "backup", 15), vrrp_state(backup)
        # the client reaches the VIP on its segment, and a server its gateway, the master
        assert subprocess.run([*master.lab.exec_prefix("client"), "ping", "-c1", "-W2", VIP],
                              capture_output=True).returncode == 0
        assert subprocess.run([*master.lab.exec_prefix("primary"), "ping", "-c1", "-W2",
                               FLOATING_IP], capture_output=True).returncode == 0

        # stop the master's keepalived (as the ha app does): the backup takes over
        started = time.monotonic()
        ask_supervisor(master, {"stop": "keepalived"})
        assert wait_for(lambda: holders(appliance_pair) == [backup], 15), \
            [addresses(s) for s in appliance_pair]
        took = time.monotonic() - started
        assert took < 10, took
        assert wait_for(lambda: vrrp_state(backup) == "master", 15), vrrp_state(backup)
        # and ran conntrackd's commit there (ha-recipe.md 6: -c, -f, -R, -B)
        ctd_log = backup.ha_dir / CONNTRACKD_LOG_NAME
        assert wait_for(lambda: "committ" in ctd_log.read_text().lower(), 15), \
            ctd_log.read_text()[-2000:]
        # the client's neighbour entry for the VIP follows: the new master sent its GARPs
        backup_mac = json.loads(subprocess.run(
            ["ip", "-j", "-n", backup.lab.ns(backup.lab_role), "link", "show", "eth1"],
            capture_output=True, text=True, check=True).stdout)[0]["address"]
        assert wait_for(lambda: backup_mac in subprocess.run(
            ["ip", "-n", backup.lab.ns("client"), "neigh", "show", VIP], capture_output=True,
            text=True).stdout, 15)
        assert "keepalived" not in master.processes  # an administrator's stop: it stays down
        assert running(master, "conntrackd") and running(master, "vrrp-notify")
        with socket.socket(socket.AF_UNIX) as probe:  # conntrackd still answers there
            probe.connect(str(master.ha_dir / CONNTRACKD_SOCKET_NAME))

        # the supervisor restarts a killed conntrackd (over its stale lock file)
        killed = backup.processes["conntrackd"].pid
        os.kill(killed, 9)
        assert wait_for(lambda: running(backup, "conntrackd") and
                        backup.processes["conntrackd"].pid != killed, 30)

        # started again, the old master comes back as the master (it has the priority)
        ask_supervisor(master, {"start": "keepalived"})
        assert wait_for(lambda: holders(appliance_pair) == [master], 30), \
            [addresses(s) for s in appliance_pair]

        # no script named in keepalived.conf ever ran: keepalived holds no CAP_SETGID
        for stack in appliance_pair:
            assert not (stack.ha_dir / SCRIPT_RAN).exists()
            assert "Couldn't setgroups" in (stack.log_dir / "keepalived.out").read_text()
    finally:
        for stack in appliance_pair:
            for name in reversed(HA):
                stack.stop_service(name)
            remove_ha_config(stack)
    assert holders(appliance_pair) == []
    assert all(p.poll() is None for s in appliance_pair for p in s.processes.values())
