"""Online Update against a real HTTP server on loopback holding what `make release` wrote."""

import contextlib
import http.server
import json
import socket
import threading
import time

import pytest
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from maintenance import fetch, install, online, tasks, updates, views
from maintenance.forms import OnlineUpdateForm
from maintenance.models import OnlineUpdate, UpdateJob
from network.models import NetworkConfiguration
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
    for name in ("latest.json", "latest.json.sig", "lbadmin-9.1.0.tar.gz"):
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


def serve_offer(dist, data, key_pem):
    """latest.json holding `data` on the server, signed by `key_pem`."""
    (dist / "latest.json").write_bytes(data)
    private = serialization.load_pem_private_key(key_pem, None)
    (dist / "latest.json.sig").write_bytes(updates.sign(private, data))


def test_a_check_that_fails_says_why_and_offers_nothing(update_server, key):
    url, dist = update_server
    assert "answered 404" in online.check(configure(url)).check_error
    serve_offer(dist, b"<html>not json</html>", key)
    assert "is not an update manifest" in online.check().check_error
    serve_offer(dist, json.dumps(
        {"version": "9.1.0", "notes": "", "archive": "../../etc/passwd.tar.gz"}).encode(), key)
    assert "not a plain .tar.gz file name" in online.check().check_error
    serve_offer(dist, json.dumps({"version": "nine", "notes": "", "archive": "a.tar.gz"}
                                 ).encode(), key)
    assert "is not a version" in online.check().check_error
    (dist / "latest.json").write_bytes(b"x" * (online.MAX_MANIFEST + 1))
    assert "is larger than" in online.check().check_error
    closed = url.rsplit(":", 1)[0] + ":9/"  # discard port: nothing listens on loopback
    assert "cannot be fetched" in online.check(configure(closed)).check_error
    assert online.offered() is None


# Finding 4: latest.json is signed like the archives; an unsigned or wrongly signed one is
# refused with words.

def test_an_unsigned_or_wrongly_signed_offer_is_refused(update_server, key, tmp_path):
    url, dist = update_server
    releases.build(tmp_path, "9.1.0", key)
    offer_bytes = (tmp_path / "dist" / "latest.json").read_bytes()
    assert json.loads(offer_bytes)["version"] == "9.1.0"
    (dist / "latest.json").write_bytes(offer_bytes)  # no latest.json.sig
    error = online.check(configure(url)).check_error
    assert "latest.json is not signed, so it is not believed" in error
    assert "latest.json.sig answered 404" in error
    (dist / "latest.json.sig").write_bytes(b"")
    assert "signature is missing" in online.check().check_error
    (dist / "latest.json.sig").write_bytes(b"not base64 !")
    assert "is not a signature" in online.check().check_error
    stranger = tmp_path / "stranger"  # a key this appliance does not trust
    stranger.mkdir()
    serve_offer(dist, offer_bytes, releases.signing_key(stranger))
    assert "Bad signature: no trusted key signed this offer (latest.json)" in \
        online.check().check_error
    # signed by the trusted key, but changed afterwards (a newer version announced)
    (dist / "latest.json.sig").write_bytes(
        (tmp_path / "dist" / "latest.json.sig").read_bytes())
    (dist / "latest.json").write_bytes(offer_bytes.replace(b"9.1.0", b"9.9.0"))
    assert "Bad signature" in online.check().check_error
    assert online.offered() is None
    (dist / "latest.json").write_bytes(offer_bytes)  # as signed: believed
    assert online.check().available_version == "9.1.0"


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


