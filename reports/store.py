"""The bounded store of the graphs: one Graphite whisper file per series in <data>/graphs/
(0600), with the rings of core.graphing.ARCHIVES — hour, day, week, month, year — each of a
fixed number of points, so a file never grows with time (core.graphing.SERIES_BYTES each).

A series is named like a path ("system/load1", "if/eth0/rx_bits", "vs/3/bytes_in"); its
file is made the first time it has a value other than 0 (a service that never carried traffic
costs no file and no write), and from then on every sample writes it. whisper averages the
fine points into the coarser rings as it writes.
"""

import os
import re
import time

from core.graphing import ARCHIVES, RANGES, graphs_dir

try:
    import whisper
except ImportError:  # an image that predates the graphs (pyproject's "observability" extra)
    whisper = None
else:
    whisper.CACHE_HEADERS = True  # the header of a file is read once per process

MISSING = ("The graphs need the whisper library, which this appliance's image does not have: "
           "install a new appliance image (an update replaces code, not the Python packages).")


def available():
    return whisper is not None
NAME = re.compile(r"^[A-Za-z0-9_.@-]+(/[A-Za-z0-9_.@-]+)*$")


class UnknownSeries(ValueError):
    pass


def path_of(name, root=None):
    if not NAME.match(name) or ".." in name:
        raise UnknownSeries(name)
    return (root or graphs_dir()) / f"{name}.wsp"


def write(values, at=None, always=(), root=None):
    """Write one sample: {series: value}. A series without a file gets one when its value is
    not 0 or its name starts with one of `always`."""
    if whisper is None:
        return 0
    at = int(at or time.time())
    root = root or graphs_dir()
    archives = [(step, points) for _, step, points in ARCHIVES]
    written = 0
    for name, value in values.items():
        path = path_of(name, root)
        if not path.exists():
            if not value and not name.startswith(tuple(always)):
                continue
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            whisper.create(str(path), archives, xFilesFactor=0.0, aggregationMethod="average")
            os.chmod(path, 0o600)
        whisper.update(str(path), float(value), at, now=at)
        written += 1
    return written


def fetch(name, range_name="hour", now=None, root=None):
    """(timestamps, values) of one series over a range: the finest ring that covers it; None
    where nothing was sampled; ([], []) for a series never written."""
    if range_name not in RANGES:
        raise UnknownSeries(range_name)
    path = path_of(name, root)
    if whisper is None or not path.exists():
        return [], []
    now = int(now or time.time())
    (start, _end, step), values = whisper.fetch(str(path), now - RANGES[range_name], now, now)
    return [start + i * step for i in range(len(values))], values


def series(prefix="", root=None):
    """The names of the series that have a file, under `prefix`."""
    root = root or graphs_dir()
    base = root / prefix if prefix else root
    if not base.exists():
        return []
    return sorted(str(path.relative_to(root))[:-4] for path in base.rglob("*.wsp"))
