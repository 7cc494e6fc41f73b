"""Alerts: the words of each alert, each channel's payload, which trigger raises which alert,
and a failing channel that never stops the others. The channels' seams (SMTP, the webhook's
POST, snmptrap) are replaced here; tests/netns/test_alerts.py sends through real ones."""

import json
import re
import time

import pytest
import redis
from django.core.exceptions import ValidationError

from clusters import alerts as layer4_alerts
from clusters.forms import AlertSettingsForm, VirtualServiceForm
from clusters.models import AlertSettings, RealServer, VirtualService
from core import alerts
from core import health as health_state
from ha import alerts as ha_alerts
from healthchecks import engine
from healthchecks.tasks import check_server
from maintenance import alerts as delivery
from maintenance import backup, fetch, mail, traps
from network.models import NetworkConfiguration

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue(redis_server):
    redis_server.flushall()
    yield redis_server
    redis_server.flushall()


@pytest.fixture
def vna():
    service = VirtualService.objects.create(
        label="VNA", vip="198.51.100.100", ports="12000", check_type="connect",
        failure_count=3, fallback_ip="192.0.2.120", alert_address="pacs@example.org")
    primary = RealServer.objects.create(service=service, label="PrimaryCluster",
                                        ip="192.0.2.110")
    return service, primary


# -- the words ---------------------------------------------------------------------------------

def test_a_real_server_down_says_why_and_that_the_fallback_server_took_over(vna):
    service, primary = vna
    text, details = layer4_alerts.server_transition(
        primary, "down", "port 12000: Connection refused", fails=3, down_after={primary.id})
    assert text == ("Real server PrimaryCluster (192.0.2.110) of VNA is down after 3 failed "
                    "checks in a row: port 12000: Connection refused; fallback server "
                    "192.0.2.120 took over")
    assert details["fallback_took_over"] is True and details["service"] == "VNA"


def test_a_real_server_up_says_the_fallback_server_is_no_longer_used(vna):
    _service, primary = vna
    text, details = layer4_alerts.server_transition(primary, "up", "1 port(s) accept "
                                                    "connections", down_after=set())
    assert text == ("Real server PrimaryCluster (192.0.2.110) of VNA is up again: 1 port(s) "
                    "accept connections; the fallback server 192.0.2.120 is no longer used")
    assert details["fallback_in_use"] is False


def test_a_server_down_while_another_serves_names_no_fallback(vna):
    service, primary = vna
    RealServer.objects.create(service=service, label="Other", ip="192.0.2.111")
    text, details = layer4_alerts.server_transition(primary, "down", "no echo reply",
                                                    down_after={primary.id})
    assert text.endswith("is down: no echo reply") and not details["fallback_in_use"]


def test_the_last_server_down_without_fallback_says_nothing_is_left(vna):
    service, primary = vna
    VirtualService.objects.filter(pk=service.pk).update(fallback_ip="")
    primary.refresh_from_db()
    text, _ = layer4_alerts.server_transition(primary, "down", "no echo reply",
                                              down_after={primary.id})
    assert text.endswith("; no real server of VNA is left and it has no fallback server")


# -- the queue ---------------------------------------------------------------------------------

def test_an_alert_is_queued_and_taken_once(queue):
    raised = alerts.raise_alert("service-died", "The service worker-checks died.",
                                details={"service": "worker-checks"})
    taken = alerts.take()
    assert [(a.id, a.event, a.text, a.details) for a in taken] == \
        [(raised.id, "service-died", "The service worker-checks died.",
          {"service": "worker-checks"})]
    assert alerts.take() == []


def test_a_repeating_failure_is_one_alert(queue):
    first = layer4_alerts.raise_apply_failed(7, "Error: Could not process rule", "applying")
    again = layer4_alerts.raise_apply_failed(7, "Error: Could not process rule", "applying")
    other = layer4_alerts.raise_apply_failed(8, "Error: Could not process rule", "applying")
    assert first is not None and again is None and other is not None
    assert [a.details["generation"] for a in alerts.take()] == [7, 8]
    assert first.text == ("The data plane's apply of configuration generation 7 failed while "
                          "applying: Error: Could not process rule. The previous ruleset stays "
                          "live.")