def test_changing_the_server_withdraws_the_old_servers_offer(admin, monkeypatch):
    offer()
    sent = []
    monkeypatch.setattr(views, "send_task", lambda task, *args: sent.append(task))
    nobody = "http://127.0.0.1:9/"  # discard port: nothing listens on loopback
    response = admin.post(reverse("local:advanced"), {"enabled": "on", "server_url": nobody},
                          follow=True)
    assert b"The offer of update 9.1.0 is withdrawn. Checking the update server" \
        in response.content
    assert sent == [tasks.check_for_update]
    assert online.offered() is None
    row = OnlineUpdate.load()
    assert row.server_url == nobody and row.available_version == ""
    tasks.check_for_update()  # what the worker does
    assert "cannot be fetched" in OnlineUpdate.load().check_error


# Finding 1: the check runs in the maintenance worker, never in the web request; the page
# says "checking…" and polls (htmx) until the answer is stored.

def poll(admin, name="local:advanced", shown=""):
    return admin.get(reverse(name), {"shown": shown}, HTTP_HX_REQUEST="true")


@pytest.mark.parametrize("page", ["local:advanced", "maintenance:software-update"])
def test_saving_or_check_now_sends_the_check_to_the_worker_and_the_page_polls(
        admin, monkeypatch, update_server, key, tmp_path, page):
    url, dist = update_server
    releases.build(tmp_path, "9.1.0", key, notes="Faster checks.")
    for name in ("latest.json", "latest.json.sig"):
        (dist / name).write_bytes((tmp_path / "dist" / name).read_bytes())
    sent = []
    monkeypatch.setattr(views, "send_task", lambda task, *args: sent.append(task))
    asked_in_the_request = []
    monkeypatch.setattr(online, "read_offer", lambda *args: asked_in_the_request.append(args))
    if page == "local:advanced":
        response = admin.post(reverse(page), {"enabled": "on", "server_url": url}, follow=True)
        assert b"Advanced configuration saved. Checking the update server" in response.content
    else:
        configure(url)
        response = admin.post(reverse("maintenance:update-check"), follow=True)
        assert "Checking the update server…" in response.content.decode()
    assert sent == [tasks.check_for_update] and asked_in_the_request == []
    page_html = response.content.decode()
    assert "<strong>Checking the update server…</strong>" in page_html
    assert 'hx-trigger="every 1s"' in page_html
    waiting = poll(admin, page)
    assert waiting.status_code == 200 and "Checking the update server" in waiting.content.decode()
    monkeypatch.undo()  # the worker's check, for real, against the update server
    tasks.check_for_update()
    done = poll(admin, page)
    assert done.status_code == 286  # htmx stops polling
    assert "version 9.1.0 is available." in done.content.decode()
    assert "hx-trigger" not in done.content.decode()
    assert done["HX-Refresh"] == "true"  # the banner is new: the page reloads to show it
    page_html = admin.get(reverse(page)).content.decode()
    assert "Update 9.1.0 is now available" in page_html and "hx-trigger" not in page_html


def test_when_the_worker_cannot_be_reached_the_page_says_so(admin):
    """The admin fixture's Redis answers nothing: the check cannot be sent."""
    response = admin.post(reverse("local:advanced"), {"enabled": "on", "server_url": SERVER},
                          follow=True)
    text = response.content.decode()
    assert "Advanced configuration saved. The update server was not asked: the maintenance " \
           "worker cannot be reached: Redis is down" in text
    assert "Checking the update server" not in text
    response = admin.post(reverse("maintenance:update-check"), follow=True)
    assert "Not checked: the maintenance worker cannot be reached" in response.content.decode()
    assert OnlineUpdate.load().checked_at is None


def test_a_check_the_worker_never_takes_is_told_after_the_wait(admin, monkeypatch):
    configure(SERVER)
    monkeypatch.setattr(views, "send_task", lambda task, *args: None)  # queued, never run
    admin.post(reverse("maintenance:update-check"))
    assert poll(admin, "maintenance:software-update").status_code == 200
    later = time.time() + views.CHECK_WAIT + 1
    monkeypatch.setattr(views.time, "time", lambda: later)
    response = poll(admin, "maintenance:software-update")
    assert response.status_code == 286
    assert "the maintenance worker did not take the check within 60 s" in \
        response.content.decode()


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


