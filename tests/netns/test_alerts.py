"""Alerts through real channels, from a whole appliance (real workers, Redis, beat and the
supervisor): an SMTP sink (aiosmtpd), an HTTP receiver and snmptrapd run in the lab's client
namespace, and the appliance's Smart Host, webhook and trap receiver point at them. A real
server whose listener stops is one email (to the global and the service's address), one POST
and one trap, saying that the fallback server took over; its return is the "up" alert; a killed
worker is a "service died" alert once the supervisor restarted it; an apply the kernel refuses
is an "apply failed" alert."""

import email
import email.policy
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from lab import CLIENT_ADDRESS, SECONDARY_ADDRESS, VIP
from tests.conftest import running_stack
from tests.stacks import in_stack, wait_for

pytestmark = pytest.mark.netns
PORT = 12000
SMTP_PORT, HTTP_PORT, TRAP_PORT = 2525, 8080, 1162
TRAP_OID = "1.3.6.1.4.1.8072.9999.9999.7"  # maintenance.traps.BASE

SMTP_SINK = textwrap.dedent("""
    import json, sys, threading
    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            with open(sys.argv[3], "a") as out:
                out.write(json.dumps({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                                      "data": envelope.content.decode("utf-8", "replace")})
                          + "\\n")
            return "250 OK"

    controller = Controller(Sink(), hostname=sys.argv[1], port=int(sys.argv[2]))
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()
""")

HTTP_RECEIVER = textwrap.dedent("""
    import http.server, json, sys

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with open(sys.argv[3], "a") as out:
                out.write(json.dumps({"path": self.path, "type": self.headers["Content-Type"],
                                      "body": body.decode()}) + "\\n")
            self.send_response(204)
            self.end_headers()

    server = http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), Receiver)
    print("ready", flush=True)
    server.serve_forever()
""")

SETUP = textwrap.dedent(f"""
    from clusters import services
    from clusters.forms import AlertSettingsForm
    from clusters.models import AlertSettings, RealServer, VirtualService
    from lab import PRIMARY_ADDRESS
    service = VirtualService(label="VNA", vip="{VIP}", ports="{PORT}", check_type="connect",
                             check_interval=2, check_timeout=1, failure_count=2,
                             fallback_ip="{SECONDARY_ADDRESS}", fallback_port=0,
                             alert_address="pacs@example.org")
    service.full_clean()
    service = services.do_save_service(service, "tester")
    server = RealServer(service=service, label="PrimaryCluster", ip=PRIMARY_ADDRESS)
    server.full_clean()
    services.do_save_real_server(server, "tester")
    form = AlertSettingsForm({{
        "source_address": "lbadmin@lb.example.org", "destination_address": "noc@example.org",
        "smart_host": "{CLIENT_ADDRESS}", "smart_host_port": "{SMTP_PORT}",
        "webhook_url": "http://{CLIENT_ADDRESS}:{HTTP_PORT}/hook",
        "trap_host": "{CLIENT_ADDRESS}", "trap_port": "{TRAP_PORT}",
        "trap_community": "public"}}, instance=AlertSettings.load())
    assert form.is_valid(), form.errors
    services.do_save_alert_settings(form.instance, "tester")
""")


class Receivers:
    """The SMTP sink, the HTTP receiver and snmptrapd in the client namespace, each writing
    what it received to a file of its own."""

    def __init__(self, stack, directory):
        self.stack, self.directory = stack, directory
        self.mail, self.posts = directory / "mail.jsonl", directory / "posts.jsonl"
        self.traps = directory / "traps.log"
        self.processes = []

    def start(self):
        prefix = self.stack.lab.exec_prefix("client")
        for script, port, out in ((SMTP_SINK, SMTP_PORT, self.mail),
                                  (HTTP_RECEIVER, HTTP_PORT, self.posts)):
            process = subprocess.Popen([*prefix, sys.executable, "-c", script, CLIENT_ADDRESS,
                                        str(port), str(out)], stdout=subprocess.PIPE,
                                       text=True, start_new_session=True)
            self.processes.append(process)
            assert process.stdout.readline().strip() == "ready"
        config = self.directory / "snmptrapd.conf"
        config.write_text("disableAuthorization yes\n")
        self.processes.append(subprocess.Popen(
            [*prefix, "snmptrapd", "-f", "-C", "-c", str(config), "-On", "-Lf",
             str(self.traps), "-p", str(self.directory / "snmptrapd.pid"),
             f"udp:{CLIENT_ADDRESS}:{TRAP_PORT}"], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True))
        assert wait_for(lambda: self.traps.exists() and "NET-SNMP" in self.traps.read_text(),
                        10)

    def stop(self):
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def emails(self):
        if not self.mail.exists():
            return []
        found = []
        for line in self.mail.read_text().splitlines():
            item = json.loads(line)
            message = email.message_from_string(item["data"], policy=email.policy.default)
            found.append({"to": sorted(item["to"]), "subject": str(message["Subject"]),
                          "body": message.get_content(), "from": item["from"]})
        return found

    def webhooks(self):
        if not self.posts.exists():
            return []
        return [json.loads(line) for line in self.posts.read_text().splitlines()]

    def trap_log(self):
        return self.traps.read_text() if self.traps.exists() else ""

    def about(self, words):
        """(emails, webhook bodies, trap log entries) whose text holds `words`."""
        emails = [m for m in self.emails() if words in m["body"]]
        posts = [json.loads(p["body"]) for p in self.webhooks() if words in p["body"]]
        traps = [entry for entry in self.trap_log().split("\n20") if words in entry]
        return emails, posts, traps


