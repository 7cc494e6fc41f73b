"""The graphs' bounded store: columnar round-robin rings in <data>/graphs/ (0700, files 0600).

A series ("system/load1", "if/eth0/rx_bits", "vs/3/bytes_in", "rs/3/7/conns") is a column.
index.json names each series' column; columns come in blocks of BLOCK, and each block has
one file per ring of core.graphing.layout — `<block>-<range>.ring`: a header, the time of each
point (int64), then the points one row after the other, a float32 per column of the block
(NaN: nothing sampled). A point lives in the row (time // step) % points, so a file never
grows with time; its size is fixed by the ring and BLOCK (ring_file_bytes).

A sample is one row written per block and ring: the finest ring (the hour, one point per
sampling interval) takes the values; each coarser ring's current point becomes the average of
the finer ring's points inside it, recomputed as the sample is written (as whisper
propagates), so every range shows the newest data and the averages are exact.

Why not one whisper file per series (what this replaced): at 1,000 services × 7 ports × 2
real servers that was 15,000 files opened, read and written every sample — 0.82 s of CPU,
most of the sampler's 27.7 % of a core; a row per block and ring is 15 × 5 writes.

A series gets its column the first time it has a value other than 0 (a service that never
carried traffic costs nothing) or its name asks for one (`always`); `forget` frees the columns
of what was deleted and the next new series takes them, so the store follows the
configuration, not its history. One writer (the sampler, one sample at a time); readers
(the WebUI) open the files read-only.
"""

import contextlib
import json
import logging
import os
import re
import struct
import time

from core.graphing import RANGES, VALUE_BYTES, graphs_dir, layout

try:
    import numpy
except ImportError:  # an image that predates these rings (pyproject's "observability" extra)
    numpy = None

log = logging.getLogger(__name__)
MISSING = ("The graphs need the numpy library, which this appliance's image does not have: "
           "install a new appliance image (an update replaces code, not the Python packages).")


def available():
    return numpy is not None


BLOCK = 1024  # columns per file: a row is 4 KiB, one page
MAGIC = b"LBRING1\n"
HEADER = struct.Struct("<8sIII")  # magic, step, points, columns
HEADER_BYTES = 64
TIME_BYTES = 8
INDEX_FILE = "index.json"
NAME = re.compile(r"^[A-Za-z0-9_.@-]+(/[A-Za-z0-9_.@-]+)*$")


class UnknownSeries(ValueError):
    pass


def check_name(name):
    if not NAME.match(name) or ".." in name:
        raise UnknownSeries(name)
    return name


def ring_file_bytes(points):
    """The size of one ring's file of one block: header, a time per point, BLOCK values."""
    return HEADER_BYTES + points * (TIME_BYTES + BLOCK * VALUE_BYTES)


def ring_path(root, block, range_name):
    return root / f"{block:03d}-{range_name}.ring"


# The index: {"columns": {name: column}, "free": [column, …]}, replaced atomically.

_index_cache = {}  # path -> ((inode, mtime, size), index): read again only when it changed


def read_index(root):
    path = root / INDEX_FILE
    try:
        stat = path.stat()
    except FileNotFoundError:
        return {"columns": {}, "free": []}
    key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    cached = _index_cache.get(path)
    if cached and cached[0] == key:
        return cached[1]
    try:
        index = json.loads(path.read_text())
        if not isinstance(index.get("columns"), dict) or not isinstance(index.get("free"), list):
            raise ValueError("not an index")
    except ValueError as problem:  # a torn or foreign file: the graphs start again
        log.warning("%s is unreadable (%s): the graphs start again", path, problem)
        index = {"columns": {}, "free": []}
    _index_cache[path] = (key, index)
    return index


def _save_index(root, index):
    path = root / INDEX_FILE
    partial = root / f".{INDEX_FILE}.{os.getpid()}"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(index, handle, separators=(",", ":"))
    os.replace(partial, path)
    _index_cache.pop(path, None)


# One ring file of one block.

