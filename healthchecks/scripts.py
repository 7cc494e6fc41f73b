"""The one seam that executes health-check scripts.

A script runs without a shell, as the unprivileged user `nobody`, in a process group of its
own; past its timeout the whole group is killed and the check fails. Its output (stdout and
stderr together) is read as it comes and only the first OUTPUT_CAP bytes are kept, so a script
that prints megabytes costs no memory. The script text is handed over in an anonymous
in-memory file (memfd): nothing is written to disk, and `nobody` needs no access to the data
directory.
"""

import contextlib
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass

OUTPUT_CAP = 16 * 1024
RUN_AS = {"user": "nobody", "group": "nogroup"}


@dataclass
class ScriptResult:
    ok: bool
    exit_code: int | None  # None: killed at the timeout, or could not start
    output: str
    message: str


def run_script(text, arguments, timeout):
    fd = os.memfd_create("lbadmin-check", 0)
    try:
        os.write(fd, text.encode())
        os.fchmod(fd, 0o755)
        try:
            process = subprocess.Popen(
                [f"/proc/self/fd/{fd}", *map(str, arguments)], pass_fds=(fd,),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True, cwd="/", env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                **(RUN_AS if os.geteuid() == 0 else {}))
        except OSError as error:
            reasons = {8: "not executable: the script must start with a #! line, "
                          "e.g. #!/bin/bash",
                       2: "the interpreter named on its #! line does not exist"}
            reason = reasons.get(error.errno, error.strerror)
            return ScriptResult(False, None, "", f"the script could not start: {reason}")
    finally:
        os.close(fd)
    output, timed_out = _read_capped(process, timeout)
    if timed_out:
        _kill_group(process)
        return ScriptResult(False, None, output,
                            f"killed after the {timeout} s timeout")
    code = process.wait()
    message = "exit 0 (healthy)" if code == 0 else f"exit {code} (failed)"
    if code < 0:
        message = f"killed by signal {-code}"
    return ScriptResult(code == 0, code, output, message)


def _read_capped(process, timeout):
    """Read the output until EOF or the deadline, keeping the first OUTPUT_CAP bytes."""
    kept = bytearray()
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return kept.decode(errors="replace"), True
            if not selector.select(left):
                continue
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break
            if len(kept) < OUTPUT_CAP:
                kept += chunk[:OUTPUT_CAP - len(kept)]
    process.stdout.close()
    # EOF: the script closed its output; give it what is left of the timeout to exit.
    try:
        process.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return kept.decode(errors="replace"), True
    return kept.decode(errors="replace"), False


def _kill_group(process):
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    if process.stdout and not process.stdout.closed:
        process.stdout.close()
