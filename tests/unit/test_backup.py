"""Backup & Restore: the configuration round-trips, bad files are refused whole with a reason."""

import html
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from clusters.dataplane.desired import from_database
from clusters.dataplane.render import full_script, render
from clusters.models import FloatingIP, RealServer, VirtualService
from healthchecks.models import HealthCheckScript
from maintenance import backup
from network.models import NetworkConfiguration

pytestmark = pytest.mark.django_db


@pytest.fixture
def configuration():
    script = HealthCheckScript.objects.create(name="iConnect <&>", script="#!/bin/bash\nexit 0")
    vs = VirtualService.objects.create(
        label="VNA", vip="198.51.100.100", ports="12000,12100,800-900", check_type="external",
        check_script=script, fallback_ip="192.0.2.120", fallback_masq=True, persistent=True)
    RealServer.objects.create(service=vs, label="PrimaryCluster", ip="192.0.2.110", weight=3,
                              max_connections=50, state="drain")
    RealServer.objects.create(service=vs, label="Other", ip="192.0.2.111", port=8080)
    FloatingIP.objects.create(address="192.0.2.254")
    network = NetworkConfiguration.load()
    network.interfaces = {"eth1": {"addresses": ["198.51.100.1/24"], "mtu": 1500}}
    network.routes = [{"destination": "10.0.0.0/8", "gateway": "192.0.2.1"}]
    network.dns = ["192.0.2.53"]
    network.save()


def snapshot():
    return (list(VirtualService.objects.values()), list(RealServer.objects.values()),
            list(HealthCheckScript.objects.values()),
            list(FloatingIP.objects.values_list("address", flat=True)),
            NetworkConfiguration.load().as_dict(), full_script(render(from_database())))


def wipe():
    VirtualService.objects.all().delete()
    HealthCheckScript.objects.all().delete()
    FloatingIP.objects.all().delete()
    NetworkConfiguration.objects.all().delete()


def test_backup_wipe_restore_gives_the_same_configuration_and_ruleset(configuration):
    before = snapshot()
    data = backup.export_xml()
    wipe()
    assert snapshot() != before
    backup.restore(backup.parse(data), "tester")
    after = snapshot()
    strip = [{k: v for k, v in row.items() if k != "changed_generation"} for row in after[1]]
    assert after[0] == before[0] and after[2:] == before[2:]
    assert strip == [{k: v for k, v in row.items() if k != "changed_generation"}
                     for row in before[1]]


def test_an_encrypted_backup_needs_its_passphrase(configuration):
    sealed = backup.encrypt(backup.export_xml(), "correct horse")
    assert b"VNA" not in sealed
    with pytest.raises(backup.BackupError, match="enter its passphrase"):
        backup.decrypt(sealed, "")
    with pytest.raises(backup.BackupError, match="Wrong passphrase"):
        backup.decrypt(sealed, "wrong")
    assert b"VNA" in backup.decrypt(sealed, "correct horse")


