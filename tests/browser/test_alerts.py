"""Cluster Configuration › Layer 4 – Advanced Configuration in Chromium, on the real stack: bad
values are refused next to their fields and nothing is saved; "Send test alert" says in words
what each channel did — a Smart Host that refuses, a webhook that answers — and then that it
was sent, through an SMTP sink, an HTTP receiver and snmptrapd in the lab's client namespace;
the last send error stays on the page. A virtual service's own Email Alert Destination Address
is on its Modify page."""

import pytest
from playwright.sync_api import expect

from lab import CLIENT_ADDRESS
from tests.netns.test_alerts import HTTP_PORT, SMTP_PORT, TRAP_PORT, Receivers
from tests.stacks import in_stack, wait_for

from .conftest import log_in

pytestmark = pytest.mark.browser
REFUSING_PORT = 2526  # nothing listens there: the relay refuses the connection

FORGET_ALERTS = """
from clusters.models import AlertSettings, VirtualService
AlertSettings.objects.all().delete()
VirtualService.objects.update(alert_address="")
"""


@pytest.fixture
def receivers(appliance_stack, tmp_path):
    receivers = Receivers(appliance_stack, tmp_path)
    try:
        receivers.start()
        yield receivers
    finally:
        receivers.stop()
        in_stack(appliance_stack, FORGET_ALERTS)  # the shared stack as it was


def open_advanced(page):
    menu = page.get_by_role("navigation", name="Main menu")
    menu.get_by_role("link", name="Cluster Configuration", exact=True).click()
    menu.get_by_role("link", name="Layer 4 – Advanced Configuration").click()
    expect(page.get_by_role("heading", name="Alerts")).to_be_visible()


def field_error(page, name):
    return page.locator(f"#field-{name} .field-error")


def fill(page, values):
    for label, value in values.items():
        page.get_by_label(label, exact=True).fill(value)


def test_the_alert_settings_refuse_bad_values_and_the_test_alert_reports_each_channel(
        page, webui, appliance_stack, receivers):
    log_in(page, webui, appliance_stack.generated_password)
    open_advanced(page)

    # nothing saved yet: the button says what is missing
    page.get_by_role("button", name="Send test alert").click()
    expect(page.get_by_text("No alert destination is saved")).to_be_visible()

    fill(page, {"Email Alert Destination Address": "noc at example", "Smart Host": "mail relay",
                "Webhook URL": "ftp://example.org/x", "SNMP Trap Receiver": "224.0.0.9",
                "Smart Host Port": "99999"})
    page.get_by_role("button", name="Update").click()
    expect(field_error(page, "destination_address")).to_have_text(
        "Enter an email address such as pacs-team@example.org.")
    expect(field_error(page, "smart_host")).to_contain_text(
        "“mail relay” is neither a host name such as mail.example.org nor an IP address.")
    expect(field_error(page, "webhook_url")).to_have_text(
        "Enter an http:// or https:// address such as https://alerts.example.org/lbadmin.")
    expect(field_error(page, "trap_host")).to_contain_text("224.0.0.9 cannot be used")
    expect(field_error(page, "smart_host_port")).to_contain_text("65535")
    # nothing half-saved
    open_advanced(page)
    expect(page.get_by_label("Email Alert Destination Address")).to_have_value("")
    expect(page.get_by_label("Webhook URL")).to_have_value("")

    # an address without a Smart Host is refused next to the Smart Host
    fill(page, {"Email Alert Destination Address": "noc@example.org"})
    page.get_by_role("button", name="Update").click()
    expect(field_error(page, "smart_host")).to_contain_text("Enter the Smart Host")

    # a relay that refuses: the test alert says so, and the webhook and the trap still go
    fill(page, {"Email Alert Destination Address": "noc@example.org",
                "Smart Host": CLIENT_ADDRESS, "Smart Host Port": str(REFUSING_PORT),
                "Webhook URL": f"http://{CLIENT_ADDRESS}:{HTTP_PORT}/hook",
                "SNMP Trap Receiver": CLIENT_ADDRESS, "Trap Port": str(TRAP_PORT)})
    page.get_by_role("button", name="Update").click()
    expect(page.get_by_text("Layer 4 advanced configuration saved.")).to_be_visible()
    page.get_by_role("button", name="Send test alert").click()
    result = page.locator("#test-alert-result")
    expect(result).to_contain_text("Test alert failed.", timeout=40_000)
    expect(result).to_contain_text(
        f"Email to noc@example.org failed: the Smart Host {CLIENT_ADDRESS}:{REFUSING_PORT} "
        "cannot be reached: Connection refused.")
    expect(result).to_contain_text(
        f"Webhook http://{CLIENT_ADDRESS}:{HTTP_PORT}/hook answered 204.")
    expect(result).to_contain_text(f"SNMP trap sent to {CLIENT_ADDRESS}:{TRAP_PORT}.")
    assert wait_for(lambda: len(receivers.webhooks()) == 1, 10)
    assert receivers.webhooks()[0]["type"] == "application/json"
    assert wait_for(lambda: "This is a test alert" in receivers.trap_log(), 10)
    # logged where Logs › System reads (the maintenance worker's log, or lbadmin.log)
    logs = appliance_stack.log_dir
    assert wait_for(lambda: any(
        f"alert not sent: Email to noc@example.org failed: the Smart Host {CLIENT_ADDRESS}"
        in (logs / name).read_text(errors="replace")
        for name in ("worker-maintenance.out", "lbadmin.log") if (logs / name).exists()), 10)
    page.reload()
    expect(page.locator("#alert-last-error")).to_contain_text(
        "Last send error (20")  # its time
    expect(page.locator("#alert-last-error")).to_contain_text("Connection refused")

    # the relay that answers: sent
    page.get_by_label("Smart Host Port").fill(str(SMTP_PORT))
    page.get_by_role("button", name="Update").click()
    page.get_by_role("button", name="Send test alert").click()
    expect(result).to_contain_text("Test alert sent.", timeout=40_000)
    expect(result).to_contain_text(
        f"Email sent to noc@example.org through {CLIENT_ADDRESS}:{SMTP_PORT}.")
    (mail,) = receivers.emails()
    assert mail["to"] == ["noc@example.org"]
    assert mail["subject"].startswith("[lbadmin] Test alert: This is a test alert, sent by "
                                      "loadbalancer")
    page.reload()
    expect(page.locator("#alert-last-ok")).to_contain_text("Last sent without error")


def test_a_virtual_service_has_its_own_alert_address(guide_deployment, receivers):
    page = guide_deployment
    menu = page.get_by_role("navigation", name="Main menu")
    menu.get_by_role("link", name="Cluster Configuration", exact=True).click()
    menu.get_by_role("link", name="Layer 4 – Virtual Services").click()
    page.locator("[data-service=VNA]").get_by_role("link", name="Modify").click()
    page.get_by_label("Email Alert Destination Address").fill("pacs@")
    page.get_by_role("button", name="Update").click()
    expect(field_error(page, "alert_address")).to_have_text(
        "Enter an email address such as pacs-team@example.org.")
    page.get_by_label("Email Alert Destination Address").fill("pacs-team@example.org")
    page.get_by_role("button", name="Update").click()
    expect(page.get_by_text("Virtual service VNA saved.")).to_be_visible()
    page.locator("[data-service=VNA]").get_by_role("link", name="Modify").click()
    expect(page.get_by_label("Email Alert Destination Address")).to_have_value(
        "pacs-team@example.org")