# Finding 1: every outbound request has a total deadline and a size cap.

@contextlib.contextmanager
def raw_server(answer):
    """A TCP server on loopback; `answer(connection)` talks to each client. Yields its URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)  # the request
                with contextlib.suppress(OSError):
                    answer(connection, stop)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/latest.json"
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)


def trickle(data, interval=0.2):
    def answer(connection, stop):
        for byte in data:
            if stop.wait(interval):
                return
            connection.sendall(bytes([byte]))
    return answer


@pytest.mark.parametrize("answer", [
    trickle(b"HTTP/1.0 200 OK\r\nContent-Length: 200\r\n\r\n" + b"x" * 200),  # slow headers
    lambda connection, stop: (connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 200"
                                                 b"\r\n\r\n"),
                              trickle(b"x" * 200)(connection, stop)),  # slow body
], ids=["headers", "body"])
def test_a_trickling_server_is_cut_at_the_total_deadline(answer):
    with raw_server(answer) as url:
        started = time.monotonic()
        with pytest.raises(fetch.DeadlineExceeded, match=r"did not answer completely within "
                                                         r"1\.5 s"):
            fetch.fetch(url, 1000, deadline=1.5)
        assert 1.4 < time.monotonic() - started < 2.2  # not 200 × 0.2 s


def test_a_trickling_update_server_fails_the_check_in_words(monkeypatch):
    monkeypatch.setattr(online, "CHECK_DEADLINE", 1)
    with raw_server(trickle(b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 100)) as url:
        started = time.monotonic()
        error = online.check(configure(url.removesuffix("latest.json"))).check_error
    assert time.monotonic() - started < 2
    assert "did not answer completely within 1 s" in error


def test_a_body_beyond_the_size_cap_is_refused():
    announced = b"HTTP/1.0 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000
    with raw_server(lambda connection, stop: connection.sendall(announced)) as url, \
            pytest.raises(fetch.FetchError, match=r"larger than 1000 bytes \(5000 announced"):
        fetch.fetch(url, 1000, deadline=5)
    endless = b"HTTP/1.0 200 OK\r\n\r\n"  # no length: refused once 1001 bytes arrived

    def flood(connection, stop):
        connection.sendall(endless)
        while not stop.is_set():
            connection.sendall(b"x" * 65536)

    with raw_server(flood) as url, \
            pytest.raises(fetch.FetchError, match=r"larger than 1000 bytes\.$"):
        fetch.fetch(url, 1000, deadline=5)
    fits = b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 1000
    with raw_server(lambda connection, stop: connection.sendall(fits)) as url:
        assert fetch.fetch(url, 1000, deadline=5) == b"x" * 1000


# Finding 2: no link-local, multicast, unspecified or own addresses, loopback only when
# allowed; every address a name resolves to, and every redirect, is checked.

class Redirects(http.server.BaseHTTPRequestHandler):
    TARGETS = {"/ftp": "ftp://updates.example.org/latest.json",
               "/file": "file:///etc/passwd", "/https": "https://127.0.0.1/latest.json",
               "/metadata": "http://169.254.169.254/latest/meta-data/",
               "/ok": "/fine", "/loop": "/loop"}

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path == "/fine":
            self.send_response(200)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"fine")
            return
        self.send_response(302)
        self.send_header("Location", self.TARGETS[self.path])
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def redirecting():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirects)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("path", "words"), [
    ("/ftp", "redirects to ftp://updates.example.org/latest.json: another scheme (ftp:)"),
    ("/file", "redirects to file:///etc/passwd: another scheme (file:)"),
    ("/https", "another scheme (https:)"),
    ("/metadata", "169.254.169.254 is a link-local address"),
    ("/loop", "redirects more than 5 times"),
])
def test_a_redirect_elsewhere_is_refused(redirecting, path, words):
    with pytest.raises(fetch.FetchError, match="refused|redirects more") as refused:
        fetch.fetch(redirecting + path, 1000, deadline=5)
    assert words in str(refused.value)


def test_a_redirect_on_the_same_server_is_followed(redirecting):
    assert fetch.fetch(redirecting + "/ok", 1000, deadline=5) == b"fine"


def resolving(monkeypatch, addresses):
    """updates.example.org resolves to `addresses` (no DNS in the tests)."""
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        if host != "updates.example.org":
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port)) for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", fake)


@pytest.mark.parametrize(("addresses", "words"), [
    (["192.0.2.80", "169.254.169.254"], "169.254.169.254 is a link-local address"),
    (["fe80::1"], "fe80::1 is a link-local address"),
    (["224.0.0.251"], "224.0.0.251 is a multicast address"),
    (["0.0.0.0"], "0.0.0.0 is an unspecified address"),
    (["::"], ":: is an unspecified address"),
    (["192.0.2.80", "192.0.2.1"], "192.0.2.1 is one of this appliance's own addresses"),
    (["::ffff:169.254.169.254"], "169.254.169.254 is a link-local address"),
])
def test_every_address_a_name_resolves_to_is_checked_at_check_time(monkeypatch, addresses,
                                                                    words):
    NetworkConfiguration.objects.update_or_create(
        pk=1, defaults={"interfaces": {"eth1": {"addresses": ["192.0.2.1/24"], "mtu": 1500}}})
    resolving(monkeypatch, addresses)
    error = online.check(configure("http://updates.example.org/lbadmin/")).check_error
    assert "http://updates.example.org/lbadmin/latest.json is refused: updates.example.org " \
           "is" in error
    assert words in error


def test_loopback_only_when_the_setting_allows_it(update_server, settings):
    url, dist = update_server
    (dist / "latest.json").write_text("{}")
    assert fetch.fetch(url + "latest.json", 100, deadline=5) == b"{}"  # tests/settings.py
    settings.UPDATE_ALLOW_LOOPBACK = False
    error = online.check(configure(url)).check_error
    assert "127.0.0.1 is a loopback address (this appliance itself; allowed only with " \
           "LBADMIN_UPDATE_ALLOW_LOOPBACK=1)" in error
    form = OnlineUpdateForm({"enabled": "on", "server_url": url}, instance=OnlineUpdate.load())
    assert not form.is_valid() and "127.0.0.1 is a loopback address" in \
        form.errors["server_url"][0]


@pytest.mark.parametrize(("url", "words"), [
    ("http://169.254.169.254/latest/", "169.254.169.254 is a link-local address"),
    ("http://[fe80::1]/", "fe80::1 is a link-local address"),
    ("http://[::ffff:169.254.169.254]/", "169.254.169.254 is a link-local address"),
    ("https://239.1.2.3/", "239.1.2.3 is a multicast address"),
    ("http://0.0.0.0:8080/", "0.0.0.0 is an unspecified address"),
    ("http://192.0.2.1/", "192.0.2.1 is one of this appliance's own addresses"),
])
def test_the_form_says_why_an_address_is_refused(url, words):
    NetworkConfiguration.objects.update_or_create(
        pk=1, defaults={"interfaces": {"eth1": {"addresses": ["192.0.2.1/24"], "mtu": 1500}}})
    form = OnlineUpdateForm({"enabled": "on", "server_url": url}, instance=OnlineUpdate.load())
    assert not form.is_valid()
    [error] = form.errors["server_url"]
    assert error.startswith(f"Refused: {words}") and "another host" in error


def test_the_form_takes_a_name_or_another_hosts_address():
    for url in ("https://updates.example.org/lbadmin/", "http://198.51.100.10:8080/"):
        form = OnlineUpdateForm({"enabled": "on", "server_url": url},
                                instance=OnlineUpdate.load())
        assert form.is_valid(), form.errors
