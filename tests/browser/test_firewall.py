"""Maintenance › Firewall Lockdown Wizard in Chromium running in the lab's client namespace
(198.51.100.10), so the appliance sees the browser's real address — not the host's forward,
which arrives over loopback — on a stack of its own whose guard waits 5 s
(LBADMIN_NETWORK_CONFIRM_SECONDS) instead of 60; and the same lock-out guard over a network
change. The countdown, the roll-back and the start of the dataplane worker are the real
workers'."""

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from lab import (
    CLIENT_ADDRESS,
    LB_EXTERNAL_ADDRESS,
    LB_INTERNAL_ADDRESS,
    Lab,
    unique_test_prefix,
)
from runner.stack import Stack
from tests.conftest import free_port, needs_root, supervising
from tests.stacks import wait_for

from .conftest import CHROMIUM, CHROMIUM_ARGS, log_in
from .test_network import lb_addresses

pytestmark = pytest.mark.browser
CONFIRM_SECONDS = 5
WEBUI = f"https://{LB_EXTERNAL_ADDRESS}:9443"
CONNECT = ("import socket, sys\n"
           "try:\n"
           "    socket.create_connection((sys.argv[1], 9443), 3).close()\n"
           "    print('connected')\n"
           "except OSError as error:\n"
           "    print(type(error).__name__)\n")


