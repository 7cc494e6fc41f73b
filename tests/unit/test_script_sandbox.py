"""The health-check script sandbox (healthchecks/scripts.py, healthchecks/cgroup.py): scripts
are untrusted. Each hostile script fails as a check with its reason and leaves no process of
`nobody` and no cgroup behind."""

import contextlib
import os
import resource
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings

from healthchecks import cgroup, scripts

NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: only a root checks worker "
                             "can drop a script to nobody and make cgroups (CI runs as root)")


def nobody_processes(live_only=False):
    """pid -> state of every process of `nobody` (`ps -u nobody`)."""
    listing = subprocess.run(["ps", "-u", "nobody", "-o", "pid=,stat="], capture_output=True,
                             text=True, check=False).stdout.split("\n")
    found = dict(line.split() for line in listing if line.strip())
    if live_only:
        found = {pid: state for pid, state in found.items() if not state.startswith("Z")}
    return {int(pid): state for pid, state in found.items()}


def runs_left():
    parent = cgroup.usable()
    return sorted(parent.glob(f"run-{os.getpid()}-*")) if parent else []


@pytest.fixture
def before():
    """The processes of `nobody` that existed before the test; at the end, whatever the test
    left is killed (so that a failure leaves nothing running either)."""
    existing = set(nobody_processes())
    yield existing
    for pid in set(nobody_processes(live_only=True)) - existing:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def assert_nothing_left(before):
    """Right after the check no process of the script runs, and its cgroup is gone; the
    killed processes' zombies are reaped by init (their parents died) within seconds."""
    assert set(nobody_processes(live_only=True)) - before == set(), "a process outlived it"
    assert runs_left() == []
    deadline = time.monotonic() + 15
    while set(nobody_processes()) - before:
        assert time.monotonic() < deadline, f"ps -u nobody: {nobody_processes()}"
        time.sleep(0.1)


def dead(pid, seconds=2.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.02)
    return False


# refused: a script that cannot be dropped to nobody never runs


@pytest.mark.parametrize("how", ["no such user", "no CAP_SETUID"])
def test_a_script_that_cannot_be_dropped_to_nobody_is_not_run(monkeypatch, tmp_path, how):
    if how == "no such user":
        monkeypatch.setattr(scripts, "RUN_AS", "lbadmin-no-such-user")
    else:
        monkeypatch.setattr(scripts, "_effective_capabilities", lambda: 0)
    marker = tmp_path / "ran"
    result = scripts.run_script(f"#!/bin/sh\ntouch {marker}\n", [], 5)
    assert not result.ok and result.exit_code is None
    assert result.message.startswith("not run: ")
    assert ("does not exist" if how == "no such user" else "CAP_SETUID") in result.message
    assert not marker.exists()


# what a script can see and do


@as_root
def test_a_script_runs_as_nobody_with_no_new_privs_no_capabilities_and_rlimits(before):
    result = scripts.run_script("#!/bin/sh\ncat /proc/self/status /proc/self/limits\n", [], 7)
    assert result.ok, result
    status = dict(line.split(":", 1) for line in result.output.splitlines() if ":" in line)
    assert status["NoNewPrivs"].strip() == "1"
    assert status["Uid"].split() == [str(NOBODY)] * 4
    assert status["Gid"].split() == [str(NOBODY)] * 4
    assert status["Groups"].strip() == ""
    assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0
    limits = {line[:26].strip(): line[26:].split()[:2] for line in result.output.splitlines()
              if line.startswith("Max ")}
    assert limits["Max cpu time"] == ["8", "9"]  # the timeout, rounded up, plus one second
    assert limits["Max address space"] == [str(512 * 1024 * 1024)] * 2
    assert limits["Max processes"] == ["64", "64"]
    assert limits["Max open files"] == ["64", "64"]
    assert limits["Max file size"] == [str(16 * 1024 * 1024)] * 2
    assert limits["Max core file size"] == ["0", "0"]
    assert_nothing_left(before)


@as_root
def test_the_environment_is_empty_but_path_and_it_runs_in_the_root_directory(before):
    result = scripts.run_script("#!/bin/sh\ncat /proc/$$/environ\necho; pwd; umask\n", [], 5)
    assert result.ok, result
    environment, cwd, umask = result.output.split("\n")[:3]
    assert environment == "PATH=/usr/sbin:/usr/bin:/sbin:/bin\0"
    assert cwd == "/" and umask == "0077"
    assert_nothing_left(before)


@as_root
@pytest.mark.django_db
def test_a_script_that_cats_the_database_cannot_read_it(before):
    database = Path(settings.DATABASES["default"]["NAME"])
    assert database.is_file() and database.read_bytes()[:15] == b"SQLite format 3"
    data_dir = Path(settings.DATA_DIR)
    assert database.parent == data_dir
    assert stat.S_IMODE(data_dir.stat().st_mode) & 0o077 == 0, "the data directory is not 0700"
    result = scripts.run_script(f"#!/bin/sh\ncat '{database}'\nls '{data_dir}'\n", [], 5)
    assert not result.ok and result.message == "exit 2 (failed)"
    assert result.output.count("Permission denied") == 2
    assert "SQLite" not in result.output
    assert_nothing_left(before)


