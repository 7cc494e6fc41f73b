"""Local Configuration › Security: the certificate checks and their words, the page's forms,
HSTS and the session timeout from the stored settings, the supervisor's reload request, and
the key kept out of the Support Download and the backup."""

import contextlib
import io
import ipaddress
import sqlite3
import ssl
import stat
import tarfile
import threading
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from core import pairing
from core.models import AuditEntry
from maintenance import backup, certificate, security
from maintenance.models import SecuritySettings
from reports import archive
from runner import stack as runner_stack
from runner import supervisor
from tests.certificates import (
    DAY,
    NOW,
    ec_key,
    key_pem,
    pem,
    rsa_key,
    self_signed_pair,
    server_with_chain,
)
from tests.certificates import (
    certificate as make_certificate,
)

URL = reverse("local:security")


def refusal(cert_pem, key=b""):
    with pytest.raises(certificate.CertificateRefused) as refused:
        certificate.check(cert_pem, key)
    return refused.value


# --- the checks, each refusal in its words -------------------------------------------------


def test_a_good_certificate_with_its_chain_passes():
    cert_pem, key, server = server_with_chain()
    checked = certificate.check(cert_pem, key)
    assert [c.subject for c in checked.chain][0] == server.subject
    assert len(checked.chain) == 2


def test_a_key_that_is_not_the_certificates_is_refused():
    cert_pem, _key = self_signed_pair()
    refused = refusal(cert_pem, key_pem(ec_key()))
    assert refused.field == "key"
    assert "The private key does not match the certificate “webui.example”" in str(refused)


def test_an_expired_certificate_is_refused_with_its_end_date():
    cert_pem, key = self_signed_pair(not_before=NOW - 30 * DAY, not_after=NOW - DAY)
    refused = refusal(cert_pem, key)
    assert refused.field == "certificate"
    assert str(refused).startswith("The certificate has expired: it was valid until ")


def test_a_certificate_not_valid_yet_is_refused_with_its_start_date():
    cert_pem, key = self_signed_pair(not_before=NOW + DAY, not_after=NOW + 30 * DAY)
    assert str(refusal(cert_pem, key)).startswith("The certificate is not valid yet: it is "
                                                  "valid from ")


def test_a_1024_bit_rsa_key_is_refused_as_too_weak():
    cert_pem, key = self_signed_pair(key=rsa_key(1024))
    refused = refusal(cert_pem, key)
    assert refused.field == "key"
    assert "The key is RSA with 1024 bits: too weak. Use at least 2048 bits" in str(refused)


def test_an_ec_key_on_a_curve_browsers_refuse_is_refused():
    cert_pem, key = self_signed_pair(key=ec_key(ec.SECP256K1()))
    assert "curve secp256k1, which browsers do not accept" in str(refusal(cert_pem, key))


@pytest.mark.parametrize("garbage", [b"hello", b"-----BEGIN CERTIFICATE-----\nnot base64\n"
                                              b"-----END CERTIFICATE-----\n"])
def test_garbage_is_not_a_pem_certificate(garbage):
    refused = refusal(garbage, key_pem(ec_key()))
    assert refused.field == "certificate"
    assert "not a PEM certificate" in str(refused) or "cannot be read as PEM" in str(refused)


