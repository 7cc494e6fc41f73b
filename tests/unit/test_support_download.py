"""Support › Support Download: one .tar.gz with a MANIFEST, the configuration, the logs, the
live state (or why it could not be read), and never a secret."""

import io
import tarfile

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.urls import reverse

from clusters import runtime
from clusters.models import VirtualService
from core.models import AuditEntry
from core.workers import WorkerUnavailable
from ha.models import Pair
from healthchecks.models import HealthEvent
from reports import archive

pytestmark = pytest.mark.django_db

PAIRING_SECRET = "5e" * 32
PRIVATE_KEY = ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
               "-----END PRIVATE KEY-----")
SEALED = "gAAAAABnXq" + "A1b2C3d4E5" * 8


@pytest.fixture
def admin(client):
    user = get_user_model().objects.create_user("loadbalancer", password="a-Long-test-pass")
    client.force_login(user)
    return client, user


@pytest.fixture
def worker_down(monkeypatch):
    asked = []

    def unavailable(task, **kwargs):
        asked.append(task.name)
        raise WorkerUnavailable("The dataplane worker did not answer within 10 s (TimeoutError).")

    monkeypatch.setattr(archive, "ask_dataplane", unavailable)
    monkeypatch.setattr(archive, "live_interfaces", lambda: (None, "not asked"))
    monkeypatch.setattr(archive, "supervisor_state", lambda: None)
    return asked


@pytest.fixture
def logs(settings, tmp_path):
    settings.LOG_DIR = tmp_path
    return tmp_path


def unpack(response):
    assert response["Content-Type"] == "application/gzip"
    assert response["Content-Disposition"].startswith(
        'attachment; filename="lbadmin-support-')
    with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as tar:
        return {member.name.partition("/")[2]: tar.extractfile(member).read().decode()
                for member in tar.getmembers()}


def test_the_archive_holds_what_its_manifest_lists(admin, worker_down, logs, settings):
    client, user = admin
    VirtualService.objects.create(label="VNA", vip="198.51.100.100", ports="12000")
    runtime.log_apply(3, True, "full", 12.5, statements=40)
    HealthEvent.objects.create(where="PrimaryCluster (192.0.2.110) of VNA", event="down",
                               message="connect refused", output="port 12000 closed")
    (logs / "worker-dataplane.out").write_text("[2026-11-28 10:00:00,000: INFO/Main] ok\n")
    (logs / "supervisor.log").write_text("2026-11-28 10:00:00 web (pid 1) exited\n")
    files = unpack(client.get(reverse("support:download") + "?download"))
    manifest = files.pop("MANIFEST")
    for name in files:
        assert name in manifest
    assert {"configuration.xml", "ruleset-live.txt", "network.json", "services.json",
            "versions.txt", "applies.txt", "health-events.txt", "ha-pair.txt",
            "logs/worker-dataplane.out", "logs/supervisor.log"} <= set(files)
    assert 'label="VNA"' in files["configuration.xml"]
    assert "generation 3 full statements=40 ms=12.5" in files["applies.txt"]
    assert "connect refused" in files["health-events.txt"]
    assert "port 12000 closed" in files["health-events.txt"]
    assert "lbadmin 0." in files["versions.txt"] and "Debian packages" in files["versions.txt"]
    assert "Standalone" in files["ha-pair.txt"]
    assert "web (pid 1) exited" in files["logs/supervisor.log"]
    assert "not running" in files["services.json"]
    assert AuditEntry.objects.filter(user="loadbalancer",
                                     action__startswith="downloaded the support archive")


def test_a_silent_worker_is_written_into_the_archive_and_asked_once(admin, worker_down, logs):
    client, _ = admin
    files = unpack(client.get(reverse("support:download") + "?download"))
    assert "The live ruleset could not be read: The dataplane worker did not answer" in \
        files["ruleset-live.txt"]
    assert "The interfaces could not be read: The dataplane worker did not answer" in \
        files["network.json"]
    assert worker_down == ["clusters.tasks.compare_live_ruleset"]
    assert "No log files were found" in files["logs/NONE"]


def test_the_live_ruleset_and_its_drift_are_in_it(admin, worker_down, logs, monkeypatch):
    client, _ = admin
    answers = {"clusters.tasks.compare_live_ruleset": {
                   "live": "table ip lbadmin {\n}", "desired": "table ip lbadmin { x }",
                   "matches": False},
               "network.tasks.describe_routes": [{"destination": "default"}]}
    monkeypatch.setattr(archive, "ask_dataplane", lambda task, **kw: answers[task.name])
    monkeypatch.setattr(archive, "live_interfaces", lambda: ([{"name": "eth0"}], ""))
    files = unpack(client.get(reverse("support:download") + "?download"))
    assert "DIFFERS from what the configuration asks for" in files["ruleset-live.txt"]
    assert "table ip lbadmin { x }" in files["ruleset-desired.txt"]
    assert '"eth0"' in files["network.json"] and '"default"' in files["network.json"]


def test_no_secret_is_ever_in_it(admin, worker_down, logs):
    client, user = admin
    password_hash = get_user_model().objects.get(pk=user.pk).password
    digest = password_hash.split("$")[-1]
    Pair.objects.update_or_create(pk=1, defaults={
        "role": Pair.Role.PRIMARY, "local_ip": "198.51.100.1", "peer_ip": "198.51.100.2",
        "secret": PAIRING_SECRET, "status": Pair.Status.PAIRED, "virtual_router_id": 7})
    secret_key = django_settings.SECRET_KEY
    # the worst case: every secret leaked into a log line
    (logs / "web.out").write_text(
        f"hash {password_hash} digest {digest}\nkey {secret_key}\n"
        f"pairing {PAIRING_SECRET}\n{PRIVATE_KEY}\nsealed {SEALED}\n"
        "LBADMIN_PASSWORD=hunter2-Long-pass\nthe last line\n")
    (logs / "webui-key.log").write_text(PRIVATE_KEY)
    files = unpack(client.get(reverse("support:download") + "?download"))
    everything = "\n".join(files.values())
    for secret in (password_hash, digest, secret_key, PAIRING_SECRET, "PRIVATE KEY",
                   "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", SEALED, "hunter2-Long-pass"):
        assert secret not in everything, secret
    assert "the last line" in files["logs/web.out"]
    assert '"peer_ip": "198.51.100.2"' in files["ha-pair.txt"]
    assert '"secret"' not in files["ha-pair.txt"]


def test_the_page_says_what_the_archive_holds(admin):
    client, _ = admin
    page = client.get(reverse("support:download")).content.decode()
    assert "MANIFEST" in page and 'href="?download"' in page
    assert not AuditEntry.objects.exists()  # only the download itself is recorded
