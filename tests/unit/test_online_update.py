"""Online Update against a real HTTP server on loopback holding what `make release` wrote."""

import json

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from maintenance import install, online, updates
from maintenance.forms import OnlineUpdateForm
from maintenance.models import OnlineUpdate, UpdateJob
from tests import releases

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def update_server(tmp_path):
    """Serves tmp_path/served over HTTP on 127.0.0.1; yields (base URL, that folder)."""
    served = tmp_path / "served"
    served.mkdir()
    with releases.update_server(served) as url:
        yield url, served


@pytest.fixture
def key(tmp_path):
    """A signing key whose public half this appliance trusts for the test."""
    trusted_dir = settings.DATA_DIR / "update-keys"
    folder = tmp_path / "online-test-key"
    folder.mkdir()
    pem = releases.signing_key(folder, trusted_dir)
    yield pem
    (trusted_dir / "online-test-key-release.pub").unlink()


def configure(url, enabled=True):
    row = OnlineUpdate.load()
    row.enabled, row.server_url = enabled, url
    row.save()
    return row


def test_a_newer_release_on_the_server_is_offered_with_its_notes(update_server, key, tmp_path):
    url, dist = update_server
    releases.build(tmp_path, "9.1.0", key, notes="Faster checks.")
    for name in ("latest.json", "lbadmin-9.1.0.tar.gz"):
        (dist / name).write_bytes((tmp_path / "dist" / name).read_bytes())
    checked = online.check(configure(url.rstrip("/")))  # with or without the trailing /
    assert checked.check_error == ""
    assert checked.available_version == "9.1.0"
    assert checked.available_notes == "Faster checks."
    assert checked.available_archive == f"{url}lbadmin-9.1.0.tar.gz"
    assert online.offered().available_version == "9.1.0"
    # the running release is not older: nothing offered
    assert online.check(running="9.1.0").available_version == ""
    assert online.offered() is None


def test_a_check_that_fails_says_why_and_offers_nothing(update_server):
    url, dist = update_server
    assert "answered 404" in online.check(configure(url)).check_error
    (dist / "latest.json").write_text("<html>not json</html>")
    assert "is not an update manifest" in online.check().check_error
    (dist / "latest.json").write_text(json.dumps(
        {"version": "9.1.0", "notes": "", "archive": "../../etc/passwd.tar.gz"}))
    assert "not a plain .tar.gz file name" in online.check().check_error
    (dist / "latest.json").write_text(json.dumps(
        {"version": "nine", "notes": "", "archive": "a.tar.gz"}))
    assert "is not a version" in online.check().check_error
    (dist / "latest.json").write_bytes(b"x" * (online.MAX_MANIFEST + 1))
    assert "is larger than" in online.check().check_error
    closed = url.rsplit(":", 1)[0] + ":9/"  # discard port: nothing listens on loopback
    assert "cannot be fetched" in online.check(configure(closed)).check_error
    assert online.offered() is None


def test_a_switched_off_check_asks_nobody(update_server):
    url, dist = update_server
    checked = online.check(configure(url, enabled=False))
    assert checked.checked_at is None and checked.check_error == ""


def test_download_verifies_as_an_upload_is_verified(update_server, key, tmp_path):
    url, dist = update_server
    archive = releases.build(tmp_path, "9.1.0", key)
    for suffix in ("", ".sha256", ".sig"):
        (dist / f"{archive.name}{suffix}").write_bytes(
            (tmp_path / "dist" / f"{archive.name}{suffix}").read_bytes())
    stored = online.download(f"{url}{archive.name}", "9.1.0")
    assert stored.read_bytes() == archive.read_bytes()
    with pytest.raises(updates.UpdateError, match="the archive is 9.1.0"):
        online.download(f"{url}{archive.name}", "9.2.0")
    (dist / archive.name).write_bytes(archive.read_bytes()[:-100])  # tampered on the server
    with pytest.raises(updates.UpdateError, match="Wrong checksum"):
        online.download(f"{url}{archive.name}", "9.1.0")


def test_an_online_job_downloads_then_installs_through_the_same_path(
        update_server, key, tmp_path, monkeypatch):
    url, dist = update_server
    archive = releases.build(tmp_path, "9.1.0", key)
    for suffix in ("", ".sha256", ".sig"):
        (dist / f"{archive.name}{suffix}").write_bytes(
            (tmp_path / "dist" / f"{archive.name}{suffix}").read_bytes())
    asked = []
    monkeypatch.setattr(install, "supervisor_state", lambda: {"services": {}})
    monkeypatch.setattr(install, "ask_supervisor", asked.append)
    job = UpdateJob.objects.create(user="tester", from_version="0.1.0", to_version="9.1.0",
                                   archive="", source_url=f"{url}{archive.name}")
    assert install.run_job(job.pk) == UpdateJob.Status.SWITCHING
    job.refresh_from_db()
    assert "checksum, signature, manifest and version verified" in job.log
    assert asked and asked[0]["switch"]["version"] == "9.1.0"


@pytest.mark.parametrize(("data", "error"), [
    ({"enabled": "on", "server_url": "ftp://updates.example.org/"}, "http:// or https://"),
    ({"enabled": "on", "server_url": "updates"}, "http:// or https://"),
])
def test_the_settings_refuse_what_cannot_be_asked(data, error):
    form = OnlineUpdateForm(data, instance=OnlineUpdate.load())
    assert not form.is_valid()
    assert error in form.errors["server_url"][0]


