"""Health checks: the state machine, script execution, and the pages' input rules."""

import contextlib
import html
import os
import resource
import signal
import socket
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from clusters.models import VirtualService
from core import health as state
from healthchecks import scripts
from healthchecks.models import MAX_SCRIPT_BYTES, HealthCheckScript
from healthchecks.templates_library import TEMPLATES


def test_a_server_goes_down_at_the_failure_count_and_up_on_the_first_success():
    health = state.Health()
    assert [state.step(health, False, 3) for _ in range(3)] == [None, None, "down"]
    assert state.step(health, False, 3) is None  # stays down, no second transition
    assert state.step(health, True, 3) == "up"
    assert health.fails == 0


def test_any_success_resets_the_count():
    health = state.Health()
    state.step(health, False, 3)
    state.step(health, False, 3)
    assert state.step(health, True, 3) is None and health.fails == 0
    assert [state.step(health, False, 3) for _ in range(3)] == [None, None, "down"]


# A script runs only when the checks worker can drop it to nobody (root, or CAP_SETUID and
# CAP_SETGID): otherwise it is refused (tests/unit/test_script_sandbox.py).
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: only a root checks worker "
                             "can drop a script to nobody (CI runs as root)")


@as_root
def test_a_script_gets_ldirectords_four_arguments_and_runs_as_nobody():
    result = scripts.run_script('#!/bin/bash\necho "$1 $2 $3 $4 $(id -un)"; exit 0',
                                ["198.51.100.100", 12000, "192.0.2.110", 0], 5)
    assert result.ok and result.exit_code == 0
    assert result.output == "198.51.100.100 12000 192.0.2.110 0 nobody\n"


