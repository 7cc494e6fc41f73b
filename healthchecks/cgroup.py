"""Cgroup v2 containment for health-check scripts, used by the script seam (scripts.py).

Each run gets a cgroup of its own, `<cgroup2 mount>/lbadmin-checks/run-<worker pid>-<n>`
(the parent goes with its last run, so nothing stays between checks). The script's process
moves itself into it before it execs, so everything it starts — also what calls `setsid` or
double-forks — is in it too and cannot leave (`nobody` may not move processes). At the end,
one write to `cgroup.kill` SIGKILLs the whole cgroup, and the run's directory is removed.
Only `cgroup.kill` (Linux 5.14) is needed, no controller: on hosts with the hybrid layout
cgroup v2 sits at /sys/fs/cgroup/unified without the pids and memory controllers, and the
sandbox's rlimits stand in for them.

If the parent cannot be made (no cgroup v2, no permission: a non-root worker needs the subtree
handed to it, itself inside it), `usable()` says why and scripts.py falls back to killing the
process group.
"""

import contextlib
import itertools
import os
import subprocess
import threading
import time
from pathlib import Path

from core.cgroups import cgroup2_mount

PARENT_NAME = "lbadmin-checks"
_lock = threading.Lock()
_state = {}  # "parent": Path, or "reason": why cgroups cannot be used (decided once)
_numbers = itertools.count(1)



def usable():
    """The parent cgroup of every run, or None; `why_not()` says why not."""
    with _lock:
        if not _state:
            try:
                _state["parent"] = _set_up()
            except OSError as error:
                _state["reason"] = f"{error.strerror or error} ({error.filename or ''})"
            except RuntimeError as error:
                _state["reason"] = str(error)
        return _state.get("parent")


def why_not():
    usable()
    return _state.get("reason", "")


def _set_up():
    mount = cgroup2_mount()
    if mount is None:
        raise RuntimeError("cgroup v2 is not mounted")
    parent = mount / PARENT_NAME
    with contextlib.suppress(FileExistsError):
        parent.mkdir(mode=0o755)
    _remove_stale(parent)
    probe = create(parent)
    try:
        if not (probe / "cgroup.kill").exists():
            raise RuntimeError("this kernel has no cgroup.kill (Linux 5.14 or later needed)")
        # Can a child of this process move itself in? (A non-root worker needs write access
        # to the common ancestor's cgroup.procs: the subtree must be delegated to it.)
        subprocess.run(["/bin/true"], preexec_fn=enter_function(probe), check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    except subprocess.SubprocessError as error:
        raise RuntimeError(f"a process cannot be moved into {probe}") from error
    finally:
        kill_and_remove(probe)
    return parent


def _remove_stale(parent):
    """Runs left by a worker that died mid-check: kill what is in them and remove them. (This
    runs once, before this process makes a run of its own.)"""
    for child in parent.glob("run-*"):
        with contextlib.suppress(ValueError, IndexError):
            owner = int(child.name.split("-")[1])
            if owner != os.getpid() and Path(f"/proc/{owner}").exists():
                continue  # another live worker's run
            kill_and_remove(child)


def create(parent):
    """A new run's cgroup. The parent goes when its last run goes (nothing is left between
    checks), so it is made again here when missing."""
    path = parent / f"run-{os.getpid()}-{next(_numbers)}"
    for _ in range(10):
        try:
            path.mkdir(mode=0o755)
            return path
        except FileNotFoundError:  # removed with another thread's last run: make it again
            with contextlib.suppress(FileExistsError):
                parent.mkdir(mode=0o755)
    path.mkdir(mode=0o755)
    return path


def enter_function(path):
    """A preexec_fn that moves the new process into `path`: only system calls, no locks (it
    runs in the child between fork and exec, and the worker has threads)."""
    procs = os.fsencode(path / "cgroup.procs")

    def enter():
        fd = os.open(procs, os.O_WRONLY)
        try:
            os.write(fd, b"0")  # "0": the writing process itself
        finally:
            os.close(fd)

    return enter


def pids(path):
    with contextlib.suppress(FileNotFoundError):
        return [int(p) for p in (path / "cgroup.procs").read_text().split()]
    return []


def kill_and_remove(path, wait=5.0):
    """SIGKILL every process in the cgroup, wait until it is empty, remove it. True if removed
    (a process stuck in the kernel could hold it; the next worker start removes it)."""
    with contextlib.suppress(FileNotFoundError):
        (path / "cgroup.kill").write_text("1")
    deadline = time.monotonic() + wait
    while True:
        try:
            path.rmdir()  # EBUSY while a process is still in it
            break
        except FileNotFoundError:
            break
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
    if path.parent.name == PARENT_NAME:
        with contextlib.suppress(OSError):  # busy: other runs (or a delegated worker) in it
            path.parent.rmdir()
    return True
