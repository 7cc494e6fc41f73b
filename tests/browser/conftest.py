import pytest
from playwright.sync_api import expect

from lab import PRIMARY_ADDRESS, SECONDARY_ADDRESS, VIP

PORTS = "12000,12100,12200,12300,12301,12950,12800"

CHROMIUM = "/usr/bin/chromium"
# Debian's Chromium, as root, in a machine with no outside network (DESIGN.md).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]


@pytest.fixture(scope="session")
def chromium():
    from pathlib import Path

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def webui(appliance_stack):
    return f"https://127.0.0.1:{appliance_stack.https_port}"


@pytest.fixture
def page(chromium):
    # The WebUI's certificate is self-signed, as the guide's 5.3 warns.
    context = chromium.new_context(ignore_https_errors=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="session")
def guide_deployment(chromium, appliance_stack):
    """The guide's steps typed on the shared stack; a logged-in page on System Overview."""
    context = chromium.new_context(ignore_https_errors=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    webui = f"https://127.0.0.1:{appliance_stack.https_port}"
    log_in(page, webui, appliance_stack.generated_password)
    type_guide_deployment(page)
    yield page
    context.close()


def type_guide_deployment(page):
    """Type the guide's steps: Add a new Virtual Service (VNA), Modify it for the fallback,
    Add a new Real Server (PrimaryCluster). Ends on System Overview with the apply done."""
    menu = page.get_by_role("navigation", name="Main menu")
    menu.get_by_role("link", name="Cluster Configuration", exact=True).click()
    menu.get_by_role("link", name="Layer 4 – Virtual Services").click()
    page.get_by_role("link", name="Add a new Virtual Service").click()
    page.get_by_label("Label").fill("VNA")
    page.get_by_label("Virtual Service IP Address").fill(VIP)
    page.get_by_label("Ports").fill(PORTS)
    expect(page.get_by_label("Protocol")).to_have_value("tcp")  # leave it TCP
    page.get_by_label("NAT", exact=True).check()
    page.get_by_role("button", name="Update").click()
    expect(page.locator("[data-service=VNA]")).to_contain_text(VIP)

    # 9.-12.: Modify, Health Checks and Fallback Server sections
    page.locator("[data-service=VNA]").get_by_role("link", name="Modify").click()
    expect(page.get_by_label("Check Type")).to_have_value("on")  # manual failover
    page.get_by_label("Fallback IP Address").fill(SECONDARY_ADDRESS)
    page.get_by_label("Fallback Port").fill("0")
    page.get_by_label("MASQ Fallback").check()
    page.get_by_role("button", name="Update").click()
    expect(page.locator("[data-service=VNA]")).to_contain_text("MASQ")

    menu.get_by_role("link", name="Layer 4 – Real Servers").click()
    page.locator("[data-service=VNA]").get_by_role("link", name="Add a new Real Server").click()
    page.get_by_label("Label").fill("PrimaryCluster")
    page.get_by_label("Real Server IP Address").fill(PRIMARY_ADDRESS)
    expect(page.get_by_label("Real Server Port")).to_have_value("")  # left blank
    expect(page.get_by_label("Weight")).to_have_value("100")
    page.get_by_role("button", name="Update").click()
    expect(page.locator("[data-real-server=PrimaryCluster]")).to_contain_text(PRIMARY_ADDRESS)

    menu.get_by_role("link", name="System Overview", exact=True).click()
    expect(page.locator("#apply-status")).to_contain_text("Applied")


def log_in(page, webui, password):
    page.goto(f"{webui}/lbadmin/")
    page.get_by_label("Username").fill("loadbalancer")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
