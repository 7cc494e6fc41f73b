"""The reader of keepalived's notify FIFO: records this node's VRRP state and moves connection
tracking on each transition. Standard library only, no Django:

    python -m ha.notify --state-dir <data>/ha --conntrackd-config <data>/ha/conntrackd.conf

It runs as the service user with no capability at all: the conntrackd client only talks to the
daemon's unix socket (its `UNIX { Path }`, in the state directory). keepalived runs no script
(ha.render says why); it writes each transition as a line to `<state_dir>/vrrp.fifo`:

    INSTANCE "lbadmin" MASTER 150

For each line of our instance in MASTER, BACKUP or FAULT this writes `<state_dir>/vrrp-state`
("master 1718000000.123456", renamed over the old file, so a reader never sees half of it) and
runs conntrackd's steps (ha-recipe.md §6, after conntrackd's doc/sync/primary-backup.sh):

    master: -c (commit the peer's connections to the kernel), -f (flush the caches),
            -R (resync the internal cache with the kernel), -B (bulk-send it to the peer)
    backup: -t (flush the kernel table after PurgeTimeout; a later -c cancels it),
            -n (ask the master for its whole table)
    fault:  -t

Any other line (a group, another instance, STOP, MASTER_RX_LOWER_PRI, priorities, garbage) is
ignored. Each call is bounded in time; a failure is logged to stderr and never ends the reader
(conntrackd's client says nothing in its exit status anyway: ha-recipe.md, F6). Transitions are
handled one after the other, in keepalived's order: a backup's -t never overtakes a later -c.

The reader makes the FIFO (mode 0600) when it is missing and holds it open read-write, so a
keepalived that stops or restarts is no end of the file; start the reader before keepalived,
so keepalived finds the FIFO there (one keepalived made itself it removes when it stops: the
reader then notices within a second that the path is gone or another FIFO, and opens anew).
"""

import argparse
import contextlib
import os
import re
import select
import shutil
import stat
import subprocess
import sys
import time

INSTANCE = "lbadmin"  # ha.render.INSTANCE (not imported: this module needs nothing else)
FIFO_NAME = "vrrp.fifo"
STATE_NAME = "vrrp-state"
LINE = re.compile(r'INSTANCE "(?P<name>[^"\s]{1,64})" (?P<state>MASTER|BACKUP|FAULT) '
                  r'(?P<priority>\d{1,3})')
STEPS = {
    "master": ("-c", "-f", "-R", "-B"),
    "backup": ("-t", "-n"),
    "fault": ("-t",),
}
COMMIT_TIMEOUT = 30  # seconds: a commit of a large table takes seconds
COMMAND_TIMEOUT = 10
CHECK_EVERY = 1.0  # seconds: how often an idle reader checks that the FIFO is still its own
MAX_LINE = 512  # keepalived's lines are short; anything longer is not one of them
SEARCH_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def log(message):
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    print(f"{stamp} ha.notify: {message}", file=sys.stderr, flush=True)


def parse(line, instance=INSTANCE):
    """'INSTANCE "lbadmin" MASTER 150' -> "master"; None for anything else."""
    if isinstance(line, bytes):
        try:
            line = line.decode("ascii")
        except UnicodeDecodeError:
            return None
    found = LINE.fullmatch(line.rstrip("\n"))
    if found is None or found["name"] != instance or int(found["priority"]) > 255:
        return None
    return found["state"].lower()


def write_state(state_dir, state, now=None):
    """`<state> <unix time>` into vrrp-state, atomically (a temporary file renamed over it)."""
    path = os.path.join(state_dir, STATE_NAME)
    temporary = f"{path}.{os.getpid()}.tmp"
    stamp = time.time() if now is None else now
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{state} {stamp:.6f}\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def conntrackd_binary():
    return shutil.which("conntrackd", path=SEARCH_PATH) or "conntrackd"