@pytest.mark.parametrize("enabled", ["on", ""])
def test_the_check_can_be_saved_without_a_server(enabled):
    form = OnlineUpdateForm({"enabled": enabled, "server_url": ""},
                            instance=OnlineUpdate.load())
    assert form.is_valid(), form.errors
    assert online.check(form.save()).checked_at is None  # nobody to ask


# Finding 9: an offer is only ever the answer of the server now set, with the check on.

SERVER = "https://updates.example.org/lbadmin/"


@pytest.fixture
def admin(settings, tmp_path):
    """A logged-in client; Redis (the restart banner) answers nothing."""
    settings.REDIS_URL = f"unix://{tmp_path}/nothing.sock"
    client = Client()
    client.force_login(get_user_model().objects.create_user(
        "loadbalancer", password="a-Long-test-pass"))
    return client


def offer(url=SERVER, enabled=True, version="9.1.0"):
    """The state a check leaves when the server offers `version`."""
    row = configure(url, enabled)
    row.available_version, row.available_notes = version, "Faster checks."
    row.available_archive = f"{url}lbadmin-{version}.tar.gz"
    row.checked_at = timezone.now()
    row.save()
    return row


BANNER = b"Update 9.1.0 is now available for this appliance."


def test_an_offer_shows_on_every_page_and_on_software_update(admin):
    offer()
    assert BANNER in admin.get(reverse("overview:index")).content
    page = admin.get(reverse("maintenance:software-update")).content
    assert b"Version 9.1.0 is available" in page and b">Update</button>" in page


@pytest.mark.parametrize(("data", "words"), [
    ({"server_url": SERVER}, b"the offer of update 9.1.0 is withdrawn"),  # check off
    ({"enabled": "on", "server_url": ""}, b"the offer of update 9.1.0 is withdrawn"),
])
def test_switching_the_check_off_or_clearing_the_server_withdraws_the_offer(
        admin, data, words):
    offer()
    response = admin.post(reverse("local:advanced"), data, follow=True)
    assert words in response.content
    assert online.offered() is None
    row = OnlineUpdate.load()
    assert (row.available_version, row.available_notes, row.available_archive) == ("", "", "")
    assert BANNER not in admin.get(reverse("overview:index")).content
    page = admin.get(reverse("maintenance:software-update")).content
    assert b"is available" not in page and b">Update</button>" not in page


def test_changing_the_server_withdraws_the_old_servers_offer(admin):
    offer()
    nobody = "http://127.0.0.1:9/"  # discard port: nothing listens on loopback
    response = admin.post(reverse("local:advanced"), {"enabled": "on", "server_url": nobody},
                          follow=True)
    assert b"the update server did not answer" in response.content
    assert online.offered() is None
    row = OnlineUpdate.load()
    assert row.server_url == nobody and row.available_version == ""
    assert "cannot be fetched" in row.check_error


def test_saving_the_same_settings_keeps_the_offer(admin, monkeypatch):
    offer()
    monkeypatch.setattr(online, "read_offer", lambda url: (
        "9.1.0", "Faster checks.", f"{SERVER}lbadmin-9.1.0.tar.gz"))
    admin.post(reverse("local:advanced"), {"enabled": "on", "server_url": SERVER})
    assert online.offered().available_version == "9.1.0"


def test_a_restore_that_switches_the_check_off_withdraws_the_offer():
    offer()
    form = OnlineUpdateForm({"enabled": "", "server_url": SERVER},
                            instance=OnlineUpdate.load())
    assert form.is_valid(), form.errors
    form.save()
    assert online.offered() is None and OnlineUpdate.load().available_version == ""


@pytest.mark.parametrize(("url", "enabled"), [(SERVER, False), ("", True), ("", False)])
def test_nothing_is_offered_unless_the_check_is_on_with_a_server(url, enabled):
    offer(url, enabled)  # an older release left this behind
    assert online.offered() is None
    online.check()  # asks nobody, and forgets it
    assert OnlineUpdate.load().available_version == ""


def test_a_check_running_while_the_check_is_switched_off_stores_nothing(monkeypatch):
    configure(SERVER)

    def switched_off_while_asking(url):
        row = OnlineUpdate.load()
        row.enabled = False
        row.save()
        return "9.1.0", "", f"{SERVER}lbadmin-9.1.0.tar.gz"

    monkeypatch.setattr(online, "read_offer", switched_off_while_asking)
    checked = online.check()
    assert not checked.enabled and checked.available_version == ""
    row = OnlineUpdate.load()
    assert not row.enabled and row.available_version == ""  # the switch-off stands
    assert online.offered() is None


def test_the_update_button_refuses_with_words_when_nothing_is_offered(admin):
    offer(enabled=False)
    response = admin.post(reverse("maintenance:update-online"), follow=True)
    assert b"Nothing installed: no update is on offer, the online update check is off" \
        in response.content
    online.withdraw(configure(SERVER)).save()  # on, with a server that offers nothing newer
    response = admin.post(reverse("maintenance:update-online"), follow=True)
    assert b"Nothing installed: no newer release is on offer; check again." in response.content
    assert not UpdateJob.objects.exists()
