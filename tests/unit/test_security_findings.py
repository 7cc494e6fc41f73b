"""Issue 12's review findings 3, 5, 6, 7, 9, 10 and 12 (11 is in test_compose.py)."""

import datetime
import fnmatch
import re
import subprocess
import threading
from pathlib import Path

import pytest
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordChangeForm
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.urls import reverse

from appliance import login
from appliance.models import FailedLogin
from clusters.forms import VirtualServiceForm
from clusters.tasks import apply_dataplane
from core.models import AuditEntry
from network import services as network_services
from network import tasks as network_tasks
from network import views as network_views
from network.forms import listing_of
from network.models import NetworkConfiguration, PendingNetworkChange

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a-Long-test-pass"
NEW_PASSWORD = "a-New-password-42"


@pytest.fixture
def user():
    return get_user_model().objects.create_user("loadbalancer", password=PASSWORD)


@pytest.fixture
def browser(user):
    client = Client()
    client.force_login(user)
    return client


def change_password(client, old, new=NEW_PASSWORD):
    return client.post(reverse("maintenance:passwords"), {
        "old_password": old, "new_password1": new, "new_password2": new}, follow=True)


def wrong_login(client):
    return client.post(reverse("login"), {"username": "loadbalancer", "password": "guess"})


# Finding 3: the current-password check is throttled like the login, and both hold under
# parallel requests

def test_the_current_password_check_stops_after_max_failures_even_for_the_right_one(browser):
    for _ in range(login.MAX_FAILURES):
        page = change_password(browser, "wrong-password-1").content.decode()
        assert "Your old password was entered incorrectly" in page
    page = change_password(browser, PASSWORD).content.decode()
    assert "Not changed: Too many wrong current passwords from" in page
    user = get_user_model().objects.get()
    assert user.check_password(PASSWORD) and not user.check_password(NEW_PASSWORD)


def test_the_current_password_check_is_limited_per_user_from_another_address_too(user):
    first = Client(REMOTE_ADDR="192.0.2.50")
    first.force_login(user)
    for _ in range(login.MAX_FAILURES):
        change_password(first, "wrong-password-1")
    other = Client(REMOTE_ADDR="192.0.2.51")
    other.force_login(user)
    page = change_password(other, PASSWORD).content.decode()
    assert "Too many wrong current passwords from this user" in page
    assert get_user_model().objects.get().check_password(PASSWORD)


def test_refused_logins_from_the_address_stop_the_current_password_check_too(browser):
    stranger = Client()  # the same address, 127.0.0.1
    for _ in range(login.MAX_FAILURES):
        wrong_login(stranger)
    page = change_password(browser, PASSWORD).content.decode()
    assert "Too many wrong current passwords from your address" in page


def test_the_right_current_password_is_not_counted_and_the_window_ends(browser):
    for _ in range(login.MAX_FAILURES - 1):
        change_password(browser, "wrong-password-1")
    assert FailedLogin.objects.count() == login.MAX_FAILURES - 1
    FailedLogin.objects.update(at=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))
    page = change_password(browser, PASSWORD).content.decode()
    assert "The password of loadbalancer is changed." in page
    assert FailedLogin.objects.count() == 0  # the right one is forgotten, the old ones expired


def fire_in_parallel(count, request):
    """`request(i)` from `count` threads at once; each thread closes its own connection."""
    barrier = threading.Barrier(count)
    errors = []

    def run(i):
        try:
            barrier.wait()
            request(i)
        except Exception as error:  # noqa: BLE001 - reported by the test
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors


@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_logins_never_evaluate_more_than_max_failures(user, monkeypatch):
    evaluated = []
    original = auth_forms.authenticate

    def slow_authenticate(*args, **kwargs):
        evaluated.append(1)
        threading.Event().wait(0.05)  # widen the window between the count and the answer
        return original(*args, **kwargs)

    monkeypatch.setattr(auth_forms, "authenticate", slow_authenticate)
    fire_in_parallel(16, lambda i: wrong_login(Client(REMOTE_ADDR="203.0.113.9")))
    assert len(evaluated) == login.MAX_FAILURES
    assert FailedLogin.objects.filter(address="203.0.113.9").count() == login.MAX_FAILURES


@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_current_passwords_never_evaluate_more_than_max_failures(
        user, monkeypatch):
    evaluated = []
    original = PasswordChangeForm.clean_old_password

    def slow_check(form):
        evaluated.append(1)
        threading.Event().wait(0.05)
        return original(form)

    monkeypatch.setattr(PasswordChangeForm, "clean_old_password", slow_check)
    clients = []
    for i in range(16):
        client = Client(REMOTE_ADDR=f"198.51.100.{10 + i}")  # other addresses: per user counts
        client.force_login(user)
        clients.append(client)
    fire_in_parallel(16, lambda i: change_password(clients[i], "wrong-password-1"))
    assert len(evaluated) == login.MAX_FAILURES


# Finding 5: logins, logouts and refused logins, with the address, in Logs › User Log