def test_with_redis_down_raising_an_alert_says_so_in_the_log_and_never_raises(caplog):
    dead = redis.Redis(unix_socket_path="/nonexistent/redis.sock", socket_connect_timeout=0.2)
    assert alerts.raise_alert("test", "nobody hears this", client=dead) is None
    assert "alert not queued" in caplog.text


# -- the triggers ------------------------------------------------------------------------------

def test_a_health_transition_raises_one_alert_each_way(vna, queue, monkeypatch):
    _service, primary = vna
    monkeypatch.setattr("healthchecks.tasks.apply_dataplane.delay", lambda: None)
    results = iter([False, False, False, False, True, True])
    monkeypatch.setattr(engine, "run", lambda target: engine.CheckResult(
        ok := next(results), "1 port(s) accept connections" if ok
        else "port 12000: Connection refused"))
    transitions = [check_server(primary.id) for _ in range(6)]
    assert transitions == [None, None, "down", None, "up", None]
    taken = alerts.take()
    assert [a.event for a in taken] == ["real-server-down", "real-server-up"]
    assert "fallback server 192.0.2.120 took over" in taken[0].text
    assert taken[0].service_id == primary.service_id
    assert health_state.load(primary.id).state == "up"


def test_a_failed_apply_raises_an_alert(queue, monkeypatch):
    from clusters.dataplane import apply

    monkeypatch.setattr(apply, "desired_ruleset", lambda owner=None: (_ for _ in ()).throw(
        OSError("database is locked")))
    result = apply.apply_dataplane()
    assert result["ok"] is False
    (alert,) = alerts.take()
    assert alert.event == "apply-failed" and "OSError: database is locked" in alert.text


def test_a_takeover_is_one_alert_after_backup_and_none_at_the_first_look(queue, settings,
                                                                         tmp_path):
    settings.DATA_DIR = tmp_path
    (tmp_path / "ha").mkdir()
    state_file = tmp_path / "ha" / "vrrp-state"
    state_file.write_text("backup 1.0")
    assert ha_alerts.note_vrrp_state() is None  # first look: remembered only
    state_file.write_text("master 2.0")
    alert = ha_alerts.note_vrrp_state()
    assert alert.event == "takeover" and "took over" in alert.text and "was passive" in alert.text
    assert ha_alerts.note_vrrp_state() is None  # still master: no second alert
    state_file.write_text("master 3.0")  # a fresh master after master: nothing taken over
    assert ha_alerts.note_vrrp_state() is None


# -- the payloads ------------------------------------------------------------------------------

def alert_of(vna_service, **kwargs):
    return alerts.Alert(event="real-server-down", text="Real server PrimaryCluster (192.0.2.110) "
                        "of VNA is down: port 12000: Connection refused",
                        service_id=vna_service.id, at=1_800_000_000.0, **kwargs)


def test_the_email_names_the_appliance_the_event_and_the_service(vna):
    service, _ = vna
    alert = alert_of(service)
    assert delivery.email_subject([alert], "lb1") == \
        f"[lb1] Real server down: {alert.text}"
    body = delivery.email_body([alert], "lb1", {service.id: "VNA"})
    assert body.startswith(alert.text + "\n\nWhen: 2027-01-15 08:00:00 UTC\nAppliance: lb1\n"
                                        "Event: real-server-down (warning)\nVirtual service: VNA")
    message = mail.build("lbadmin@lb1", ["a@example.org", "b@example.org"], "x\r\nBcc: evil",
                         body)
    assert message["To"] == "a@example.org, b@example.org" and "\n" not in message["Subject"]


def test_a_burst_to_the_same_recipients_is_one_email_listing_each(vna):
    service, _ = vna
    burst = [alert_of(service), alert_of(service, details={"n": 2})]
    assert delivery.email_subject(burst, "lb1").startswith("[lb1] 2 alerts: Real server down")
    assert delivery.email_body(burst, "lb1", {}).count("Real server PrimaryCluster") == 2


