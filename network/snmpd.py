"""The seam between SNMP Configuration and Debian's net-snmp agent: <data>/snmp/snmpd.conf
(rendered by a pure function, written 0600) and the supervisor, which runs snmpd as the
service user in the appliance's namespace with CAP_NET_BIND_SERVICE only (runner/stack.py).

snmpd answers the standard MIBs it implements, limited to a view (VIEW) that leaves out what
would tell a poller about the host rather than the appliance (every process's command line,
every TCP connection), and lbadmin's own subtree (LBADMIN_OID: virtual services and real
servers) through `pass_persist`: snmpd starts `python -m reports.snmp_agent` once and asks it
GET/GETNEXT over its standard input. reports/mibs/LBADMIN-MIB.txt describes that subtree.
"""

import contextlib
import shutil
import sys
from pathlib import Path

from django.conf import settings

from core import workers
from core.files import write_atomically
from core.runtime import SNMP_DIR_NAME, SNMPD_CONF_NAME

# NET-SNMP-MIB::netSnmpPlaypen, "a subtree specifically designed for private testing
# purposes ... prior to transferring a MIB structure to another part of the overall OID
# tree". lbadmin has no IANA enterprise number of its own; until it has one, its subtree
# lives where no registered MIB can clash with it and snmpd itself serves nothing. Moving it
# is this constant (and reports/mibs/LBADMIN-MIB.txt).
LBADMIN_OID = ".1.3.6.1.4.1.8072.9999.9999"
# What pollers may read (snmpd's VACM view): the appliance's health, never the host's
# processes or connections.
VIEW = (
    (".1.3.6.1.2.1.1", "system: sysDescr, sysUpTime, sysName, sysLocation, sysContact"),
    (".1.3.6.1.2.1.2", "interfaces: ifTable (names, state, octets, errors)"),
    (".1.3.6.1.2.1.31", "IF-MIB ifXTable: names and 64-bit counters"),
    (".1.3.6.1.2.1.4", "IP: addresses and routes"),
    (".1.3.6.1.2.1.25.1", "HOST-RESOURCES hrSystem: uptime, date"),
    (".1.3.6.1.2.1.25.2", "HOST-RESOURCES hrStorage: memory and file systems"),
    (".1.3.6.1.2.1.25.3.3", "HOST-RESOURCES hrProcessorTable: CPU load"),
    (".1.3.6.1.4.1.2021.4", "UCD-SNMP memory"),
    (".1.3.6.1.4.1.2021.10", "UCD-SNMP load averages"),
    (".1.3.6.1.4.1.2021.11", "UCD-SNMP CPU statistics"),
    (LBADMIN_OID, "lbadmin: virtual services and real servers (LBADMIN-MIB)"),
)
VIEW_NAME = "lbadmin"
V2C_NAME = "lbadmin-v2c"  # com2sec name and VACM group of the v2c community
BY = "SNMP Configuration"
TEXT_FIELDS = ("community", "source_network", "v3_user", "auth_protocol", "auth_passphrase",
               "priv_protocol", "priv_passphrase", "location", "contact")
ask_supervisor = workers.ask_supervisor  # the seam: tests replace it


def snmp_dir():
    return Path(settings.DATA_DIR) / SNMP_DIR_NAME


def conf_path():
    return snmp_dir() / SNMPD_CONF_NAME


def agent_command():
    """What snmpd runs for lbadmin's subtree: this interpreter (the virtualenv's) with the
    running code (snmpd passes on its environment: PYTHONPATH, DJANGO_SETTINGS_MODULE and
    LBADMIN_DATA_DIR from the stack), through setpriv, which drops the capability snmpd
    holds (CAP_NET_BIND_SERVICE, ambient) so the agent has none."""
    setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
    return [setpriv, "--inh-caps=-all", "--ambient-caps=-all", "--", sys.executable, "-m",
            "reports.snmp_agent"]


def render_snmpd_conf(snmp, hostname, command):
    """snmpd.conf for `snmp` (a validated SnmpSettings): `hostname` is sysName, `command` the
    agent's argv. Pure: the same settings give the same text. The model's rules keep every
    value to one line; a value that would start another line is refused here all the same
    (it could add a directive)."""
    for value in (hostname, *command, *(getattr(snmp, f) for f in TEXT_FIELDS)):
        if "\n" in value or "\r" in value:
            raise ValueError(f"{value!r} cannot be written into snmpd.conf: it holds a line "
                             "break")
    lines = [
        "# Written by lbadmin (Local Configuration > SNMP Configuration); changes here are",
        "# replaced on the next save.",
        "agentAddress udp:161",
        f"sysName {hostname}",
        "sysServices 72",
    ]
    if snmp.location:
        lines.append(f"sysLocation {snmp.location}")
    if snmp.contact:
        lines.append(f"sysContact {snmp.contact}")
    lines += [f"view {VIEW_NAME} included {oid}" for oid, _what in VIEW]
    if snmp.v2c_enabled:
        lines += [
            f"com2sec {V2C_NAME} {snmp.source_network} {snmp.community}",
            f"group {V2C_NAME} v2c {V2C_NAME}",
            f'access {V2C_NAME} "" v2c noauth exact {VIEW_NAME} none none',
        ]
    if snmp.v3_enabled:
        lines += [
            f'createUser {snmp.v3_user} {snmp.auth_protocol} "{snmp.auth_passphrase}" '
            f'{snmp.priv_protocol} "{snmp.priv_passphrase}"',
            f"rouser {snmp.v3_user} priv -V {VIEW_NAME}",
        ]
    lines.append(f"pass_persist {LBADMIN_OID} {' '.join(command)}")
    return "\n".join(lines) + "\n"


def describe(snmp):
    """The settings in words for the User Log, without a secret."""
    if not snmp.enabled:
        return "off"
    parts = []
    if snmp.v2c_enabled:
        parts.append(f"v2c from {snmp.source_network}")
    if snmp.v3_enabled:
        parts.append(f"v3 user {snmp.v3_user} ({snmp.auth_protocol}, {snmp.priv_protocol})")
    return "on, " + " and ".join(parts)


def put_in_effect(snmp, hostname, by=BY):
    """Enabled: write snmpd.conf and have the supervisor (re)start snmpd. Disabled: remove it
    (so nothing starts snmpd again) and have snmpd stopped. Raises WorkerUnavailable when no
    supervisor takes the request (the file is written or removed all the same)."""
    if snmp.enabled:
        snmp_dir().mkdir(mode=0o700, exist_ok=True)
        write_atomically(conf_path(), render_snmpd_conf(snmp, hostname, agent_command()))
        ask_supervisor({"restart": "snmpd", "by": by})
    else:
        with contextlib.suppress(FileNotFoundError):
            conf_path().unlink()
        ask_supervisor({"stop": "snmpd", "by": by})
