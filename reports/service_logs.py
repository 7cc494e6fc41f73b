"""Logs > System: the services' own logs in <data>/logs, read from their ends.

Every service the stack starts writes its output to `<data>/logs/<service>.out`; the
supervisor writes `supervisor.log` and Django's loggers `lbadmin.log`. The supervisor rotates
them past a size (runner.supervisor.rotate_logs), so a file may have a `.1` beside it. Only the
last TAIL_BYTES of each are read (seek from the end): a log is never loaded whole.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from core.runtime import SERVICES

TAIL_BYTES = 256 * 1024  # per service, the current file and its `.1` together
TAIL_BYTES_EACH = 64 * 1024  # per service when all are shown (and refreshed) together
LINES_SHOWN = 500
MAX_LINE = 2000  # characters of one line shown (the rest is cut, and says so)

# name -> file in <data>/logs, in the order the filter lists them
KNOWN_LOGS = {
    **{name: f"{name}.out" for name in SERVICES},
    "web-http": "web-http.out",
    "supervisor": "supervisor.log",
    "lbadmin": "lbadmin.log",
}
OTHER_LOG = re.compile(r"^([a-z0-9][a-z0-9_-]{0,40})\.(?:out|log)$")

LEVELS = ("debug", "info", "warning", "error")
LEVEL_FILTERS = {  # the filter's choice -> the lowest level shown
    "all": "debug", "info": "info", "warning": "warning", "error": "error",
}
_WORD = {"DEBUG": "debug", "INFO": "info", "NOTICE": "info", "WARNING": "warning",
         "WARN": "warning", "ERROR": "error", "CRITICAL": "error", "FATAL": "error",
         "EXCEPTION": "error"}
# [2026-11-28 11:10:46,123: WARNING/MainProcess] (celery), [2026-11-28 ...] [12] [ERROR]
# (gunicorn), 2026-11-28 11:10:46,123 INFO name ... (Django's loggers): the first level word
LEVEL_WORD = re.compile(r"(?<![A-Za-z])(DEBUG|INFO|NOTICE|WARNING|WARN|ERROR|CRITICAL|FATAL)"
                        r"(?![A-Za-z])")
# Redis: "1234:M 28 Nov 2026 11:10:46.123 # Warning ..." ('.' debug, '-' verbose, '*' notice)
REDIS_LINE = re.compile(r"^\d+:[CMSX] (\d{2}) (\w{3}) (\d{4}) (\d{2}:\d{2}:\d{2})\.\d+ ([.*#-]) ")
REDIS_LEVEL = {".": "debug", "-": "info", "*": "info", "#": "warning"}
ISO_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})")
MONTHS = {name: f"{n:02d}" for n, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}


@dataclass
class LogLine:
    service: str
    level: str
    text: str
    at: str = ""  # "YYYY-MM-DD HH:MM:SS" as the line says it (or the line before it), or ""
    number: int = 0  # its place in what was read, to keep a file's order


def log_files(log_dir):
    """{name: path} of the logs there are, known ones first, then any other *.out or *.log
    (names are taken from the directory, never from a request)."""
    log_dir = Path(log_dir)
    found = {name: log_dir / file for name, file in KNOWN_LOGS.items()
             if (log_dir / file).is_file()}
    try:
        others = sorted(log_dir.iterdir())
    except OSError:
        others = []
    for path in others:
        match = OTHER_LOG.match(path.name)
        if match and match.group(1) not in found and path.name not in KNOWN_LOGS.values() \
                and path.is_file():
            found[match.group(1)] = path
    return found


def tail_bytes(path, limit=TAIL_BYTES):
    """The last `limit` bytes of `path` (its rotated `.1` first if the current file holds
    fewer), starting at a whole line; b"" for a missing file."""
    path = Path(path)
    chunks, wanted = [], limit
    for candidate in (path, path.with_name(path.name + ".1")):
        if wanted <= 0:
            break
        try:
            with open(candidate, "rb") as handle:
                size = handle.seek(0, 2)
                start = max(0, size - wanted)
                handle.seek(start)
                data = handle.read(wanted)
        except OSError:
            continue
        if start > 0:  # a partial first line
            cut = data.find(b"\n")
            data = data[cut + 1:] if cut >= 0 else b""
        chunks.insert(0, data)
        wanted -= size
    return b"".join(chunks)


def level_of(line):
    """'debug', 'info', 'warning' or 'error' as the line's marker says; None without one."""
    redis_line = REDIS_LINE.match(line)
    if redis_line:
        return REDIS_LEVEL[redis_line.group(5)]
    word = LEVEL_WORD.search(line[:200])
    return _WORD[word.group(1)] if word else None


def time_of(line):
    iso = ISO_TIME.search(line[:80])
    if iso:
        return f"{iso.group(1)} {iso.group(2)}"
    redis_line = REDIS_LINE.match(line)
    if redis_line and redis_line.group(2) in MONTHS:
        day, month, year, clock = redis_line.group(1, 2, 3, 4)
        return f"{year}-{MONTHS[month]}-{day} {clock}"
    return ""


def parse(service, text):
    """The lines of one log with their levels: a line without a marker is "info", except the
    lines of a traceback (and indented continuation lines), which keep the level of the line
    that started them."""
    lines, level, at, in_traceback = [], "info", "", False
    for number, raw in enumerate(text.splitlines()):
        line = raw if len(raw) <= MAX_LINE else raw[:MAX_LINE] + " … (line cut)"
        if not line.strip():
            continue
        found = level_of(line)
        continuation = in_traceback or line[:1].isspace() or line.startswith("Traceback")
        if line.startswith("Traceback"):
            in_traceback = True
        elif in_traceback and not line[:1].isspace():
            in_traceback = False  # "ValueError: ..." ends it, and belongs to it
        if found is not None and not continuation:
            level = found
        elif not continuation:
            level = "info"
        at = time_of(line) or at
        lines.append(LogLine(service, level, line, at, number))
    return lines


def read_logs(log_dir, service=None, level="all", limit=LINES_SHOWN):
    """(lines newest first, {service: why it has nothing}) for one service or all of them.
    Lines of several services are merged by the time they carry (a line without one takes
    the time of the line before it)."""
    files = log_files(log_dir)
    wanted = {service: files[service]} if service in files else \
        ({} if service else files)
    lowest = LEVELS.index(LEVEL_FILTERS.get(level, "debug"))
    lines, missing = [], {}
    if service and service not in files:
        missing[service] = f"There is no log file for {service} yet (logs/" \
                           f"{KNOWN_LOGS.get(service, service + '.out')})."
    for order, (name, path) in enumerate(wanted.items()):
        data = tail_bytes(path, TAIL_BYTES if len(wanted) == 1 else TAIL_BYTES_EACH)
        if not data:
            missing[name] = f"logs/{path.name} is empty."
            continue
        for line in parse(name, data.decode("utf-8", errors="replace")):
            if LEVELS.index(line.level) >= lowest:
                line.number += order * 10_000_000
                lines.append(line)
    if len(wanted) > 1:
        lines.sort(key=lambda line: (line.at, line.number))
    return lines[::-1][:limit], missing