@pytest.fixture(scope="module")
def guarded_stack():
    needs_root()
    data_dir = Path(tempfile.mkdtemp(prefix="lbadmin-firewall-"))
    try:
        with Lab(unique_test_prefix()) as lab, \
                Stack(data_dir, lab, https_port=free_port(), listen_address="127.0.0.1",
                      extra_env={"LBADMIN_NETWORK_CONFIRM_SECONDS": str(CONFIRM_SECONDS)}) \
                as stack:
            stack.wait_for_workers()
            with supervising(stack):
                yield stack
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def client_chromium(chromium, guarded_stack, tmp_path_factory):
    """Debian's Chromium started inside the client namespace (a wrapper runs it through `ip
    netns exec`; Playwright talks to it over the pipes it inherits), launched by the session's
    Playwright (a second sync_playwright() in the same thread refuses to start)."""
    wrapper = tmp_path_factory.mktemp("chromium") / "chromium-in-client"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {guarded_stack.lab.ns("client")} '
                       f'{CHROMIUM} "$@"\n')
    wrapper.chmod(0o700)
    browser = chromium.browser_type.launch(executable_path=str(wrapper), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(client_chromium):
    context = client_chromium.new_context(ignore_https_errors=True)
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


def webui_from_client(lab, role="client", address=LB_EXTERNAL_ADDRESS):
    """A new TCP connection from the role's namespace to the WebUI's port: "connected" or
    the error's name ("ConnectionRefusedError": the lockdown's reset)."""
    return subprocess.run([*lab.exec_prefix(role), "python3", "-c", CONNECT, address],
                          capture_output=True, text=True, timeout=30).stdout.strip()


def lockdown_table(stack):
    return subprocess.run([*stack.lab.exec_prefix("lb"), "nft", "list", "table", "inet",
                           "lbadmin_lockdown"], capture_output=True, text=True).returncode == 0


def open_wizard(page):
    menu = page.get_by_role("navigation", name="Main menu")
    menu.get_by_role("link", name="Maintenance", exact=True).click()
    menu.get_by_role("link", name="Firewall Lockdown Wizard").click()


def test_the_wizard_refuses_to_shut_the_browser_out_unless_confirmed_then_rolls_back(
        guarded_stack, page):
    lab = guarded_stack.lab
    log_in(page, WEBUI, guarded_stack.generated_password)
    open_wizard(page)
    expect(page.locator("#browser-address")).to_contain_text(
        f"Your browser reaches this appliance from {CLIENT_ADDRESS}")
    expect(page.get_by_label("Administration networks")).to_have_value(CLIENT_ADDRESS)

    # a network without the browser: refused next to the field, nothing applied
    page.get_by_label("Lock down the WebUI and SSH").check()
    page.get_by_label("Administration networks").fill("203.0.113.0/24")
    page.get_by_role("button", name="Update").click()
    expect(page.locator("#field-networks")).to_contain_text(
        f"Your browser's address {CLIENT_ADDRESS} is not in these networks")
    assert not lockdown_table(guarded_stack)

    # confirmed: applied, and the guard's page says the browser is outside
    page.get_by_label("Lock down anyway").check()
    page.get_by_role("button", name="Update").click()
    expect(page.locator("#guard-state")).to_contain_text(
        f"your browser's address {CLIENT_ADDRESS} is not in its networks")
    assert lockdown_table(guarded_stack)
    assert webui_from_client(lab) == "ConnectionRefusedError"
    # nobody confirms: the worker puts the previous settings back by itself
    assert wait_for(lambda: webui_from_client(lab) == "connected", CONFIRM_SECONDS + 20,
                    every=0.5)
    assert not lockdown_table(guarded_stack)
    page.reload()
    expect(page.locator("#guard-state")).to_contain_text(
        "Nobody confirmed the lockdown by")
    open_wizard(page)
    expect(page.get_by_label("Lock down the WebUI and SSH")).not_to_be_checked()


def test_a_lockdown_confirmed_from_inside_its_networks_is_kept_and_back_after_a_restart(
        guarded_stack, page):
    lab = guarded_stack.lab
    log_in(page, WEBUI, guarded_stack.generated_password)
    open_wizard(page)
    page.get_by_label("Lock down the WebUI and SSH").check()
    page.get_by_label("Administration networks").fill("198.51.100.0/24")
    page.get_by_role("button", name="Update").click()
    page.get_by_role("button", name="Keep the lockdown").click()
    expect(page.get_by_text("The firewall lockdown is confirmed and kept.")).to_be_visible()
    # past the guard's time: still on, the client still in, another network still out
    page.wait_for_timeout((CONFIRM_SECONDS + 2) * 1000)
    assert lockdown_table(guarded_stack)
    assert webui_from_client(lab) == "connected"
    assert webui_from_client(lab, "primary", LB_INTERNAL_ADDRESS) == "ConnectionRefusedError"
    page.reload()
    expect(page.locator("#live-lockdown")).to_contain_text("198.51.100.0/24")

    # the kernel loses the table (a reboot); the dataplane worker's start puts it back
    subprocess.run([*lab.exec_prefix("lb"), "nft", "delete", "table", "inet",
                    "lbadmin_lockdown"], check=True)
    guarded_stack.restart_service("worker-dataplane")
    assert wait_for(lambda: lockdown_table(guarded_stack), 60, every=0.5)

    # off again, so the module's stack ends as it began
    open_wizard(page)
    page.get_by_label("Lock down the WebUI and SSH").uncheck()
    page.get_by_role("button", name="Update").click()
    expect(page.get_by_text("The firewall lockdown is off.")).to_be_visible()
    assert not lockdown_table(guarded_stack)


def test_a_network_change_nobody_confirmed_is_rolled_back_by_the_same_guard(guarded_stack,
                                                                              page):
    """Renumbering eth1 away from the address this browser uses: applied at once, and put
    back by the dataplane worker when nobody confirms it from the new address in time."""
    lab = guarded_stack.lab
    log_in(page, WEBUI, guarded_stack.generated_password)
    menu = page.get_by_role("navigation", name="Main menu")
    menu.get_by_role("link", name="Local Configuration", exact=True).click()
    menu.get_by_role("link", name="Network Interface Configuration").click()
    page.get_by_label("eth1", exact=True).fill("198.51.100.2/24")
    # the answer cannot come back: the address it would leave from is gone
    page.get_by_role("button", name="Configure Interfaces").click(no_wait_after=True)
    assert wait_for(lambda: "198.51.100.2/24" in lb_addresses(lab), 20, every=0.2)
    assert webui_from_client(lab) != "connected"
    # nobody confirms: the worker puts the previous settings back by itself
    assert wait_for(lambda: f"{LB_EXTERNAL_ADDRESS}/24" in lb_addresses(lab),
                    CONFIRM_SECONDS + 20, every=0.5)
    assert "198.51.100.2/24" not in lb_addresses(lab)
    assert webui_from_client(lab) == "connected"
    page.goto(f"{WEBUI}/lbadmin/logs/user/")
    expect(page.get_by_text("rolled back a network change nobody confirmed in time")
           ).to_be_visible()
    page.goto(f"{WEBUI}/lbadmin/local/interfaces/")
    expect(page.locator("tr[data-interface=eth1]")).to_contain_text(
        f"{LB_EXTERNAL_ADDRESS}/24")
