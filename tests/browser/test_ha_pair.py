"""The guide's 10.1.2 in Chromium between two real appliances (the pair lab: the Primary in
lb, 198.51.100.1; the Secondary in lb2, 198.51.100.2): Create a Clustered Pair on the Primary,
the header of both, the guide's deployment typed on the Primary and found on the Secondary
(database and kernel), the Secondary's read-only Cluster Configuration and its Halt, traffic
through the VIP, and Break Clustered Pair. One pair for the whole module (starting two stacks
is slow); the tests run in order, each from where the one before left the pair."""

import re
import sqlite3
import subprocess
import time

import pytest
from playwright.sync_api import expect

from clusters.dataplane.nft import without_runtime_content
from lab import (
    CLIENT_ADDRESS,
    FLOATING_IP,
    GUIDE_PORTS,
    LB2_EXTERNAL_ADDRESS,
    LB_EXTERNAL_ADDRESS,
    LB_INTERNAL_ADDRESS,
    VIP,
)
from tests.netns.traffic import connect_many

from .conftest import log_in, type_guide_deployment

pytestmark = pytest.mark.browser
HA = "/lbadmin/cluster/ha/"
REPLICATION_TARGET = 1.0  # seconds (issue 13); what is seen is printed, a few s are allowed


def webui(stack):
    return f"https://127.0.0.1:{stack.https_port}"


def served(answers):
    return {tuple(a.split()[i] for i in (0, 4)) for a in answers}


def query(stack, sql):
    with sqlite3.connect(f"file:{stack.database}?mode=ro", uri=True, timeout=5) as db:
        return db.execute(sql).fetchall()


