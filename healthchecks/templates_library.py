"""Built-in health-check script templates (Cluster Configuration > Health Check Scripts).

Every script follows ldirectord's convention: it is called with the VIP, the virtual port, the
real server's IP and the real server's port (empty or 0 means the virtual port), and exits 0
when the real server is healthy. It runs without a shell, as the unprivileged user `nobody`.
"""

ICONNECT_PORTS = "12000 12100 12200 12300 12301 12950 12800"

ICONNECT = f"""#!/bin/bash
# IBM-WHI-iConnect-Enterprise-Archive: the real server is healthy only if all seven
# iConnect Enterprise Archive ports accept a TCP connection.
# Arguments: VIP, virtual port, real server IP, real server port (unused: all seven are tried).
RIP="$3"
for PORT in {ICONNECT_PORTS}; do
    if ! timeout 3 bash -c "exec 3<>/dev/tcp/$RIP/$PORT" 2>/dev/null; then
        echo "port $PORT on $RIP refused or timed out"
        exit 1
    fi
done
echo "all ports answer on $RIP"
exit 0
"""

MULTI_PORT = """#!/bin/bash
# Multi-port TCP: healthy only if every port in PORTS accepts a TCP connection.
# Edit PORTS for your service. Arguments: VIP, virtual port, real server IP, real server port.
PORTS="80 443"
RIP="$3"
for PORT in $PORTS; do
    if ! timeout 3 bash -c "exec 3<>/dev/tcp/$RIP/$PORT" 2>/dev/null; then
        echo "port $PORT on $RIP refused or timed out"
        exit 1
    fi
done
exit 0
"""

HTTP_STATUS = """#!/usr/bin/env python3
# HTTP(S) status: healthy if GET PATH answers with STATUS. Set SCHEME to "https" for TLS
# (the certificate is not verified: real servers often use their own).
# Arguments: VIP, virtual port, real server IP, real server port.
import http.client
import ssl
import sys

SCHEME, PATH, STATUS = "http", "/", 200
vip, vport, rip, rport = (sys.argv[1:] + ["", "", "", ""])[:4]
port = int(rport) if rport not in ("", "0") else int(vport)
if SCHEME == "https":
    context = ssl._create_unverified_context()
    connection = http.client.HTTPSConnection(rip, port, timeout=5, context=context)
else:
    connection = http.client.HTTPConnection(rip, port, timeout=5)
try:
    connection.request("GET", PATH, headers={"Host": vip})
    status = connection.getresponse().status
except OSError as error:
    print(f"{SCHEME}://{rip}:{port}{PATH}: {error}")
    sys.exit(1)
print(f"{SCHEME}://{rip}:{port}{PATH} answered {status}")
sys.exit(0 if status == STATUS else 1)
"""

DICOM_ECHO = r"""#!/usr/bin/env python3
# DICOM C-ECHO: healthy if the real server accepts a DICOM association for the Verification
# SOP Class and answers a C-ECHO request with status 0000 (success), as "echoscu" does.
# Set CALLED_AE to the AE title the archive expects. Standard library only.
# Arguments: VIP, virtual port, real server IP, real server port.
import os
import socket
import struct
import sys

CALLED_AE, CALLING_AE, TIMEOUT = "ANY-SCP", "LBADMIN", 5
VERIFICATION = b"1.2.840.10008.1.1"
IMPLICIT_LITTLE = b"1.2.840.10008.1.2"
APPLICATION_CONTEXT = b"1.2.840.10008.3.1.1.1"
IMPLEMENTATION_UID = b"2.25.295311451216233146745402113447446361105"


def item(kind, payload):
    return struct.pack(">BBH", kind, 0, len(payload)) + payload


def pdu(kind, payload):
    return struct.pack(">BBI", kind, 0, len(payload)) + payload


def element(group, number, value):
    if len(value) % 2:
        value += b"\0"
    return struct.pack("<HHI", group, number, len(value)) + value


def receive_pdu(sock):
    header = b""
    while len(header) < 6:
        chunk = sock.recv(6 - len(header))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        header += chunk
    kind, _, length = struct.unpack(">BBI", header)
    if length > 1 << 20:
        raise ValueError(f"not a DICOM answer (PDU length {length})")
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        body += chunk
    return kind, body


def main():
    vip, vport, rip, rport = (sys.argv[1:] + ["", "", "", ""])[:4]
    port = int(rport) if rport not in ("", "0") else int(vport)
    context = (struct.pack(">BBBB", 1, 0, 0, 0) + item(0x30, VERIFICATION)
               + item(0x40, IMPLICIT_LITTLE))
    user = item(0x51, struct.pack(">I", 16384)) + item(0x52, IMPLEMENTATION_UID)
    request = (struct.pack(">HH", 1, 0) + CALLED_AE.encode().ljust(16)
               + CALLING_AE.encode().ljust(16) + bytes(32) + item(0x10, APPLICATION_CONTEXT)
               + item(0x20, context) + item(0x50, user))
    with socket.create_connection((rip, port), timeout=TIMEOUT) as sock:
        sock.sendall(pdu(0x01, request))
        kind, body = receive_pdu(sock)
        if kind == 0x03:
            print(f"association rejected (result {body[1]}, source {body[2]}, reason {body[3]})")
            return 1
        if kind != 0x02:
            print(f"not a DICOM association answer (PDU type {kind:#04x})")
            return 1
        offset, accepted = 68, False
        while offset + 4 <= len(body):
            kind_item, _, length = struct.unpack(">BBH", body[offset:offset + 4])
            if kind_item == 0x21:
                accepted = body[offset + 6] == 0
            offset += 4 + length
        if not accepted:
            print("the Verification SOP Class was not accepted")
            return 1
        fields = (element(0, 0x0002, VERIFICATION) + element(0, 0x0100, struct.pack("<H", 0x30))
                  + element(0, 0x0110, struct.pack("<H", 1))
                  + element(0, 0x0800, struct.pack("<H", 0x0101)))
        command = element(0, 0x0000, struct.pack("<I", len(fields))) + fields
        pdv = struct.pack(">IBB", len(command) + 2, 1, 0x03) + command
        sock.sendall(pdu(0x04, pdv))
        kind, body = receive_pdu(sock)
        if kind != 0x04:
            print(f"no C-ECHO answer (PDU type {kind:#04x})")
            return 1
        data, status, offset = body[6:], None, 0
        while offset + 8 <= len(data):
            group, number, length = struct.unpack("<HHI", data[offset:offset + 8])
            if (group, number) == (0, 0x0900):
                status = struct.unpack("<H", data[offset + 8:offset + 10])[0]
            offset += 8 + length
        sock.sendall(pdu(0x05, bytes(4)))
        try:
            receive_pdu(sock)
        except (OSError, ValueError):
            pass
    if status != 0:
        print(f"C-ECHO answered with status {status!r}")
        return 1
    print(f"C-ECHO to {CALLED_AE} at {rip}:{port}: success")
    return 0


try:
    sys.exit(main())
except (OSError, ValueError, struct.error) as error:
    print(f"DICOM C-ECHO failed: {error}")
    sys.exit(1)
"""

TEMPLATES = {
    "IBM-WHI-iConnect-Enterprise-Archive": ICONNECT,
    "Multi-port TCP": MULTI_PORT,
    "HTTP(S) status": HTTP_STATUS,
    "DICOM C-ECHO": DICOM_ECHO,
}
