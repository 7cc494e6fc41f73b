"""Local Configuration › Security in Debian's Chromium, on a stack of its own (it changes the
WebUI's certificate and access settings): a certificate made here is uploaded, gunicorn
reloads it gracefully (same master, new workers) and the next page is served with it while
the session stays logged in; port 9080 redirects to HTTPS from the lab's client while on and
is closed while off; HSTS and the session timeout follow the page."""

import hashlib
import re
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from lab import LB_EXTERNAL_ADDRESS
from maintenance.certificate import fingerprint
from tests.certificates import ec_key, key_pem, self_signed_pair, server_with_chain
from tests.conftest import running_stack
from tests.stacks import in_stack, wait_for

from .conftest import log_in

pytestmark = pytest.mark.browser

NEW_NAME = "security-test.example"


@pytest.fixture(scope="module")
def stack():
    with running_stack() as running:
        yield running


@pytest.fixture
def page(chromium):
    context = chromium.new_context(ignore_https_errors=True)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def served_fingerprint(port):
    """SHA-256 of the certificate the WebUI serves on a new connection."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw) as tls:
        return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


def children(pid):
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return set(path.read_text().split()) if path.exists() else set()


def from_the_client(stack, port, path="/lbadmin/"):
    """What plain HTTP on the appliance's own address answers the lab's client: the status
    line and Location, or the connection's error."""
    code = ("import http.client, sys\n"
            "c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=5)\n"
            "try:\n"
            "    c.request('GET', sys.argv[3])\n"
            "    r = c.getresponse()\n"
            "    print(r.status, r.getheader('Location'))\n"
            "except OSError as e:\n"
            "    print('error', type(e).__name__)\n")
    result = subprocess.run([*stack.lab.exec_prefix("client"), sys.executable, "-c", code,
                             LB_EXTERNAL_ADDRESS, str(port), path], capture_output=True,
                            text=True, timeout=30, check=True)
    return result.stdout.strip()


def redirected(stack):
    """The redirect plain HTTP answers the client, or "" while it answers none."""
    answer = from_the_client(stack, 9080, "/lbadmin/?a=1")
    return answer if answer.startswith("301") else ""