BAD = {
    "doctype": (b'<?xml version="1.0"?><!DOCTYPE x [<!ELEMENT x ANY>]>'
                b'<lbadmin-backup schema="1"/>', "DTD"),
    "billion laughs": (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                       b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
                       b'<lbadmin-backup schema="1">&lol2;</lbadmin-backup>', "DTD"),
    "external entity": (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM '
                        b'"file:///etc/passwd">]><lbadmin-backup schema="1">&e;'
                        b'</lbadmin-backup>', "DTD"),
    "unknown element": (b'<lbadmin-backup schema="1"><shell>rm</shell></lbadmin-backup>',
                        "unknown element <shell>"),
    "unknown attribute": (b'<lbadmin-backup schema="1"><floating-ip address="192.0.2.9" '
                          b'evil="1"/></lbadmin-backup>', "unknown attribute"),
    "newer schema": (b'<lbadmin-backup schema="9"/>',
                     "schema version '9', made by a newer lbadmin; this appliance reads "
                     "versions 1, 2"),
    "no schema": (b'<lbadmin-backup/>', "schema version None;"),
    "bad update server": (b'<lbadmin-backup schema="2"><online-update enabled="true" '
                          b'server-url="file:///etc/passwd"/></lbadmin-backup>',
                          "<online-update>: Enter an http:// or https:// address"),
    "not xml": (b"PK\x03\x04 this is a zip", "Not a readable XML file"),
    "other xml": (b"<html/>", "Not an lbadmin backup"),
    "bad port": (b'<lbadmin-backup schema="1"><virtual-service id="1" label="x" '
                 b'vip="198.51.100.7" ports="70000" protocol="tcp" forwarding="nat" '
                 b'scheduler="wrr" persistence_timeout="300" check_type="on" '
                 b'check_request="/" check_interval="30" check_timeout="5" failure_count="10" '
                 b'on_failure="keep" fallback_port="0"/></lbadmin-backup>', "outside 1–65535"),
    "bad floating ip": (b'<lbadmin-backup schema="1"><floating-ip address="192.0.2.300"/>'
                        b'</lbadmin-backup>', "is not an IPv4 address"),
    "not a number": (b'<lbadmin-backup schema="1"><health-check-script id="x" name="n" '
                     b'type="virtual" template="">#!/bin/sh</health-check-script>'
                     b'</lbadmin-backup>', "not a whole number"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_backup_is_refused_with_its_reason_and_nothing_changes(configuration, case):
    data, words = BAD[case]
    before = snapshot()
    with pytest.raises(backup.BackupError, match=words):
        backup.restore(backup.parse(data), "tester")
    assert snapshot() == before


def test_a_schema_1_backup_is_converted_and_keeps_the_online_update_settings(configuration):
    from maintenance.models import OnlineUpdate

    online = OnlineUpdate.load()
    online.server_url = "https://updates.example.org/lbadmin/"
    online.save()
    current = backup.export_xml()
    assert b'<online-update enabled="true" server-url="https://updates.example.org/lbadmin/"' \
        in current
    # what lbadmin 0.1.0 wrote: schema 1, no <online-update>
    old = re.sub(rb'\s*<online-update [^>]*/>', b"", current).replace(b'schema="2"',
                                                                     b'schema="1"')
    online.server_url = "https://elsewhere.example.org/"
    online.save()
    wipe()
    parsed = backup.parse(old)
    assert parsed["converted_from"] == "1" and parsed["online_update"] is None
    backup.restore(parsed, "tester")
    assert VirtualService.objects.get().label == "VNA"
    assert OnlineUpdate.load().server_url == "https://elsewhere.example.org/"
    # a schema-2 backup carries them
    backup.restore(backup.parse(current), "tester")
    assert OnlineUpdate.load().server_url == "https://updates.example.org/lbadmin/"


def test_the_page_downloads_and_restores(client, configuration, settings, tmp_path):
    settings.CELERY_BROKER_URL = f"redis+socket://{tmp_path}/nothing.sock"
    client.force_login(get_user_model().objects.create_user("loadbalancer", password="x" * 12))
    response = client.post(reverse("maintenance:backup-restore"),
                           {"download": "1", "passphrase": "pass phrase"})
    sealed = b"".join(response.streaming_content) if response.streaming else response.content
    assert response["Content-Disposition"].endswith('.xml.enc"')
    wipe()
    response = client.post(reverse("maintenance:backup-restore"), {
        "restore": "1", "passphrase": "wrong",
        "backup": SimpleUploadedFile("b.xml.enc", sealed)})
    assert "Wrong passphrase" in response.content.decode()
    assert not VirtualService.objects.exists()
    response = client.post(reverse("maintenance:backup-restore"), {
        "restore": "1", "passphrase": "pass phrase",
        "backup": SimpleUploadedFile("b.xml.enc", sealed)})
    assert response.status_code == 302
    assert VirtualService.objects.get().label == "VNA"


def test_every_change_keeps_a_revision_that_can_be_compared_and_rolled_back(
        client, monkeypatch, django_capture_on_commit_callbacks):
    from clusters import services
    from clusters.tasks import apply_dataplane
    from maintenance.models import Revision
    from network.tasks import apply_network_from_database

    # No broker here: the applies the changes send are dropped (netns tests apply for real).
    for task in (apply_dataplane, apply_network_from_database):
        monkeypatch.setattr(task, "apply_async", lambda *args, **kwargs: None)
    user = get_user_model().objects.create_user("loadbalancer", password="x" * 12)
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        service = VirtualService(label="VNA", vip="198.51.100.100", ports="12000")
        service.full_clean()
        services.do_save_service(service, user)
    with django_capture_on_commit_callbacks(execute=True):
        service.ports = "12000,12100"
        services.do_save_service(service, user)
    first, second = Revision.objects.order_by("id")
    assert first.user == "loadbalancer" and "added virtual service VNA" in first.action
    page = client.get(reverse("maintenance:history"), {"a": first.pk, "b": second.pk})
    text = html.unescape(page.content.decode())
    assert "\n-  <virtual-service id" in text and "\n+  <virtual-service id" in text
    assert 'ports="12000,12100"' in text
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("maintenance:roll-back", args=[first.pk]))
    assert response.status_code == 302
    assert VirtualService.objects.get().ports == "12000"
    assert Revision.objects.count() == 3  # the rollback is a change too


def test_scheduled_backups_keep_the_newest_n(configuration, tmp_path):
    from maintenance.tasks import write_local_backup

    for stamp in ("20260101-000000", "20260102-000000", "20260103-000000"):
        (tmp_path / f"lbadmin-backup-{stamp}.xml").write_text("old")
    written = write_local_backup(tmp_path, keep=2)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and names[-1] == written.rsplit("/", 1)[1]
    assert "lbadmin-backup-20260103-000000.xml" in names
    assert b"VNA" in (tmp_path / names[-1]).read_bytes()
