"""Local Configuration › System Date & time in Chromium, on an appliance of its own over a lab
with an NTP server: errors next to their fields, a save, and chronyd's sources shown live
until the lab's server is the synchronised one."""

import pytest
from playwright.sync_api import expect

from lab.namespaces import NTP_ADDRESS
from tests.conftest import running_stack

from .conftest import log_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def ntp_stack():
    with running_stack(ntp=True) as stack:
        yield stack


def test_the_page_sets_the_ntp_server_and_shows_it_synchronised(chromium, ntp_stack):
    context = chromium.new_context(ignore_https_errors=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        log_in(page, f"https://127.0.0.1:{ntp_stack.https_port}", ntp_stack.generated_password)
        menu = page.get_by_role("navigation", name="Main menu")
        menu.get_by_role("link", name="Local Configuration", exact=True).click()
        menu.get_by_role("link", name="System Date & time").click()
        expect(page.locator("#ntp-state")).to_contain_text("No NTP server is set")

        # bad input: refused next to each field, nothing saved
        page.get_by_label("NTP Server 1").fill("192.0.2.300")
        page.get_by_label("NTP Server 2").fill(NTP_ADDRESS)
        page.get_by_label("NTP Server 3").fill(NTP_ADDRESS)
        page.get_by_role("button", name="Update").click()
        expect(page.locator("#field-ntp1")).to_contain_text("not a valid IPv4 address")
        expect(page.locator("#field-ntp3")).to_contain_text("is NTP Server 2 already")
        expect(page.locator("#field-ntp2 .field-error")).to_have_count(0)
        expect(page.locator("#ntp-state")).to_contain_text("No NTP server is set")

        page.get_by_label("Select Timezone").select_option("Europe/London")
        page.get_by_label("NTP Server 1").fill(NTP_ADDRESS)
        page.get_by_label("NTP Server 2").fill("")
        page.get_by_label("NTP Server 3").fill("")
        page.get_by_role("button", name="Update").click()
        expect(page.get_by_text("Saved: chronyd restarts with the NTP servers.")).to_be_visible()
        expect(page.get_by_label("Select Timezone")).to_have_value("Europe/London")
        expect(page.get_by_label("NTP Server 1")).to_have_value(NTP_ADDRESS)
        expect(page.locator("#current-time").locator("..")).to_contain_text("(Europe/London)")

        # the status refreshes itself (htmx, every 5 s) until chronyd has chosen the source
        expect(page.locator("#ntp-state")).to_contain_text(f"Synchronised to {NTP_ADDRESS}",
                                                           timeout=60_000)
        row = page.locator(f"#ntp-sources tr[data-source='{NTP_ADDRESS}']")
        expect(row).to_contain_text("synchronised to it")
        expect(row).to_contain_text("of the last 8 polls")
    finally:
        context.close()
