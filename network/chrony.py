"""The chrony seam: chrony.conf rendered from the NTP servers and written under
LBADMIN_ETC_DIR, and chronyd's own view of its sources read back with `chronyc -c`.

chronyd itself is a service of the Stack (runner/stack.py starts it where this module wrote
the file; the supervisor restarts it when the page saves). Its pid file, command socket and
drift file live in <data>/chrony, never in the host's /run/chrony or /var/lib/chrony; chronyc
reaches it over that unix socket, which needs no capability — only the same user (lbadmin),
which the WebUI is.
"""

import dataclasses
import subprocess

from django.conf import settings

from core.files import write_atomically
from core.runtime import (
    CHRONY_CONF_PATH,
    CHRONY_DIR_NAME,
    CHRONY_DRIFT_NAME,
    CHRONY_PID_NAME,
    CHRONY_SOCKET_NAME,
)

CHRONYC_TIMEOUT = 5  # seconds; over a local socket chronyc answers in milliseconds
# The longest path a unix socket may have (sun_path); chronyc binds its own socket beside
# chronyd's, named after its pid (at most 7 digits): the longer of the two.
SOCKET_PATH_MAX = 107
CLIENT_SOCKET_EXAMPLE = "chronyc.4194304.sock"


def runtime_dir():
    return settings.DATA_DIR / CHRONY_DIR_NAME


def socket_path():
    return runtime_dir() / CHRONY_SOCKET_NAME


def config_path():
    return settings.ETC_DIR / CHRONY_CONF_PATH


def render(servers, directory):
    """chrony.conf for `servers` (cleaned host names or addresses), with chronyd's run-time
    files in `directory`. A client only: `port 0` opens no NTP server port, `cmdport 0` no
    UDP command port; commands come over the unix socket alone."""
    for value in (str(directory), *servers):
        if not value or any(c.isspace() for c in value) or "#" in value:
            # chrony.conf has no quoting: a space or a '#' would change what a line means
            raise ValueError(f"{value!r} cannot be written to chrony.conf (a space or '#').")
    if len(str(directory / CLIENT_SOCKET_EXAMPLE)) > SOCKET_PATH_MAX:
        raise ValueError(f"the data directory's path is too long for chronyd's command socket "
                         f"in {directory}: a unix socket's path is at most {SOCKET_PATH_MAX} "
                         "bytes")
    return "".join([
        "# Written by lbadmin (Local Configuration > System Date & time): a save there "
        "replaces it.\n",
        # iburst: four quick requests at start, so a source is chosen within seconds
        *(f"server {server} iburst\n" for server in servers),
        # step the clock at start if it is more than 1 s off (Debian's default), slew after
        "makestep 1 3\n",
        # the kernel copies the system time to the hardware clock every 11 minutes
        "rtcsync\n",
        "port 0\n",
        "cmdport 0\n",
        f"bindcmdaddress {directory / CHRONY_SOCKET_NAME}\n",
        f"pidfile {directory / CHRONY_PID_NAME}\n",
        f"driftfile {directory / CHRONY_DRIFT_NAME}\n",
    ])


def write_config(text, path=None):
    """Replace chrony.conf in one rename (chronyd never reads half a file)."""
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, text)


def read_config(path=None):
    """chrony.conf as written, or None when there is none."""
    try:
        return (path or config_path()).read_text()
    except FileNotFoundError:
        return None


def remove_config(path=None):
    """No NTP server: no chrony.conf, so nothing starts chronyd again."""
    (path or config_path()).unlink(missing_ok=True)


# chronyc's source states (the second column of `sources`), in words
STATES = {
    "*": "synchronised to it",
    "+": "combined with the selected source",
    "-": "not combined (acceptable, left out)",
    "?": "unreachable or not yet usable",
    "x": "false ticker (disagrees with the others)",
    "~": "too variable",
}
MODES = {"^": "server", "=": "peer", "#": "reference clock"}


@dataclasses.dataclass
class Source:
    mode: str
    state: str
    name: str
    stratum: int
    poll: int
    reach: str  # octal, as chronyc gives it: the answers to the last eight polls
    last_rx: int | None  # seconds since the last sample; None: no sample yet
    offset: float  # seconds (the last sample, adjusted)
    error: float  # seconds: the margin of that sample

    @property
    def state_words(self):
        return STATES.get(self.state, self.state)

    @property
    def offset_words(self):
        return in_units(self.offset)

    @property
    def error_words(self):
        return in_units(self.error)

    @property
    def selected(self):
        return self.state == "*"

    @property
    def answered(self):
        """How many of the last eight polls it answered."""
        try:
            return bin(int(self.reach, 8)).count("1")
        except ValueError:
            return 0


