"""Maintenance > Restart Services in Chromium on the shared stack: the supervisor restarts each
service for real (new process, same data), and a dead service is named in a banner on every
page with the button that restarts it."""

import os
import signal
import time

import pytest
import redis
from playwright.sync_api import expect

from .conftest import log_in

pytestmark = pytest.mark.browser


def row(page, name):
    return page.locator(f"#services-table [data-service={name}]")


def test_restart_services_restarts_each_for_real(page, webui, appliance_stack):
    log_in(page, webui, appliance_stack.generated_password)
    menu = page.get_by_role("navigation", name="Main menu")
    menu.get_by_role("link", name="Maintenance", exact=True).click()
    menu.get_by_role("link", name="Restart Services").click()
    for name in ("redis", "web", "worker-dataplane", "worker-checks", "worker-maintenance",
                 "beat"):
        expect(row(page, name).locator(".state")).to_contain_text("running")
    expect(page.locator("#installed-release")).to_have_text("0.1.0")

    # a worker: a new process, and its queue answers again
    old_pid = appliance_stack.processes["worker-checks"].pid
    row(page, "worker-checks").get_by_role("button", name="Restart").click()
    expect(page.locator(".message")).to_contain_text("Restart requested: worker-checks")
    expect(row(page, "worker-checks").locator(".last-restart")).to_contain_text(
        "restarted (by loadbalancer)", timeout=60_000)
    new_pid = appliance_stack.processes["worker-checks"].pid
    assert new_pid != old_pid
    expect(row(page, "worker-checks").locator(".pid")).to_have_text(str(new_pid))

    # Redis: restarted with its data (health states, schedules) kept
    client = redis.Redis(unix_socket_path=str(appliance_stack.redis_socket))
    client.set("lbadmin:test:kept", "yes")
    old_pid = appliance_stack.processes["redis"].pid
    row(page, "redis").get_by_role("button", name="Restart").click()
    expect(row(page, "redis").locator(".last-restart")).to_contain_text("restarted",
                                                                       timeout=60_000)
    assert appliance_stack.processes["redis"].pid != old_pid
    assert client.get("lbadmin:test:kept") == b"yes"
    client.delete("lbadmin:test:kept")

    # the WebUI itself: the page comes back from a new gunicorn
    old_pid = appliance_stack.processes["web"].pid
    row(page, "web").get_by_role("button", name="Restart").click()
    expect(row(page, "web").locator(".last-restart")).to_contain_text("restarted",
                                                                     timeout=60_000)
    assert appliance_stack.processes["web"].pid != old_pid

    page.goto(f"{webui}/lbadmin/")
    for queue in ("dataplane", "checks", "maintenance"):
        expect(page.locator(f"[data-service=queue-{queue}]")).to_contain_text("answering",
                                                                             timeout=30_000)


def test_a_dead_service_is_named_in_a_banner_with_its_restart_button(page, webui,
                                                                     appliance_stack):
    log_in(page, webui, appliance_stack.generated_password)
    os.killpg(appliance_stack.processes["beat"].pid, signal.SIGKILL)
    banner = page.locator("#restart-needed")
    deadline = time.monotonic() + 10  # the supervisor publishes what it sees every second
    while time.monotonic() < deadline:
        page.goto(f"{webui}/lbadmin/cluster/virtual-services/")
        if banner.count():
            break
        time.sleep(0.5)
    expect(banner).to_contain_text("Restart needed: Scheduler (celery beat) (exited with code -9)")
    banner.get_by_role("button", name="Restart it").click()
    expect(row(page, "beat").locator(".state")).to_contain_text("running", timeout=30_000)
    page.goto(f"{webui}/lbadmin/cluster/virtual-services/")
    expect(page.locator("#restart-needed")).to_have_count(0)
