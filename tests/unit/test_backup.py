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
from maintenance.models import OnlineUpdate, Revision
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
    network.interfaces = {"eth0": {"addresses": ["192.0.2.1/24"], "mtu": None},
                          "eth1": {"addresses": ["198.51.100.1/24", "2001:db8::1/64"],
                                   "mtu": 1500},
                          "eth0.100": {"addresses": ["203.0.113.1/24"], "mtu": 1400}}
    network.vlans = [["eth0", 100]]
    network.gateway4 = "198.51.100.254"
    network.gateway6 = "2001:db8::fe"
    network.routes = [{"destination": "10.0.0.0/8", "gateway": "192.0.2.2"},
                      {"destination": "172.16.0.0/12", "gateway": "203.0.113.254"}]
    network.hostname = "lb1"
    network.dns = ["192.0.2.53", "2001:db8::53"]
    network.save()


def snapshot():
    """Every stored value of the configuration, and the ruleset it renders to."""
    return (list(VirtualService.objects.values()), list(RealServer.objects.values()),
            list(HealthCheckScript.objects.values()),
            list(FloatingIP.objects.values_list("address", flat=True)),
            list(NetworkConfiguration.objects.values()), list(OnlineUpdate.objects.values()),
            full_script(render(from_database())))


def wipe():
    VirtualService.objects.all().delete()
    HealthCheckScript.objects.all().delete()
    FloatingIP.objects.all().delete()
    NetworkConfiguration.objects.all().delete()


def restored(xml):
    backup.restore(backup.parse(xml), "tester")


def test_backup_wipe_restore_gives_the_same_configuration_and_ruleset(configuration):
    OnlineUpdate.load()  # a row, as the appliance always has, so a backup carries it
    before = snapshot()
    data = backup.export_xml()
    wipe()
    assert snapshot() != before
    restored(data)
    assert snapshot() == before
    assert NetworkConfiguration.load().vlans == [["eth0", 100]]


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
                          "<online-update>: Update Server URL: Enter an http:// or https:// "
                          "address"),
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


def edited(old, new):
    """This appliance's backup with one piece of it rewritten, as a hand-edited file."""
    data = backup.export_xml()
    assert data.count(old) == 1, old
    return data.replace(old, new)


