"""The one seam that executes health-check scripts.

Scripts come from administrators and from restored backups: they are treated as untrusted. A
script runs without a shell, from an anonymous in-memory file (memfd: nothing is written to
disk), in a sandbox entered between fork and exec:

- in a cgroup v2 of its own (healthchecks/cgroup.py), so that at the end of the check — its
  timeout, or its exit — one write to `cgroup.kill` ends every process it started, also those
  that called `setsid` or double-forked; without cgroup v2 the process group is killed instead
  and the check's message says so;
- with rlimits (CPU seconds, address space, processes, open files, file size, no core files);
- as `nobody`/its group with no supplementary groups, with PR_SET_NO_NEW_PRIVS (no setuid
  binary or file capability gives anything back);
- in `/` with umask 077 and an environment of PATH only (scripts get their four arguments:
  VIP, virtual port, real server IP, real server port).

A script that cannot be dropped to `nobody` (the worker is neither root nor holds
CAP_SETUID/CAP_SETGID, or the user is missing) is not run: the check fails and says why.

Its output (stdout and stderr together) is read as it comes and only the first OUTPUT_CAP bytes
are kept, so a script that prints megabytes costs no memory. The check ends when the script
exits (or at the timeout); processes it leaves running are killed then, and a script that left
any behind fails.
"""

import contextlib
import ctypes
import logging
import math
import os
import pwd
import resource
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import cgroup

log = logging.getLogger(__name__)

OUTPUT_CAP = 16 * 1024
RUN_AS = "nobody"
ENVIRONMENT = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
LIMITS = {  # per process (RLIMIT_NPROC: per user, so for every script running at once)
    resource.RLIMIT_AS: 512 * 1024 * 1024,
    resource.RLIMIT_NPROC: 64,
    resource.RLIMIT_NOFILE: 64,
    resource.RLIMIT_FSIZE: 16 * 1024 * 1024,
    resource.RLIMIT_CORE: 0,
}
AFTER_EXIT = 0.5  # s to read what is left once the script has exited, if a leftover holds it
PR_SET_NO_NEW_PRIVS = 38
CAP_SETGID, CAP_SETUID = 6, 7
_libc = ctypes.CDLL(None, use_errno=True)
_warned = []  # the killpg fallback is logged once per process


@dataclass
class ScriptResult:
    ok: bool
    exit_code: int | None  # None: killed at the timeout, or could not start
    output: str
    message: str


def run_script(text, arguments, timeout):
    account, refusal = _account()
    if refusal:
        return ScriptResult(False, None, "", f"not run: {refusal}")
    parent = cgroup.usable()
    if parent is None and not _warned:
        _warned.append(True)
        log.warning("health-check scripts: no cgroup (%s); a script's processes are killed by "
                    "process group, which setsid escapes", cgroup.why_not())
    box = cgroup.create(parent) if parent else None
    try:
        result = _run(text, arguments, timeout, account, box)
    finally:
        if box is not None and not cgroup.kill_and_remove(box):
            log.error("health-check script cgroup %s could not be emptied", box)
    if box is None:
        result.message += " (no cgroup v2: killed by process group only)"
    return result


def _account():
    """(uid, gid) of RUN_AS, and why a script cannot be dropped to it (or "")."""
    try:
        entry = pwd.getpwnam(RUN_AS)
    except KeyError:
        return None, f"the user {RUN_AS} does not exist"
    needed = (1 << CAP_SETUID) | (1 << CAP_SETGID)
    if _effective_capabilities() & needed != needed:
        return None, (f"the checks worker cannot drop scripts to {RUN_AS} (it is not root and "
                      f"lacks CAP_SETUID/CAP_SETGID), and a script never runs as the worker")
    return (entry.pw_uid, entry.pw_gid), ""


def _effective_capabilities():
    with contextlib.suppress(OSError, StopIteration, ValueError):
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("CapEff:"))
        return int(line.split()[1], 16)
    return 0


def _limits(timeout):
    """The rlimits, never above the worker's own hard limits (only root may raise those)."""
    cpu = math.ceil(timeout) + 1
    wanted = {**LIMITS, resource.RLIMIT_CPU: cpu}
    limits = {}
    for which, value in wanted.items():
        hard = resource.getrlimit(which)[1]
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        # CPU: SIGXCPU at the soft limit, SIGKILL a second later
        second = value + 1 if which == resource.RLIMIT_CPU and (
            hard == resource.RLIM_INFINITY or value + 1 <= hard) else value
        limits[which] = (value, second)
    return limits


