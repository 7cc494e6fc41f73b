"""The one seam to nftables. It acts in the caller's network namespace (the dataplane worker
is started inside the appliance's).

Scripts go through libnftables (what the nft command is built on) in-process: a Halt among
1,000 services is a few element changes, and starting the nft program for it cost a third of
the time (25 ms against 17 ms here).
"""

import ctypes
import os
import re
import subprocess
import threading

TABLE = "ip lbadmin"


class NftError(Exception):
    """nft refused a script; the kernel kept the ruleset it had (a transaction is all or none)."""


class _Library:
    """libnftables through ctypes, one context per network namespace (a context's netlink
    socket belongs to the namespace it was opened in)."""

    def __init__(self):
        lib = ctypes.CDLL("libnftables.so.1")
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        for name in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
            getattr(lib, name).argtypes = [ctypes.c_void_p]
        for name in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
            getattr(lib, name).argtypes = [ctypes.c_void_p]
            getattr(lib, name).restype = ctypes.c_char_p
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        self.lib, self.contexts, self.lock = lib, {}, threading.Lock()

    def free(self):
        with self.lock:
            for ctx in self.contexts.values():
                self.lib.nft_ctx_free(ctx)
            self.contexts.clear()

    def run(self, commands, as_json=False):
        """(ok, output, error) of running `commands` as one transaction (`as_json`: output
        as `nft -j` writes it; a context of its own, so the flag never leaks)."""
        namespace = (os.stat("/proc/thread-self/ns/net").st_ino, as_json)
        with self.lock:
            ctx = self.contexts.get(namespace)
            if ctx is None:
                ctx = self.contexts[namespace] = self.lib.nft_ctx_new(0)
                self.lib.nft_ctx_buffer_output(ctx)
                self.lib.nft_ctx_buffer_error(ctx)
                if as_json:
                    self.lib.nft_ctx_output_set_flags(ctx, OUTPUT_JSON)
            code = self.lib.nft_run_cmd_from_buffer(ctx, commands.encode())
            output = (self.lib.nft_ctx_get_output_buffer(ctx) or b"").decode()
            error = (self.lib.nft_ctx_get_error_buffer(ctx) or b"").decode().strip()
        return code == 0, output, error


_library = None
OUTPUT_JSON = 1 << 4  # NFT_CTX_OUTPUT_JSON


def _run(commands, as_json=False):
    global _library
    if _library is None:
        _library = _Library()
    return _library.run(commands, as_json)


def close_contexts():
    """Free every kept context (tests, whose namespaces come and go; a context's socket would
    keep its namespace alive)."""
    if _library is not None:
        _library.free()


def apply(script):
    """Apply a script as one transaction: all of it or none of it."""
    ok, _, error = _run(script)
    if not ok:
        raise NftError(error or "nftables refused the script")


def check(script):
    """`nft -c`: would the kernel take `script` now, over the live ruleset of the caller's
    namespace? Nothing is committed. NftError with nft's own words (line numbers as
    `/dev/stdin:<line>:<columns>`) when not. A program of its own, not the kept context:
    the firewall pages check seldom, and a check flag must never leak into an apply."""
    try:
        result = subprocess.run(["nft", "-c", "-f", "-"], input=script, capture_output=True,
                                text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as problem:
        raise NftError(f"nft could not be run: {problem}") from problem
    if result.returncode:
        raise NftError(result.stderr.strip() or "nftables refused the script")


def list_named_table(table):
    """`table` ("inet lbadmin_script") as the kernel lists it now, or None when absent."""
    ok, output, error = _run(f"list table {table}")
    if not ok:
        if "No such file or directory" in error:
            return None
        raise NftError(error)
    return output


def list_table():
    """lbadmin's table as the kernel has it now, or None when it is absent."""
    return list_named_table(TABLE)


def canonical(script):
    """How the kernel would list `script`'s table: load it into a fresh, empty network namespace
    made for this call alone (unshare), list it there, and let the namespace go. The namespace
    belongs to a user namespace of its own, so the dataplane worker needs no CAP_SYS_ADMIN for
    it (its CAP_NET_ADMIN applies to its own network namespace only)."""
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--net", "--",
         "sh", "-c", 'nft -f - && nft list table ip lbadmin'],
        input=script, capture_output=True, text=True, timeout=60)
    if result.returncode:
        raise NftError(result.stderr.strip())
    return result.stdout


DYNAMIC_ELEMENTS = re.compile(
    r"(\n\t(?:map persist|set flows|set opened) \{(?:\n\t\t(?!elements)[^\n]*)*)"
    r"\n\t\telements = \{[^}]*\}(?=\n)")


def without_runtime_content(listing):
    """Drop what changes with traffic alone (persistence entries, traffic counters), keep the
    configuration."""
    return DYNAMIC_ELEMENTS.sub(r"\1", listing)


COUNTER_SETS = ("flows", "opened")
# One element of `nft list set` (text): the mark (hex), for flows its direction, its counter.
# The text listing, not `-j`: at 1,000 services x 2 real servers (6,000 elements) libnftables
# took 47 ms to write JSON and json.loads 8 ms more, against 22 ms for the text and 2 ms for
# this expression — the sampler's biggest cost after the rings.
COUNTER_ELEMENTS = {  # a mark is listed in hex (0x0000002a)
    "flows": re.compile(r"0x([0-9a-f]+) \. (original|reply) counter packets (\d+) bytes (\d+)"),
    "opened": re.compile(r"0x([0-9a-f]+) counter packets (\d+)"),
}


def read_counters():
    """The traffic counters of lbadmin's table (render.py's `count` chain), as `nft list set`
    gives them, one call per set (nft 1.0.6 refuses two listings in one buffer):
    {"flows": {(mark, "original" | "reply"): (packets, bytes)}, "opened": {mark: connections}}
    — only marks that carried traffic in the last hour; empty when the table is absent."""
    counters = {"flows": {}, "opened": {}}
    for name in COUNTER_SETS:
        ok, output, error = _run(f"list set {TABLE} {name}")
        if not ok:
            if "No such file or directory" in error:
                return {"flows": {}, "opened": {}}
            raise NftError(error)
        _, _, elements = output.partition("elements = {")
        if name == "flows":
            counters["flows"] = {
                (int(mark, 16), direction): (int(packets), int(octets))
                for mark, direction, packets, octets in COUNTER_ELEMENTS["flows"].findall(elements)}
        else:
            counters["opened"] = {int(mark, 16): int(packets) for mark, packets
                                  in COUNTER_ELEMENTS["opened"].findall(elements)}
    return counters
