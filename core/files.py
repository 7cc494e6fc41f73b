"""Configuration files the appliance writes for the daemons it runs (keepalived, conntrackd,
snmpd, chronyd): one way to write them, so a daemon never reads half a file."""

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(path, text, mode=0o600):
    """Write `text` to `path` through a temporary file in the same directory renamed over it
    (made `mode` before the rename: never readable by others, not even for a moment). Returns
    whether the content changed (an unchanged file is not rewritten)."""
    path = Path(path)
    with contextlib.suppress(OSError):
        if path.read_text() == text:
            return False
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return True
