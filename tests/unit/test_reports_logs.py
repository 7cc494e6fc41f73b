"""Logs › Layer 4, Logs › System, View Configuration › Appliance Configuration, Contact Us and
Useful Links through Django's test client; the supervisor's log rotation on a tmp dir."""

import os

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.urls import reverse

from clusters import runtime
from clusters.models import ApplyLogEntry, RealServer, VirtualService
from core.models import AuditEntry
from reports import service_logs
from runner.supervisor import rotate_logs

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client):
    user = get_user_model().objects.create_user("loadbalancer", password="a-Long-test-pass")
    client.force_login(user)
    return client


@pytest.fixture
def log_dir(settings, tmp_path):
    settings.LOG_DIR = tmp_path
    return tmp_path


# Logs › Layer 4


def test_every_apply_is_listed_newest_first_with_what_it_did(admin):
    service = VirtualService.objects.create(label="VNA", vip="198.51.100.100", ports="12000")
    server = RealServer.objects.create(service=service, label="PrimaryCluster",
                                       ip="192.0.2.110")
    runtime.log_apply(7, True, "full", 31.25, statements=120, cut=())
    runtime.log_apply(8, True, "difference", 4.0, warnings=["No interface has a subnet "
                                                             "holding 203.0.113.9"],
                      statements=3, cut=[server.id, 1026])
    runtime.log_apply(9, False, "difference", stage="applying the ruleset",
                      error="NftError: Error: Could not process rule: <No such file>")
    page = admin.get(reverse("logs:layer4")).content.decode()
    rows = page.split('data-generation="')[1:]
    assert [row.split('"')[0] for row in rows] == ["9", "8", "7"]
    assert "full" in rows[2] and "120" in rows[2] and "31.2" in rows[2]
    assert "PrimaryCluster of VNA" in rows[1] and "203.0.113.9" in rows[1]
    assert "mark 1026 (a real server since removed)" in rows[1]
    assert "Failed while applying the ruleset" in rows[0]
    assert "Could not process rule: &lt;No such file&gt;" in rows[0]


def test_the_log_pages_fifty_applies_at_a_time(admin):
    for generation in range(1, 121):
        runtime.log_apply(generation, True, "difference", 1.0, statements=1)
    first = admin.get(reverse("logs:layer4")).content.decode()
    assert 'data-generation="120"' in first and 'data-generation="70"' not in first
    assert "Page 1 of 3" in first
    last = admin.get(reverse("logs:layer4") + "?page=3").content.decode()
    assert 'data-generation="1"' in last and 'data-generation="21"' not in last
    assert admin.get(reverse("logs:layer4") + "?page=nonsense").status_code == 200


def test_only_the_newest_applies_are_kept(monkeypatch):
    monkeypatch.setattr(runtime, "APPLY_LOG_KEPT", 3)
    for generation in range(10):
        runtime.log_apply(generation, True, "difference", 1.0)
    assert list(ApplyLogEntry.objects.values_list("generation", flat=True)) == [9, 8, 7]


def test_a_log_that_cannot_be_written_never_fails_the_apply(monkeypatch, settings, tmp_path,
                                                           caplog):
    def broken(**fields):
        raise DatabaseError("database is locked")

    monkeypatch.setattr(ApplyLogEntry.objects, "create", broken)
    settings.REDIS_URL = f"unix://{tmp_path}/nothing.sock"  # Redis down too: kept for later
    monkeypatch.setattr(runtime, "_pending", [])
    runtime.record_failed(4, "refused", mode="full", stage="applying the ruleset")
    runtime.record_applied(5, "difference", 2.0, statements=2, cut=[1025])
    assert "not written to Logs > Layer 4: database is locked" in caplog.text
    assert [kind for kind, _ in runtime._pending] == ["failed", "applied"]


def test_no_apply_yet_says_so(admin):
    assert "No applies yet" in admin.get(reverse("logs:layer4")).content.decode()


# Logs › System