class Ring:
    def __init__(self, path, step, points, mode):
        self.path, self.step, self.points = path, step, points
        self.stat = _identity(path)
        self.times = numpy.memmap(path, dtype=numpy.int64, mode=mode, offset=HEADER_BYTES,
                                  shape=(points,))
        self.values = numpy.memmap(path, dtype=numpy.float32, mode=mode,
                                   offset=HEADER_BYTES + TIME_BYTES * points,
                                   shape=(points, BLOCK))

    def rows_between(self, start, end):
        """Row numbers and times of the points in [start, end] that hold their own time."""
        times = numpy.arange(start - start % self.step, end + 1, self.step, dtype=numpy.int64)
        rows = (times // self.step) % self.points
        held = self.times[rows] == times
        return rows, times, held


def _identity(path):
    stat = path.stat()
    return stat.st_ino, stat.st_size


def _valid(path, step, points):
    try:
        with open(path, "rb") as handle:
            header = handle.read(HEADER.size)
        size = path.stat().st_size
    except OSError:
        return False
    return (size == ring_file_bytes(points) and len(header) == HEADER.size
            and HEADER.unpack(header) == (MAGIC, step, points, BLOCK))


def _make(path, step, points):
    """A ring file with nothing sampled; made aside and renamed, so a reader never sees half."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(HEADER.pack(MAGIC, step, points, BLOCK).ljust(HEADER_BYTES, b"\0"))
        handle.write(bytes(TIME_BYTES * points))  # time 0: no point holds its own time yet
        row = numpy.full(BLOCK, numpy.nan, dtype=numpy.float32).tobytes()
        handle.write(row * points)
    os.replace(partial, path)


def open_ring(root, block, range_name, step, points, writable=False):
    """The ring, or None when it has no file (reading); a writer remakes a missing file, a
    corrupt one, or one of another layout (the sampling interval changed: the hour ring's
    step with it)."""
    path = ring_path(root, block, range_name)
    if not _valid(path, step, points):
        if not writable:
            return None
        if path.exists():
            log.warning("%s is damaged or of another layout: made again, empty", path)
        _make(path, step, points)
    return Ring(path, step, points, "r+" if writable else "r")


class _Writer:
    """The writer's open rings, kept between samples (mapped once, checked by inode/size)."""

    def __init__(self, root):
        self.root, self.rings, self.prefixed = root, {}, {}

    def columns_of(self, columns, prefixes):
        """The columns of the series under `prefixes`, kept while the index stays the same."""
        kept = self.prefixed.get(prefixes)
        if kept is None or kept[0] is not columns:  # the index is a new dict when it changes
            kept = self.prefixed[prefixes] = (columns, [
                column for name, column in columns.items() if name.startswith(prefixes)])
        return kept[1]

    def ring(self, block, range_name, step, points):
        key = (block, range_name)
        ring = self.rings.get(key)
        if ring is not None and ring.step == step and ring.points == points:
            try:
                if _identity(ring.path) == ring.stat:
                    return ring
            except FileNotFoundError:
                pass
        ring = self.rings[key] = open_ring(self.root, block, range_name, step, points,
                                           writable=True)
        return ring


_writers = {}


def _writer(root):
    if root not in _writers:
        _drop_whisper_files(root)
        _writers[root] = _Writer(root)
    return _writers[root]


def _drop_whisper_files(root):
    """The graphs of releases before these rings were one Graphite whisper file per series
    (64,540 bytes each: a gigabyte at 15,000 series) that nothing reads any more: removed
    before the first sample, with the directories they leave empty."""
    if (root / INDEX_FILE).exists():
        return
    for path in root.rglob("*.wsp"):
        path.unlink()
    for directory in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        with contextlib.suppress(OSError):  # not empty: something else lives there
            directory.rmdir()


def write(values, at=None, interval=None, always=(), zero=(), root=None):
    """Write one sample: {series: value} at `at` (unix seconds) into the rings of
    core.graphing.layout(interval). A series without a column gets one when its value is not
    0 or its name starts with one of `always`; a known series missing from `values` gets 0 when
    its name starts with one of `zero` (traffic that stopped), else nothing (NaN). Returns how
    many series were written."""
    if numpy is None:
        return 0
    at = int(at or time.time())
    rings = layout(interval) if interval else layout()
    root = root or graphs_dir()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    writer = _writer(root)
    index = read_index(root)
    columns = index["columns"]
    always, zero = tuple(always), tuple(zero)
    new = [check_name(name) for name, value in values.items()
           if name not in columns and (value or name.startswith(always))]
    if new:
        index = {"columns": dict(columns), "free": sorted(index["free"])}
        columns, free = index["columns"], index["free"]
        following = max([*columns.values(), *free], default=-1) + 1
        for name in new:
            if free:
                columns[name] = free.pop(0)
            else:
                columns[name], following = following, following + 1
        _save_index(root, index)
    blocks = max(columns.values(), default=-1) // BLOCK + 1
    if not blocks:
        return 0
    row = numpy.full(blocks * BLOCK, numpy.nan, dtype=numpy.float32)
    if zero:
        row[writer.columns_of(columns, zero)] = 0.0
    written = [(columns[name], value) for name, value in values.items() if name in columns]
    if written:
        places, numbers = zip(*written, strict=True)
        row[list(places)] = numbers
    for block in range(blocks):
        finer = None
        for range_name, step, points in rings:
            ring = writer.ring(block, range_name, step, points)
            slot = at - at % step
            place = (at // step) % points
            if finer is None:
                ring.values[place] = row[block * BLOCK:(block + 1) * BLOCK]
            else:  # the average of the finer ring's points inside this one's, so far
                rows, _, held = finer.rows_between(slot, at)
                ring.values[place] = _mean(finer.values[rows[held]])
            ring.times[place] = slot
            finer = ring
    return len(written)


def _mean(points):
    """Column averages of `points` (rows) leaving out NaN; NaN where a column has none."""
    known = ~numpy.isnan(points)
    counts = known.sum(axis=0)
    sums = numpy.where(known, points, 0).sum(axis=0, dtype=numpy.float64)
    with numpy.errstate(invalid="ignore", divide="ignore"):
        return numpy.where(counts > 0, sums / counts, numpy.nan).astype(numpy.float32)


def fetch(name, range_name="hour", now=None, root=None):
    """(timestamps, values) of one series over a range, from that range's ring: None where
    nothing was sampled; ([], []) for a series without a column or a ring without a file."""
    if range_name not in RANGES:
        raise UnknownSeries(range_name)
    check_name(name)
    if numpy is None:
        return [], []
    root = root or graphs_dir()
    column = read_index(root)["columns"].get(name)
    if column is None:
        return [], []
    header = _read_header(ring_path(root, column // BLOCK, range_name))
    if header is None:
        return [], []
    step, points = header
    ring = open_ring(root, column // BLOCK, range_name, step, points)
    if ring is None:
        return [], []
    now = int(now or time.time())
    rows, times, held = ring.rows_between(now - RANGES[range_name] + step, now)
    values = ring.values[rows, column % BLOCK].astype(numpy.float64)
    values[~held] = numpy.nan
    return times.tolist(), [None if value != value else value for value in values.tolist()]


def _read_header(path):
    """(step, points) of a ring file, or None."""
    try:
        with open(path, "rb") as handle:
            magic, step, points, columns = HEADER.unpack(handle.read(HEADER.size))
    except (OSError, struct.error):
        return None
    return (step, points) if magic == MAGIC and columns == BLOCK else None


def series(prefix="", root=None):
    """The names of the series that have a column, under `prefix` ("if": "if/…")."""
    columns = read_index(root or graphs_dir())["columns"]
    if not prefix:
        return sorted(columns)
    return sorted(name for name in columns if name.startswith(prefix.rstrip("/") + "/"))


def forget(names, root=None):
    """Free the columns of `names` (a deleted service's or real server's series): their
    points become NaN in every ring and the next new series take the columns."""
    root = root or graphs_dir()
    index = read_index(root)
    gone = {name: index["columns"][name] for name in names if name in index["columns"]}
    if not gone or numpy is None:
        return 0
    by_block = {}
    for column in gone.values():
        by_block.setdefault(column // BLOCK, []).append(column % BLOCK)
    for block, places in by_block.items():
        for path in root.glob(f"{block:03d}-*.ring"):
            header = _read_header(path)
            if header and _valid(path, *header):
                Ring(path, *header, "r+").values[:, places] = numpy.nan
    index = {"columns": {name: column for name, column in index["columns"].items()
                         if name not in gone},
             "free": sorted([*index["free"], *gone.values()])}
    _save_index(root, index)
    return len(gone)


def usage(root=None):
    """(series, bytes on disk) of the store: what the Graphing page shows."""
    root = root or graphs_dir()
    if not root.exists():
        return 0, 0
    files = [*root.glob("*.ring"), root / INDEX_FILE]
    return (len(read_index(root)["columns"]),
            sum(path.stat().st_size for path in files if path.exists()))
