"""The guide's 6.1.3 a and automatic failover (7.1) in Chromium, on the real stack: beat
dispatches the checks, the checks worker runs the iConnect script from the lb namespace, the
dataplane worker applies the transition."""

import re
import time

import pytest
from playwright.sync_api import expect

from lab import GUIDE_PORTS, VIP
from tests.netns.traffic import connect_many

pytestmark = pytest.mark.browser
INTERVAL, TIMEOUT, FAILURES = 2, 1, 3


def served_by(lab):
    return {a.split()[0] for a in connect_many(lab, VIP, GUIDE_PORTS, len(GUIDE_PORTS))}


def set_checks(page, check_type, script=None, interval=INTERVAL, timeout=TIMEOUT,
               failures=FAILURES):
    menu = page.get_by_role("navigation", name="Main menu")
    menu.get_by_role("link", name="Cluster Configuration", exact=True).click()
    menu.get_by_role("link", name="Layer 4 – Virtual Services").click()
    page.locator("[data-service=VNA]").get_by_role("link", name="Modify").click()
    page.get_by_label("Check Type").select_option(label=check_type)
    if script:
        page.get_by_label("External Script").select_option(label=script)
    page.get_by_label("Check Interval (s)").fill(str(interval))
    page.get_by_label("Check Timeout (s)").fill(str(timeout))
    page.get_by_label("Failure Count").fill(str(failures))
    page.get_by_role("button", name="Update").click()
    expect(page.get_by_text("Virtual service VNA saved.")).to_be_visible()


def test_automatic_failover_with_the_iconnect_health_check(guide_deployment, appliance_stack):
    page, lab = guide_deployment, appliance_stack.lab
    menu = page.get_by_role("navigation", name="Main menu")

    # 6.1.3 a: Health Check Scripts > Add New Health Check, from the template
    menu.get_by_role("link", name="Cluster Configuration", exact=True).click()
    menu.get_by_role("link", name="Health Check Scripts").click()
    page.get_by_role("link", name="Add New Health Check").click()
    page.get_by_label("Name").fill("Merative-iConnect-EntArchive")
    page.get_by_label("Type").select_option(label="Virtual Service")
    page.get_by_label("Template").select_option("IBM-WHI-iConnect-Enterprise-Archive")
    expect(page.get_by_label("Script")).to_have_value(re.compile("12950"))
    page.get_by_role("button", name="Update").click()
    expect(page.locator("[data-script=Merative-iConnect-EntArchive]")).to_be_visible()

    # 6.1.3 b 10.: automatic failover, with short intervals for the test
    set_checks(page, "External Script", "Merative-iConnect-EntArchive")
    try:
        menu.get_by_role("link", name="System Overview", exact=True).click()
        row = page.locator("tr[data-real-server=PrimaryCluster]")
        expect(row.locator("td.health")).to_contain_text("up", timeout=15_000)

        lab.stop_listener("primary")
        lab.start_listener("primary", [p for p in GUIDE_PORTS if p != 12950])
        stopped = time.monotonic()
        expect(row).to_have_class(re.compile(r"\bdown\b"), timeout=20_000)
        took = time.monotonic() - stopped
        # Failure Count checks, within one interval of slack (plus the page's 1-5 s refresh)
        assert took <= FAILURES * INTERVAL + INTERVAL + 5, took
        expect(row).to_contain_text("Down (health check failed)")
        assert served_by(lab) == {"secondary"}

        menu.get_by_role("link", name="Logs", exact=True).click()
        menu.get_by_role("link", name="Health Checks").click()
        expect(page.locator("table.list")).to_contain_text("port 12950")

        lab.stop_listener("primary")
        lab.start_listener("primary")
        menu.get_by_role("link", name="System Overview", exact=True).click()
        expect(row).to_have_class(re.compile(r"\bup\b"), timeout=20_000)
        assert served_by(lab) == {"primary"}
    finally:
        set_checks(page, "No checks, Always On", interval=30, timeout=5, failures=10)
        page.get_by_role("navigation", name="Main menu").get_by_role(
            "link", name="System Overview", exact=True).click()