def test_the_webhook_gets_json_with_the_words_and_the_details(vna):
    service, _ = vna
    alert = alert_of(service, details={"fallback_took_over": True})
    body = json.loads(delivery.webhook_body(alert, "lb1", {service.id: "VNA"}))
    assert body == {"appliance": "lb1", "id": alert.id, "event": "real-server-down",
                    "severity": "warning", "subject": alert.subject, "text": alert.text,
                    "at": "2027-01-15T08:00:00+00:00", "service": "VNA",
                    "details": {"fallback_took_over": True}}


def test_the_trap_is_v2c_with_the_event_and_words_as_varbinds(vna):
    service, _ = vna
    alert = alert_of(service)
    command = traps.command("192.0.2.50", 162, "public", alert.event,
                            delivery.trap_bindings(alert, {service.id: "VNA"}))
    assert command[:10] == ["snmptrap", "-v", "2c", "-c", "public", "-r", "0", "-t", "3",
                            "192.0.2.50:162"]
    assert command[10:12] == ["", f"{traps.ALERT_TRAP}.1"]
    assert command[12:] == [f"{traps.OBJECTS}.1", "s", "real-server-down",
                            f"{traps.OBJECTS}.2", "s", alert.text,
                            f"{traps.OBJECTS}.3", "s", "VNA", f"{traps.OBJECTS}.4", "s",
                            "warning"]
    assert traps.command("2001:db8::5", 1162, "c", "test", [])[9] == "udp6:[2001:db8::5]:1162"
    # a DisplayString is ASCII: the words' typography is written plainly
    assert traps.varbinds("test", "Layer 4 – Advanced › “Alerts” é", "VNA ü", "info")[1:3] == [
        (f"{traps.OBJECTS}.2", "s", 'Layer 4 - Advanced > "Alerts" ?'),
        (f"{traps.OBJECTS}.3", "s", "VNA ?")]


# -- delivery ----------------------------------------------------------------------------------

@pytest.fixture
def channels(monkeypatch):
    """The three seams replaced: what each was asked to send; `fail` makes one refuse."""
    sent = {"email": [], "webhook": [], "trap": [], "fail": set()}

    def send_mail(host, port, message):
        if "email" in sent["fail"]:
            raise mail.MailError(f"the Smart Host {host}:{port} cannot be reached: "
                                 "Connection refused")
        sent["email"].append((host, port, message))

    def exchange(url, body, limit, deadline, headers=()):
        if "webhook" in sent["fail"]:
            raise fetch.FetchError(f"{url} cannot be reached (Connection refused).")
        sent["webhook"].append((url, json.loads(body), dict(headers)))
        return 204, b""

    def send_trap(host, port, community, event, bindings):
        sent["trap"].append((host, port, community, event, bindings))

    monkeypatch.setattr(mail, "send", send_mail)
    monkeypatch.setattr(fetch, "exchange", exchange)
    monkeypatch.setattr(traps, "send", send_trap)
    return sent


@pytest.fixture
def every_channel():
    settings = AlertSettings.load()
    settings.destination_address = "noc@example.org"
    settings.smart_host, settings.smart_host_port = "192.0.2.25", 2525
    settings.webhook_url = "http://192.0.2.80/hook"
    settings.trap_host = "192.0.2.162"
    settings.save()
    NetworkConfiguration.objects.update_or_create(pk=1, defaults={"hostname": "lb1"})
    return settings


def test_a_service_alert_goes_to_both_addresses_in_one_email_and_once_to_each_channel(
        vna, queue, channels, every_channel):
    service, primary = vna
    layer4_alerts.raise_server_transition(primary, "down", "port 12000: Connection refused", 3)
    assert delivery.deliver_queued() == 1
    ((host, port, message),) = channels["email"]
    assert (host, port) == ("192.0.2.25", 2525)
    assert message["To"] == "noc@example.org, pacs@example.org"
    assert message["From"] == "lbadmin@lb1"
    assert "fallback server 192.0.2.120 took over" in message.get_content()
    ((url, body, headers),) = channels["webhook"]
    assert url == "http://192.0.2.80/hook" and body["event"] == "real-server-down"
    assert headers == {"Content-Type": "application/json"}
    assert [t[3] for t in channels["trap"]] == ["real-server-down"]
    assert "last_ok_at" in alerts.delivery_status() and \
        "last_error" not in alerts.delivery_status()


