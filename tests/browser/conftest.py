import pytest

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


def log_in(page, webui, password):
    page.goto(f"{webui}/lbadmin/")
    page.get_by_label("Username").fill("loadbalancer")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
