"""The WebUI's shell in Debian's Chromium over HTTPS: log in, the wizard question, every menu
page, and a dead worker shown on System Overview."""

import re

import pytest
from playwright.sync_api import expect

from appliance.navigation import MENU

from .conftest import log_in

pytestmark = pytest.mark.browser


def test_a_wrong_password_is_refused_with_a_message(page, webui):
    log_in(page, webui, "not-the-password")
    expect(page.get_by_role("alert")).to_contain_text(
        "Please enter a correct username and password")
    expect(page).to_have_url(re.compile(r"/lbadmin/login/"))


def test_the_user_logs_in_dismisses_the_wizard_and_opens_every_menu_page(
        page, webui, appliance_stack):
    log_in(page, webui, appliance_stack.generated_password)
    expect(page.get_by_role("heading", level=1)).to_have_text("System Overview")
    question = page.locator("#setup-wizard-question")
    expect(question).to_contain_text("Would you like to run the Setup Wizard?")
    question.get_by_role("button", name="Dismiss").click()
    expect(question).to_contain_text("will not be asked again")
    page.reload()
    expect(page.get_by_text("Would you like to run the Setup Wizard?")).to_have_count(0)

    menu = page.get_by_role("navigation", name="Main menu")
    for section in MENU:
        menu.get_by_role("link", name=section.title, exact=True).first.click()
        for item in section.pages:
            menu.get_by_role("link", name=item.title, exact=True).last.click()
            expect(page.get_by_role("heading", level=1)).to_have_text(item.title)
            expect(page).to_have_title(f"{item.title} · lbadmin")

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/lbadmin/login/"))
    page.goto(f"{webui}/lbadmin/")
    expect(page).to_have_url(re.compile(r"/lbadmin/login/\?next=/lbadmin/"))


def test_system_overview_shows_the_appliance_and_a_dead_worker(page, webui, appliance_stack):
    log_in(page, webui, appliance_stack.generated_password)
    expect(page.locator("#version")).to_have_text("0.1.0")
    expect(page.locator("#memory")).to_contain_text("MiB available")
    rows = page.locator("#service-status-table tbody tr")
    expect(rows.filter(has_text="Redis")).to_contain_text("answering")
    for queue in ("dataplane", "checks", "maintenance"):
        expect(page.locator(f"[data-service=queue-{queue}]")).to_contain_text(
            f"answering {queue}@")

    # beat's heartbeat runs every 10 s; the partial refreshes itself every 10 s.
    expect(page.locator("[data-service=beat]")).to_contain_text("running", timeout=30_000)

    appliance_stack.stop_process("worker-checks")
    try:
        page.reload()
        checks = page.locator("[data-service=queue-checks]")
        expect(checks).to_contain_text("NO WORKER")
        expect(checks).to_have_class("down")
        expect(page.locator("[data-service=queue-dataplane]")).to_contain_text("answering")
    finally:
        appliance_stack.start_worker("checks")
        appliance_stack.wait_for_workers()
    page.reload()
    expect(page.locator("[data-service=queue-checks]")).to_contain_text("answering")
