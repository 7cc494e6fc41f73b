"""Where the kernel's cgroup v2 hierarchy is mounted: read by the runner (which makes the
checks worker's cgroup) and by the health-check sandbox (which makes one per script)."""

import contextlib
from pathlib import Path


def cgroup2_mount():
    """Where cgroup v2 is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified when hybrid),
    or None."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) > 2 and fields[2] == "cgroup2":
                return Path(fields[1])
    return None
