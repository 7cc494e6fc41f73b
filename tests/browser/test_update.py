"""Software Update in Chromium, on a stack of its own: real signed releases of this working tree
are uploaded, verified and installed; the supervisor switches the services over to them, or
back when they fail."""

import re
import sqlite3
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect

from lab import VIP
from runner.stack import release_version
from tests import releases
from tests.conftest import running_stack
from tests.netns.traffic import HeldConnection, connect_many

from .conftest import log_in, type_guide_deployment

pytestmark = pytest.mark.browser
SWITCH_TIMEOUT = 180_000  # ms: stop, migrate, start, check — twice when it switches back


@pytest.fixture(scope="module")
def update_stack():
    with running_stack() as stack:
        yield stack


@pytest.fixture(scope="module")
def key(update_stack, tmp_path_factory):
    return releases.signing_key(tmp_path_factory.mktemp("release-key"),
                                update_stack.data_dir / "update-keys")


@pytest.fixture
def admin(page, update_stack):
    webui = f"https://127.0.0.1:{update_stack.https_port}"
    log_in(page, webui, update_stack.generated_password)
    return page, webui


def upload(page, webui, archive, checksum=None):
    page.goto(f"{webui}/lbadmin/maintenance/software-update/")
    page.get_by_label("Archive").set_input_files(str(archive))
    page.get_by_label("Checksum").set_input_files(str(checksum or f"{archive}.sha256"))
    page.get_by_label("Signature").set_input_files(f"{archive}.sig")
    page.get_by_role("button", name="Upload and Install").click()


def finishes(page, expected_status):
    expect(page.locator("#update-status")).to_have_text(expected_status, timeout=SWITCH_TIMEOUT)
    expect(page.locator("progress")).to_have_attribute("value", "100")


def tables(stack):
    with sqlite3.connect(stack.database) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master")}


def test_a_release_whose_migration_fails_is_refused_before_anything_stops(
        admin, update_stack, key, tmp_path):
    page, webui = admin
    archive = releases.build(tmp_path, "9.0.0", key, {
        "clusters/migrations/0099_fails.py": releases.FAILING_MIGRATION})
    upload(page, webui, archive)
    finishes(page, "Failed")
    expect(page.locator("#update-log")).to_contain_text("this migration fails on purpose")
    expect(page.locator("#update-log")).to_contain_text("The running 0.1.0 keeps serving")
    page.goto(f"{webui}/lbadmin/")
    expect(page.locator("#version")).to_have_text("0.1.0")
    assert update_stack.version == "0.1.0"


def test_a_release_that_cannot_start_is_switched_back_with_its_database(
        admin, update_stack, key, tmp_path):
    page, webui = admin
    web_pid = update_stack.processes["web"].pid
    archive = releases.build(tmp_path, "9.0.0", key, {
        "clusters/migrations/0099_update_probe.py": releases.PROBE_MIGRATION,
        "appliance/wsgi.py": releases.BROKEN_WSGI})
    upload(page, webui, archive)
    finishes(page, "Failed")
    log = page.locator("#update-log")
    expect(log).to_contain_text("migrating it for 9.0.0")
    expect(log).to_contain_text("FAILED: web exited")
    expect(log).to_contain_text("switched back: 0.1.0 is serving again")
    expect(page.locator("#update-result")).to_contain_text("The update to 9.0.0 failed; 0.1.0 "
                                                           "is running.")
    # the old release really serves again, on a database without the new release's table
    assert update_stack.processes["web"].pid != web_pid
    assert update_stack.version == "0.1.0" and update_stack.imported_version() == "0.1.0"
    assert "update_probe" not in tables(update_stack)
    assert not (update_stack.data_dir / "current").exists()
    page.goto(f"{webui}/lbadmin/")
    expect(page.locator("#version")).to_have_text("0.1.0")
    expect(page.locator("#service-status")).to_contain_text("answering", timeout=30_000)


class Traffic:
    """Short connections to the VIP from the client namespace, one after another, in a
    thread, until stopped: what a modality would do during the update."""

    def __init__(self, lab):
        self.lab, self.answers, self.stop = lab, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            self.answers.extend(connect_many(self.lab, VIP, [12000], 5))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=60)