CELERY = """[2026-11-28 10:00:00,001: INFO/MainProcess] Connected to redis
[2026-11-28 10:00:05,000: WARNING/MainProcess] a worker warning <b>bold</b>
[2026-11-28 10:00:06,000: ERROR/MainProcess] Task apply failed
Traceback (most recent call last):
  File "x.py", line 1, in <module>
ValueError: broken
plain line without a level
"""
GUNICORN = """[2026-11-28 10:00:02 +0000] [12] [INFO] Listening at: https://0.0.0.0:9443
[2026-11-28 10:00:07 +0000] [12] [ERROR] Worker timeout
"""
REDIS = "77:M 28 Nov 2026 10:00:01.000 # WARNING overcommit_memory is set to 0!\n" \
        "77:M 28 Nov 2026 10:00:01.500 * Ready to accept connections unix\n"


def test_levels_are_read_from_the_usual_markers():
    lines = service_logs.parse("worker-dataplane", CELERY)
    assert [line.level for line in lines] == ["info", "warning", "error", "error", "error",
                                              "error", "info"]
    assert lines[-1].at == "2026-11-28 10:00:06"  # the time of the line before it
    assert [line.level for line in service_logs.parse("web", GUNICORN)] == ["info", "error"]
    assert [(line.level, line.at) for line in service_logs.parse("redis", REDIS)] == [
        ("warning", "2026-11-28 10:00:01"), ("info", "2026-11-28 10:00:01")]


def test_system_shows_every_service_newest_first_and_escaped(admin, log_dir):
    (log_dir / "worker-dataplane.out").write_text(CELERY)
    (log_dir / "web.out").write_text(GUNICORN)
    (log_dir / "redis.out").write_text(REDIS)
    page = admin.get(reverse("logs:system")).content.decode()
    order = [page.index(text) for text in ("Worker timeout", "Task apply failed",
                                           "Listening at", "Connected to redis")]
    assert order == sorted(order)
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold</b>" not in page
    assert 'hx-trigger="every 3s"' in page  # live by default


def test_system_filters_by_service_and_level(admin, log_dir):
    (log_dir / "worker-dataplane.out").write_text(CELERY)
    (log_dir / "web.out").write_text(GUNICORN)
    page = admin.get(reverse("logs:system"), {"service": "web"}).content.decode()
    assert "Worker timeout" in page and "Connected to redis" not in page
    assert 'hx-trigger' not in page  # the form was sent without "live"
    page = admin.get(reverse("logs:system"), {"service": "", "level": "warning",
                                              "live": "on"}).content.decode()
    assert "a worker warning" in page and "Worker timeout" in page
    assert "Connected to redis" not in page and "Listening at" not in page
    page = admin.get(reverse("logs:system"), {"level": "error"}).content.decode()
    assert "a worker warning" not in page and "ValueError: broken" in page


def test_a_missing_log_says_so_in_words(admin, log_dir):
    response = admin.get(reverse("logs:system"), {"service": "keepalived"})
    assert response.status_code == 200
    assert "There is no log file for keepalived yet (logs/keepalived.out)" in \
        response.content.decode()
    for query in ({"service": "../../etc/passwd"}, {"level": "<script>"}):
        assert admin.get(reverse("logs:system"), query).status_code == 200
    os.rmdir(log_dir)  # no logs directory at all
    assert admin.get(reverse("logs:system")).status_code == 200


def test_only_the_end_of_a_big_log_is_read(admin, log_dir):
    with open(log_dir / "beat.out", "w") as handle:
        handle.write("[2026-11-28 09:00:00,000: INFO/MainProcess] the very first line\n")
        for n in range(40_000):
            handle.write(f"[2026-11-28 10:00:00,000: INFO/MainProcess] line {n:05d} " +
                         "." * 60 + "\n")
    assert (log_dir / "beat.out").stat().st_size > 2 * service_logs.TAIL_BYTES
    data = service_logs.tail_bytes(log_dir / "beat.out")
    assert len(data) <= service_logs.TAIL_BYTES and data.startswith(b"[2026")
    page = admin.get(reverse("logs:system"), {"service": "beat"}).content.decode()
    assert "line 39999" in page and "the very first line" not in page
    assert page.count('data-service="beat"') == service_logs.LINES_SHOWN


def test_a_rotated_file_fills_in_a_short_current_one(log_dir):
    (log_dir / "web.out.1").write_text("older line\n")
    (log_dir / "web.out").write_text("newer line\n")
    assert service_logs.tail_bytes(log_dir / "web.out") == b"older line\nnewer line\n"


