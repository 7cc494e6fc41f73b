"""Offline Update in Chromium on the real stack: a signed release of this checkout is uploaded
with its checksum and signature, verified, and installed by the maintenance worker as far as
it is built (staged, migrations checked) while the page's progress bar follows it."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from maintenance import updates

from .conftest import log_in

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]


def test_offline_update_upload_verify_and_stage(page, webui, appliance_stack, tmp_path):
    updates.make_key(tmp_path / "release.pem",
                     appliance_stack.data_dir / "update-keys" / "test-release.pub")
    archive = updates.build_release(ROOT, "9.0.0", "0.1.0", "Faster checks.",
                                    (tmp_path / "release.pem").read_bytes(), tmp_path / "dist")
    log_in(page, webui, appliance_stack.generated_password)
    page.goto(f"{webui}/lbadmin/maintenance/software-update/")
    page.get_by_label("Archive").set_input_files(str(archive))
    page.get_by_label("Checksum").set_input_files(f"{archive}.sha256")
    page.get_by_label("Signature").set_input_files(f"{archive}.sig")
    page.get_by_role("button", name="Upload and Verify").click()
    expect(page.locator("#verified-update")).to_contain_text("Verified: version 9.0.0")
    expect(page.locator("#verified-update")).to_contain_text("Faster checks.")
    page.get_by_role("button", name="Install").click()
    expect(page.locator("#update-status")).to_have_text("Staged", timeout=60_000)
    expect(page.locator("progress")).to_have_attribute("value", "100")
    expect(page.locator("#update-log")).to_contain_text("migrations apply cleanly")

    # a wrong checksum is refused with its reason
    page.goto(f"{webui}/lbadmin/maintenance/software-update/")
    (tmp_path / "bad.sha256").write_text("0" * 64)
    page.get_by_label("Archive").set_input_files(str(archive))
    page.get_by_label("Checksum").set_input_files(str(tmp_path / "bad.sha256"))
    page.get_by_label("Signature").set_input_files(f"{archive}.sig")
    page.get_by_role("button", name="Upload and Verify").click()
    expect(page.locator("#field-archive")).to_contain_text("Refused: Wrong checksum")
