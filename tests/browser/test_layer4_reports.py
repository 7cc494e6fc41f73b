"""Reports › Layer 4 Status and Layer 4 Current Connections in Chromium after the guide's
deployment, with a connection held open from the lab's client: both pages from the menu, and
Current Connections filtered by client address."""

import re

import pytest
from playwright.sync_api import expect

from lab import CLIENT_ADDRESS, VIP
from tests.netns.traffic import HeldConnection

pytestmark = pytest.mark.browser


def test_layer4_status_and_current_connections_show_a_held_connection(guide_deployment,
                                                                      appliance_stack):
    page, lab = guide_deployment, appliance_stack.lab
    menu = page.get_by_role("navigation", name="Main menu")
    with HeldConnection(lab, VIP, 12000) as held:
        # another test may have left PrimaryCluster halted: then the fallback server answers
        to_primary = held.greeting.startswith("primary")
        menu.get_by_role("link", name="Reports", exact=True).click()
        menu.get_by_role("link", name="Layer 4 Status").click()
        expect(page.get_by_role("heading", name="Layer 4 Status")).to_be_visible()
        row = page.locator("tr[data-real-server=PrimaryCluster]")
        expect(row).to_contain_text("192.0.2.110")
        expect(row.locator("td.weight")).to_have_text(re.compile(r"100|halt|drain"))
        expect(page.locator("tr[data-fallback=VNA]")).to_contain_text("192.0.2.120")
        if to_primary:  # the sampler counts it within 2 s; the page redraws every 5 s
            expect(row.locator("td.active")).to_have_text("1", timeout=15_000)

        menu.get_by_role("link", name="Layer 4 Current Connections").click()
        page.get_by_label("Client address").fill(CLIENT_ADDRESS)
        page.get_by_role("button", name="Filter").click()
        ours = page.locator(f"tr.connection[data-client^='{CLIENT_ADDRESS}:']").filter(
            has_text="ESTABLISHED")
        expect(ours).to_have_count(1)
        expect(ours).to_contain_text("PrimaryCluster" if to_primary else "Fallback server")
        expect(ours).to_contain_text(f"{VIP}:12000")
        expect(page.locator("#connections-summary")).to_contain_text("matching the filters")

        page.get_by_label("Client address").fill("198.51.100.99")
        page.get_by_role("button", name="Filter").click()
        expect(page.locator("#connections-summary")).to_contain_text("No tracked connections")
        expect(page.locator("tr.connection")).to_have_count(0)
