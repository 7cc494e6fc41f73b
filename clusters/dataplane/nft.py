"""The one seam to nftables. It acts in the caller's network namespace (the dataplane worker
is started inside the appliance's)."""

import re
import subprocess

TABLE = "ip lbadmin"


class NftError(Exception):
    """nft refused a script; the kernel kept the ruleset it had (a transaction is all or none)."""


def _nft(*args, script=None, timeout=60):
    result = subprocess.run(["nft", *args], input=script, capture_output=True, text=True,
                            timeout=timeout)
    return result.returncode, result.stdout, result.stderr.strip()


def apply(script):
    """Apply a script as one transaction: all of it or none of it."""
    code, _, error = _nft("-f", "-", script=script)
    if code:
        raise NftError(error or f"nft exited with {code}")


def list_table():
    """lbadmin's table as the kernel has it now, or None when it is absent."""
    code, output, error = _nft("list", "table", *TABLE.split())
    if code:
        if "No such file or directory" in error:
            return None
        raise NftError(error)
    return output


def canonical(script):
    """How the kernel would list `script`'s table: load it into a fresh, empty network namespace
    made for this call alone (unshare), list it there, and let the namespace go."""
    result = subprocess.run(
        ["unshare", "--net", "--", "sh", "-c", 'nft -f - && nft list table ip lbadmin'],
        input=script, capture_output=True, text=True, timeout=60)
    if result.returncode:
        raise NftError(result.stderr.strip())
    return result.stdout


DYNAMIC_ELEMENTS = re.compile(
    r"(\n\tmap persist \{(?:\n\t\t(?!elements)[^\n]*)*)\n\t\telements = \{[^}]*\}(?=\n)")


def without_runtime_content(listing):
    """Drop what changes with traffic alone (persistence entries), keep the configuration."""
    return DYNAMIC_ELEMENTS.sub(r"\1", listing)