# every process it started dies at the end of the check


@as_root
def test_a_setsid_sleeper_dies_when_the_script_exits_and_the_check_fails(before):
    started = time.monotonic()
    result = scripts.run_script("#!/bin/bash\nsetsid sleep 40 &\necho $!\nexit 0\n", [], 10)
    assert time.monotonic() - started < 3  # the check ends with the script, not at its timeout
    sleeper = int(result.output.split()[0])
    assert dead(sleeper), f"the setsid sleeper {sleeper} outlived the check"
    assert not result.ok and result.exit_code == 0
    assert "left 1 process running (killed): the check fails" in result.message
    assert_nothing_left(before)


@as_root
@pytest.mark.parametrize("end", ["exits", "hangs"])
def test_a_double_forked_daemon_dies_at_the_end_of_the_check(before, end):
    """A classic daemon: fork, setsid, fork again, no output held: the cgroup still has it."""
    script = ("#!/bin/bash\n( setsid bash -c 'sleep 40 </dev/null &>/dev/null & echo $!' & wait )\n"
              + ("exit 1\n" if end == "exits" else "sleep 40\n"))
    result = scripts.run_script(script, [], 2)
    daemon = int(result.output.split()[0])
    assert dead(daemon), f"the double-forked {daemon} outlived the check"
    assert not result.ok
    if end == "exits":
        assert result.message == "exit 1 (failed); it left 1 process running (killed)"
    else:
        assert result.message == "killed after the 2 s timeout"
    assert_nothing_left(before)


# bombs


def peak_of_nobody(stop, peak):
    while not stop.is_set():
        count = 0
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    count += entry.stat().st_uid == NOBODY
        peak.append(count)


@as_root
def test_a_fork_bomb_is_held_by_the_process_limit_and_killed_at_the_timeout(before):
    stop, peak = threading.Event(), []
    sampler = threading.Thread(target=peak_of_nobody, args=(stop, peak))
    sampler.start()
    try:
        started = time.monotonic()
        result = scripts.run_script("#!/bin/bash\n:(){ :|:& };:\nsleep 40\n", [], 2)
        took = time.monotonic() - started
    finally:
        stop.set()
        sampler.join()
    assert not result.ok and result.message == "killed after the 2 s timeout"
    assert "fork: retry: Resource temporarily unavailable" in result.output
    assert took < 5
    assert max(peak) <= scripts.LIMITS[resource.RLIMIT_NPROC] + len(before)
    assert_nothing_left(before)
    # and the next check runs as usual
    assert scripts.run_script("#!/bin/sh\nexit 0\n", [], 5).ok
    assert_nothing_left(before)


@as_root
def test_a_memory_bomb_fails_with_its_reason(before):
    result = scripts.run_script(
        "#!/bin/sh\nexec python3 -c 'x = bytearray(2 * 1024 ** 3)'\n", [], 10)
    assert not result.ok and result.message == "exit 1 (failed)"
    assert "MemoryError" in result.output
    assert_nothing_left(before)


@as_root
def test_a_script_that_prints_100_mib_keeps_the_cap_and_memory_does_not_grow(before):
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = scripts.run_script(
        "#!/bin/bash\nhead -c 104857600 /dev/zero | tr '\\0' x\nexit 0\n", [], 30)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - grown) / 1024
    assert result.ok and result.output == "x" * scripts.OUTPUT_CAP
    assert grown < 20, f"the worker grew by {grown:.0f} MiB"
    assert_nothing_left(before)


@as_root
def test_a_script_that_prints_forever_is_killed_at_the_timeout_with_the_cap(before):
    result = scripts.run_script("#!/bin/sh\nexec yes\n", [], 1)
    assert not result.ok and result.message == "killed after the 1 s timeout"
    assert result.output == "y\n" * (scripts.OUTPUT_CAP // 2)
    assert_nothing_left(before)


# without cgroup v2


@as_root
def test_without_cgroup_v2_the_process_group_is_killed_and_the_message_says_so(
        before, monkeypatch):
    monkeypatch.setattr(cgroup, "usable", lambda: None)
    monkeypatch.setattr(cgroup, "why_not", lambda: "cgroup v2 is not mounted")
    result = scripts.run_script("#!/bin/bash\nsleep 40 &\necho $!\nsleep 40\n", [], 1)
    assert dead(int(result.output.split()[0]))
    assert not result.ok
    assert result.message == ("killed after the 1 s timeout "
                              "(no cgroup v2: killed by process group only)")
    assert_nothing_left(before)


@as_root
def test_the_script_runs_in_a_cgroup_of_its_own_removed_after_it(before):
    """cgroup v2 with cgroup.kill is on these machines (at /sys/fs/cgroup/unified, hybrid)."""
    parent = cgroup.usable()
    assert parent is not None, cgroup.why_not()
    result = scripts.run_script("#!/bin/sh\ncat /proc/self/cgroup\n", [], 5)
    assert result.ok
    assert f"0::/{parent.name}/run-{os.getpid()}-" in result.output
    assert_nothing_left(before)