def test_a_failing_relay_is_shown_and_never_stops_the_webhook_or_the_trap(
        vna, queue, channels, every_channel, caplog):
    channels["fail"].add("email")
    alerts.raise_alert("service-died", "The service worker-checks died.")
    test = alerts.raise_alert("test", "a test")
    assert delivery.deliver_queued() == 2
    assert len(channels["webhook"]) == 2 and len(channels["trap"]) == 2
    status = alerts.delivery_status()
    assert "cannot be reached: Connection refused" in status["last_error"]
    result = alerts.read_result(test.id)
    assert result["ok"] is False
    assert result["lines"][0].startswith("Email to noc@example.org failed: the Smart Host "
                                         "192.0.2.25:2525 cannot be reached")
    assert "Webhook http://192.0.2.80/hook answered 204." in result["lines"]
    assert "alert not sent" in caplog.text
    # the next round sends as usual
    channels["fail"].clear()
    alerts.raise_alert("test", "again")
    delivery.deliver_queued()
    assert len(channels["email"]) == 1


def test_with_no_destination_a_test_alert_says_so(queue, channels):
    test = alerts.raise_alert("test", "a test")
    delivery.deliver_queued()
    assert alerts.read_result(test.id) == {"ok": False, "lines": [delivery.NOWHERE]}
    assert channels["email"] == channels["webhook"] == channels["trap"] == []


def test_a_service_address_without_a_smart_host_is_a_shown_error(vna, queue, channels):
    _service, primary = vna
    layer4_alerts.raise_server_transition(primary, "down", "no echo reply")
    delivery.deliver_queued()
    assert alerts.delivery_status()["last_error"] == \
        "Email to pacs@example.org not sent: no Smart Host is set."


# -- the form (every writer: the page, restore, replication) -----------------------------------

def alert_form(**changes):
    data = {"source_address": "", "destination_address": "", "smart_host": "",
            "smart_host_port": "25", "webhook_url": "", "trap_host": "", "trap_port": "162",
            "trap_community": "public"} | changes
    return AlertSettingsForm(data, instance=AlertSettings.load())


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"destination_address": "noc at example"}, "destination_address",
     "Enter an email address such as pacs-team@example.org."),
    ({"destination_address": "noc@example.org"}, "smart_host", "Enter the Smart Host"),
    ({"smart_host": "mail server"}, "smart_host", "is neither a host name"),
    ({"smart_host": "224.0.0.1"}, "smart_host", "is not a host's address"),
    ({"smart_host_port": "70000"}, "smart_host_port", "less than or equal to 65535"),
    ({"webhook_url": "ftp://example.org/x"}, "webhook_url", "Enter an http:// or https://"),
    ({"webhook_url": "not a url"}, "webhook_url", "Enter an http:// or https://"),
    ({"trap_host": "192.0.2.1\nx"}, "trap_host", "is neither a host name"),
    ({"trap_host": "192.0.2.162", "trap_community": "pub lic"}, "trap_community",
     "may not contain spaces"),
])
def test_a_bad_value_is_refused_next_to_its_field(changes, field, words):
    form = alert_form(**changes)
    assert not form.is_valid()
    assert words in " ".join(form.errors[field]), form.errors


def test_good_values_are_stored_as_cleaned():
    form = alert_form(destination_address="noc@example.org", smart_host=" mail.example.org ",
                      webhook_url="https://alerts.example.org/lbadmin", trap_host="2001:db8::5")
    assert form.is_valid(), form.errors
    saved = form.save()
    assert saved.smart_host == "mail.example.org" and saved.trap_host == "2001:db8::5"
    assert saved.channels == ["email", "webhook", "trap"]


def test_the_service_form_refuses_a_bad_alert_address(vna):
    service, _ = vna
    from tests.forms import service_form

    with pytest.raises(AssertionError, match="Enter an email address"):
        service_form(service, {"alert_address": "pacs@"})
    assert service_form(service, {"alert_address": "other@example.org"}).is_valid()
    assert "alert_address" in VirtualServiceForm.Meta.fields


