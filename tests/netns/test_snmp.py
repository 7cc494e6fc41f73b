"""SNMP on a stack of its own, with Debian's real snmpd: SNMP Configuration's action writes
snmpd.conf and the supervisor starts snmpd in the appliance's namespace, as the service user
with CAP_NET_BIND_SERVICE only; `snmpwalk` from the lab's client namespace reads, by number,
the system group (sysName is the appliance's hostname), the interfaces table and lbadmin's
subtree — the guide's service, its real server and, with connections held open through the
VIP, that many active connections on it. A v3 authPriv user answers and a wrong passphrase
does not; an address outside the allowed network gets no answer at all."""

import os
import pwd
import subprocess
import textwrap
from pathlib import Path

import pytest

from lab import VIP
from reports.snmp_mib import BASE
from runner.stack import SERVICE_USER
from tests.conftest import running_stack
from tests.stacks import in_appliance, in_stack, wait_for

from .test_privileges import status
from .test_recovery import PORT, SETUP, served_by
from .traffic import HeldConnection

pytestmark = pytest.mark.netns
AGENT = "198.51.100.1"  # the appliance's address on the client's side
INSIDE = "192.0.2.1"  # ... and on the real servers' side
COMMUNITY = "lab-c0mmunity"
AUTH, PRIV = "auth pass phrase", "priv-pass-phrase"
HOSTNAME = "lb-snmp-test"
LBADMIN = "." + ".".join(map(str, BASE))
HELD = 3
CAP_NET_BIND_SERVICE = 10

ENABLE = textwrap.dedent(f"""
    from network import services
    from network.models import SnmpSettings
    services.do_save_hostname_dns("{HOSTNAME}", [], "tester")
    problem = services.do_save_snmp(SnmpSettings(
        enabled=True, v2c_enabled=True, community="{COMMUNITY}",
        source_network="198.51.100.0/24", v3_enabled=True, v3_user="monitor",
        auth_protocol="SHA-256", auth_passphrase="{AUTH}", priv_protocol="AES",
        priv_passphrase="{PRIV}", location="Lab rack"), "tester")
    assert problem == "", problem
""")
DISABLE = textwrap.dedent("""
    from network import services
    from network.models import SnmpSettings
    snmp = SnmpSettings.load()
    snmp.enabled = False
    assert services.do_save_snmp(snmp, "tester") == ""
""")


@pytest.fixture
def snmp_client(tmp_path):
    """Run net-snmp's tools in a lab namespace: numbers only (no MIB files are loaded), their
    own state in a temporary directory (not /var/lib/snmp)."""
    env = {**os.environ, "MIBS": ":", "SNMP_PERSISTENT_DIR": str(tmp_path),
           "SNMPCONFPATH": str(tmp_path)}

    def run(lab, tool, *args, role="client"):
        return subprocess.run([*lab.exec_prefix(role), tool, "-On", "-t", "1", "-r", "1",
                               *args], capture_output=True, text=True, timeout=60, env=env)
    return run


def children(pid):
    """The pids whose parent is `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if status(int(entry)).get("PPid") == str(pid):
                    found.append(int(entry))
            except OSError:
                continue  # it exited meanwhile
    return found


def values(output):
    """snmpwalk's lines as {oid: value}, the value without its type ('STRING: "x"' -> 'x')."""
    found = {}
    for line in output.splitlines():
        oid, separator, rest = line.partition(" = ")
        if separator:
            found[oid] = rest.split(": ", 1)[-1].strip('"')
    return found


