"""The ARP seam of the split-brain guard (ha.split_brain): iputils' arping, run by the checks
worker in the appliance's namespace with its CAP_NET_RAW (never CAP_NET_ADMIN), and the
kernel's neighbour table. Unit tests replace this module; the netns tests use it.

- `duplicate(device, address)`: duplicate-address detection (`arping -D`, sender 0.0.0.0): does
  another host answer for an address this node holds? Exit 1 = someone answered, 0 = nobody.
- `answers(device, address)`: a plain ARP request from the interface's own address: does
  anybody (the Primary) hold `address`? Exit 0 = answered, 1 = nobody.
- `announce(device, address)`: one gratuitous ARP (`arping -U`), so that the neighbours' caches
  name this node for an address it holds.
- `neighbour_mac(address)`: the MAC the neighbour table holds for `address` (/proc/net/arp).

Any other exit (2: no such interface, no permission), a timeout or a missing arping is an
Answer with `error` set, never an answer either way.
"""

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SEARCH_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
WAIT = 1  # seconds arping waits for one reply (-w)
LIMIT = 3  # seconds before a hung arping is killed
REPLY = re.compile(r"reply from (?P<address>[0-9.]+) \[(?P<mac>[0-9A-Fa-f:]{17})\]")
ARP_TABLE = Path("/proc/net/arp")


@dataclass(frozen=True)
class Answer:
    answered: bool
    mac: str = ""  # who answered (lower case), when someone did
    error: str = ""  # why there is no answer either way


def binary():
    return shutil.which("arping", path=SEARCH_PATH) or "arping"


def _run(arguments):
    try:
        done = subprocess.run([binary(), *arguments], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=LIMIT, check=False)
    except subprocess.TimeoutExpired:
        return None, f"arping took more than {LIMIT} s"
    except OSError as problem:
        return None, f"arping could not run: {problem}"
    return done, ""


def _answer(done, error, answered_exit):
    if done is None:
        return Answer(False, error=error)
    if done.returncode not in (0, 1):
        words = (done.stderr or done.stdout).strip()[:200]
        return Answer(False, error=f"arping exited with {done.returncode}: {words}")
    found = REPLY.search(done.stdout)
    answered = done.returncode == answered_exit
    return Answer(answered, mac=found["mac"].lower() if answered and found else "")


def duplicate(device, address):
    """Whether another host answers for `address` on `device` (duplicate-address detection)."""
    done, error = _run(["-D", "-c", "1", "-w", str(WAIT), "-I", device, address])
    return _answer(done, error, answered_exit=1)


def answers(device, address):
    """Whether anybody answers an ARP request for `address` on `device`."""
    done, error = _run(["-c", "1", "-w", str(WAIT), "-I", device, address])
    return _answer(done, error, answered_exit=0)


def announce(device, address):
    """One gratuitous ARP for `address` (held here) on `device`; "" or why it failed."""
    done, error = _run(["-U", "-c", "1", "-w", str(WAIT), "-I", device, address])
    if done is None:
        return error
    return "" if done.returncode == 0 else f"arping -U exited with {done.returncode}"


def neighbour_mac(address, table=ARP_TABLE):
    """The MAC of `address` in this namespace's neighbour table (lower case), or ""."""
    try:
        lines = table.read_text().splitlines()[1:]
    except OSError:
        return ""
    for line in lines:
        fields = line.split()
        if len(fields) >= 4 and fields[0] == address and fields[3] != "00:00:00:00:00:00":
            return fields[3].lower()
    return ""