def _sandbox(account, limits, box):
    """The preexec_fn: runs in the child between fork and exec, as the worker's user. Only
    system calls (the worker has threads: nothing here may take a lock)."""
    enter = cgroup.enter_function(box) if box is not None else None
    uid, gid = account

    def enter_sandbox():
        if enter is not None:
            enter()  # first, while still privileged enough to move itself
        for which, (soft, hard) in limits.items():
            resource.setrlimit(which, (soft, hard))
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")

    return enter_sandbox


def _run(text, arguments, timeout, account, box):
    fd = os.memfd_create("lbadmin-check", 0)
    try:
        os.write(fd, text.encode())
        os.fchmod(fd, 0o755)
        try:
            process = subprocess.Popen(
                [f"/proc/self/fd/{fd}", *map(str, arguments)], pass_fds=(fd,),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True, cwd="/", env=dict(ENVIRONMENT), umask=0o077,
                preexec_fn=_sandbox(account, _limits(timeout), box))
        except OSError as error:
            reasons = {8: "not executable: the script must start with a #! line, "
                          "e.g. #!/bin/bash",
                       2: "the interpreter named on its #! line does not exist",
                       11: f"too many processes of {RUN_AS} are running (its process limit, "
                           f"{LIMITS[resource.RLIMIT_NPROC]}, is shared by all scripts)"}
            reason = reasons.get(error.errno, error.strerror)
            return ScriptResult(False, None, "", f"the script could not start: {reason}")
        except subprocess.SubprocessError:
            return ScriptResult(False, None, "", "not run: its sandbox could not be entered "
                                "(cgroup, rlimits, user or no_new_privs)")
    finally:
        os.close(fd)
    try:
        output, exited = _read_capped(process, timeout)
        left = _leftovers(process, box) if exited else ""
        _kill_all(process, box)
        code = process.wait()
    finally:
        if process.poll() is None:  # an exception above: leave nothing running
            _kill_all(process, box)
            process.wait()
        process.stdout.close()
    if not exited:
        return ScriptResult(False, None, output, f"killed after the {timeout} s timeout")
    if code < 0:
        message = f"killed by {_signal_name(-code)}"
    elif left and code == 0:
        message = "exit 0"
    else:
        message = "exit 0 (healthy)" if code == 0 else f"exit {code} (failed)"
    if left:
        message += (f", but it left {left} running (killed): the check fails, a script must "
                    f"finish its work before it exits" if code == 0 else
                    f"; it left {left} running (killed)")
    return ScriptResult(code == 0 and not left, code, output, message)


def _signal_name(number):
    names = {signal.SIGXCPU: "SIGXCPU (its CPU time limit)",
             signal.SIGXFSZ: "SIGXFSZ (its file size limit)"}
    with contextlib.suppress(ValueError):
        return names.get(number, signal.Signals(number).name)
    return f"signal {number}"


def _read_capped(process, timeout):
    """Read the output until the script exits (and its output ends) or the deadline, keeping
    the first OUTPUT_CAP bytes. Returns (output, whether it exited in time)."""
    kept = bytearray()
    deadline = time.monotonic() + timeout
    pidfd = os.pidfd_open(process.pid)
    output = process.stdout.fileno()
    exited = eof = False
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(output, selectors.EVENT_READ)
            selector.register(pidfd, selectors.EVENT_READ)
            while not (exited and eof):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                for key, _ in selector.select(left):
                    if key.fd == pidfd:
                        exited = True
                        selector.unregister(pidfd)
                        # what a leftover still holds open is read only a moment longer
                        deadline = min(deadline, time.monotonic() + AFTER_EXIT)
                        continue
                    chunk = os.read(output, 65536)
                    if not chunk:
                        eof = True
                        selector.unregister(output)
                    elif len(kept) < OUTPUT_CAP:
                        kept += chunk[:OUTPUT_CAP - len(kept)]
    finally:
        os.close(pidfd)
    return kept.decode(errors="replace"), exited


def _leftovers(process, box):
    """How many processes of the script's still run besides itself, in words ("" if none).
    Called before the script is reaped, so that its pid (the group's id) is still its own."""
    if box is not None:
        others = [p for p in cgroup.pids(box) if p != process.pid]
    else:
        others = [p for p in _group_members(process.pid) if p != process.pid]
    if not others:
        return ""
    return "1 process" if len(others) == 1 else f"{len(others)} processes"


def _group_members(pgid):
    """The live processes of a process group (the fallback's view: what setsid escapes)."""
    members = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
                if fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
                    members.append(int(entry.name))
    return members


def _kill_all(process, box):
    if box is not None:
        with contextlib.suppress(FileNotFoundError):
            (box / "cgroup.kill").write_text("1")
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
