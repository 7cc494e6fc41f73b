"""A TCP port on the host that leads into a lab namespace: how the host's browser (and the
tests on 127.0.0.1) reach the WebUI, which in the lab runs inside the lb namespace on the
appliance's own addresses, as on a real appliance.

    python -m lab.forward --listen 127.0.0.1:9443 --netns lbadmin-lb --to 127.0.0.1:9443

The listening socket is bound in the host's namespace first; then the process (still one
thread) moves itself into the lab namespace with setns(2), so every connection it opens to
`--to` starts there. Each accepted connection is piped both ways to its own connection inside
the namespace. Prints "ready" once listening (as lab.server does), so a starter can wait.
"""

import argparse
import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys

CLONE_NEWNET = 0x40000000
CHUNK = 65536


def enter_namespace(name):
    """Move this process (it must have one thread) into the named network namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns into {name}: {os.strerror(error)}")
    finally:
        os.close(fd)


def address(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not ADDRESS:PORT")
    return host.strip("[]"), int(port)


async def pipe(reader, writer, other_writer):
    """Copy until end of file, then pass the half-close on; a reset drops both sides."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()
        other_writer.close()


async def relay(target, client_reader, client_writer):
    try:
        upstream_reader, upstream_writer = await asyncio.open_connection(*target)
    except OSError:
        client_writer.close()  # nothing listens in the namespace (yet): the client sees EOF
        return
    writers = (client_writer, upstream_writer)
    for writer in writers:
        with contextlib.suppress(OSError):
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP,
                                                       socket.TCP_NODELAY, 1)
    try:
        await asyncio.gather(pipe(client_reader, upstream_writer, client_writer),
                             pipe(upstream_reader, client_writer, upstream_writer))
    finally:
        for writer in writers:
            writer.close()


async def serve(listening, target):
    server = await asyncio.start_server(lambda r, w: relay(target, r, w), sock=listening)
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=address, required=True,
                        help="ADDRESS:PORT to listen on, in the host's namespace")
    parser.add_argument("--netns", required=True, help="the namespace to forward into")
    parser.add_argument("--to", type=address, required=True,
                        help="ADDRESS:PORT to connect to, inside that namespace")
    args = parser.parse_args(argv)
    try:
        family = socket.AF_INET6 if ":" in args.listen[0] else socket.AF_INET
        listening = socket.create_server(args.listen, family=family, backlog=128)
        enter_namespace(args.netns)
    except OSError as error:
        print(f"lab.forward: {error}", file=sys.stderr, flush=True)
        return 1
    asyncio.run(serve(listening, args.to))
    return 0


if __name__ == "__main__":
    sys.exit(main())