def test_validate_host_refuses_a_number_that_is_no_address():
    from clusters.validators import validate_host

    with pytest.raises(ValidationError):
        validate_host("999.1.1.1")
    assert validate_host("mail.example.org.") == "mail.example.org."


# -- backup and replication --------------------------------------------------------------------

def test_a_backup_carries_the_alert_settings_and_each_services_address(vna, every_channel):
    xml = backup.export_xml()
    assert b'alert_address="pacs@example.org"' in xml
    assert b'<alerts ' in xml and b'smart-host' not in xml and b'smart_host="192.0.2.25"' in xml
    VirtualService.objects.all().delete()
    AlertSettings.objects.all().delete()
    backup.restore(backup.parse(xml), "tester")
    assert VirtualService.objects.get().alert_address == "pacs@example.org"
    restored = AlertSettings.load()
    assert (restored.smart_host, restored.smart_host_port, restored.webhook_url,
            restored.trap_host) == ("192.0.2.25", 2525, "http://192.0.2.80/hook", "192.0.2.162")


def test_a_restored_bad_alert_value_is_refused_in_the_forms_words(vna, every_channel):
    xml = backup.export_xml().replace(b'webhook_url="http://192.0.2.80/hook"',
                                      b'webhook_url="ftp://x"')
    with pytest.raises(backup.BackupError, match="<alerts>: Webhook URL: Enter an http://"):
        backup.restore(backup.parse(xml), "tester")


def test_a_schema_2_backup_keeps_this_appliances_alert_settings(vna, every_channel):
    xml = backup.export_xml()
    old = re.sub(rb'\s*<alerts [^>]*/>', b"", xml).replace(b' alert_address="pacs@example.org"',
                                                          b"").replace(b'schema="3"',
                                                                       b'schema="2"')
    parsed = backup.parse(old)
    assert parsed["converted_from"] == "2" and parsed["alerts"] is None
    backup.restore(parsed, "tester")
    assert AlertSettings.load().smart_host == "192.0.2.25"
    assert VirtualService.objects.get().alert_address == ""


def test_the_ha_pair_replicates_the_alert_settings(every_channel):
    from ha.replication import LOCAL_ELEMENTS, replicated_xml

    assert "alerts" not in LOCAL_ELEMENTS
    assert b"<alerts " in replicated_xml()


# -- the page's answers when something is missing ----------------------------------------------

@pytest.fixture
def webui(client):
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_user("loadbalancer", password="x" * 12))
    return client


def test_the_page_says_redis_is_down_instead_of_failing(webui, settings):
    from django.urls import reverse

    settings.REDIS_URL = "unix:///nonexistent/redis.sock"
    response = webui.get(reverse("cluster:layer4-advanced"))
    assert response.status_code == 200
    assert "Redis is down" in response.content.decode()
    AlertSettings.objects.update_or_create(pk=1, defaults={"webhook_url": "http://192.0.2.8/"})
    response = webui.post(reverse("cluster:test-alert"), follow=True)
    assert "The test alert was not sent: Redis is down" in response.content.decode()


def test_a_test_alert_nobody_takes_is_given_up_in_words(webui, queue):
    from django.urls import reverse

    url = reverse("cluster:test-alert-result")
    assert webui.get(url, {"test": "../../etc", "sent": "1"}).status_code == 400
    waiting = webui.get(url, {"test": "a" * 32, "sent": str(int(time.time()))})
    assert waiting.status_code == 200 and "Sending the test alert" in waiting.content.decode()
    old = webui.get(url, {"test": "a" * 32, "sent": "1"})
    assert old.status_code == 286
    assert "the maintenance worker did not take it within 30 s" in old.content.decode()
    alerts.record_result("b" * 32, {"ok": True, "lines": ["Webhook <x> answered 204."]})
    done = webui.get(url, {"test": "b" * 32, "sent": "1"})
    assert done.status_code == 286 and "Test alert sent." in done.content.decode()
    assert "Webhook &lt;x&gt; answered 204." in done.content.decode()  # escaped
