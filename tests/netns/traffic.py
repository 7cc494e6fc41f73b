"""Real connections from a lab namespace, for data-plane tests."""

import json
import subprocess
import sys
import textwrap

MANY = textwrap.dedent("""
    import json, socket, sys
    host, ports, count, sources = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), \\
        json.loads(sys.argv[4])
    answers = []
    for i in range(count):
        port = ports[i % len(ports)]
        s = socket.socket()
        s.settimeout(3)
        if sources:
            s.bind((sources[i % len(sources)], 0))
        try:
            s.connect((host, port))
            answers.append(s.makefile().readline().strip() or "EMPTY")
        except OSError as error:
            answers.append(f"ERROR {type(error).__name__}")
        finally:
            s.close()
    print(json.dumps(answers))
""")

HOLD = textwrap.dedent("""
    import socket, sys
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
    lines = s.makefile()
    print(lines.readline().strip(), flush=True)
    for request in sys.stdin:
        try:
            s.sendall(request.encode())
            print(lines.readline().strip() or "CLOSED", flush=True)
        except OSError as error:
            print(f"ERROR {type(error).__name__}", flush=True)
""")


def connect_many(lab, host, ports, count, sources=(), role="client"):
    """Open `count` short connections in turn (cycling ports and source addresses); return each
    first line, e.g. 'primary port 12000 client 198.51.100.10', or 'ERROR …'."""
    result = subprocess.run(
        [*lab.exec_prefix(role), sys.executable, "-c", MANY, host, json.dumps(list(ports)),
         str(count), json.dumps(list(sources))],
        capture_output=True, text=True, timeout=120, check=True)
    return json.loads(result.stdout)


def ask(lab, host, port):
    return connect_many(lab, host, [port], 1)[0]


class HeldConnection:
    """One connection kept open from the client namespace; `talk()` sends a line and returns
    the answer ('… echo …', 'CLOSED', or 'ERROR ConnectionResetError')."""

    def __init__(self, lab, host, port):
        self.process = subprocess.Popen(
            [*lab.exec_prefix("client"), sys.executable, "-u", "-c", HOLD, host, str(port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.greeting = self.process.stdout.readline().strip()

    def talk(self, line="ping"):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def close(self):
        self.process.kill()
        self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
