"""What the graphs sample, how often and for how long, and the /metrics bearer token: shared by
the sampler and Reports (reports/) and by Local Configuration › Graphing (network/), which
shows them and stores the choices (network.models.GraphingSettings).

The rings (core/rings.py) are columnar round-robin files in <data>/graphs/ of a fixed size:
they never grow with time.
"""

import os
import secrets
from pathlib import Path

from django.conf import settings

BEAT_EVERY = 5  # beat sends the sampler every 5 s; it samples only when the interval is due
INTERVALS = (5, 10, 30, 60)  # the choices of "Sample every": each divides the day ring's minute
DEFAULT_INTERVAL = 5
# (range, seconds per point, points) past the hour, whose step is the sampling interval: the
# range's own ring draws it
COARSE_RINGS = (
    ("day", 60, 1440),
    ("week", 600, 1008),
    ("month", 3600, 744),
    ("year", 21600, 1460),
)
RANGES = {"hour": 3600, **{name: step * points for name, step, points in COARSE_RINGS}}
RANGE_NAMES = tuple(RANGES)
VALUE_BYTES = 4  # one float32 per series and point (7 significant digits: plenty for a graph)


def layout(interval=DEFAULT_INTERVAL):
    """The rings for a sampling interval: ((range, step, points), …), finest first."""
    return (("hour", interval, RANGES["hour"] // interval), *COARSE_RINGS)


def series_bytes(interval=DEFAULT_INTERVAL):
    """What one series costs in the rings, whatever its age: one value per point of each."""
    return VALUE_BYTES * sum(points for _, _, points in layout(interval))


ARCHIVES = layout()  # the default layout (tests, documentation)

SAMPLED = (
    ("Load average", "1, 5 and 15 minutes (/proc/loadavg)"),
    ("Memory", "% used (MemTotal − MemAvailable, /proc/meminfo)"),
    ("Disk", "% used of the data directory's file system"),
    ("Network interfaces", "bits and packets per second in and out, each interface "
                           "(/proc/net/dev in the appliance's namespace)"),
    ("Layer 4 virtual services", "new connections, packets and bytes per second in and out "
                                 "(nftables per-element counters by connection mark)"),
)
REAL_SERVERS_SAMPLED = ("Layer 4 real servers",
                        "the same per (virtual service, real server) pair")
SERIES_PER_SERVICE = 5  # new connections, packets in and out, bytes in and out
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
