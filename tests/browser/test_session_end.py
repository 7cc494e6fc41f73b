"""Finding 8 in Debian's Chromium: System Overview open in one tab, the session logged out in
another tab of the same browser; the first tab's polled panels must take the browser to the
login page, which says the session ended, instead of each showing a login page inside itself."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import log_in

pytestmark = pytest.mark.browser


def test_logging_out_in_another_tab_takes_system_overview_to_the_login_page(
        page, webui, appliance_stack):
    log_in(page, webui, appliance_stack.generated_password)
    expect(page.get_by_role("heading", level=1)).to_have_text("System Overview")
    expect(page.locator("#layer4")).to_be_visible()  # polled every 5 s (1 s while applying)

    other = page.context.new_page()  # another tab: the same cookies
    other.goto(f"{webui}/lbadmin/")
    expect(other.get_by_role("heading", level=1)).to_have_text("System Overview")
    other.get_by_role("button", name="Log out").click()
    expect(other).to_have_url(re.compile(r"/lbadmin/login/"))

    # The next poll (within 5 s) sends the whole page to the login page, saying why.
    expect(page).to_have_url(re.compile(r"/lbadmin/login/\?next=%2Flbadmin%2F&session=ended$"),
                             timeout=10_000)
    expect(page.get_by_text("Your session ended: log in again.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    expect(page.locator("form.login")).to_have_count(1)  # one form: the page's, none nested
    expect(page.locator(".panel")).to_have_count(0)

    # Logging in again goes back to the page the user had open.
    page.get_by_label("Username").fill("loadbalancer")
    page.get_by_label("Password").fill(appliance_stack.generated_password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("System Overview")
    expect(page.get_by_text("Your session ended")).to_have_count(0)
