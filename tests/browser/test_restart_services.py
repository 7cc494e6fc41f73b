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


def test_a_killed_service_is_restarted_by_the_supervisor_and_shown_with_its_exit_status(
        page, webui, appliance_stack):
    log_in(page, webui, appliance_stack.generated_password)
    page.goto(f"{webui}/lbadmin/maintenance/restart-services/")
    old_pid = appliance_stack.processes["beat"].pid
    os.killpg(old_pid, signal.SIGKILL)
    expect(row(page, "beat").locator(".auto-restarts")).to_contain_text(
        "(last exit status -9)", timeout=30_000)
    expect(row(page, "beat").locator(".state")).to_contain_text("running", timeout=30_000)
    assert appliance_stack.processes["beat"].pid != old_pid
    expect(row(page, "beat").locator(".pid")).to_have_text(
        str(appliance_stack.processes["beat"].pid))
    assert "beat (pid" in (appliance_stack.log_dir / "supervisor.log").read_text()


def test_a_stopped_service_stays_down_and_is_named_in_a_banner_with_its_restart_button(
        page, webui, appliance_stack):
    log_in(page, webui, appliance_stack.generated_password)
    page.goto(f"{webui}/lbadmin/maintenance/restart-services/")
    row(page, "beat").get_by_role("button", name="Stop").click()
    expect(page.locator(".message")).to_contain_text("Stop requested: beat")
    expect(row(page, "beat").locator(".state")).to_contain_text("not running",
                                                                timeout=30_000)
    time.sleep(3)  # the supervisor does not fight an administrator's stop
    assert "beat" not in appliance_stack.processes
    page.goto(f"{webui}/lbadmin/cluster/virtual-services/")
    banner = page.locator("#restart-needed")
    expect(banner).to_contain_text("Restart needed: Scheduler (celery beat) (not running)")
    banner.get_by_role("button", name="Restart it").click()
    expect(row(page, "beat").locator(".state")).to_contain_text("running", timeout=30_000)
    page.goto(f"{webui}/lbadmin/cluster/virtual-services/")
    expect(page.locator("#restart-needed")).to_have_count(0)