# Each value a form of the WebUI refuses, refused by a restore in the form's own words, naming
# the element of the file.
REFUSED = {
    "a VIP with junk after a line break": (
        b'vip="198.51.100.100"', b'vip="192.0.2.9&#10;x"',
        '<virtual-service label="VNA">: Virtual Service IP Address: “192.0.2.9\nx” is not an '
        "IPv4 address such as 192.0.2.10."),
    "a bad default gateway": (
        b'gateway4="198.51.100.254"', b'gateway4="not-an-ip; rm -rf /"',
        "<network>: Default Gateway IPv4: Enter a valid IPv4 address."),
    "a default gateway on no connected subnet": (
        b'gateway6="2001:db8::fe"', b'gateway6="2001:db9::fe"',
        "<network>: Default Gateway IPv6: 2001:db9::fe is not on any connected subnet: the "
        "appliance could not reach it."),
    "a bad route destination": (
        b'destination="10.0.0.0/8"', b'destination="10.0.0.1/8"',
        '<route destination="10.0.0.1/8" gateway="192.0.2.2">: Static Routes: Line 1: '
        "10.0.0.1/8 has host bits set."),
    "a route destination that is no network": (
        b'destination="10.0.0.0/8"', b'destination="$(reboot)"',
        '<route destination="$(reboot)" gateway="192.0.2.2">: Static Routes: Line 1: '
        "'$(reboot)' does not appear to be an IPv4 or IPv6 network."),
    "a route gateway on no connected subnet": (
        b'gateway="192.0.2.2"', b'gateway="10.9.9.9"',
        '<route destination="10.0.0.0/8" gateway="10.9.9.9">: Static Routes: 10.9.9.9 is not '
        "on any connected subnet: the appliance could not reach it."),
    "a bad interface name": (
        b'name="eth1"', b'name="eth1;reboot"',
        '<interface name="eth1;reboot">: “eth1;reboot” is not an interface name: 1 to 15 '
        "letters, digits, dots, hyphens or underscores."),
    "a bad interface address": (
        b"<address>198.51.100.1/24</address>", b"<address>198.51.100.0/24</address>",
        '<interface name="eth1">: eth1: 198.51.100.0 is the network address of '
        "198.51.100.0/24, not a host address."),
    "an interface address that is a VIP": (
        b"<address>198.51.100.1/24</address>", b"<address>198.51.100.100/24</address>",
        '<interface name="eth1">: eth1: 198.51.100.100 is already the VIP of virtual service '
        "“VNA”."),
    "an interface address that is a floating IP": (
        b"<address>192.0.2.1/24</address>", b"<address>192.0.2.254/24</address>",
        '<interface name="eth0">: eth0: 192.0.2.254 is already a floating IP.'),
    "an MTU that is no number": (
        b'mtu="1500"', b'mtu="abc"',
        '<interface name="eth1">: eth1 MTU bytes: Enter the MTU as a whole number.'),
    "an MTU too large": (
        b'mtu="1500"', b'mtu="65536"',
        '<interface name="eth1">: eth1 MTU bytes: The MTU must be between 68 and 9216.'),
    "a VLAN without an id": (
        b'<vlan parent="eth0" id="100" />', b'<vlan parent="eth0" />',
        '<vlan parent="eth0">: VLAN ID: Enter the VLAN ID (1 to 4094).'),
    "a VLAN id that is no number": (
        b'id="100" />', b'id="1e2" />',
        '<vlan parent="eth0" id="1e2">: VLAN ID: Enter the VLAN ID as a whole number.'),
    "a VLAN over an interface the backup does not have": (
        b'<vlan parent="eth0"', b'<vlan parent="eth9"',
        '<vlan parent="eth9" id="100">: Adapter: Select a valid choice. eth9 is not one of the '
        "available choices."),
    "a VLAN given twice": (
        b'<vlan parent="eth0" id="100" />',
        b'<vlan parent="eth0" id="100" /><vlan parent="eth0" id="100" />',
        '<vlan parent="eth0" id="100">: VLAN ID: eth0.100 exists already.'),
    "a bad hostname": (
        b'hostname="lb1"', b'hostname="lb1;reboot"',
        "<network>: Hostname: A hostname is letters, digits and hyphens (1–63), not starting "
        "or ending with a hyphen."),
    "a bad DNS server": (
        b"<dns>192.0.2.53</dns>", b"<dns>192.0.2.53; reboot</dns>",
        "<network>: DNS Server 1: Enter a valid IPv4 or IPv6 address."),
    "four DNS servers": (
        b"<dns>192.0.2.53</dns>", b"<dns>192.0.2.53</dns>" * 3,
        "<network>: at most 3 DNS servers; the file gives 4."),
    "a floating IP on no connected subnet": (
        b'address="192.0.2.254"', b'address="203.0.114.5"',
        '<floating-ip address="203.0.114.5">: New Floating IP: 203.0.114.5 is outside every '
        "connected subnet: no interface could bring it up."),
    "a floating IP that is a VIP": (
        b'address="192.0.2.254"', b'address="198.51.100.100"',
        '<floating-ip address="198.51.100.100">: New Floating IP: 198.51.100.100 is already '
        "the VIP of virtual service “VNA”."),
    "a real server state that does not exist": (
        b'state="drain"', b'state="hacked"',
        '<virtual-service label="VNA"> <real-server label="PrimaryCluster">: State: “hacked” '
        "is not one of online, drain, halt."),
    "a real server weight that is no number": (
        b'weight="3"', b'weight="3; reboot"',
        '<virtual-service label="VNA"> <real-server label="PrimaryCluster">: Weight: Enter a '
        "whole number."),
    "a real server on the VIP": (
        b'ip="192.0.2.110"', b'ip="198.51.100.100"',
        '<virtual-service label="VNA"> <real-server label="PrimaryCluster">: Real Server IP '
        "Address: A real server cannot have the virtual service's own address."),
    "a script the backup does not have": (
        b'check_script="1"', b'check_script="7"',
        '<virtual-service label="VNA">: External Script: Select a valid choice. That choice is '
        'not one of the available choices. <virtual-service label="VNA">: External Script: '
        "Choose the external script to run (add one under Health Check Scripts)."),
    "an empty script": (
        b"#!/bin/bash\nexit 0</health-check-script>", b" </health-check-script>",
        '<health-check-script name="iConnect <&>">: Script: The script is empty.'),
    "a persistence flag that is neither true nor false": (
        b'persistent="true"', b'persistent="yes"',
        '<virtual-service label="VNA">: persistent=“yes” is neither true nor false.'),
    "a real server id given twice": (
        b'<real-server id="2"', b'<real-server id="1"',
        '<virtual-service label="VNA"> <real-server label="PrimaryCluster">: id 1 is given '
        "twice."),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_value_the_webui_refuses_is_refused_in_its_words_and_nothing_changes(configuration,
                                                                               case):
    old, new, words = REFUSED[case]
    data = edited(old, new)
    before = snapshot()
    with pytest.raises(backup.BackupError) as refused:
        restored(data)
    assert str(refused.value) == words
    assert snapshot() == before


# What the WebUI's forms store for a value with a line break or spaces around it.
CLEANED = {
    "VIP": (b'vip="198.51.100.100"', b'vip="192.0.2.9&#10;"',
            lambda: VirtualService.objects.get().vip, "192.0.2.9"),
    "floating IP": (b'address="192.0.2.254"', b'address=" 192.0.2.253&#10;"',
                    lambda: FloatingIP.objects.get().address, "192.0.2.253"),
    "default gateway": (b'gateway4="198.51.100.254"', b'gateway4="198.51.100.254&#10;"',
                        lambda: NetworkConfiguration.load().gateway4, "198.51.100.254"),
    "IPv6 default gateway": (b'gateway6="2001:db8::fe"', b'gateway6="2001:DB8:0::FE"',
                             lambda: NetworkConfiguration.load().gateway6, "2001:db8::fe"),
    "interface address": (b"<address>2001:db8::1/64</address>",
                          b"<address>\n 2001:DB8::1/64 </address>",
                          lambda: NetworkConfiguration.load().interfaces["eth1"]["addresses"],
                          ["198.51.100.1/24", "2001:db8::1/64"]),
    "MTU": (b'mtu="1500"', b'mtu=" 1500 "',
            lambda: NetworkConfiguration.load().interfaces["eth1"]["mtu"], 1500),
    "VLAN id": (b'id="100" />', b'id=" 100" />',
                lambda: NetworkConfiguration.load().vlans, [["eth0", 100]]),
    "hostname": (b'hostname="lb1"', b'hostname="lb1&#10;"',
                 lambda: NetworkConfiguration.load().hostname, "lb1"),
    "real server port": (b'port="8080"', b'port=" 8080"',
                         lambda: RealServer.objects.get(label="Other").port, 8080),
    "ports": (b'ports="12000,12100,800-900"', b'ports="12000, 12100 ,800 - 900"',
              lambda: VirtualService.objects.get().ports, "12000,12100,800-900"),
}


@pytest.mark.parametrize("case", sorted(CLEANED))
def test_a_restored_value_is_stored_as_the_webui_cleans_it(configuration, case):
    old, new, stored, expected = CLEANED[case]
    restored(edited(old, new))
    assert stored() == expected


def test_a_vip_with_a_line_break_is_stored_without_it_and_one_with_junk_is_refused(
        configuration):
    line_break = edited(b'vip="198.51.100.100"', b'vip="192.0.2.9&#10;"')
    junk = edited(b'vip="198.51.100.100"', b'vip="192.0.2.9&#10;x"')
    restored(line_break)
    assert VirtualService.objects.get().vip == "192.0.2.9"
    before = snapshot()
    with pytest.raises(backup.BackupError, match="Virtual Service IP Address: “192.0.2.9\nx” "
                                                 "is not an IPv4 address"):
        restored(junk)
    assert snapshot() == before


def test_without_interfaces_a_floating_ip_is_checked_as_an_address_and_used_once(
        configuration):
    data = re.sub(rb"<interface .*?</interface>|<vlan [^>]*>|<route [^>]*>|gateway.=\"[^\"]*\"",
                  b"", backup.export_xml(), flags=re.DOTALL)
    restored(data.replace(b'address="192.0.2.254"', b'address="203.0.114.5"'))
    assert list(FloatingIP.objects.values_list("address", flat=True)) == ["203.0.114.5"]
    before = snapshot()
    with pytest.raises(backup.BackupError) as refused:
        restored(data.replace(b'address="192.0.2.254"', b'address="198.51.100.100"'))
    assert str(refused.value) == ('<floating-ip address="198.51.100.100">: New Floating IP: '
                                  "198.51.100.100 is already the VIP of virtual service “VNA”.")
    assert snapshot() == before


@pytest.mark.parametrize("number", ["abc", "1 OR 1=1", "9" * 30, "-1"])
def test_the_history_answers_a_revision_number_that_is_none_with_a_message(client, number):
    client.force_login(get_user_model().objects.create_user("loadbalancer", password="x" * 12))
    page = client.get(reverse("maintenance:history"), {"a": number, "b": "1"})
    assert page.status_code == 200
    text = html.unescape(page.content.decode())
    assert f"“{number[:40]}” is not a revision number" in text


def test_the_history_says_so_when_a_revision_is_gone(client):
    client.force_login(get_user_model().objects.create_user("loadbalancer", password="x" * 12))
    page = client.get(reverse("maintenance:history"), {"a": "123456"})
    assert page.status_code == 200
    assert "There is no revision 123456" in html.unescape(page.content.decode())


def test_a_rollback_the_forms_refuse_says_why_and_changes_nothing(client, configuration):
    client.force_login(get_user_model().objects.create_user("loadbalancer", password="x" * 12))
    revision = Revision.objects.create(user="x", action="hand-edited", xml=edited(
        b'gateway4="198.51.100.254"', b'gateway4="not-an-ip; rm -rf /"').decode())
    before = snapshot()
    response = client.post(reverse("maintenance:roll-back", args=[revision.pk]), follow=True)
    assert f"Revision {revision.pk} cannot be restored: <network>: Default Gateway IPv4: Enter " \
        "a valid IPv4 address. Nothing was changed." in html.unescape(response.content.decode())
    assert snapshot() == before


def test_a_schema_1_backup_is_converted_and_keeps_the_online_update_settings(configuration):
    online = OnlineUpdate.load()
    online.server_url = "https://updates.example.org/lbadmin/"
    online.save()
    current = backup.export_xml()
    assert b'<online-update enabled="true" server-url="https://updates.example.org/lbadmin/"' \
        in current
    # what lbadmin 0.1.0 wrote: schema 1, no <online-update>
    old = re.sub(rb'\s*<online-update [^>]*/>', b"", current).replace(
        f'schema="{backup.SCHEMA}"'.encode(), b'schema="1"')
    online.server_url = "https://elsewhere.example.org/"
    online.save()
    wipe()
    parsed = backup.parse(old)
    assert parsed["converted_from"] == "1" and parsed["online_update"] is None
    backup.restore(parsed, "tester")
    assert VirtualService.objects.get().label == "VNA"
    assert OnlineUpdate.load().server_url == "https://elsewhere.example.org/"
    # a current backup carries them
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
