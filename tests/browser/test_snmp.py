"""Local Configuration › SNMP Configuration in Chromium: errors next to their fields and
nothing saved, then a save that snmpd answers by from the lab's client, its secrets never
sent back to the browser, Restart Services listing snmpd, and turning it off again."""

import os
import subprocess

import pytest
from playwright.sync_api import expect

from tests.stacks import wait_for

from .conftest import log_in

pytestmark = pytest.mark.browser
COMMUNITY = "browser-c0mmunity"
AUTH, PRIV = "auth pass phrase", "priv-pass-phrase"
SYS_NAME = ".1.3.6.1.2.1.1.5.0"


def sys_name(stack, directory):
    """sysName asked from the lab's client with the community ("" when nothing answers)."""
    result = subprocess.run(
        [*stack.lab.exec_prefix("client"), "snmpget", "-On", "-Oqv", "-t", "1", "-r", "0",
         "-v2c", "-c", COMMUNITY, "198.51.100.1", SYS_NAME], capture_output=True, text=True,
        timeout=30, env={**os.environ, "MIBS": ":", "SNMP_PERSISTENT_DIR": str(directory),
                         "SNMPCONFPATH": str(directory)})
    return result.stdout.strip() if result.returncode == 0 else ""


def open_snmp_page(page):
    menu = page.get_by_role("navigation", name="Main menu")
    menu.get_by_role("link", name="Local Configuration", exact=True).click()
    menu.get_by_role("link", name="SNMP Configuration").click()
    expect(page.get_by_role("heading", name="SNMP Configuration")).to_be_visible()


def test_snmp_configuration_refuses_in_words_saves_and_hides_its_secrets(
        page, webui, appliance_stack, tmp_path):
    log_in(page, webui, appliance_stack.generated_password)
    open_snmp_page(page)
    try:
        page.get_by_label("Enable SNMP").check()
        page.get_by_label("SNMP v2c", exact=True).check()
        page.get_by_label("Community").fill("public")
        page.get_by_label("Allowed source network").fill("198.51.100.7/24")
        page.get_by_label("SNMP v3", exact=True).check()
        page.get_by_label("User name").fill("monitor")
        page.get_by_label("Authentication passphrase").fill("short")
        page.get_by_label("Privacy passphrase").fill(PRIV)
        page.get_by_role("button", name="Update").click()
        expect(page.locator("#field-community .field-error")).to_contain_text(
            "8 to 32 printable characters")
        expect(page.locator("#field-source_network .field-error")).to_contain_text(
            "198.51.100.7/24 has host bits set: the network is 198.51.100.0/24.")
        expect(page.locator("#field-auth_passphrase .field-error")).to_contain_text(
            "8 to 64 printable characters")
        expect(page.locator("#snmp-state")).to_contain_text("Off")
        assert not appliance_stack.snmp_configured()  # nothing saved, nothing written

        page.get_by_label("Community").fill(COMMUNITY)
        page.get_by_label("Allowed source network").fill("198.51.100.0/24")
        page.get_by_label("Authentication passphrase").fill(AUTH)
        page.get_by_label("Privacy passphrase").fill(PRIV)
        page.get_by_label("Location (sysLocation)").fill("<b>Rack 4</b>")
        page.get_by_role("button", name="Update").click()
        expect(page.get_by_text("SNMP settings saved")).to_be_visible()
        expect(page.locator("#snmp-state")).to_contain_text("On")

        # masked: the secrets are never in the page, only that they are saved
        for label in ("Community", "Authentication passphrase", "Privacy passphrase"):
            expect(page.get_by_label(label)).to_have_value("")
        expect(page.locator("#field-community .help")).to_contain_text("Saved (hidden)")
        html = page.content()
        assert COMMUNITY not in html and AUTH not in html and PRIV not in html
        expect(page.get_by_label("Location (sysLocation)")).to_have_value("<b>Rack 4</b>")

        # in effect: snmpd answers the lab's client with the community
        assert wait_for(lambda: sys_name(appliance_stack, tmp_path), 30, every=0.5)

        # a save with the secrets left blank keeps them: snmpd still answers
        page.get_by_label("Contact (sysContact)").fill("ops@example.org")
        page.get_by_role("button", name="Update").click()
        expect(page.get_by_text("SNMP settings saved")).to_be_visible()
        assert COMMUNITY in (appliance_stack.snmp_dir / "snmpd.conf").read_text()

        menu = page.get_by_role("navigation", name="Main menu")
        menu.get_by_role("link", name="Maintenance", exact=True).click()
        menu.get_by_role("link", name="Restart Services").click()
        expect(page.locator("tr[data-service=snmpd] .state")).to_contain_text("running")
    finally:
        open_snmp_page(page)
        page.get_by_label("Enable SNMP").uncheck()
        page.get_by_role("button", name="Update").click()
        expect(page.get_by_text("the SNMP agent is off")).to_be_visible()
    assert wait_for(lambda: "snmpd" not in appliance_stack.processes, 20)
    assert not appliance_stack.snmp_configured()
    menu = page.get_by_role("navigation", name="Main menu")
    menu.get_by_role("link", name="Maintenance", exact=True).click()
    menu.get_by_role("link", name="Restart Services").click()
    expect(page.locator("tr[data-service=snmpd] .state")).to_contain_text(
        "not configured (SNMP is not enabled")