def alive(pid):
    """Whether process `pid` still runs (a zombie waiting to be reaped has died)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def dies_soon(pid, seconds=2.0):
    """SIGKILL is delivered, not waited for: give the kernel a moment."""
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@as_root
def test_a_script_that_hangs_is_killed_with_its_children_at_the_timeout():
    started = time.monotonic()
    result = scripts.run_script("#!/bin/bash\nsleep 60 &\necho $!\nsleep 60\n", [], 1)
    assert time.monotonic() - started < 3
    assert not result.ok and result.exit_code is None
    assert "killed after the 1 s timeout" in result.message
    child = int(result.output.split()[0])  # the background sleep, in the script's group
    assert dies_soon(child), f"the script's child {child} outlived the timeout"


@as_root
def test_a_child_that_leaves_the_scripts_session_is_killed_too():
    result = scripts.run_script(
        "#!/bin/bash\nsetsid bash -c 'echo $$; exec sleep 60' &\nsleep 60\n", [], 1)
    escaped = int(result.output.split()[0])
    try:
        assert not result.ok and result.exit_code is None
        assert dies_soon(escaped), f"{escaped}, in a session of its own, outlived the timeout"
    finally:
        # Leave nothing running: kill the sleeper if it escaped (and is still that sleeper).
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            if Path(f"/proc/{escaped}/cmdline").read_bytes().startswith(b"sleep\0"):
                os.kill(escaped, signal.SIGKILL)


@as_root
def test_a_script_that_prints_megabytes_keeps_only_the_cap():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = scripts.run_script("#!/bin/bash\nhead -c 300000000 /dev/zero | tr '\\0' x\n"
                                "exit 0\n", [], 30)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert result.ok
    assert len(result.output) == scripts.OUTPUT_CAP
    assert grown_mib < 20  # 300 MB went through; memory did not follow


@as_root
def test_a_script_without_a_shebang_says_it_is_not_executable():
    result = scripts.run_script("echo hi\n", [], 2)
    assert not result.ok and "not executable" in result.message


@as_root
def test_a_script_with_a_syntax_error_shows_the_error():
    result = scripts.run_script("#!/bin/bash\nif then fi\n", [], 2)
    assert not result.ok and "syntax error" in result.output


ICONNECT_PORTS = (12000, 12100, 12200, 12300, 12301, 12950, 12800)


def listening(port):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", port))
    except OSError:
        listener.close()
        raise
    listener.listen(64)
    return listener


@as_root
def test_the_iconnect_template_tries_all_seven_ports():
    """Healthy with all seven answering; failed, naming it, when any one of them does not."""
    script = TEMPLATES["IBM-WHI-iConnect-Enterprise-Archive"]
    arguments = ["198.51.100.100", 12000, "127.0.0.1", 0]
    listeners = {}
    try:
        try:
            for port in ICONNECT_PORTS:
                listeners[port] = listening(port)
        except OSError as error:
            pytest.skip(f"a port of the seven is taken on this host's loopback: {error}")
        assert scripts.run_script(script, arguments, 30).ok
        for port in ICONNECT_PORTS:
            listeners.pop(port).close()  # this one port stops answering
            result = scripts.run_script(script, arguments, 30)
            assert not result.ok and f"port {port} on 127.0.0.1 refused" in result.output
            listeners[port] = listening(port)
    finally:
        for listener in listeners.values():
            listener.close()


# the pages



@pytest.fixture
def admin(client, settings, tmp_path):
    settings.REDIS_URL = f"unix://{tmp_path}/nothing.sock"
    settings.CELERY_BROKER_URL = f"redis+socket://{tmp_path}/nothing.sock"
    user = get_user_model().objects.create_user("loadbalancer", password="a-Long-test-pass")
    client.force_login(user)
    return client


def error_in(response, field):
    text = response.content.decode()
    start = text.index(f'id="field-{field}"')
    block = text[start:text.index("</div>", start)]
    return html.unescape(block)


@pytest.mark.django_db
def test_choosing_a_template_fills_the_script(admin):
    response = admin.get(reverse("cluster:health-check-template"),
                         {"template": "IBM-WHI-iConnect-Enterprise-Archive"})
    assert "12950" in html.unescape(response.content.decode())


@pytest.mark.django_db
def test_the_guides_health_check_is_saved(admin):
    response = admin.post(reverse("cluster:health-check-add"), {
        "name": "Merative-iConnect-EntArchive", "type": "virtual",
        "template": "IBM-WHI-iConnect-Enterprise-Archive",
        "script": TEMPLATES["IBM-WHI-iConnect-Enterprise-Archive"]})
    assert response.status_code == 302
    assert HealthCheckScript.objects.get().name == "Merative-iConnect-EntArchive"


@pytest.mark.django_db
@pytest.mark.parametrize(("script", "words"), [
    ("", "The script is empty."),
    ("   \n", "The script is empty."),
    ("#!/bin/bash\n" + "x" * MAX_SCRIPT_BYTES, "larger than 64 KiB"),
    ("#!/bin/bash\n\x01\x02binary", "not valid text"),
])
def test_bad_scripts_are_refused(admin, script, words):
    response = admin.post(reverse("cluster:health-check-add"),
                          {"name": "x", "type": "virtual", "template": "", "script": script})
    assert words in error_in(response, "script")
    assert not HealthCheckScript.objects.exists()


@pytest.mark.django_db
def test_a_script_in_use_cannot_be_deleted_and_says_by_whom(admin):
    script = HealthCheckScript.objects.create(name="check", script="#!/bin/bash\nexit 0\n")
    VirtualService.objects.create(label="VNA", vip="198.51.100.100", ports="80",
                                  check_type="external", check_script=script)
    response = admin.post(reverse("cluster:health-check-delete", args=[script.pk]))
    assert "used by the virtual service “VNA”" in html.unescape(response.content.decode())
    assert HealthCheckScript.objects.exists()


SERVICE = {"label": "VNA", "vip": "198.51.100.100", "ports": "80", "protocol": "tcp",
           "forwarding": "nat", "scheduler": "wrr", "persistence_timeout": "300",
           "check_type": "connect", "check_request": "/", "check_interval": "30",
           "check_timeout": "5", "failure_count": "10", "on_failure": "keep",
           "fallback_port": "0"}


@pytest.mark.django_db
@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"check_interval": "ten"}, "check_interval", "whole number"),
    ({"check_interval": "0"}, "check_interval", "greater than or equal to 1"),
    ({"check_interval": "5000"}, "check_interval", "less than or equal to 3600"),
    ({"check_timeout": "30"}, "check_timeout", "shorter than the check interval"),
    ({"failure_count": "0"}, "failure_count", "greater than or equal to 1"),
    ({"failure_count": "x"}, "failure_count", "whole number"),
    ({"check_type": "external"}, "check_script", "Choose the external script"),
])
def test_bad_check_settings_are_refused_next_to_their_field(admin, changes, field, words):
    response = admin.post(reverse("cluster:virtual-service-add"), SERVICE | changes)
    assert words in error_in(response, field)
    assert not VirtualService.objects.exists()


@pytest.mark.django_db
def test_the_check_defaults_follow_the_guides_automatic_mode(admin):
    page = admin.get(reverse("cluster:virtual-service-add")).content.decode()
    assert 'name="check_interval" value="30"' in page
    assert 'name="failure_count" value="10"' in page


def test_a_missing_interpreter_is_named():
    result = scripts.run_script("#!/bin/no-such-shell\nexit 0\n", [], 2)
    assert not result.ok and "interpreter named on its #! line does not exist" in result.message


@pytest.mark.django_db
def test_scripts_typed_in_a_browser_are_saved_with_unix_line_ends(admin):
    admin.post(reverse("cluster:health-check-add"), {
        "name": "crlf", "type": "virtual", "template": "",
        "script": "#!/bin/bash\r\nexit 0\r\n"})
    assert HealthCheckScript.objects.get().script == "#!/bin/bash\nexit 0"