def test_logins_logouts_and_refused_logins_go_to_the_user_log(user):
    client = Client(REMOTE_ADDR="192.0.2.44")
    wrong_login(client)
    client.post(reverse("login"), {"username": "loadbalancer", "password": PASSWORD})
    client.post(reverse("logout"))
    lines = list(AuditEntry.objects.order_by("id").values_list("user", "action"))
    assert lines == [("loadbalancer", "failed login from 192.0.2.44"),
                     ("loadbalancer", "logged in from 192.0.2.44"),
                     ("loadbalancer", "logged out from 192.0.2.44")]


def test_a_throttled_login_and_a_wrong_current_password_go_to_the_user_log(browser):
    change_password(browser, "wrong-password-1")
    for _ in range(login.MAX_FAILURES - 1):  # with the wrong current password: MAX_FAILURES
        wrong_login(Client())
    actions = list(AuditEntry.objects.values_list("action", flat=True))
    assert "wrong current password on Maintenance › Passwords from 127.0.0.1" in actions
    assert "login refused (too many wrong passwords) from 127.0.0.1" not in actions
    wrong_login(Client())
    assert AuditEntry.objects.filter(
        action="login refused (too many wrong passwords) from 127.0.0.1").exists()


# Finding 6: no page or download is kept by the browser

def test_pages_downloads_and_the_login_page_send_no_store(browser):
    responses = [
        browser.get(reverse("overview:index")),
        browser.get(reverse("maintenance:passwords")),
        browser.post(reverse("maintenance:backup-restore"), {"download": "1", "passphrase": ""}),
        Client().get(reverse("login")),
    ]
    assert "attachment" in responses[2]["Content-Disposition"]
    for response in responses:
        assert response["Cache-Control"] == "no-store", response


# Finding 7: Host is checked against the appliance's own names; the lock-out guard uses the
# address the connection arrived on

@pytest.fixture
def configured():
    network = NetworkConfiguration.load()
    network.interfaces = {"eth0": {"addresses": ["192.0.2.1/24"], "mtu": 1500},
                          "eth1": {"addresses": ["198.51.100.1/24", "2001:db8::1/64"],
                                   "mtu": 1500}}
    network.hostname = "lb1"
    network.save()
    return network


@pytest.mark.parametrize("host", ["127.0.0.1:9443", "localhost", "[::1]:9443",
                                  "198.51.100.1:9443", "192.0.2.1", "[2001:db8::1]:9443",
                                  "lb1:9443", "testserver"])
def test_the_appliance_answers_to_its_own_names(configured, host):
    assert Client().get(reverse("login"), HTTP_HOST=host).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "198.51.100.99", "lb1.evil.example"])
def test_any_other_host_is_refused_in_words(configured, host):
    response = Client().get(reverse("login"), HTTP_HOST=host)
    assert response.status_code == 400
    assert f"does not answer to the name “{host}”" in response.content.decode()


def test_a_wildcard_is_the_administrators_choice(configured, settings):
    settings.LBADMIN_ALLOWED_HOSTS = ["*"]
    assert Client().get(reverse("login"), HTTP_HOST="evil.example").status_code == 200
    settings.LBADMIN_ALLOWED_HOSTS = [".example.org"]
    assert Client().get(reverse("login"), HTTP_HOST="lb.example.org").status_code == 200
    assert Client().get(reverse("login"), HTTP_HOST="evil.example").status_code == 400


class FakeSocket:
    def __init__(self, *local):
        self.local = local

    def getsockname(self):
        return self.local


def test_the_address_the_connection_arrived_on_is_allowed_whatever_is_configured():
    sock = FakeSocket("203.0.113.5", 9443)
    assert Client().get(reverse("login"), HTTP_HOST="203.0.113.5:9443",
                        **{"gunicorn.socket": sock}).status_code == 200


@pytest.mark.parametrize(("local", "address"), [
    (("198.51.100.1", 9443), "198.51.100.1"),
    (("::ffff:198.51.100.1", 9443, 0, 0), "198.51.100.1"),
    (("2001:db8::1", 9443, 0, 0), "2001:db8::1"),
])
def test_the_browser_address_is_the_sockets_local_end_not_the_host_header(rf, local, address):
    request = rf.get("/", HTTP_HOST="192.0.2.1", **{"gunicorn.socket": FakeSocket(*local)})
    assert network_views.browser_address(request) == address
    assert network_views.browser_address(rf.get("/", HTTP_HOST="192.0.2.1")) == ""


@pytest.fixture
def fake_worker(monkeypatch, settings, tmp_path):
    settings.REDIS_URL = f"unix://{tmp_path}/nothing.sock"
    monkeypatch.setattr(network_services, "ask_dataplane", lambda task, **kwargs: {"ok": True})
    monkeypatch.setattr(apply_dataplane, "apply_async", lambda *args, **kwargs: None)
    monkeypatch.setattr(network_tasks.roll_back_unconfirmed, "apply_async",
                        lambda *args, **kwargs: None)
    monkeypatch.setattr(network_views, "live_interfaces",
                        lambda: ([{**i, "kind": "veth", "mtu": 1500}
                                  for i in listing_of(["eth0", "eth1"])], ""))


