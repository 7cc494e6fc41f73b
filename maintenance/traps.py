"""SNMP v2c traps, sent with net-snmp's `snmptrap` (Debian package snmp): the appliance's one
trap sender (the alerts send with it).

The OIDs sit under net-snmp's experimental playground (1.3.6.1.4.1.8072.9999.9999, free for
local use; lbadmin owns no enterprise number), arc 7 for alerts:

    ALERT_TRAP.<n>   the notification, one per event (TRAP_NUMBERS)
    OBJECTS.1        the event's name (e.g. real-server-down)     OCTET STRING
    OBJECTS.2        what happened, in words                        OCTET STRING
    OBJECTS.3        the virtual service's label ("" if none)       OCTET STRING
    OBJECTS.4        the severity (info, warning, error)            OCTET STRING
"""

import shutil
import subprocess

BASE = "1.3.6.1.4.1.8072.9999.9999.7"
ALERT_TRAP = f"{BASE}.0"
OBJECTS = f"{BASE}.1"
TRAP_NUMBERS = {"real-server-down": 1, "real-server-up": 2, "apply-failed": 3,
                "service-died": 4, "takeover": 5, "test": 6}
TIMEOUT = 10
MAX_TEXT = 1000  # octets of words in one varbind: a trap is one UDP datagram


class TrapError(Exception):
    pass


def trap_oid(event):
    return f"{ALERT_TRAP}.{TRAP_NUMBERS.get(event, 99)}"


# A DisplayString is ASCII (RFC 2579): receivers show anything else as hex, so the words'
# typography is written plainly and any other character as "?".
PLAIN = str.maketrans({"–": "-", "—": "-", "›": ">", "‹": "<", "“": '"', "”": '"', "‘": "'",
                       "’": "'", "…": "...", "×": "x", "÷": "/"})


def display_string(text):
    return text.translate(PLAIN).encode("ascii", "replace").decode("ascii")


def varbinds(event, text, service, severity):
    """The trap's variables: (OID, type, value) each."""
    return [(f"{OBJECTS}.1", "s", event),
            (f"{OBJECTS}.2", "s", display_string(text)[:MAX_TEXT]),
            (f"{OBJECTS}.3", "s", display_string(service)), (f"{OBJECTS}.4", "s", severity)]


def command(host, port, community, event, bindings):
    """snmptrap's arguments: v2c, uptime "" (the agent's own), the notification, the varbinds.
    A host that is an IPv6 address is written udp6:[addr]:port."""
    target = f"udp6:[{host}]:{port}" if ":" in host else f"{host}:{port}"
    args = ["snmptrap", "-v", "2c", "-c", community, "-r", "0", "-t", "3", target, "",
            trap_oid(event)]
    for oid, kind, value in bindings:
        args += [oid, kind, value]
    return args


def send(host, port, community, event, bindings, timeout=TIMEOUT):
    if shutil.which("snmptrap") is None:
        raise TrapError("snmptrap is not installed (Debian package snmp)")
    try:
        done = subprocess.run(command(host, port, community, event, bindings),
                              capture_output=True, text=True, timeout=timeout,
                              env={"PATH": "/usr/bin:/bin", "MIBS": "", "MIBDIRS": ""})
    except subprocess.TimeoutExpired:
        raise TrapError(f"snmptrap to {host}:{port} took longer than {timeout} s") from None
    if done.returncode != 0:
        words = (done.stderr or done.stdout).strip()[:300] or f"exit status {done.returncode}"
        raise TrapError(f"snmptrap to {host}:{port} failed: {words}")
