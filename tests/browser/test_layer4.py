"""The guide's 6.1.3 b and c typed into the WebUI in Chromium, then its 7.2 manual failover:
Halt and Online on System Overview, with real connections through the lab after each step."""

import re
import subprocess

import pytest
from playwright.sync_api import expect

from lab import (
    CLIENT_ADDRESS,
    GUIDE_PORTS,
    LB_INTERNAL_ADDRESS,
    VIP,
)
from tests.netns.traffic import HeldConnection, connect_many

pytestmark = pytest.mark.browser


def served(answers):
    return {tuple(a.split()[i] for i in (0, 4)) for a in answers}


def test_the_guides_deployment_serves_every_port_from_the_primary(guide_deployment,
                                                                   appliance_stack):
    lab = appliance_stack.lab
    answers = connect_many(lab, VIP, GUIDE_PORTS, len(GUIDE_PORTS))
    assert served(answers) == {("primary", CLIENT_ADDRESS)}
    assert [int(a.split()[2]) for a in answers] == list(GUIDE_PORTS)


def test_halt_and_online_on_system_overview(guide_deployment, appliance_stack):
    page, lab = guide_deployment, appliance_stack.lab
    row = page.locator("tr[data-real-server=PrimaryCluster]")
    expect(row).to_have_class(re.compile(r"\bup\b"))
    with HeldConnection(lab, VIP, 12000) as held:
        assert held.greeting.startswith("primary")
        row.get_by_role("button", name="Halt").click()
        expect(row).to_have_class(re.compile(r"\bhalt\b"))
        expect(row).to_contain_text("Online (halt)")
        expect(row.locator("td.weight")).to_have_text("halt")
        expect(page.locator("tbody[data-service=VNA] tr.vs")).to_have_class(
            re.compile(r"\bhalt\b"))
        assert held.talk() != "primary port 12000 echo ping"  # cut at once
    assert served(connect_many(lab, VIP, GUIDE_PORTS, len(GUIDE_PORTS))) == {
        ("secondary", LB_INTERNAL_ADDRESS)}

    row.get_by_role("button", name="Online (halt)").click()
    expect(row).to_have_class(re.compile(r"\bup\b"))
    expect(row.locator("td.weight")).to_have_text("100")
    assert served(connect_many(lab, VIP, GUIDE_PORTS, len(GUIDE_PORTS))) == {
        ("primary", CLIENT_ADDRESS)}

    with HeldConnection(lab, VIP, 12950) as held:
        row.get_by_role("button", name="Drain").click()
        expect(row).to_have_class(re.compile(r"\bdrain\b"))
        expect(row).to_contain_text("Online (drain)")
        assert held.talk("kept").startswith("primary port 12950 echo kept")
        assert served(connect_many(lab, VIP, [12950], 1)) == {("secondary", LB_INTERNAL_ADDRESS)}
        # Conns counts the drained connection that is still open (sampled every 2 s).
        expect(row.locator("td.conns")).to_have_text("1", timeout=10_000)
    row.get_by_role("button", name="Online (drain)").click()
    expect(row).to_have_class(re.compile(r"\bup\b"))


def test_the_dataplane_worker_restores_the_ruleset_when_it_starts(guide_deployment,
                                                                  appliance_stack):
    lab = appliance_stack.lab
    appliance_stack.stop_process("worker-dataplane")
    subprocess.run([*lab.exec_prefix("lb"), "nft", "delete", "table", "ip", "lbadmin"],
                   check=True)
    assert connect_many(lab, VIP, [12000], 1)[0].startswith("ERROR")
    appliance_stack.start_worker("dataplane")
    appliance_stack.wait_for_workers()
    expect_served = {("primary", CLIENT_ADDRESS)}
    for _ in range(50):
        if served(connect_many(lab, VIP, [12000], 1)) == expect_served:
            break
    assert served(connect_many(lab, VIP, GUIDE_PORTS, len(GUIDE_PORTS))) == expect_served


def test_view_configuration_shows_the_live_ruleset_and_flags_drift(guide_deployment,
                                                                  appliance_stack):
    page, lab = guide_deployment, appliance_stack.lab
    menu = page.get_by_role("navigation", name="Main menu")
    menu.get_by_role("link", name="View Configuration", exact=True).click()
    menu.get_by_role("link", name="Layer 4", exact=True).click()
    expect(page.locator("#drift")).to_have_text("The live ruleset matches the configuration.")
    expect(page.locator("#live-ruleset")).to_contain_text("jump svc_")

    # Someone edits lbadmin's table by hand.
    subprocess.run([*lab.exec_prefix("lb"), "nft", "add", "element", "ip", "lbadmin", "services",
                    f"{{ {VIP} . tcp . 9999 : drop }}"], check=True)
    page.reload()
    expect(page.locator("#drift")).to_contain_text("Drift:")
    page.get_by_role("button", name="Rebuild the ruleset from the configuration").click()
    expect(page.get_by_text("Rebuild requested")).to_be_visible()
    for _ in range(20):
        page.reload()
        if "matches" in page.locator("#drift").inner_text():
            break
    expect(page.locator("#drift")).to_have_text("The live ruleset matches the configuration.")


def test_the_search_box_finds_vna_and_an_unchanged_poll_redraws_nothing(guide_deployment):
    page = guide_deployment
    page.get_by_role("navigation", name="Main menu").get_by_role(
        "link", name="System Overview", exact=True).click()
    search = page.get_by_label("Search", exact=True)
    search.fill("vna")
    expect(page.locator("tbody[data-service]")).to_have_count(1)
    expect(page.locator("tbody[data-service=VNA] tr.vs")).to_contain_text("Online")
    search.fill("no such service")
    expect(page.locator("#layer4-none-match")).to_contain_text(
        "No virtual service matches “no such service”")
    search.fill("primarycluster")  # a real server's label finds its service too
    expect(page.locator("tbody[data-service=VNA]")).to_have_count(1)

    # The poll sends the digest of what the table shows and keeps the search; while nothing
    # changes it gets a 204 and htmx leaves the table as it is (the mark stays).
    for _attempt in range(4):  # a connection count still settling redraws it once or twice
        page.evaluate("document.getElementById('layer4').dataset.seen = 'yes'")
        with page.expect_response(lambda r: "/overview/layer4/" in r.url, timeout=8_000) as poll:
            pass
        assert "q=primarycluster" in poll.value.url and "digest=" in poll.value.url
        if poll.value.status == 204:
            break
    assert poll.value.status == 204
    expect(page.locator("#layer4")).to_have_attribute("data-seen", "yes")
    expect(page.locator("tbody[data-service=VNA]")).to_have_count(1)
    search.fill("")
    expect(page.locator("#layer4-summary")).not_to_contain_text("matching")