def open_security(page):
    menu = page.get_by_role("navigation", name="Main menu")
    menu.get_by_role("link", name="Local Configuration", exact=True).click()
    menu.get_by_role("link", name="Security", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Security")


def test_a_new_certificate_is_served_after_a_graceful_reload_and_the_session_stays(
        page, stack, tmp_path):
    webui = f"https://127.0.0.1:{stack.https_port}"
    log_in(page, webui, stack.generated_password)
    open_security(page)
    old = served_fingerprint(stack.https_port)
    expect(page.locator("#certificate-fingerprint")).to_have_text(old)

    # a refused pair: the reason next to the key, nothing changed
    cert_pem, _key = self_signed_pair(NEW_NAME)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "other-key.pem").write_bytes(key_pem(ec_key()))
    page.get_by_label("Certificate (PEM, with its chain)").set_input_files(tmp_path / "cert.pem")
    page.get_by_label("Private Key (PEM)").set_input_files(tmp_path / "other-key.pem")
    page.get_by_role("button", name="Upload Certificate").click()
    expect(page.locator("#field-key .field-error")).to_contain_text(
        "The private key does not match the certificate “security-test.example”")
    assert served_fingerprint(stack.https_port) == old

    # a good one, with its chain
    cert_pem, key, server = server_with_chain(NEW_NAME)
    new = fingerprint(server)
    (tmp_path / "chain.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key)
    master = stack.processes["web"].pid
    workers = children(master)
    assert workers, "gunicorn's master has no workers"
    page.get_by_label("Certificate (PEM, with its chain)").set_input_files(tmp_path / "chain.pem")
    page.get_by_label("Private Key (PEM)").set_input_files(tmp_path / "key.pem")
    page.get_by_role("button", name="Upload Certificate").click()
    expect(page.get_by_text("The uploaded certificate is installed.")).to_be_visible()

    # graceful: the same master, every old worker replaced (their connections closed)
    assert wait_for(lambda: children(master) and not children(master) & workers, 30), \
        (workers, children(master))
    assert stack.processes["web"].pid == master and stack.processes["web"].poll() is None
    assert wait_for(lambda: served_fingerprint(stack.https_port) == new, 10)
    response = page.goto(f"{webui}/lbadmin/local/security/")
    assert response.security_details()["subjectName"] == NEW_NAME
    expect(page.get_by_role("heading", level=1)).to_have_text("Security")  # still logged in
    expect(page.locator("#certificate-fingerprint")).to_have_text(new)
    expect(page.locator("#webui-reload")).to_contain_text("reloaded (by loadbalancer)")


def save_access(page, **changes):
    for label, value in changes.items():
        field = page.get_by_label(label)
        if isinstance(value, bool):
            field.set_checked(value)
        else:
            field.fill(str(value))
    page.get_by_role("button", name="Update", exact=True).click()


def test_plain_http_redirects_while_on_and_is_closed_while_off(page, stack):
    webui = f"https://127.0.0.1:{stack.https_port}"
    log_in(page, webui, stack.generated_password)
    open_security(page)
    assert from_the_client(stack, 9080).startswith("error ")  # off by default
    expect(page.locator("#http-state")).to_contain_text("closed")

    save_access(page, **{"HTTP to HTTPS Redirect": True})
    expect(page.get_by_text("Security settings saved.")).to_be_visible()
    answer = wait_for(lambda: redirected(stack), 30)
    assert answer == f"301 https://{LB_EXTERNAL_ADDRESS}:9443/lbadmin/?a=1"
    page.reload()
    expect(page.locator("#http-state")).to_contain_text("redirecting to HTTPS")

    save_access(page, **{"HTTP to HTTPS Redirect": False})
    expect(page.get_by_text("Security settings saved.")).to_be_visible()
    assert wait_for(lambda: from_the_client(stack, 9080).startswith("error "), 30)
    page.reload()
    expect(page.locator("#http-state")).to_contain_text("closed")


def test_hsts_follows_the_page_and_bad_values_are_refused_in_words(page, stack):
    webui = f"https://127.0.0.1:{stack.https_port}"
    log_in(page, webui, stack.generated_password)
    open_security(page)
    response = page.reload()
    assert response.headers["strict-transport-security"] == "max-age=31536000"

    save_access(page, **{"HSTS Max Age (seconds)": 10})
    expect(page.locator("#field-hsts_max_age .field-error")).to_have_text(
        "At least 300 seconds.")
    save_access(page, **{"HSTS Max Age (seconds)": 600})
    expect(page.get_by_text("Security settings saved.")).to_be_visible()
    assert page.reload().headers["strict-transport-security"] == "max-age=600"

    save_access(page, **{"HTTP Strict Transport Security": False})
    expect(page.get_by_text("Security settings saved.")).to_be_visible()
    assert "strict-transport-security" not in page.reload().headers
    save_access(page, **{"HTTP Strict Transport Security": True,
                         "HSTS Max Age (seconds)": 31536000})


SHIFT = """import sys
from django.contrib.sessions.backends.db import SessionStore
session = SessionStore(session_key=sys.argv[1])
session["last_activity"] -= int(sys.argv[2])
session.save()
"""


def test_an_idle_session_ends_after_the_timeout_set_here(page, stack):
    webui = f"https://127.0.0.1:{stack.https_port}"
    log_in(page, webui, stack.generated_password)
    open_security(page)
    save_access(page, **{"Session Timeout (minutes)": 5})
    expect(page.get_by_text("Security settings saved.")).to_be_visible()
    key = next(c["value"] for c in page.context.cookies() if c["name"] == "lbadmin_session")

    # two minutes without a request (moved back in the session's store): under five minutes
    in_stack(stack, SHIFT, key, 120)
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Security")

    save_access(page, **{"Session Timeout (minutes)": 1})
    expect(page.get_by_text("Security settings saved.")).to_be_visible()
    in_stack(stack, SHIFT, key, 120)
    page.reload()
    expect(page).to_have_url(re.compile(r"/lbadmin/login/\?next="))
    log_in(page, webui, stack.generated_password)
    open_security(page)
    save_access(page, **{"Session Timeout (minutes)": 30})
    expect(page.get_by_text("Security settings saved.")).to_be_visible()