@pytest.fixture(scope="module")
def stack():
    with running_stack() as started:
        yield started


@pytest.fixture(scope="module")
def receivers(stack, tmp_path_factory):
    receivers = Receivers(stack, tmp_path_factory.mktemp("alerts"))
    try:
        receivers.start()
        in_stack(stack, SETUP)
        yield receivers
    finally:
        receivers.stop()


def one_each(receivers, words, timeout=40):
    """Wait for `words` to arrive by email, webhook and trap; then check that it came once on
    each (a few more seconds: a second copy would come with the next delivery round)."""
    arrived = wait_for(lambda: all(receivers.about(words)), timeout, every=0.5)
    assert arrived, "\n".join(m["body"] for m in receivers.emails())
    time.sleep(5)
    emails, posts, traps = receivers.about(words)
    assert (len(emails), len(posts), len(traps)) == (1, 1, 1), (emails, posts, traps)
    return emails[0], posts[0], traps[0]


def test_a_real_server_down_then_up_is_one_alert_each_on_every_channel(stack, receivers):
    stack.lab.stop_listener("primary")
    try:
        down = ("Real server PrimaryCluster (192.0.2.110) of VNA is down after 2 failed checks "
                "in a row: port 12000: Connection refused; fallback server 192.0.2.120 took "
                "over")
        mail, post, trap = one_each(receivers, down)
        assert mail["to"] == ["noc@example.org", "pacs@example.org"]
        assert mail["from"] == "lbadmin@lb.example.org"
        assert mail["subject"].startswith("[lbadmin] Real server down: Real server "
                                          "PrimaryCluster")
        assert post["event"] == "real-server-down" and post["service"] == "VNA"
        assert post["details"]["fallback_took_over"] is True
        assert f"{TRAP_OID}.0.1" in trap and f"{TRAP_OID}.1.1" in trap \
            and "real-server-down" in trap
    finally:
        stack.lab.start_listener("primary")
    up = ("Real server PrimaryCluster (192.0.2.110) of VNA is up again: 1 port(s) accept "
          "connections; the fallback server 192.0.2.120 is no longer used")
    mail, post, trap = one_each(receivers, up)
    assert mail["subject"].startswith("[lbadmin] Real server up:")
    assert post["event"] == "real-server-up" and f"{TRAP_OID}.0.2" in trap
    status = in_stack(stack, "from core.alerts import delivery_status\n"
                             "print(sorted(delivery_status()))")
    assert "last_ok_at" in status and "last_error" not in status


def test_a_killed_worker_is_a_service_died_alert_once_it_is_restarted(stack, receivers):
    process = stack.processes["worker-checks"]
    old = process.pid
    os.killpg(old, signal.SIGKILL)
    words = f"The service worker-checks (pid {old}) exited with status"
    mail, post, trap = one_each(receivers, words, timeout=60)
    assert "the supervisor restarted it (restart 1)" in mail["body"]
    assert mail["to"] == ["noc@example.org"]  # no service's own address: the global one only
    assert post["event"] == "service-died" and post["details"]["restarted"] is True
    assert f"{TRAP_OID}.0.4" in trap
    assert stack.processes["worker-checks"].pid != old
    stack.wait_for_workers(timeout=60)


def test_an_apply_the_kernel_refuses_is_an_apply_failed_alert(stack, receivers):
    # lbadmin's table taken away by hand: the next change's difference has nothing to change
    lb = stack.lab.exec_prefix("lb")
    subprocess.run([*lb, "nft", "delete", "table", "ip", "lbadmin"], check=True)
    try:
        in_stack(stack, textwrap.dedent("""
            from clusters import services
            from clusters.models import RealServer
            services.do_set_state(RealServer.objects.get(label="PrimaryCluster"), "drain",
                                  "tester")
        """))
        mail, post, trap = one_each(receivers, "The data plane's apply of configuration "
                                               "generation", timeout=60)
        assert "failed while applying the ruleset" in mail["body"]
        assert "The previous ruleset stays live." in mail["body"]
        assert post["event"] == "apply-failed" and f"{TRAP_OID}.0.3" in trap
    finally:
        in_stack(stack, textwrap.dedent("""
            from clusters import services
            from clusters.models import RealServer
            from clusters.tasks import apply_dataplane
            services.do_set_state(RealServer.objects.get(label="PrimaryCluster"), "online",
                                  "tester")
            apply_dataplane.apply_async(kwargs={"full": True}).get(timeout=60)
        """))
