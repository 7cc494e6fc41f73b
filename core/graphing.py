"""What the graphs sample, how often and for how long, and the /metrics bearer token: shared by
the sampler and Reports (reports/) and by Local Configuration › Graphing (network/), which
shows them.

The rings (reports/store.py) are Graphite whisper files in <data>/graphs/, one per series, of
a fixed size: they never grow with time.
"""

import os
import secrets
from pathlib import Path

from django.conf import settings

INTERVAL = 5  # seconds between two samples (beat's schedule, the finest ring's step)
# (range, seconds per point, points): the finest ring that covers a range draws it
ARCHIVES = (
    ("hour", 5, 720),
    ("day", 60, 1440),
    ("week", 600, 1008),
    ("month", 3600, 744),
    ("year", 21600, 1460),
)
RANGES = {name: step * points for name, step, points in ARCHIVES}
POINT_BYTES = 12  # whisper: a 4-byte timestamp and an 8-byte double
HEADER_BYTES = 16 + 12 * len(ARCHIVES)
SERIES_BYTES = HEADER_BYTES + POINT_BYTES * sum(points for _, _, points in ARCHIVES)

SAMPLED = (
    ("Load average", "1, 5 and 15 minutes (/proc/loadavg)"),
    ("Memory", "% used (MemTotal − MemAvailable, /proc/meminfo)"),
    ("Disk", "% used of the data directory's file system"),
    ("Network interfaces", "bits and packets per second in and out, each interface "
                           "(/proc/net/dev in the appliance's namespace)"),
    ("Layer 4 virtual services", "new connections, packets and bytes per second in and out "
                                 "(nftables per-element counters by connection mark)"),
    ("Layer 4 real servers", "the same per (virtual service, real server) pair"),
)
TOKEN_FILE = "metrics_token"  # noqa: S105 (a file name, not a secret)


def graphs_dir():
    return Path(settings.DATA_DIR) / "graphs"


def metrics_token():
    """The bearer token /metrics asks for: made at first use, kept in <data>/metrics_token
    (0600); the Graphing page shows it."""
    path = Path(settings.DATA_DIR) / TOKEN_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token
