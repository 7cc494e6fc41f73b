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
        self.lib, self.contexts, self.lock = lib, {}, threading.Lock()

    def free(self):
        with self.lock:
            for ctx in self.contexts.values():
                self.lib.nft_ctx_free(ctx)
            self.contexts.clear()

    def run(self, commands):
        """(ok, output, error) of running `commands` as one transaction."""
        namespace = os.stat("/proc/thread-self/ns/net").st_ino
        with self.lock:
            ctx = self.contexts.get(namespace)
            if ctx is None:
                ctx = self.contexts[namespace] = self.lib.nft_ctx_new(0)
                self.lib.nft_ctx_buffer_output(ctx)
                self.lib.nft_ctx_buffer_error(ctx)
            code = self.lib.nft_run_cmd_from_buffer(ctx, commands.encode())
            output = (self.lib.nft_ctx_get_output_buffer(ctx) or b"").decode()
            error = (self.lib.nft_ctx_get_error_buffer(ctx) or b"").decode().strip()
        return code == 0, output, error


_library = None


def _run(commands):
    global _library
    if _library is None:
        _library = _Library()
    return _library.run(commands)


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


def list_table():
    """lbadmin's table as the kernel has it now, or None when it is absent."""
    ok, output, error = _run(f"list table {TABLE}")
    if not ok:
        if "No such file or directory" in error:
            return None
        raise NftError(error)
    return output


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
    r"(\n\tmap persist \{(?:\n\t\t(?!elements)[^\n]*)*)\n\t\telements = \{[^}]*\}(?=\n)")


def without_runtime_content(listing):
    """Drop what changes with traffic alone (persistence entries), keep the configuration."""
    return DYNAMIC_ELEMENTS.sub(r"\1", listing)