def ruleset(stack):
    result = subprocess.run([*stack.lab.exec_prefix(stack.lab_role), "nft", "list", "table",
                             "ip", "lbadmin"], capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else ""


def addresses(stack):
    return subprocess.run([*stack.lab.exec_prefix(stack.lab_role), "ip", "-4", "-o", "addr"],
                          capture_output=True, text=True, check=True).stdout


def poll(probe, timeout=10.0, step=0.05):
    """Seconds until probe() is true (AssertionError after `timeout`)."""
    start = time.monotonic()
    while not probe():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {probe.__doc__ or probe}")
        time.sleep(step)
    return time.monotonic() - start


@pytest.fixture(scope="module")
def pair(appliance_pair):
    """The two appliances, with their workers ready."""
    for stack in appliance_pair:
        stack.wait_for_workers()
    return appliance_pair


@pytest.fixture(scope="module")
def pages(chromium, pair):
    """A page on each appliance (the Secondary's logged in once it is paired)."""
    contexts = [chromium.new_context(ignore_https_errors=True) for _ in pair]
    made = []
    for context in contexts:
        context.set_default_timeout(15_000)
        made.append(context.new_page())
    yield made
    for context in contexts:
        context.close()


def open_ha(page, stack):
    menu = page.get_by_role("navigation", name="Main menu")
    menu.get_by_role("link", name="Cluster Configuration", exact=True).click()
    menu.get_by_role("link", name="High-Availability Configuration").click()
    expect(page).to_have_url(re.compile(re.escape(HA) + "$"))


def live_states(page, here, there):
    """The HA page (reloaded) shows this appliance `here` and the other node `there`."""
    page.reload()
    text = page.locator("#ha-nodes").inner_text()
    return bool(re.search(rf"Primary\s*\S+\s*{here}\s*this appliance", text) and
                re.search(rf"Secondary\s*\S+\s*{there}\s*the other node", text))


def fill_pair_form(page, password):
    """Fill Create a Clustered Pair and click Add new node; returns the text of the page the
    click led to (the pairing's first state, before the worker's answer)."""
    page.get_by_label("Local IP address").select_option(LB_EXTERNAL_ADDRESS)
    page.get_by_label("IP address of new peer").fill(LB2_EXTERNAL_ADDRESS)
    page.get_by_label("Password for loadbalancer user on peer").fill(password)
    with page.expect_response(lambda r: r.url.endswith(HA) and r.request.method == "GET") \
            as first:
        page.get_by_role("button", name="Add new node").click()
    return first.value.text()


def shown(html):
    """The words of a page (tags and spacing dropped)."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_create_a_clustered_pair_on_the_primary(pages, pair):
    primary, secondary = pair
    page = pages[0]
    log_in(page, webui(primary), primary.generated_password)
    open_ha(page, primary)
    expect(page.get_by_role("heading", name="Create a Clustered Pair").first).to_be_visible()
    expect(page.locator("#ha-role")).to_have_count(0)  # standalone: no role in the header

    # A wrong password: refused in words next to the field; nothing paired on either side.
    progress = shown(fill_pair_form(page, "not-" + secondary.generated_password))
    assert f"Primary {LB_EXTERNAL_ADDRESS} Attempting to pair.." in progress, progress
    expect(page.locator("#ha-failed-password")).to_contain_text(
        "Wrong password for the loadbalancer user", timeout=20_000)
    expect(page.get_by_label("IP address of new peer")).to_have_value(LB2_EXTERNAL_ADDRESS)
    assert query(primary, "SELECT role FROM ha_pair") == [("standalone",)]
    assert query(secondary, "SELECT role FROM ha_pair") in ([], [("standalone",)])

    # The right one: "Attempting to pair.." / "configuring", then the pair.
    progress = shown(fill_pair_form(page, secondary.generated_password))
    # the guide's step 5, as the Primary's page shows it while the worker pairs
    assert re.search(rf"Primary {re.escape(LB_EXTERNAL_ADDRESS)} (Attempting to pair\.\.|"
                     rf"configuring) this appliance", progress), progress
    assert re.search(rf"Secondary {re.escape(LB2_EXTERNAL_ADDRESS)} (Attempting to pair\.\.|"
                     rf"configuring)", progress), progress
    assert "Add new node" in progress  # still the form, as in the guide's picture
    expect(page.get_by_role("heading", name="High Availability Configuration - primary")) \
        .to_be_visible(timeout=30_000)
    nodes = page.locator("#ha-nodes")
    expect(nodes).to_contain_text(re.compile(rf"Primary\s*{re.escape(LB_EXTERNAL_ADDRESS)}"))
    expect(nodes).to_contain_text(re.compile(rf"Secondary\s*{re.escape(LB2_EXTERNAL_ADDRESS)}"))

    # No virtual service or floating IP yet: keepalived has nothing to hold, neither node
    # has a VRRP state (live states are checked once the deployment is typed, below).
    poll(lambda: live_states(page, "idle", "idle"), timeout=20, step=0.5)
    expect(page.locator("#ha-daemons")).to_contain_text(
        "keepalived and conntrackd are running; nothing needs a restart", timeout=20_000)
    expect(page.locator("#ha-replication")).to_contain_text("(in step)")
    expect(page.locator("#ha-last-error")).to_have_text("none")
    expect(page.get_by_role("button", name="Break Clustered Pair")).to_be_visible()
    assert query(secondary, "SELECT role, peer_ip FROM ha_pair") == [
        ("secondary", LB_EXTERNAL_ADDRESS)]


def test_the_guides_deployment_typed_on_the_primary_reaches_the_secondary(
        pages, pair):
    primary, secondary = pair
    page = pages[0]
    page.goto(webui(primary) + "/lbadmin/")
    type_guide_deployment(page)
    menu = page.get_by_role("navigation", name="Main menu")
    menu.get_by_role("link", name="Cluster Configuration", exact=True).click()
    menu.get_by_role("link", name="Floating IP's").click()
    page.get_by_label("New Floating IP").fill(FLOATING_IP)
    started = time.monotonic()
    page.get_by_role("button", name="Add Floating IP").click()
    expect(page.locator(f"tr[data-floating='{FLOATING_IP}']")).to_be_visible()

    def secondary_holds_it():
        """the Secondary's database and kernel hold VNA, its real server and the floating IP"""
        return query(secondary, "SELECT label, vip FROM clusters_virtualservice") == [
            ("VNA", VIP)] and query(secondary, "SELECT address FROM clusters_floatingip") == [
            (FLOATING_IP,)] and query(secondary, "SELECT label FROM clusters_realserver") == [
            ("PrimaryCluster",)] and VIP in ruleset(secondary)

    poll(secondary_holds_it, timeout=10)
    lag = time.monotonic() - started
    print(f"\nreplication: the floating IP reached the Secondary's database and kernel "
          f"{lag:.2f} s after the click")
    assert ruleset(secondary).count(VIP) == ruleset(primary).count(VIP)
    for port in GUIDE_PORTS:
        assert str(port) in ruleset(secondary)
    generation = query(primary, "SELECT number FROM clusters_configgeneration")[0][0]
    assert query(secondary, "SELECT number FROM clusters_configgeneration")[0][0] == generation

    page.goto(webui(primary) + HA)
    # keepalived holds the addresses now: the Primary active, the Secondary passive.
    lag = poll(lambda: live_states(page, "active", "passive"), timeout=20, step=0.5)
    print(f"live states shown {lag:.1f} s later")
    replication = page.locator("#ha-replication")
    expect(replication).to_contain_text(re.compile(rf"Last generation sent\s*{generation}\b"))
    expect(replication).to_contain_text(
        re.compile(rf"acknowledged by the Secondary\s*{generation} \(in step\)"))


def test_the_header_of_every_page_says_role_and_state(pages, pair):
    primary, secondary = pair
    page, other = pages
    for path in ("/lbadmin/", HA, "/lbadmin/maintenance/restart-services/"):
        page.goto(webui(primary) + path)
        expect(page.locator("#ha-role")).to_have_text("Primary | Active")
    # The Secondary's users are the Primary's now (replicated): its own password is gone.
    log_in(other, webui(secondary), primary.generated_password)
    expect(other.get_by_role("navigation", name="Main menu")).to_be_visible()
    for path in ("/lbadmin/", HA):
        other.goto(webui(secondary) + path)
        expect(other.locator("#ha-role")).to_have_text("Secondary | Passive")
    expect(other.get_by_role("heading", name="High Availability Configuration - secondary")) \
        .to_be_visible()
    nodes = other.locator("#ha-nodes").inner_text()
    assert re.search(rf"Primary\s*{re.escape(LB_EXTERNAL_ADDRESS)}\s*active", nodes), nodes
    assert re.search(rf"Secondary\s*{re.escape(LB2_EXTERNAL_ADDRESS)}\s*passive", nodes), nodes


def test_the_secondary_refuses_changes_and_its_halt_reaches_the_primary(pages,
                                                                       pair):
    primary, secondary = pair
    page, other = pages
    base = webui(secondary)
    other.goto(base + "/lbadmin/")
    menu = other.get_by_role("navigation", name="Main menu")
    menu.get_by_role("link", name="Cluster Configuration", exact=True).click()
    menu.get_by_role("link", name="Layer 4 – Virtual Services").click()
    notice = other.locator("#ha-secondary")
    expect(notice).to_contain_text("change the configuration on the Primary")
    expect(notice.get_by_role("link")).to_have_attribute(
        "href", re.compile(rf"https://{re.escape(LB_EXTERNAL_ADDRESS)}:\d+/lbadmin/"))
    expect(other.locator("[data-service=VNA]")).to_contain_text(VIP)

    # A change is refused in words.
    menu.get_by_role("link", name="Cluster Configuration", exact=True).click()
    menu.get_by_role("link", name="Floating IP's").click()
    other.get_by_label("New Floating IP").fill("192.0.2.253")
    other.get_by_role("button", name="Add Floating IP").click()
    expect(other.locator(".message.error")).to_contain_text(
        "Not changed: This appliance is the Secondary of a clustered pair")
    assert query(secondary, "SELECT address FROM clusters_floatingip") == [(FLOATING_IP,)]

    # Halt on the Secondary's System Overview: here at once, then on the Primary.
    menu.get_by_role("link", name="System Overview", exact=True).click()
    row = other.locator("tr[data-real-server=PrimaryCluster]")
    row.get_by_role("button", name="Halt").click()
    expect(row).to_contain_text("Online (halt)")

    def halted_on_the_primary():
        """the Primary's database says halt"""
        return query(primary, "SELECT state FROM clusters_realserver") == [("halt",)]

    lag = poll(halted_on_the_primary, timeout=10)
    print(f"\nthe Secondary's Halt reached the Primary's database {lag:.2f} s after it showed")
    page.goto(webui(primary) + "/lbadmin/")
    primary_row = page.locator("tr[data-real-server=PrimaryCluster]")
    expect(primary_row).to_contain_text("Online (halt)")
    # ...and the Primary's kernel: new connections go to the fallback (secondary cluster).
    assert served(connect_many(primary.lab, VIP, GUIDE_PORTS, len(GUIDE_PORTS))) == {
        ("secondary", LB_INTERNAL_ADDRESS)}
    # Both kernels hold the same ruleset (the counters aside).
    poll(lambda: strip_counters(ruleset(primary)) == strip_counters(ruleset(secondary)))

    # Online on the Primary: the later action wins, and goes back to the Secondary.
    primary_row.get_by_role("button", name="Online (halt)").click()
    expect(primary_row).not_to_contain_text("Online (halt)")
    poll(lambda: query(secondary, "SELECT state FROM clusters_realserver") == [("online",)])
    other.reload()
    expect(other.locator("tr[data-real-server=PrimaryCluster]")).not_to_contain_text(
        "Online (halt)")
    poll(lambda: strip_counters(ruleset(primary)) == strip_counters(ruleset(secondary)))


def strip_counters(text):
    """The ruleset without what traffic alone changes: rule counters, persistence entries and
    the traffic-counter sets' elements (nft.without_runtime_content)."""
    return re.sub(r"counter packets \d+ bytes \d+", "counter", without_runtime_content(text))


def test_traffic_to_the_vip_reaches_the_primary_cluster(pair):
    primary, secondary = pair
    answers = connect_many(primary.lab, VIP, GUIDE_PORTS, len(GUIDE_PORTS))
    assert served(answers) == {("primary", CLIENT_ADDRESS)}
    assert [int(a.split()[2]) for a in answers] == list(GUIDE_PORTS)
    assert f"{VIP}/" in addresses(primary) and f"{VIP}/" not in addresses(secondary)
    assert f"{FLOATING_IP}/" in addresses(primary) and f"{FLOATING_IP}/" not in \
        addresses(secondary)


def test_break_clustered_pair(pages, pair):
    primary, secondary = pair
    page, other = pages
    page.goto(webui(primary) + HA)
    page.get_by_role("button", name="Break Clustered Pair").click()
    expect(page.get_by_role("heading", name="Create a Clustered Pair").first).to_be_visible(
        timeout=30_000)
    expect(page.locator("#ha-role")).to_have_count(0)
    poll(lambda: query(secondary, "SELECT role FROM ha_pair") == [("standalone",)])
    poll(lambda: query(secondary, "SELECT count(*) FROM clusters_virtualservice") == [(0,)])
    assert query(secondary, "SELECT count(*) FROM clusters_floatingip") == [(0,)]
    assert query(secondary, "SELECT action FROM maintenance_revision WHERE action LIKE "
                            "'before breaking the clustered pair%'") != []
    poll(lambda: VIP not in ruleset(secondary))

    # The Secondary's session was the Primary's loadbalancer user: still the same password.
    other.goto(webui(secondary) + HA)
    if "/login" in other.url:
        log_in(other, webui(secondary), primary.generated_password)
        other.goto(webui(secondary) + HA)
    expect(other.get_by_role("heading", name="Create a Clustered Pair").first).to_be_visible()
    expect(other.locator("#ha-role")).to_have_count(0)

    # keepalived and conntrackd stopped on both.
    for stack, view in ((primary, page), (secondary, other)):
        poll(lambda stack=stack: not any(name in stack.processes for name in
                                         ("keepalived", "conntrackd")), timeout=20)
        view.goto(webui(stack) + "/lbadmin/maintenance/restart-services/")
        for name in ("keepalived", "conntrackd"):
            expect(view.locator(f"#services-table [data-service={name}]")).to_contain_text(
                "not configured")

    # The Primary holds the VIP and the floating IP itself again; traffic still flows.
    poll(lambda: f"{VIP}/" in addresses(primary) and f"{FLOATING_IP}/" in addresses(primary))
    assert f"{VIP}/" not in addresses(secondary)
    assert served(connect_many(primary.lab, VIP, GUIDE_PORTS, len(GUIDE_PORTS))) == {
        ("primary", CLIENT_ADDRESS)}