def test_the_live_tail_refreshes_only_the_lines(admin, log_dir):
    (log_dir / "web.out").write_text(GUNICORN)
    response = admin.get(reverse("logs:system"), {"service": "web", "live": "on"},
                         HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER="system-log")
    page = response.content.decode()
    assert page.startswith('<div id="system-log"') and "<html" not in page
    assert "Worker timeout" in page and 'hx-get="/lbadmin/logs/system/?service=web' in page


# rotation (runner.supervisor.rotate_logs, called by the supervisor's watch loop)


def test_a_big_log_is_rotated_while_its_writer_keeps_its_descriptor(tmp_path):
    path = tmp_path / "worker-checks.out"
    writer = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)  # as the stack does
    os.write(writer, b"a" * 2000)
    (tmp_path / "web.out").write_bytes(b"small\n")
    given = []
    done = rotate_logs(tmp_path, max_bytes=1000, keep=3, give=given.append)
    assert done == ["rotated logs/worker-checks.out (0.0 MiB; 3 older kept)"]
    assert (tmp_path / "worker-checks.out.1").read_bytes() == b"a" * 2000
    assert path.stat().st_size == 0 and (tmp_path / "web.out").read_bytes() == b"small\n"
    assert [p.name for p in given] == ["worker-checks.out.1.tmp"]  # handed over, then renamed
    os.write(writer, b"after\n")  # O_APPEND: at the start of the truncated file, no hole
    os.close(writer)
    assert path.read_bytes() == b"after\n"


def test_three_old_logs_are_kept(tmp_path):
    path = tmp_path / "supervisor.log"
    for n in range(5):
        path.write_bytes(str(n).encode() * 2000)
        rotate_logs(tmp_path, max_bytes=1000, keep=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "supervisor.log", "supervisor.log.1", "supervisor.log.2", "supervisor.log.3"]
    assert (tmp_path / "supervisor.log.1").read_bytes()[:1] == b"4"
    assert (tmp_path / "supervisor.log.3").read_bytes()[:1] == b"2"


def test_rotation_follows_no_link(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"v" * 5000)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "web.out").symlink_to(victim)
    (logs / "beat.out").write_bytes(b"b" * 5000)
    (logs / "beat.out.1.tmp").symlink_to(victim)  # planted where the copy goes
    done = rotate_logs(logs, max_bytes=1000)
    assert victim.read_bytes() == b"v" * 5000
    assert (logs / "beat.out.1").read_bytes() == b"b" * 5000 and done == [
        "rotated logs/beat.out (0.0 MiB; 3 older kept)"]


# View Configuration › Appliance Configuration, Contact Us, Useful Links


def test_the_appliance_configuration_is_the_backup_escaped(admin):
    VirtualService.objects.create(label="VNA <b>x</b>", vip="198.51.100.100", ports="12000")
    page = admin.get(reverse("view:appliance")).content.decode()
    assert "&lt;lbadmin-backup" in page and "VNA &amp;lt;b&amp;gt;x" in page
    response = admin.get(reverse("view:appliance") + "?download")
    assert response["Content-Disposition"].startswith('attachment; filename="lbadmin-config')
    assert response.content.startswith(b"<?xml") and b"VNA &lt;b&gt;x" in response.content
    assert AuditEntry.objects.filter(action="downloaded the appliance configuration").exists()


def test_contact_and_links_point_at_the_project_and_its_readme(admin, settings):
    contact = admin.get(reverse("support:contact")).content.decode()
    links = admin.get(reverse("support:links")).content.decode()
    assert 'href="/lbadmin/support/documentation/"' in contact
    assert "Support Download" in contact
    assert f'href="{reverse("support:documentation")}#security-model"' in links
    docs = admin.get(reverse("support:documentation")).content.decode()
    assert 'id="security-model"' in docs
    for page in (contact, links, docs):
        assert "loadbalancer.org" not in page.lower()
    settings.LBADMIN_PROJECT_URL = "https://projects.example/lbadmin"
    assert 'href="https://projects.example/lbadmin"' in \
        admin.get(reverse("support:contact")).content.decode()


@pytest.mark.parametrize("name", ["logs:layer4", "logs:system", "view:appliance",
                                  "support:download", "support:contact", "support:links",
                                  "support:documentation"])
def test_every_page_needs_a_login(client, name):
    response = client.get(reverse(name) + "?download")
    assert response.status_code == 302 and "/login/" in response["Location"]
