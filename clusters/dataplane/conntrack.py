"""The one seam to the kernel's connection tracking (the conntrack command)."""

import re
import subprocess

MARK = re.compile(r"\bmark=(\d+)")


def delete_by_mark(mark):
    """Cut every tracked connection of one (service, server) pair; returns how many."""
    result = subprocess.run(["conntrack", "-D", "--mark", str(mark)], capture_output=True,
                            text=True, timeout=30)
    found = re.search(r"(\d+) flow entries have been deleted", result.stderr)
    return int(found.group(1)) if found else 0


def count_by_mark():
    """{mark: tracked connections} over every connection lbadmin marked."""
    result = subprocess.run(["conntrack", "-L"], capture_output=True, text=True, timeout=30)
    counts = {}
    for line in result.stdout.splitlines():
        # Closed connections linger in TIME_WAIT/CLOSE; they are not open any more.
        if " TIME_WAIT " in line or " CLOSE " in line:
            continue
        found = MARK.search(line)
        if found and found.group(1) != "0":
            mark = int(found.group(1))
            counts[mark] = counts.get(mark, 0) + 1
    return counts