def test_offline_update_switches_the_services_to_the_new_release(
        admin, update_stack, key, tmp_path):
    page, webui = admin
    type_guide_deployment(page)  # VNA on the guide's ports, served by the primary
    held = HeldConnection(update_stack.lab, VIP, 12000)
    assert held.greeting.startswith("primary port 12000")
    archive = releases.build(tmp_path, "9.0.0", key, {
        "clusters/migrations/0099_update_probe.py": releases.PROBE_MIGRATION},
        notes="Faster checks.")

    # a wrong checksum is refused with its reason, before anything is stored
    (tmp_path / "bad.sha256").write_text("0" * 64)
    upload(page, webui, archive, tmp_path / "bad.sha256")
    expect(page.locator("#field-archive")).to_contain_text("Refused: Wrong checksum")

    with held, Traffic(update_stack.lab) as traffic:
        upload(page, webui, archive)
        expect(page.locator("#update-log")).to_contain_text(
            "version 9.0.0, signed by a trusted key")
        expect(page.locator("#update-log")).to_contain_text("Release notes: Faster checks.")
        finishes(page, "Completed")
        # the data plane forwarded throughout: every new connection served, the open one kept
        assert "primary port 12000" in held.talk("still there?")
    assert len(traffic.answers) > 20
    assert {answer.split(" client")[0] for answer in traffic.answers} == {"primary port 12000"}
    expect(page.locator("#update-result")).to_have_text(
        "Information: Update completed successfully. Return to System Overview.")
    expect(page.locator("#update-log")).to_contain_text("Update completed successfully")

    assert update_stack.version == "9.0.0" and update_stack.imported_version() == "9.0.0"
    assert release_version(update_stack.data_dir / "current") == "9.0.0"
    assert "update_probe" in tables(update_stack)
    page.locator("#update-result").get_by_role("link", name="System Overview").click()
    expect(page.locator("#version")).to_have_text("9.0.0")
    status = page.locator("#service-status")
    for queue in ("dataplane", "checks", "maintenance"):
        expect(status.locator(f"[data-service=queue-{queue}]")).to_contain_text("answering",
                                                                       timeout=30_000)
    page.goto(f"{webui}/lbadmin/maintenance/software-update/")
    history = page.locator("table.list")
    expect(history).to_contain_text("9.0.0")
    expect(history.locator("tr", has_text="Completed")).to_have_count(1)
    assert Path(update_stack.code_dir).name == "9.0.0"


def test_online_update_is_announced_on_every_page_and_installs(admin, update_stack, key,
                                                              tmp_path):
    page, webui = admin
    releases.build(tmp_path, "9.1.0", key, notes="Online: the DICOM check is quicker.")
    # on the lab's network, where the appliance's services run
    with releases.update_server(tmp_path / "dist", lab=update_stack.lab) as url:
        menu = page.get_by_role("navigation", name="Main menu")
        menu.get_by_role("link", name="Local Configuration", exact=True).click()
        menu.get_by_role("link", name="Physical – Advanced Configuration").click()
        expect(page.get_by_label("Online Update check")).to_be_checked()
        page.get_by_label("Update Server URL").fill("ftp://nowhere/")
        page.get_by_role("button", name="Update").click()
        expect(page.locator("#field-server_url")).to_contain_text("http:// or https://")
        page.get_by_label("Update Server URL").fill("http://169.254.169.254/latest/")
        page.get_by_role("button", name="Update").click()  # a cloud's metadata service
        expect(page.locator("#field-server_url")).to_contain_text(
            "Refused: 169.254.169.254 is a link-local address")
        page.get_by_label("Update Server URL").fill(url)
        page.get_by_role("button", name="Update").click()
        expect(page.locator(".message")).to_contain_text("Advanced configuration saved.")
        # the maintenance worker asks the server; the page polls and shows the answer
        expect(page.locator("#last-check")).to_contain_text("version 9.1.0 is available.",
                                                            timeout=30_000)

        banner = page.locator("#update-available")
        expect(banner).to_have_text(re.compile(
            r"Information: Update 9\.1\.0 is now available for this appliance\."))
        menu.get_by_role("link", name="Cluster Configuration", exact=True).click()
        expect(banner).to_contain_text("Update 9.1.0 is now available")  # every page
        banner.get_by_role("link", name="Online Update").click()
        expect(page.locator("#release-notes")).to_have_text(
            "Online: the DICOM check is quicker.")
        page.get_by_role("button", name="Update", exact=True).click()
        expect(page.locator("#update-status")).to_have_text("Completed",
                                                            timeout=SWITCH_TIMEOUT)
    expect(page.locator("#update-log")).to_contain_text("downloading " + url)
    assert update_stack.version == "9.1.0" and update_stack.imported_version() == "9.1.0"
    page.goto(f"{webui}/lbadmin/")
    expect(page.locator("#version")).to_have_text("9.1.0")
    expect(page.locator("#update-available")).to_have_count(0)
