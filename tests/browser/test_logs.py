"""Logs › Layer 4, Logs › System and Support › Support Download in Chromium, after the guide's
deployment on the real stack: the applies the dataplane worker made are listed with their
generations, the services' logs filter by service, and the support archive downloads with its
MANIFEST and without the appliance's secrets."""

import contextlib
import sqlite3
import tarfile

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def open_menu(page, section, item=None):
    menu = page.get_by_role("navigation", name="Main menu")
    menu.get_by_role("link", name=section, exact=True).click()
    if item:
        menu.locator("li.section.current").get_by_role("link", name=item, exact=True).click()


def current_generation(stack):
    with contextlib.closing(sqlite3.connect(stack.database, timeout=10)) as db:
        row = db.execute("SELECT number FROM clusters_configgeneration WHERE id = 1").fetchone()
    return row[0]


def test_logs_layer4_lists_the_guides_applies_with_their_generations(guide_deployment,
                                                                     appliance_stack):
    page = guide_deployment
    open_menu(page, "Logs", "Layer 4")
    expect(page.get_by_role("heading", name="Layer 4")).to_be_visible()
    newest = current_generation(appliance_stack)
    rows = page.locator("#apply-log tbody tr[data-generation]")
    expect(rows.first).to_have_attribute("data-generation", str(newest))
    expect(rows.first).to_contain_text("applied")
    generations = [int(g) for g in rows.evaluate_all(
        "rows => rows.map(row => row.dataset.generation)")]
    assert generations == sorted(generations, reverse=True)
    # the worker's start rebuilt the table whole; each of the guide's saves applied a difference
    expect(page.locator("#apply-log")).to_contain_text("full")
    expect(page.locator("#apply-log")).to_contain_text("difference")


def test_logs_system_filters_by_service(guide_deployment):
    page = guide_deployment
    open_menu(page, "Logs", "System")
    lines = page.locator("#system-log tbody tr[data-service]")
    expect(lines.first).to_be_visible()
    page.get_by_label("Service").select_option("worker-dataplane")
    page.get_by_label("Live (refresh every 3 s)").uncheck()
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#system-log")).to_contain_text("applied")
    services = set(lines.evaluate_all("rows => rows.map(row => row.dataset.service)"))
    assert services == {"worker-dataplane"}
    expect(page.locator("#system-log")).not_to_have_attribute("hx-trigger", "every 3s")


def test_the_support_archive_downloads_with_its_manifest_and_no_secret(guide_deployment,
                                                                       appliance_stack,
                                                                       tmp_path):
    page = guide_deployment
    open_menu(page, "Support", "Support Download")
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("link", name="Download the support archive").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.name.startswith("lbadmin-support-") and path.name.endswith(".tar.gz")
    with tarfile.open(path, "r:gz") as tar:
        files = {member.name.partition("/")[2]: tar.extractfile(member).read().decode()
                 for member in tar.getmembers()}
    assert "MANIFEST" in files and "configuration.xml" in files["MANIFEST"]
    assert 'label="VNA"' in files["configuration.xml"]
    assert "table ip lbadmin" in files["ruleset-live.txt"]
    assert any(name.startswith("logs/") for name in files)
    everything = "\n".join(files.values())
    secret_key = (appliance_stack.data_dir / "secret_key").read_text().strip()
    with contextlib.closing(sqlite3.connect(appliance_stack.database, timeout=10)) as db:
        hashes = [row[0] for row in db.execute("SELECT password FROM auth_user")]
    for secret in [secret_key, appliance_stack.generated_password, *hashes,
                   "PRIVATE KEY"]:
        assert secret not in everything
    open_menu(page, "Logs", "User Log")
    expect(page.locator("main")).to_contain_text("downloaded the support archive")
