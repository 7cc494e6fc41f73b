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

TEMPLATES = {
    "IBM-WHI-iConnect-Enterprise-Archive": ICONNECT,
    "Multi-port TCP": MULTI_PORT,
    "HTTP(S) status": HTTP_STATUS,
}
