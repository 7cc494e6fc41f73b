"""Health checks in the lab: real checks from the lb namespace against the cluster nodes, the
state machine, and the data plane following it (the engine's own tasks are exercised by the
browser tests on the real stack)."""

import subprocess
import sys

import pytest

from clusters import services
from clusters.models import RealServer, VirtualService
from core import health as state
from healthchecks.models import HealthCheckScript, HealthEvent
from healthchecks.scripts import run_script
from healthchecks.tasks import check_server
from healthchecks.templates_library import TEMPLATES
from lab import GUIDE_PORTS, PRIMARY_ADDRESS, VIP

from .conftest import inside
from .test_dataplane import CUT, USER, served_by
from .traffic import HeldConnection, ask, connect_many

pytestmark = pytest.mark.netns
SIX = [p for p in GUIDE_PORTS if p != 12950]


def vna_with_checks(**checks):
    fields = dict(label="VNA", vip=VIP, ports=",".join(map(str, GUIDE_PORTS)),
                  fallback_ip="192.0.2.120", fallback_masq=True, check_interval=2,
                  check_timeout=1, failure_count=3)
    fields.update(checks)
    service = VirtualService(**fields)
    service.full_clean()
    services.do_save_service(service, USER)
    server = RealServer(service=service, label="PrimaryCluster", ip=PRIMARY_ADDRESS)
    server.full_clean()
    return services.do_save_real_server(server, USER)


def check(lab, server, times=1):
    with inside(lab.ns("lb")):
        return [check_server(server.pk) for _ in range(times)]


def iconnect_script():
    return HealthCheckScript.objects.create(
        name="Merative-iConnect-EntArchive", template="IBM-WHI-iConnect-Enterprise-Archive",
        script=TEMPLATES["IBM-WHI-iConnect-Enterprise-Archive"])


def test_the_iconnect_template_fails_over_after_failure_count_and_comes_back(dataplane, lab):
    server = vna_with_checks(check_type="external", check_script=iconnect_script())
    dataplane.apply()
    assert check(lab, server) == [None]
    assert state.load(server.pk).state == "up"

    lab.stop_listener("primary")
    lab.start_listener("primary", SIX)  # port 12950 stops answering
    assert check(lab, server, 3) == [None, None, "down"]  # down at the third failure
    dataplane.apply()
    answers = connect_many(lab, VIP, GUIDE_PORTS, len(GUIDE_PORTS))
    assert {served_by(a)[0] for a in answers} == {"secondary"}
    event = HealthEvent.objects.get(event="down")
    assert "3 failed checks" in event.message and "port 12950" in event.output

    lab.stop_listener("primary")
    lab.start_listener("primary")
    assert check(lab, server) == ["up"]  # the first success puts it back
    dataplane.apply()
    answers = connect_many(lab, VIP, GUIDE_PORTS, len(GUIDE_PORTS))
    assert {served_by(a)[0] for a in answers} == {"primary"}


def test_a_success_resets_the_count(dataplane, lab):
    server = vna_with_checks(check_type="connect", check_port=12000)
    lab.stop_listener("primary")
    assert check(lab, server, 2) == [None, None]
    assert state.load(server.pk).fails == 2
    lab.start_listener("primary")
    assert check(lab, server) == [None]
    assert state.load(server.pk).fails == 0 and state.load(server.pk).state == "up"


def test_connect_checks_every_port_of_the_service_and_names_the_failed_one(dataplane, lab):
    server = vna_with_checks(check_type="connect", failure_count=1)
    assert check(lab, server) == [None]
    assert set(state.load(server.pk).ports) == set(GUIDE_PORTS)
    lab.stop_listener("primary")
    lab.start_listener("primary", SIX)
    assert check(lab, server) == ["down"]
    health = state.load(server.pk)
    assert "12950" in health.message and health.ports[12950] != "ok"
    lab.stop_listener("primary")
    lab.start_listener("primary")
    assert check(lab, server) == ["up"]


