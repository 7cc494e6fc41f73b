"""The guide's 6.1.1 (eth1 address, Configure Interfaces) and 6.1.2 (Add Floating IP) in
Chromium, on a stack of its own over a lab whose load balancer starts with no addresses."""

import re
import subprocess

import pytest
from playwright.sync_api import expect

from lab import FLOATING_IP, LB_EXTERNAL_ADDRESS
from tests.conftest import running_stack

from .conftest import log_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def bare_stack():
    with running_stack(gateway=FLOATING_IP, lb_addresses=False) as stack:
        yield stack


def lb_addresses(lab):
    return subprocess.run(["ip", "-n", lab.ns("lb"), "-br", "addr"], capture_output=True,
                          text=True, check=True).stdout


def test_the_guides_network_steps(chromium, bare_stack):
    lab = bare_stack.lab
    context = chromium.new_context(ignore_https_errors=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        log_in(page, f"https://127.0.0.1:{bare_stack.https_port}", bare_stack.generated_password)
        menu = page.get_by_role("navigation", name="Main menu")
        menu.get_by_role("link", name="Local Configuration", exact=True).click()
        menu.get_by_role("link", name="Network Interface Configuration").click()
        expect(page.locator("tr[data-interface=eth1]")).to_be_visible()

        # 6.1.1: eth1 in CIDR form (and eth0, which the lab also leaves bare), then apply
        page.get_by_label("eth1", exact=True).fill(f"{LB_EXTERNAL_ADDRESS}/24")
        page.get_by_label("eth0", exact=True).fill("192.0.2.1/24")
        page.get_by_role("button", name="Configure Interfaces").click()
        expect(page.get_by_text("Applied.")).to_be_visible()
        expect(page.locator("tr[data-interface=eth1]")).to_contain_text("198.51.100.1/24")
        assert "198.51.100.1/24" in lb_addresses(lab)
        assert subprocess.run([*lab.exec_prefix("client"), "ping", "-c1", "-W2",
                               LB_EXTERNAL_ADDRESS], capture_output=True).returncode == 0

        # a bad address is refused next to its field, nothing applied
        page.get_by_label("eth1", exact=True).fill("198.51.100.255/24")
        page.get_by_role("button", name="Configure Interfaces").click()
        expect(page.locator("#field-addresses_eth1")).to_contain_text("broadcast address")
        assert "198.51.100.255" not in lb_addresses(lab)

        # 6.1.2: Cluster Configuration > Floating IP's > Add Floating IP
        menu.get_by_role("link", name="Cluster Configuration", exact=True).click()
        menu.get_by_role("link", name="Floating IP's").click()
        page.get_by_label("New Floating IP").fill(FLOATING_IP)
        page.get_by_role("button", name="Add Floating IP").click()
        expect(page.locator(f"tr[data-floating='{FLOATING_IP}']")).to_contain_text(
            "eth0", timeout=20_000)
        assert f"{FLOATING_IP}/24" in lb_addresses(lab)
        menu.get_by_role("link", name="Local Configuration", exact=True).click()
        menu.get_by_role("link", name="Network Interface Configuration").click()
        expect(page.locator("tr[data-interface=eth0]")).to_contain_text(
            re.compile(r"192\.0\.2\.254/24\s*floating"))

        # The dataplane worker puts everything back when it starts.
        bare_stack.stop_process("worker-dataplane")
        subprocess.run(["ip", "-n", lab.ns("lb"), "addr", "flush", "dev", "eth0"], check=True)
        subprocess.run(["ip", "-n", lab.ns("lb"), "addr", "flush", "dev", "eth1"], check=True)
        bare_stack.start_worker("dataplane")
        bare_stack.wait_for_workers()
        page.reload()
        expect(page.locator("tr[data-interface=eth1]")).to_contain_text("198.51.100.1/24")
        expect(page.locator("tr[data-interface=eth0]")).to_contain_text("192.0.2.254/24")
    finally:
        context.close()
