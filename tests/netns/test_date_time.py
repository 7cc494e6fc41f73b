"""System Date & time for real: a lab with an NTP server (Debian's chronyd serving its own
clock, -x), a whole appliance over it; the page's action sets the server, the supervisor
starts chronyd in the appliance's namespace as lbadmin with no capability, and chronyd —
asked through chronyc as the WebUI asks it — reports the lab's server as its synchronised
source."""

import json
import subprocess
import time
from pathlib import Path

import pytest

from lab.namespaces import NTP_ADDRESS
from tests.conftest import running_stack
from tests.stacks import in_appliance, wait_for

pytestmark = pytest.mark.netns

SYNC_TIMEOUT = 60  # seconds; iburst chooses a source in a few (measured below)

READ_STATUS = """
import dataclasses, json
from network import chrony
status = chrony.read_status()
print(json.dumps({"running": status.running, "error": status.error,
                  "synchronised": status.synchronised,
                  "ref_name": status.tracking.ref_name if status.tracking else "",
                  "sources": [dataclasses.asdict(s) for s in status.sources]}))
"""


@pytest.fixture(scope="module")
def ntp_stack():
    """An appliance over a lab with an NTP server at NTP_ADDRESS, on the servers' segment."""
    with running_stack(ntp=True) as stack:
        yield stack


def save(stack, servers, time_zone="UTC"):
    """The page's action, run where and as the WebUI runs (the appliance's namespace,
    lbadmin, no capability): it returns the supervisor's refusal, "" when asked."""
    return in_appliance(stack, "import sys\nfrom network.date_time import do_save_date_time\n"
                               "print(repr(do_save_date_time(sys.argv[1], sys.argv[2:], "
                               "'tester')))", time_zone, *servers)


def status(stack):
    return json.loads(in_appliance(stack, READ_STATUS))


def chronyd_pid(stack):
    process = stack.processes.get("chronyd")
    return process.pid if process is not None and process.poll() is None else None


def proc_status(pid):
    return dict(line.split(":\t", 1) for line in
                Path(f"/proc/{pid}/status").read_text().splitlines() if ":\t" in line)


def test_the_lab_ntp_server_becomes_the_appliances_synchronised_source(ntp_stack):
    stack = ntp_stack
    assert chronyd_pid(stack) is None  # nothing configured: chronyd does not run
    assert not stack.describe()["services"]["chronyd"]["configured"]
    started = time.monotonic()
    assert save(stack, [NTP_ADDRESS]) == "Saved(chronyd='restart', refused='')"
    assert wait_for(lambda: chronyd_pid(stack), 30), (stack.log_dir / "chronyd.out").read_text()
    pid = chronyd_pid(stack)

    synced = wait_for(lambda: (lambda s: s if s["synchronised"] else None)(status(stack)),
                      SYNC_TIMEOUT, every=0.5)
    took = time.monotonic() - started
    assert synced, (status(stack), (stack.log_dir / "chronyd.out").read_text())
    print(f"\nsaved to synchronised in {took:.1f} s")
    assert synced["ref_name"] == NTP_ADDRESS
    [source] = synced["sources"]
    assert (source["name"], source["state"], source["stratum"]) == (NTP_ADDRESS, "*", 8)

    # in the appliance's namespace, as lbadmin, with no capability, never setting the clock
    namespace = subprocess.run(["ip", "netns", "identify", str(pid)], capture_output=True,
                               text=True, check=True).stdout.strip()
    assert namespace == stack.lab.ns("lb")
    fields = proc_status(pid)
    assert fields["Uid"].split()[0] == str(stack.account.pw_uid)
    assert int(fields["CapEff"], 16) == int(fields["CapBnd"], 16) == 0
    command = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    assert "-x" in command
    assert stack.describe()["services"]["chronyd"]["configured"]
    # its files are in the data directory, the host's own chrony's are untouched
    assert (stack.data_dir / "chrony" / "chronyd.sock").exists()

    # a new time zone alone leaves chronyd as it is, synchronised
    assert save(stack, [NTP_ADDRESS], "Asia/Tokyo") == "Saved(chronyd='', refused='')"
    time.sleep(1)
    assert chronyd_pid(stack) == pid and status(stack)["synchronised"]


def test_clearing_the_servers_stops_chronyd_and_the_page_says_it_is_not_running(ntp_stack):
    stack = ntp_stack
    if chronyd_pid(stack) is None:
        save(stack, [NTP_ADDRESS])
        assert wait_for(lambda: chronyd_pid(stack), 30)
    assert save(stack, []) == "Saved(chronyd='stop', refused='')"
    assert wait_for(lambda: chronyd_pid(stack) is None, 30)
    assert not (stack.data_dir / "etc" / "chrony" / "chrony.conf").exists()
    now = status(stack)
    assert not now["running"] and "not running" in now["error"]
    assert not stack.describe()["services"]["chronyd"]["configured"]


def test_an_unreachable_server_is_listed_as_such_and_nothing_is_synchronised(ntp_stack):
    stack = ntp_stack
    try:
        save(stack, ["192.0.2.99"])  # on the servers' segment, nobody there
        assert wait_for(lambda: chronyd_pid(stack), 30)
        listed = wait_for(lambda: (lambda s: s if s["sources"] else None)(status(stack)), 30,
                          every=0.5)
        assert listed, status(stack)
        assert not listed["synchronised"]
        assert [(s["name"], s["state"]) for s in listed["sources"]] == [("192.0.2.99", "?")]
    finally:
        save(stack, [])
