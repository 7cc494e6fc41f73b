"""snmpd's pass_persist handler for lbadmin's subtree (reports.snmp_mib; snmpd.conf's
`pass_persist` line is written by network.snmpd).

snmpd starts `python -m reports.snmp_agent` once, as the service user without capabilities,
and writes requests to its standard input: "PING" (answer "PONG"), "get" or "getnext"
followed by an OID (answer the OID, its type and its value on three lines, or "NONE"), "set"
followed by an OID and a value (answer "not-writable": the subtree is read-only).

snmpd reads the handler's standard output *and* its standard error as answers, so nothing but
answers may reach either: at start both are pointed at <data>/logs/snmp-agent.log (Logs ›
System shows it) and the answers go to a private copy of the original output.

A walk is one GETNEXT per value; the subtree is built once and kept for CACHE_SECONDS, so a
walk of 1,000 services costs one snapshot, not one per value.
"""

import logging
import os
import sys
import time
from pathlib import Path

CACHE_SECONDS = 1.5
LOG_NAME = "snmp-agent.log"

log = logging.getLogger("lbadmin.snmp")


class Agent:
    """Answers pass_persist requests from a snapshot (`make_tree()`, a snmp_mib.Tree) kept
    for `cache_seconds`. `clock` is time.monotonic (tests give their own)."""

    def __init__(self, make_tree, parse_oid, format_oid, cache_seconds=CACHE_SECONDS,
                 clock=time.monotonic):
        self.make_tree = make_tree
        self.parse_oid = parse_oid
        self.format_oid = format_oid
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._tree = None
        self._taken = 0.0

    def tree(self):
        now = self.clock()
        if self._tree is None or now - self._taken >= self.cache_seconds:
            self._tree = self.make_tree()
            self._taken = now
        return self._tree

    def answer(self, command, oid_text):
        """The lines that answer one request."""
        if command == "set":
            return ["not-writable"]
        oid = self.parse_oid(oid_text)
        if oid is None or command not in ("get", "getnext"):
            return ["NONE"]
        try:
            tree = self.tree()
        except Exception:  # noqa: BLE001 - the database or Redis failing must not end snmpd's agent
            log.exception("the subtree could not be read")
            return ["NONE"]
        entry = tree.get(oid) if command == "get" else tree.next(oid)
        if entry is None:
            return ["NONE"]
        found, kind, value = entry
        return [self.format_oid(found), kind, value]

    def serve(self, requests, answers):
        """The protocol over two text streams until snmpd closes the input."""
        while True:
            command = requests.readline()
            if not command:
                return
            command = command.strip().lower()
            if command == "ping":
                lines = ["PONG"]
            elif command in ("get", "getnext", "set"):
                oid_text = requests.readline()
                if command == "set":
                    requests.readline()  # the value, which is not taken
                lines = self.answer(command, oid_text)
            else:
                continue  # an empty line, or a word this version of snmpd added
            answers.write("\n".join(lines) + "\n")
            answers.flush()


def _private_streams(log_dir):
    """(requests, answers): the standard input, and a private copy of the standard output;
    descriptors 1 and 2 then point at the agent's log, so a stray print or a warning cannot
    corrupt an answer."""
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8", errors="replace")
    log_dir.mkdir(parents=True, exist_ok=True)
    target = os.open(log_dir / LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(target, 1)
    os.dup2(target, 2)
    os.close(target)
    sys.stdout = sys.stderr = open(1, "w", closefd=False, buffering=1)  # noqa: SIM115
    return sys.stdin, answers


def main():
    data_dir = Path(os.environ.get("LBADMIN_DATA_DIR", Path(__file__).resolve().parent.parent
                                   / "var"))
    requests, answers = _private_streams(data_dir / "logs")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "appliance.settings")
    import django  # after the streams are private: importing it may warn

    django.setup()
    from reports import snmp_mib  # its models need django.setup() first, as in manage.py

    log.info("lbadmin SNMP agent started (pid %s) for %s", os.getpid(), snmp_mib.LBADMIN_OID)
    Agent(snmp_mib.snapshot, snmp_mib.parse_oid, snmp_mib.format_oid).serve(requests, answers)


if __name__ == "__main__":
    main()