def test_snmpwalk_reads_the_system_the_interfaces_and_lbadmins_services(snmp_client):
    with running_stack() as stack:
        server_id = int(in_stack(stack, SETUP))
        service_id = int(in_stack(stack, textwrap.dedent("""
            from clusters.models import VirtualService
            print(VirtualService.objects.get(label="VNA").pk)""")))
        assert wait_for(lambda: served_by(stack) == "primary", 20)
        in_appliance(stack, ENABLE)

        def walk(oid, *options, role="client", agent=AGENT):
            return snmp_client(stack.lab, "snmpwalk", "-v2c", "-c", COMMUNITY, *options,
                               agent, oid, role=role)

        system = wait_for(lambda: values(walk(".1.3.6.1.2.1.1").stdout), 30, every=0.5)
        assert system, stack.log_dir.joinpath("snmpd.out").read_text()
        assert system[".1.3.6.1.2.1.1.5.0"] == HOSTNAME  # sysName
        assert system[".1.3.6.1.2.1.1.6.0"] == "Lab rack"  # sysLocation

        # snmpd: the service user, CAP_NET_BIND_SERVICE and nothing else
        fields = status(stack.processes["snmpd"].pid)
        assert fields["Uid"].split()[0] == str(pwd.getpwnam(SERVICE_USER).pw_uid)
        assert int(fields["CapEff"], 16) == 1 << CAP_NET_BIND_SERVICE

        # ... and its pass_persist agent (started at the first request of lbadmin's subtree):
        # the service user, no capability at all (setpriv dropped the ambient one)
        assert values(walk(f"{LBADMIN}.1.1").stdout)
        agents = [pid for pid in children(stack.processes["snmpd"].pid)
                  if b"reports.snmp_agent" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(agents) == 1, agents
        agent = status(agents[0])
        assert agent["Uid"] == fields["Uid"]
        assert [int(agent[f], 16) for f in ("CapEff", "CapPrm", "CapAmb")] == [0, 0, 0]

        names = set(values(walk(".1.3.6.1.2.1.2.2.1.2").stdout).values())  # ifDescr
        assert {"lo", "eth0", "eth1"} <= names, names

        column = f"{LBADMIN}.3.1"
        with HeldConnection(stack.lab, VIP, PORT) as first, \
                HeldConnection(stack.lab, VIP, PORT) as second, \
                HeldConnection(stack.lab, VIP, PORT) as third:
            assert all(held.greeting.startswith("primary") for held in (first, second, third))

            def active():  # the sampler counts every 2 s; the agent keeps a snapshot ~1.5 s
                tree = values(walk(LBADMIN).stdout)
                return tree if tree.get(f"{column}.11.{service_id}.{server_id}") == \
                    str(HELD) else None

            tree = wait_for(active, 20, every=0.5)
            assert tree, values(walk(LBADMIN).stdout)
        assert tree[f"{LBADMIN}.2.1.2.{service_id}"] == "VNA"  # lbVsLabel
        assert tree[f"{LBADMIN}.2.1.3.{service_id}"] == VIP
        assert tree[f"{LBADMIN}.2.1.7.{service_id}"] == "Online"
        assert tree[f"{LBADMIN}.2.1.8.{service_id}"] == str(HELD)  # the service's active
        assert tree[f"{column}.3.{service_id}.{server_id}"] == "PrimaryCluster"
        assert tree[f"{column}.4.{service_id}.{server_id}"] == "192.0.2.110"
        assert tree[f"{column}.9.{service_id}.{server_id}"] == "Online"
        # the walk went through every value in order, to the end of the subtree
        assert list(tree) == sorted(tree, key=lambda oid: tuple(map(int, oid[1:].split("."))))

        # SNMP v3, authPriv with SHA-256 and AES
        v3 = ["-v3", "-l", "authPriv", "-u", "monitor", "-a", "SHA-256", "-A", AUTH, "-x",
              "AES"]
        good = snmp_client(stack.lab, "snmpget", *v3, "-X", PRIV, AGENT, ".1.3.6.1.2.1.1.5.0",
                           f"{LBADMIN}.2.1.2.{service_id}")
        assert good.returncode == 0, good.stderr
        assert values(good.stdout) == {".1.3.6.1.2.1.1.5.0": HOSTNAME,
                                       f"{LBADMIN}.2.1.2.{service_id}": "VNA"}
        bad = snmp_client(stack.lab, "snmpget", "-v3", "-l", "authPriv", "-u", "monitor", "-a",
                          "SHA-256", "-A", "wrong pass phrase", "-x", "AES", "-X", PRIV, AGENT,
                          ".1.3.6.1.2.1.1.5.0")
        assert bad.returncode != 0 and "Authentication failure" in bad.stderr, bad
        assert HOSTNAME not in bad.stdout

        # a wrong community, and the right one from outside 198.51.100.0/24: no answer
        wrong = snmp_client(stack.lab, "snmpget", "-v2c", "-c", "not-the-c0mmunity", AGENT,
                            ".1.3.6.1.2.1.1.5.0")
        assert "Timeout: No Response" in wrong.stderr, wrong
        outside = walk(".1.3.6.1.2.1.1", role="primary", agent=INSIDE)
        assert "Timeout: No Response" in outside.stderr and not outside.stdout, outside
        # ... while the same request from the client is answered (the agent still runs)
        assert values(walk(".1.3.6.1.2.1.1.5.0").stdout)

        # off: snmpd stops and nothing answers
        in_appliance(stack, DISABLE)
        assert wait_for(lambda: "snmpd" not in stack.processes, 20)
        assert "Timeout: No Response" in walk(".1.3.6.1.2.1.1.5.0").stderr
        assert not stack.snmp_configured()
