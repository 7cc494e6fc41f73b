"""Users and roles in Debian's Chromium: the loadbalancer user adds a `report` and a `maint`
user under Maintenance › Passwords; `report` sees System Overview without Halt, Drain or
Online and no Modify links, and a configuration page it opens by address says in words that
its role may not; `maint` sees Halt but no Modify links; the users are removed again."""

import pytest
from playwright.sync_api import expect

from tests.stacks import in_stack

pytestmark = pytest.mark.browser

PASSWORD = "Night-shift-2026"
MADE = ("night-report", "night-maint")


def log_in_as(page, webui, username, password):
    page.goto(f"{webui}/lbadmin/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("System Overview")


def add_user(page, webui, username, role):
    page.goto(f"{webui}/lbadmin/maintenance/passwords/")
    page.get_by_role("link", name="Add a new User").click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_label("Role").select_option(role)
    page.get_by_role("button", name="Add User").click()
    expect(page.locator(f"[data-user={username}] .role")).to_have_text(role)


@pytest.fixture
def night_users(appliance_stack):
    yield
    # whatever the test reached: the shared stack keeps only its own users
    in_stack(appliance_stack, "import sys\nfrom django.contrib.auth import get_user_model\n"
             "get_user_model().objects.filter(username__in=sys.argv[1:]).delete()", *MADE)


def test_report_and_maint_see_only_what_their_role_may_do(guide_deployment, chromium, webui,
                                                          appliance_stack, night_users):
    admin = guide_deployment  # VNA with PrimaryCluster, typed as the guide says
    page = admin.context.new_page()
    # A weak password is refused next to its field, and nobody is added.
    page.goto(f"{webui}/lbadmin/maintenance/passwords/users/add/")
    page.get_by_label("Username").fill(MADE[0])
    page.get_by_label("Password", exact=True).fill("short1")
    page.get_by_label("Password confirmation").fill("short1")
    page.get_by_role("button", name="Add User").click()
    expect(page.locator("#field-password2 .field-error").first).to_contain_text("too short")
    add_user(page, webui, MADE[0], "report")
    add_user(page, webui, MADE[1], "maint")
    # loadbalancer's own role cannot be changed: the select is disabled
    page.locator("[data-user=loadbalancer]").get_by_role("link", name="Modify").click()
    expect(page.get_by_label("Role")).to_be_disabled()

    report = chromium.new_context(ignore_https_errors=True)
    maint = chromium.new_context(ignore_https_errors=True)
    try:
        seen = report.new_page()
        log_in_as(seen, webui, MADE[0], PASSWORD)
        row = seen.locator("[data-real-server=PrimaryCluster]")
        expect(row).to_be_visible()
        expect(row.get_by_role("button")).to_have_count(0)  # no Halt, Drain or Online
        expect(seen.get_by_role("button", name="Halt")).to_have_count(0)
        expect(seen.get_by_role("link", name="Modify")).to_have_count(0)
        menu = seen.get_by_role("navigation", name="Main menu")
        expect(menu.get_by_role("link", name="Cluster Configuration")).to_have_count(0)
        expect(menu.get_by_role("link", name="View Configuration")).to_be_visible()
        # typed by address: refused in words, in the WebUI's layout
        seen.goto(f"{webui}/lbadmin/cluster/virtual-services/")
        expect(seen.get_by_role("heading", level=1)).to_have_text("Not allowed")
        expect(seen.locator("#refusal")).to_contain_text(
            "Your role, report: read only, may not open this: it needs the config or maint "
            "role.")
        expect(seen.get_by_role("link", name="Modify")).to_have_count(0)

        worker = maint.new_page()
        log_in_as(worker, webui, MADE[1], PASSWORD)
        expect(worker.locator("[data-real-server=PrimaryCluster]").get_by_role(
            "button", name="Halt")).to_be_visible()
        worker.get_by_role("navigation", name="Main menu").get_by_role(
            "link", name="Cluster Configuration", exact=True).click()
        expect(worker.locator("[data-service=VNA]")).to_be_visible()
        expect(worker.get_by_role("link", name="Modify")).to_have_count(0)
        expect(worker.get_by_role("link", name="Add a new Virtual Service")).to_have_count(0)
        expect(worker.get_by_text("Read only: your role, maint")).to_be_visible()
    finally:
        report.close()
        maint.close()

    # removed through the page; a removed user's session ends at its next request
    for username in MADE:
        page.goto(f"{webui}/lbadmin/maintenance/passwords/")
        page.locator(f"[data-user={username}]").get_by_role("link", name="Remove").click()
        page.get_by_role("button", name="Remove").click()
        expect(page.locator(f"[data-user={username}]")).to_have_count(0)
    page.close()