def run_steps(state, conntrackd_config, runner=subprocess.run, binary=None):
    """conntrackd's steps for `state`, in order; each bounded in time; failures logged.
    Returns [(flag, outcome)] ("ok", "exit <n>", "timeout" or the error's words)."""
    binary = binary or conntrackd_binary()
    outcomes = []
    for flag in STEPS[state]:
        limit = COMMIT_TIMEOUT if flag == "-c" else COMMAND_TIMEOUT
        try:
            done = runner([binary, "-C", conntrackd_config, flag], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=limit, check=False)
        except subprocess.TimeoutExpired:
            outcome = "timeout"
            log(f"{state}: conntrackd {flag} took more than {limit} s: stopped")
        except OSError as error:
            outcome = f"{type(error).__name__}: {error}"
            log(f"{state}: conntrackd {flag} could not run: {outcome}")
        else:
            if done.returncode == 0:
                outcome = "ok"
            else:
                outcome = f"exit {done.returncode}"
                words = (done.stderr or b"").decode(errors="replace").strip()[:300]
                log(f"{state}: conntrackd {flag} failed ({outcome}): {words}")
        outcomes.append((flag, outcome))
    return outcomes


def handle(line, state_dir, conntrackd_config, runner=subprocess.run):
    """One line from the FIFO: the state it names (after recording it and moving conntrack),
    or None when it is not one of ours."""
    state = parse(line)
    if state is None:
        return None
    log(f"VRRP state {state}")
    try:
        write_state(state_dir, state)
    except OSError as error:
        log(f"could not write {STATE_NAME}: {error}")
    run_steps(state, conntrackd_config, runner=runner)
    return state


def ensure_fifo(path):
    """Make the FIFO (0600) unless it is there; refuse anything else at that path."""
    try:
        os.mkfifo(path, 0o600)
    except FileExistsError:
        mode = os.lstat(path).st_mode
        if not stat.S_ISFIFO(mode):
            raise RuntimeError(f"{path} exists and is not a FIFO") from None


def _same_file(path, fd):
    try:
        there = os.stat(path)
    except OSError:
        return False
    here = os.fstat(fd)
    return (there.st_dev, there.st_ino) == (here.st_dev, here.st_ino)


def lines_of(fifo_path, check_every=CHECK_EVERY, read_size=4096):
    """The lines written to the FIFO, for ever.

    The FIFO is held open read-write, so keepalived's restarts are no end of file and nothing
    written while no keepalived runs is lost. Every `check_every` seconds without a line, the
    path is checked: when it no longer names the FIFO held open (keepalived removes a FIFO it
    made itself when it stops, and makes a new one when it starts), it is made again if
    missing and opened anew. A line longer than MAX_LINE is dropped whole; a partial line is
    dropped when the FIFO is opened anew."""
    while True:
        ensure_fifo(fifo_path)
        fd = os.open(fifo_path, os.O_RDWR | os.O_NOFOLLOW)
        try:
            if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                raise RuntimeError(f"{fifo_path} is not a FIFO")
            pending, skipping = b"", False
            while True:
                readable, _, _ = select.select([fd], [], [], check_every)
                if not readable:
                    if not _same_file(fifo_path, fd):
                        log(f"{fifo_path} was replaced or removed: opening it anew")
                        break
                    continue
                chunk = os.read(fd, read_size)
                if not chunk:  # not while we hold a writing end; harmless if it happens
                    break
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if not skipping and len(line) <= MAX_LINE:
                        yield line
                    skipping = False
                if len(pending) > MAX_LINE:
                    pending, skipping = b"", True
        finally:
            os.close(fd)


def serve(state_dir, conntrackd_config, lines=None):
    fifo_path = os.path.join(state_dir, FIFO_NAME)
    log(f"reading {fifo_path}")
    for line in lines if lines is not None else lines_of(fifo_path):
        try:
            handle(line, state_dir, conntrackd_config)
        except Exception as error:  # never die on one transition  # noqa: BLE001
            log(f"handling {line[:100]!r} failed: {type(error).__name__}: {error}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m ha.notify", description=__doc__.split(
        "\n", 1)[0])
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--conntrackd-config", required=True)
    arguments = parser.parse_args(argv)
    os.umask(0o077)
    try:
        serve(arguments.state_dir, arguments.conntrackd_config)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