@pytest.fixture
def web_server(lab):
    """A real HTTP server in the primary namespace, on port 8080."""
    process = subprocess.Popen([*lab.exec_prefix("primary"), sys.executable, "-m",
                                "http.server", "8080", "--bind", PRIMARY_ADDRESS],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(50):
        if subprocess.run([*lab.exec_prefix("lb"), "bash", "-c",
                           f"exec 3<>/dev/tcp/{PRIMARY_ADDRESS}/8080"]).returncode == 0:
            break
        subprocess.run(["sleep", "0.1"])
    yield process
    process.kill()
    process.wait()


def test_negotiate_http_takes_a_server_out_and_puts_it_back(dataplane, lab, web_server):
    server = vna_with_checks(check_type="http", check_port=8080, check_request="/",
                             check_expect="200", failure_count=1)
    assert check(lab, server) == [None]
    assert "200" in state.load(server.pk).message
    service = server.service
    service.check_request = "/no-such-page"
    service.full_clean()
    services.do_save_service(service, USER)
    assert check(lab, server) == ["down"]
    assert "404" in state.load(server.pk).message
    service.check_request = "/"
    service.full_clean()
    services.do_save_service(service, USER)
    assert state.load(server.pk).state == "down"  # until the new check passes
    assert check(lab, server) == ["up"]


def test_negotiate_expects_text_in_the_answer(dataplane, lab, web_server):
    server = vna_with_checks(check_type="http", check_port=8080, check_expect="Directory",
                             failure_count=1)
    assert check(lab, server) == [None]
    service = server.service
    service.check_expect = "text that is not there"
    service.full_clean()
    services.do_save_service(service, USER)
    assert check(lab, server) == ["down"]


def test_ping_takes_a_server_out_and_puts_it_back(dataplane, lab):
    server = vna_with_checks(check_type="ping", failure_count=1)
    assert check(lab, server) == [None]
    subprocess.run(["ip", "-n", lab.ns("primary"), "link", "set", "eth0", "down"], check=True)
    assert check(lab, server) == ["down"]
    subprocess.run(["ip", "-n", lab.ns("primary"), "link", "set", "eth0", "up"], check=True)
    subprocess.run(["ip", "-n", lab.ns("primary"), "route", "replace", "default", "via",
                    "192.0.2.1", "dev", "eth0", "onlink"], check=True)
    results = check(lab, server, 3)
    assert "up" in results


def test_a_failed_server_keeps_or_cuts_open_connections_as_the_service_says(dataplane, lab):
    # Port 9 answers nothing: the check fails while the server itself keeps serving, so only
    # the conntrack cut can end the open connection (stopping the listener would end it too).
    server = vna_with_checks(check_type="connect", check_port=9, failure_count=1,
                             on_failure="cut")
    dataplane.apply()
    with HeldConnection(lab, VIP, 12100) as held:
        assert held.talk("before").startswith("primary port 12100 echo before")
        assert check(lab, server) == ["down"]
        result = dataplane.apply()
        assert result["cut"] == [server.pk]
        assert held.talk("after") in CUT
    assert served_by(ask(lab, VIP, 12100))[0] == "secondary"


def test_by_default_a_failed_server_keeps_its_open_connections(dataplane, lab):
    # Port 9 answers nothing: the check fails while the server itself keeps working.
    server = vna_with_checks(check_type="connect", check_port=9, failure_count=1)
    dataplane.apply()
    with HeldConnection(lab, VIP, 12100) as held:
        assert check(lab, server) == ["down"]
        assert dataplane.apply()["cut"] == []
        assert held.talk("kept").startswith("primary port 12100 echo kept")
        assert served_by(ask(lab, VIP, 12100))[0] == "secondary"


@pytest.fixture
def dicom_server(lab):
    """A real DICOM Verification SCP (pynetdicom) in the primary namespace, on port 11112."""
    code = ("from pynetdicom import AE; from pynetdicom.sop_class import Verification; "
            "ae = AE(ae_title='ANY-SCP'); ae.add_supported_context(Verification); "
            "ae.start_server(('0.0.0.0', 11112), block=True)")
    process = subprocess.Popen([*lab.exec_prefix("primary"), sys.executable, "-c", code],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if subprocess.run([*lab.exec_prefix("lb"), "bash", "-c",
                           f"exec 3<>/dev/tcp/{PRIMARY_ADDRESS}/11112"]).returncode == 0:
            break
        subprocess.run(["sleep", "0.1"])
    yield process
    process.kill()
    process.wait()


def test_the_dicom_c_echo_template_talks_to_a_real_dicom_server(lab, dicom_server):
    script = TEMPLATES["DICOM C-ECHO"]
    with inside(lab.ns("lb")):
        good = run_script(script, [VIP, 11112, PRIMARY_ADDRESS, 11112], 5)
        not_dicom = run_script(script, [VIP, 12000, PRIMARY_ADDRESS, 12000], 5)
        dicom_server.kill()
        dicom_server.wait()
        gone = run_script(script, [VIP, 11112, PRIMARY_ADDRESS, 11112], 5)
    assert good.ok, good.output
    assert "C-ECHO to ANY-SCP" in good.output and "success" in good.output
    assert not not_dicom.ok and "not a DICOM" in not_dicom.output
    assert not gone.ok and "refused" in gone.output.lower()
