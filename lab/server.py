"""The lab's cluster nodes: answer every connection with their name, the port and the client.

Run in the primary and secondary namespaces on the guide's seven ports, TCP and UDP:

    TCP: on connect  "primary port 12000 client 198.51.100.10\n"
         each line   "primary port 12000 echo <line>\n"   (so a test can see a connection live)
    UDP: each datagram gets the connect line.
    SIGUSR1: every open TCP connection gets "primary port 12000 push\n" (a server that talks
             first, for the HA pair's tests: a connection must survive a takeover both ways)

So anyone can see who served them and which source address the server saw (NAT keeps the
client's; MASQ shows the load balancer's).
"""

import argparse
import asyncio
import signal

from lab.namespaces import GUIDE_PORTS


def greeting(name, port, peer):
    return f"{name} port {port} client {peer[0]}\n".encode()


OPEN = set()  # (port, writer) of every open TCP connection, for SIGUSR1's push


def push(name):
    for port, writer in list(OPEN):
        writer.write(f"{name} port {port} push\n".encode())


async def serve_tcp(name, port, reader, writer):
    peer = writer.get_extra_info("peername")
    OPEN.add((port, writer))
    try:
        writer.write(greeting(name, port, peer))
        await writer.drain()
        while line := await reader.readline():
            writer.write(f"{name} port {port} echo ".encode() + line)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        OPEN.discard((port, writer))
        writer.close()


class UdpAnswer(asyncio.DatagramProtocol):
    def __init__(self, name, port):
        self.name, self.port = name, port

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(greeting(self.name, self.port, addr), addr)


async def main(name, host, ports):
    loop = asyncio.get_running_loop()
    servers = []
    for port in ports:
        servers.append(await asyncio.start_server(
            lambda r, w, port=port: serve_tcp(name, port, r, w), host, port, reuse_address=True))
        await loop.create_datagram_endpoint(lambda port=port: UdpAnswer(name, port),
                                            local_addr=(host, port))
    print("ready", flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, push, name)
    await stop.wait()
    for server in servers:
        server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 - inside a lab namespace
    parser.add_argument("--ports", default=",".join(map(str, GUIDE_PORTS)))
    args = parser.parse_args()
    asyncio.run(main(args.name, args.host, [int(p) for p in args.ports.split(",")]))
