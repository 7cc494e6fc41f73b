"""The appliance's processes for real: Redis, workers in the lab, and `make demo` itself."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from lab import LB2_EXTERNAL_ADDRESS, LB_EXTERNAL_ADDRESS, existing_namespaces, unique_test_prefix
from tests.conftest import free_port, needs_root

pytestmark = pytest.mark.netns
ROOT = Path(__file__).resolve().parents[2]


def https_get(port, path):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw) as tls:
        tls.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    return answer.decode(errors="replace")


HTTPS_GET = textwrap.dedent("""
    import socket, ssl, sys
    host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    context = ssl._create_unverified_context()
    with socket.create_connection((host, port), timeout=5) as raw, \\
            context.wrap_socket(raw) as tls:
        tls.sendall(f"GET {path} HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n".encode())
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    sys.stdout.write(answer.decode(errors="replace"))
""")


def https_get_from(exec_prefix, host, port, path):
    """GET over HTTPS from inside a lab namespace (`exec_prefix`: the lab's for a role)."""
    result = subprocess.run([*exec_prefix, sys.executable, "-c", HTTPS_GET, host, str(port),
                             path], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_task_through_redis_runs_on_the_dataplane_worker_inside_the_lab(appliance_stack):
    result = appliance_stack.celery_app().send_task(
        "network.tasks.describe_network_namespace")
    interfaces = {i["name"]: i["addresses"] for i in result.get(timeout=20)}
    # The lb namespace's own interfaces, not the host's: the worker acts inside the lab.
    assert "192.0.2.1/24" in interfaces["eth0"]
    assert "198.51.100.1/24" in interfaces["eth1"]


def test_the_webui_answers_over_https_and_sends_strangers_to_login(appliance_stack):
    answer = https_get(appliance_stack.https_port, "/lbadmin/cluster/virtual-services/")
    assert answer.split(" ", 2)[1] == "302"
    assert "Location: /lbadmin/login/?next=/lbadmin/cluster/virtual-services/" in answer


def test_the_webui_runs_in_the_lb_namespace_and_the_lab_client_reaches_it_on_9443(
        appliance_stack):
    lab = appliance_stack.lab
    web = appliance_stack.processes["web"]
    assert (os.stat(f"/proc/{web.pid}/ns/net").st_ino
            == os.stat(f"/run/netns/{lab.ns('lb')}").st_ino)
    answer = https_get_from(lab.exec_prefix("client"), LB_EXTERNAL_ADDRESS, 9443,
                            "/lbadmin/login/")
    assert answer.split(" ", 2)[1] == "200"
    assert "Log in" in answer
    # and the host's forwarded port leads to the same WebUI
    assert "Log in" in https_get(appliance_stack.https_port, "/lbadmin/login/")


def test_a_restarted_webui_comes_back_in_the_lb_namespace_behind_the_same_forward(
        appliance_stack):
    lab = appliance_stack.lab
    forwards = [p for p in lab.listeners if p.role == "lb-forward"]
    appliance_stack.restart_service("web")
    web = appliance_stack.processes["web"]
    assert (os.stat(f"/proc/{web.pid}/ns/net").st_ino
            == os.stat(f"/run/netns/{lab.ns('lb')}").st_ino)
    assert [p for p in lab.listeners if p.role == "lb-forward"] == forwards
    assert all(p.poll() is None for p in forwards)
    assert "Log in" in https_get(appliance_stack.https_port, "/lbadmin/login/")
    assert "Log in" in https_get_from(lab.exec_prefix("client"), LB_EXTERNAL_ADDRESS, 9443,
                                      "/lbadmin/login/")


def processes_using(data_dir):
    """Processes whose environment names this data directory: everything a stack started."""
    found = []
    marker = f"LBADMIN_DATA_DIR={data_dir}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture
def data_dir():
    """A data directory the service user can reach (pytest's tmp_path is under a 0700
    directory of root's; the stack drops its services to the service user)."""
    path = Path(tempfile.mkdtemp(prefix="lbadmin-demo-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(f"{path}-secondary", ignore_errors=True)  # the demo's second appliance's


def test_make_demo_prints_the_url_and_password_and_ctrl_c_removes_everything(data_dir):
    needs_root()
    prefix = unique_test_prefix()
    port = free_port()
    while True:  # the secondary appliance's host port is the next one
        if free_port(port + 1) == port + 1:
            break
        port = free_port()
    secondary_dir = Path(f"{data_dir}-secondary")
    env = {**os.environ, "LBADMIN_DATA_DIR": str(data_dir), "LBADMIN_HTTPS_PORT": str(port),
           "LBADMIN_LISTEN_ADDRESS": "127.0.0.1", "LBADMIN_LAB_PREFIX": prefix}
    env.pop("LBADMIN_PASSWORD", None)
    demo = subprocess.Popen([sys.executable, "-m", "lab.demo"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        printed = []
        deadline = time.monotonic() + 180  # two appliances start, one after the other
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            assert line, "the demo ended early:\n" + "".join(printed)
            printed.append(line)
            if "Ctrl-C stops everything" in line:
                break
        text = "".join(printed)
        assert f"https://127.0.0.1:{port}/lbadmin/" in text
        own = f"https://{LB_EXTERNAL_ADDRESS}:9443/lbadmin/"
        assert own in text
        assert f"ip netns exec {prefix}client curl -k {own}login/" in text
        assert "user:     loadbalancer" in text
        password = next(line.split()[1] for line in printed if "password:" in line)
        assert len(password) >= 20
        # the pair's second appliance: its own host port, own address, own password and data
        assert f"https://127.0.0.1:{port + 1}/lbadmin/" in text
        own_2 = f"https://{LB2_EXTERNAL_ADDRESS}:9443/lbadmin/"
        assert f"ip netns exec {prefix}client curl -k {own_2}login/" in text
        passwords = [line.split()[1] for line in printed if "password:" in line]
        assert len(passwords) == 2 and len(passwords[1]) >= 20 and passwords[0] != passwords[1]
        assert text.count("user:     loadbalancer") == 2
        assert f"data and logs: {secondary_dir}" in text
        assert all(f"{prefix}{role}" in existing_namespaces()
                   for role in ("client", "lb", "lb2", "front", "primary", "secondary"))
        assert "Log in" in https_get(port, "/lbadmin/login/")
        assert "Log in" in https_get(port + 1, "/lbadmin/login/")
        for address in (LB_EXTERNAL_ADDRESS, LB2_EXTERNAL_ADDRESS):
            assert "Log in" in https_get_from(["ip", "netns", "exec", f"{prefix}client"],
                                              address, 9443, "/lbadmin/login/")
        assert processes_using(data_dir)
        assert processes_using(secondary_dir)
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(timeout=60)
        except subprocess.TimeoutExpired:
            demo.kill()
            raise
    assert demo.returncode == 0
    assert "all processes stopped, lab removed" in demo.stdout.read()
    assert not [name for name in existing_namespaces() if name.startswith(prefix)]
    assert processes_using(data_dir) == []
    assert processes_using(secondary_dir) == []