@dataclasses.dataclass
class Tracking:
    ref_id: str  # hex, as chronyc gives it
    ref_name: str
    stratum: int
    ref_time: float  # epoch seconds of the last update
    correction: float  # seconds to add to the system clock (negative: the clock is fast)
    frequency: float  # ppm
    update_interval: float
    leap_status: str

    @property
    def clock_words(self):
        return clock_words(self.correction)

    @property
    def synchronised(self):
        """A source is chosen: chrony's leap status says it, and the reference is neither
        none (00000000) nor the local clock (7F7F0101, 'LOCL')."""
        return self.leap_status != "Not synchronised" and \
            self.ref_id.upper() not in ("00000000", "7F7F0101")


def parse_tracking(text):
    """`chronyc -c tracking`: one CSV line of 14 fields."""
    fields = text.strip().splitlines()[-1].split(",") if text.strip() else []
    if len(fields) != 14:
        raise ValueError(f"chronyc tracking gave {len(fields)} fields, not 14: {text!r}")
    return Tracking(ref_id=fields[0], ref_name=fields[1], stratum=int(fields[2]),
                    ref_time=float(fields[3]), correction=float(fields[4]),
                    frequency=float(fields[7]), update_interval=float(fields[12]),
                    leap_status=fields[13])


def parse_sources(text):
    """`chronyc -c sources`: one CSV line of 10 fields per source."""
    sources = []
    for line in text.strip().splitlines():
        fields = line.split(",")
        if len(fields) != 10:
            raise ValueError(f"chronyc sources gave {len(fields)} fields, not 10: {line!r}")
        sources.append(Source(mode=fields[0], state=fields[1], name=fields[2],
                              stratum=int(fields[3]), poll=int(fields[4]), reach=fields[5],
                              last_rx=_seconds(fields[6]), offset=float(fields[7]),
                              error=float(fields[9])))
    return sources


def _seconds(text):
    """chronyc's LastRx: a number of seconds, or (no sample yet) a huge number or '-'."""
    return int(text) if text.isdigit() and int(text) < 2**32 - 1 else None


def in_units(seconds):
    """0.000003487 -> '3.5 µs' (the smallest unit that keeps a whole number in front)."""
    size = abs(seconds)
    for unit, scale in (("s", 1), ("ms", 1e-3), ("µs", 1e-6)):
        if size >= scale:
            return f"{seconds / scale:.1f} {unit}"
    return f"{seconds / 1e-9:.0f} ns"


def clock_words(correction):
    """chronyc's own words for the system clock against NTP time."""
    if correction == 0:
        return "exactly on NTP time"
    return f"{in_units(abs(correction))} {'fast' if correction < 0 else 'slow'} of NTP time"


@dataclasses.dataclass
class Status:
    running: bool
    error: str = ""  # why chronyd could not be asked, in words
    tracking: Tracking | None = None
    sources: list = dataclasses.field(default_factory=list)

    @property
    def synchronised(self):
        return self.running and self.tracking is not None and self.tracking.synchronised


def chronyc(command, socket=None):
    """chronyc's CSV answer to one command over the command socket (no name lookups: -n).
    ChronycError says why it gave none."""
    try:
        result = subprocess.run(
            ["chronyc", "-c", "-n", "-h", str(socket or socket_path()), command],
            capture_output=True, text=True, timeout=CHRONYC_TIMEOUT, check=False)
    except FileNotFoundError:
        raise ChronycError("chronyc is not installed (Debian's package chrony).") from None
    except subprocess.TimeoutExpired:
        raise ChronycError(f"chronyd did not answer within {CHRONYC_TIMEOUT} s.") from None
    if result.returncode:
        words = (result.stderr or result.stdout).strip() or f"exit status {result.returncode}"
        raise ChronycError(f"chronyd is not running or cannot be reached ({words}).")
    return result.stdout


class ChronycError(Exception):
    pass


def read_status(socket=None):
    """What chronyd says now: synchronised or not, and each source."""
    try:
        tracking = parse_tracking(chronyc("tracking", socket))
        sources = parse_sources(chronyc("sources", socket))
    except (ChronycError, ValueError) as problem:
        return Status(running=False, error=str(problem))
    return Status(running=True, tracking=tracking, sources=sources)