def test_a_garbage_key_is_not_a_pem_private_key():
    cert_pem, _key = self_signed_pair()
    refused = refusal(cert_pem, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    assert refused.field == "key" and str(refused).startswith("This is not a PEM private key")


def test_a_key_with_a_passphrase_is_refused_with_how_to_remove_it():
    key = ec_key()
    cert_pem = pem(make_certificate(key, "webui.example"))
    refused = refusal(cert_pem, key_pem(key, passphrase=b"secret-words"))
    assert "protected by a passphrase" in str(refused) and "openssl pkey" in str(refused)


def test_a_chain_out_of_order_is_refused():
    cert_pem, key, _server = server_with_chain()
    blocks = cert_pem.split(b"-----END CERTIFICATE-----\n")
    intermediate_first = blocks[1] + b"-----END CERTIFICATE-----\n" + blocks[0] + \
        b"-----END CERTIFICATE-----\n"
    # the key is the server's: the first certificate (the intermediate) is not its
    assert "does not match" in str(refusal(intermediate_first, key))
    stranger_key = ec_key()
    stranger = make_certificate(stranger_key, "Someone Else CA", ca=True)
    refused = refusal(blocks[0] + b"-----END CERTIFICATE-----\n" + pem(stranger), key)
    assert "The chain is not in order: certificate 2 in the file (“Someone Else CA”) did " \
           "not issue certificate 1 (“webui.example”)" in str(refused)


def test_a_certificate_only_for_clients_is_refused():
    cert_pem, key = self_signed_pair(usage=[ExtendedKeyUsageOID.CLIENT_AUTH])
    assert "not for a server" in str(refusal(cert_pem, key))


def test_a_certificate_file_holding_its_key_needs_no_key_file():
    cert_pem, key = self_signed_pair()
    assert certificate.check(cert_pem + key).key_pem.startswith(b"-----BEGIN PRIVATE KEY")


def test_a_missing_key_is_asked_for():
    cert_pem, _key = self_signed_pair()
    refused = refusal(cert_pem)
    assert refused.field == "key" and "Choose the private key file" in str(refused)


# --- generated and installed ----------------------------------------------------------------


def test_a_generated_certificate_names_the_hostname_and_the_addresses():
    cert_pem, key = certificate.self_signed("lb1.example", ["198.51.100.1", "2001:db8::1"])
    checked = certificate.check(cert_pem, key)
    names = checked.chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["lb1.example", "localhost"]
    assert {str(a) for a in names.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1", "::1", "198.51.100.1", "2001:db8::1"}


def test_install_replaces_both_files_private_and_loadable_by_openssl(tmp_path):
    assert certificate.ensure_certificate(tmp_path) is True
    cert_pem, key, server = server_with_chain()
    certificate.install(tmp_path, cert_pem, key)
    cert_path, key_path = certificate.paths(tmp_path)
    for path in (cert_path, key_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_path, key_path)
    assert certificate.describe(tmp_path).fingerprint == certificate.fingerprint(server)
    assert certificate.describe(tmp_path).chain_length == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [cert_path.name, key_path.name]


def test_a_refused_pair_leaves_the_served_files_alone(tmp_path):
    certificate.ensure_certificate(tmp_path)
    before = [p.read_bytes() for p in certificate.paths(tmp_path)]
    cert_pem, _key = self_signed_pair()
    with pytest.raises(certificate.CertificateRefused):
        certificate.install(tmp_path, cert_pem, key_pem(ec_key()))
    assert [p.read_bytes() for p in certificate.paths(tmp_path)] == before


# --- the page -------------------------------------------------------------------------------


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("loadbalancer", password="a-Long-test-pass")


@pytest.fixture
def browser(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    certificate.ensure_certificate(tmp_path)
    return tmp_path


@pytest.fixture
def supervisor_requests(monkeypatch):
    asked = []
    monkeypatch.setattr(security, "ask_supervisor", asked.append)
    return asked


@pytest.fixture
def no_worker(monkeypatch):
    monkeypatch.setattr(security, "live_interfaces", lambda: (None, "worker down"))


def upload(browser, cert_pem, key=b""):
    return browser.post(URL, {"upload": "1",
                              "certificate": SimpleUploadedFile("cert.pem", cert_pem),
                              "key": SimpleUploadedFile("key.pem", key)})


def test_the_page_shows_the_served_certificate(browser, data_dir):
    page = browser.get(URL).content.decode()
    served = certificate.describe(data_dir)
    assert served.fingerprint in page and "self-signed" in page
    assert "Upload Certificate" in page and "Generate Self-Signed Certificate" in page


def test_an_uploaded_certificate_is_installed_and_the_webui_reloaded(
        browser, data_dir, supervisor_requests):
    cert_pem, key, server = server_with_chain()
    response = upload(browser, cert_pem, key)
    assert response.status_code == 302
    assert certificate.describe(data_dir).fingerprint == certificate.fingerprint(server)
    assert supervisor_requests == [{"reload": "web", "by": "loadbalancer"}]
    assert AuditEntry.objects.filter(action__startswith="uploaded the WebUI certificate "
                                                        "CN=webui.example").exists()
    assert "The WebUI reloads it now" in browser.get(URL).content.decode()


def test_a_refused_upload_says_why_next_to_the_key_and_changes_nothing(
        browser, data_dir, supervisor_requests):
    before = certificate.describe(data_dir).fingerprint
    cert_pem, _key = self_signed_pair()
    response = upload(browser, cert_pem, key_pem(ec_key()))
    assert response.status_code == 200
    page = response.content.decode()
    key_field = page[page.index('id="field-key"'):]
    assert "The private key does not match the certificate" in key_field[:key_field.index(
        "</div>")]
    assert certificate.describe(data_dir).fingerprint == before
    assert supervisor_requests == []


def test_an_expired_upload_says_why_next_to_the_certificate(browser, data_dir):
    cert_pem, key = self_signed_pair(not_before=NOW - 30 * DAY, not_after=NOW - DAY)
    page = upload(browser, cert_pem, key).content.decode()
    field = page[page.index('id="field-certificate"'):]
    assert "The certificate has expired" in field[:field.index("</div>")]


def test_the_labels_are_escaped(browser, data_dir, supervisor_requests):
    cert_pem, key = self_signed_pair(name="<b>evil</b>.example")
    upload(browser, cert_pem, key)
    page = browser.get(URL).content.decode()
    assert "<b>evil</b>" not in page and "&lt;b&gt;evil&lt;/b&gt;" in page


def test_a_generated_certificate_is_for_the_saved_hostname(
        browser, data_dir, supervisor_requests, no_worker):
    from network.models import NetworkConfiguration

    NetworkConfiguration.objects.update_or_create(pk=1, defaults={
        "hostname": "lb1", "interfaces": {"eth1": {"addresses": ["198.51.100.1/24"]}}})
    response = browser.post(URL, {"generate": "1"})
    assert response.status_code == 302
    served = certificate.describe(data_dir)
    assert served.subject == "O=lbadmin appliance (self-signed),CN=lb1"
    assert {"lb1", "198.51.100.1"} <= set(served.names)
    assert supervisor_requests == [{"reload": "web", "by": "loadbalancer"}]
    assert "the configured ones were used" in browser.get(URL).content.decode()


def test_the_certificate_cannot_change_while_in_a_pair(browser, data_dir, supervisor_requests):
    owner = SimpleNamespace(holds_addresses=lambda: True)
    pairing.register_address_owner(owner)
    try:
        before = certificate.describe(data_dir).fingerprint
        assert "is in a clustered pair" in browser.get(URL).content.decode()
        cert_pem, key, _server = server_with_chain()
        page = upload(browser, cert_pem, key).content.decode()
        assert "Break the pair" in page
        browser.post(URL, {"generate": "1"})
        assert certificate.describe(data_dir).fingerprint == before
        assert supervisor_requests == []
    finally:
        pairing.unregister_address_owner(owner)


def test_without_a_supervisor_the_page_says_the_webui_was_not_reloaded(
        browser, data_dir, monkeypatch):
    from core.workers import WorkerUnavailable

    def refuse(request):
        raise WorkerUnavailable("no supervisor is running")

    monkeypatch.setattr(security, "ask_supervisor", refuse)
    cert_pem, key, _server = server_with_chain()
    upload(browser, cert_pem, key)
    page = browser.get(URL).content.decode()
    assert "The WebUI was not asked to reload: no supervisor is running" in page


def access(browser, **values):
    form = {"save": "1", "hsts": "on", "hsts_max_age": "31536000", "session_timeout": "30"}
    form.update(values)
    return browser.post(URL, {k: v for k, v in form.items() if v is not None})


@pytest.mark.parametrize(("field", "value", "words"), [
    ("hsts_max_age", "10", "At least 300 seconds."),
    ("hsts_max_age", "99999999", "At most 63072000 seconds (two years)."),
    ("session_timeout", "0", "At least 1 minute."),
    ("session_timeout", "721", "At most 720 minutes (twelve hours)."),
    ("session_timeout", "soon", "Enter a whole number."),
])
def test_bad_access_settings_are_refused_next_to_the_field(browser, data_dir, field, value,
                                                           words):
    page = access(browser, **{field: value}).content.decode()
    part = page[page.index(f'id="field-{field}"'):]
    assert words in part[:part.index("</div>")]
    assert SecuritySettings.load().session_timeout == 30
    assert SecuritySettings.load().hsts_max_age == 31536000


def test_plain_http_is_off_by_default_and_switching_it_asks_the_supervisor(
        browser, data_dir, supervisor_requests):
    assert SecuritySettings.load().http_redirect is False
    access(browser, session_timeout="15")
    assert supervisor_requests == []  # plain HTTP unchanged: nothing to reload
    access(browser, http_redirect="on")
    assert SecuritySettings.load().http_redirect is True
    assert supervisor_requests == [{"reload": "web", "by": "loadbalancer"}]


def test_hsts_follows_the_stored_setting(browser, data_dir):
    assert browser.get(URL, secure=True)["Strict-Transport-Security"] == "max-age=31536000"
    access(browser, hsts_max_age="600")
    assert browser.get(URL, secure=True)["Strict-Transport-Security"] == "max-age=600"
    assert "Strict-Transport-Security" not in browser.get(URL, secure=False)
    access(browser, hsts=None)
    assert "Strict-Transport-Security" not in browser.get(URL, secure=True)


def idle_for(browser, seconds):
    session = browser.session
    session["last_activity"] = session["last_activity"] - seconds
    session.save()


def test_the_session_timeout_is_the_stored_one(browser, data_dir):
    access(browser, session_timeout="5")
    idle_for(browser, 290)
    assert browser.get(URL).status_code == 200
    idle_for(browser, 301)
    response = browser.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/lbadmin/login/")


def test_the_session_timeout_starts_from_lbadmin_session_timeout(settings, db):
    settings.SESSION_IDLE_TIMEOUT = 600
    assert SecuritySettings.load().session_timeout == 10


# --- never in the Support Download nor in a backup -----------------------------------------


def test_the_webui_key_is_never_in_the_support_download(data_dir, settings, monkeypatch, db):
    from core.workers import WorkerUnavailable

    def unavailable(task, **kwargs):
        raise WorkerUnavailable("The dataplane worker did not answer within 10 s.")

    monkeypatch.setattr(archive, "ask_dataplane", unavailable)
    monkeypatch.setattr(archive, "live_interfaces", lambda: (None, "not asked"))
    monkeypatch.setattr(archive, "supervisor_state", lambda: None)
    cert_pem, key, server = server_with_chain()
    certificate.install(data_dir, cert_pem, key)
    settings.LOG_DIR = data_dir / "logs"
    settings.LOG_DIR.mkdir()
    # the key's lines without their armour, as a careless log line might hold them
    body = [line for line in key.decode().splitlines() if not line.startswith("-----")]
    (settings.LOG_DIR / "web.out").write_text("oops: " + body[0] + "\n")
    _name, data = archive.build_support_archive()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        texts = {m.name.split("/", 1)[1]: tar.extractfile(m).read().decode() for m in tar}
    assert certificate.fingerprint(server) in texts["webui-certificate.txt"]
    assert "[removed]" in texts["logs/web.out"]
    for text in texts.values():
        assert "PRIVATE KEY" not in text
        assert not any(line in text for line in body if len(line) >= 8)


def test_a_backup_holds_no_certificate_nor_key(data_dir, db):
    cert_pem, key, _server = server_with_chain()
    certificate.install(data_dir, cert_pem, key)
    xml = backup.export_xml().decode()
    assert "PRIVATE KEY" not in xml and "CERTIFICATE" not in xml
    assert "session" not in xml.lower()  # Security's settings stay local (the guide's 10.1.1)


# --- the runner: the setting read without Django, the reload request --------------------------


def test_the_runner_reads_the_http_setting_from_the_database(tmp_path):
    stack = runner_stack.Stack(tmp_path)
    assert stack.http_wanted() is False  # no database yet
    with contextlib.closing(sqlite3.connect(stack.database)) as db, db:
        db.execute("CREATE TABLE other (id INTEGER)")
    assert stack.http_wanted() is False  # a release before the setting
    with contextlib.closing(sqlite3.connect(stack.database)) as db, db:
        db.execute("CREATE TABLE maintenance_securitysettings (id INTEGER PRIMARY KEY, "
                   "http_redirect BOOL)")
        db.execute("INSERT INTO maintenance_securitysettings VALUES (1, 1)")
    assert stack.http_wanted() is True


class ReloadStack:
    def __init__(self, data_dir, fail=False):
        self.data_dir = self.log_dir = data_dir
        self.redis_socket = data_dir / "no-redis.sock"
        self.lock = threading.RLock()
        self.reloads, self.fail, self.http_wanted_now = 0, fail, True

    def give(self, path):
        pass

    def describe(self):
        return {"services": {}}

    def reload_web(self):
        if self.fail:
            raise runner_stack.StartError("the WebUI is not running")
        self.reloads += 1


def test_the_supervisor_reloads_the_webui_on_request(tmp_path):
    stack = ReloadStack(tmp_path)
    boss = supervisor.Supervisor(stack)
    boss.handle({"reload": "web", "by": "loadbalancer"})
    assert stack.reloads == 1 and boss.restarts["web"]["result"] == "reloaded"
    boss.handle({"reload": "worker-dataplane", "by": "loadbalancer"})
    assert stack.reloads == 1  # only the WebUI reloads
    failing = supervisor.Supervisor(ReloadStack(tmp_path, fail=True))
    failing.handle({"reload": "web", "by": "loadbalancer"})
    assert failing.restarts["web"]["result"] == "reload failed: the WebUI is not running"


def test_ip_literals_in_a_generated_certificate_are_addresses():
    cert_pem, _key = certificate.self_signed("lb1", ["192.0.2.1"])
    leaf = x509.load_pem_x509_certificate(cert_pem)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("192.0.2.1") in names.get_values_for_type(x509.IPAddress)