@pytest.mark.parametrize(("host", "arrived", "held"), [
    ("198.51.100.1", "192.0.2.1", False),  # a forged Host does not hold the change…
    ("192.0.2.1", "198.51.100.1", True),  # …and the real address does, whatever Host says
])
def test_the_lock_out_guard_compares_the_address_the_connection_arrived_on(
        browser, configured, fake_worker, host, arrived, held):
    browser.post(reverse("local:interfaces"), {
        "configure": "1", "addresses_eth0": "192.0.2.1/24", "addresses_eth1": "",
        "mtu_eth0": "1500", "mtu_eth1": "1500"}, HTTP_HOST=host,
        **{"gunicorn.socket": FakeSocket(arrived, 9443)})
    assert PendingNetworkChange.objects.exists() is held


# Finding 9: no CR/LF (or other control characters) in a health check's request or host

@pytest.mark.parametrize(("field", "value", "words"), [
    ("check_request", "/health HTTP/1.1\r\nX-Injected: 1", "may not contain a carriage return"),
    ("check_request", "/a\nb", "may not contain a line feed (LF)"),
    ("check_request", "/a b", "may not contain a space"),
    ("check_host", "archive.example.org\r\nX-Injected: 1", "may not contain a carriage return"),
    ("check_host", "a\x1bb", "may not contain the control character U+001B"),
    ("check_host", "a\tb", "may not contain a tab"),
])
def test_a_health_checks_request_and_host_refuse_control_characters(field, value, words):
    form = VirtualServiceForm(data={field: value})
    form.is_valid()
    assert words in " ".join(form.errors.get(field, []))


@pytest.mark.parametrize(("field", "value"), [("check_request", "/health?x=%20"),
                                              ("check_host", "archive.example.org"),
                                              ("check_host", "")])
def test_ordinary_requests_and_hosts_are_taken(field, value):
    form = VirtualServiceForm(data={field: value})
    form.is_valid()
    assert field not in form.errors


# Finding 10: what .dockerignore leaves for `COPY .` has no key, no dist/, no data

def dockerignore_patterns():
    patterns = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            patterns.append(line)
    return patterns


def docker_pattern(pattern):
    """A .dockerignore pattern as Docker's pattern matcher reads it: relative to the context's
    root, "*" and "?" never cross "/", "**" any number of directories; a path is excluded when
    it or one of its parent directories matches."""
    pattern = pattern.strip("/")
    parts, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            parts.append("[^/]")
            i += 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(parts) + r"\Z")


def excluded(path, patterns):
    """Docker's rule: the last matching pattern wins; "!" patterns put a path back."""
    parents = [path] + ["/".join(path.split("/")[:n]) for n in range(1, path.count("/") + 1)]
    verdict = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = docker_pattern(pattern[1:] if negated else pattern)
        if any(regex.match(candidate) for candidate in parents):
            verdict = not negated
    return verdict


def test_the_docker_pattern_matcher_reads_patterns_as_docker_does():
    assert excluded("release-key.pem", ["*.pem"])
    assert not excluded("sub/release-key.pem", ["*.pem"])  # "*" does not cross "/"
    assert excluded("sub/deep/key.pem", ["**/*.pem"])
    assert excluded("var/lbadmin.sqlite3", ["var"])
    assert not excluded("var/x", ["var", "!var/x"]) and excluded("var/y", ["var", "!var/x"])


PLANTED = ["release-key.pem", "dist/x", "dist/lbadmin-0.2.0.tar.gz", "var/lbadmin.sqlite3",
           "var/secret_key", "var/webui-key.pem", "var/update-keys/release-key.pub",
           "maintenance/stray-key.pem", "lbadmin.sqlite3", "build/lib/x.py", ".env",
           "appliance/other.key"]


def test_the_build_context_holds_no_key_no_release_and_no_data():
    patterns = dockerignore_patterns()
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    context = [path for path in tracked + PLANTED if not excluded(path, patterns)]
    for path in PLANTED:
        assert path not in context, path
    for path in context:
        assert not fnmatch.fnmatch(path.rsplit("/", 1)[-1], "*.pem"), path
        assert not path.startswith(("dist/", "var/", ".venv/", ".git/")), path
    # the image still gets what it is built from
    for needed in ("manage.py", "pyproject.toml", "appliance/settings.py", "static/vendor"):
        assert any(path == needed or path.startswith(needed + "/") for path in context), needed


# Finding 12: `make release` without VERSION= says what to type

def test_make_release_without_a_version_says_what_to_type():
    result = subprocess.run(["make", "--no-print-directory", "release", "VERSION="], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "make release VERSION=x.y.z" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "usage:" not in result.stderr
    assert not (ROOT / "dist" / "lbadmin-.tar.gz").exists()


@pytest.mark.parametrize(("arguments", "words"), [
    ([], "Say which version to build"),
    (["--release-version", " "], "Say which version to build"),
    (["--release-version", "latest"], "Give the version as x.y.z"),
    (["--release-version", "0.9.0", "--key", "/nonexistent/k.pem"], "No signing key"),
])
def test_the_release_command_says_what_is_missing_in_words(arguments, words):
    with pytest.raises(CommandError, match=words):
        call_command("lbadmin_release", *arguments)
