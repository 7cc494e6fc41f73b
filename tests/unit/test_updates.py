"""Update archives: a real signed archive of this checkout verifies; every bad one is refused
with its reason (nothing is installed by this code yet)."""

import base64
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from maintenance import updates
from maintenance.models import UpdateJob

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    updates.make_key(folder / "release.pem", folder / "trusted" / "release.pub")
    return folder


@pytest.fixture(scope="module")
def release(key, tmp_path_factory):
    """A real archive of this project's files (the tracked ones) at version 9.0.0."""
    out = tmp_path_factory.mktemp("dist")
    path = updates.build_release(ROOT, "9.0.0", "0.1.0", "Better things.",
                                 (key / "release.pem").read_bytes(), out)
    return path


def files(path):
    return (path.read_bytes(), Path(f"{path}.sha256").read_bytes(),
            Path(f"{path}.sig").read_bytes())


def trusted(key):
    return updates.trusted_keys(key / "trusted")


def test_a_real_signed_release_of_this_checkout_verifies(release, key):
    manifest = updates.verify(*files(release), trusted(key), "0.1.0")
    assert manifest.version == "9.0.0" and manifest.notes == "Better things."
    assert "release/manage.py" in manifest.files
    assert "release/clusters/dataplane/render.py" in manifest.files


def signed(archive, key):
    private = serialization.load_pem_private_key((key / "release.pem").read_bytes(), None)
    return (archive, f"{hashlib.sha256(archive).hexdigest()}  x.tar.gz\n".encode(),
            base64.b64encode(private.sign(archive)))


def crafted(key, members, manifest=None, version="9.0.0"):
    """A signed archive holding `members` [(TarInfo, bytes)] and a manifest of its files."""
    buffer = io.BytesIO()
    entries = {info.name: data for info, data in members if info.isfile()}
    manifest = manifest or {"version": version, "min_from": "0.1.0", "notes": "",
                            "files": {n: hashlib.sha256(d).hexdigest()
                                      for n, d in entries.items()}}
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        body = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return signed(buffer.getvalue(), key)


def member(name, data=b"x", kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


def test_a_wrong_checksum_is_refused(release, key):
    archive, _, signature = files(release)
    with pytest.raises(updates.UpdateError, match="Wrong checksum"):
        updates.verify(archive, b"0" * 64, signature, trusted(key), "0.1.0")


def test_a_missing_or_bad_signature_is_refused(release, key, tmp_path):
    archive, checksum, signature = files(release)
    with pytest.raises(updates.UpdateError, match="signature is missing"):
        updates.verify(archive, checksum, b"", trusted(key), "0.1.0")
    other = tmp_path / "other"
    other.mkdir()
    updates.make_key(other / "k.pem", other / "k.pub")
    with pytest.raises(updates.UpdateError, match="Bad signature"):
        updates.verify(archive, checksum, signature, updates.trusted_keys(other), "0.1.0")


def test_a_truncated_or_not_gzip_archive_is_refused(key):
    with pytest.raises(updates.UpdateError, match="Not a readable gzip tar"):
        updates.verify(*signed(b"plain text, not gzip", key), trusted(key), "0.1.0")
    archive, _, _ = crafted(key, [member("release/a")])
    with pytest.raises(updates.UpdateError, match="Not a readable gzip tar"):
        updates.verify(*signed(archive[: len(archive) // 2], key), trusted(key), "0.1.0")


@pytest.mark.parametrize(("entry", "words"), [
    (member("/etc/passwd"), "absolute path"),
    (member("release/../../etc/cron.d/x"), "climbs out"),
    (member("release/link", kind=tarfile.SYMTYPE, link="/etc/shadow"), "pointing outside"),
    (member("release/link", kind=tarfile.SYMTYPE, link="../../x"), "pointing outside"),
    (member("release/hard", kind=tarfile.LNKTYPE, link="/etc/shadow"), "pointing outside"),
    (member("release/dev", kind=tarfile.CHRTYPE), "device"),
    (member("release/fifo", kind=tarfile.FIFOTYPE), "device or pipe"),
])
def test_dangerous_members_are_refused(key, entry, words):
    with pytest.raises(updates.UpdateError, match=words):
        updates.verify(*crafted(key, [entry]), trusted(key), "0.1.0")


def test_an_oversized_member_is_refused(key, monkeypatch):
    monkeypatch.setattr(updates, "MAX_MEMBER", 10)
    with pytest.raises(updates.UpdateError, match="larger than"):
        updates.verify(*crafted(key, [member("release/big", b"x" * 11)]), trusted(key),
                       "0.1.0")


def test_a_file_that_differs_from_the_manifest_is_refused(key):
    manifest = {"version": "9.0.0", "min_from": "0.1.0", "notes": "",
                "files": {"release/a": hashlib.sha256(b"other").hexdigest()}}
    with pytest.raises(updates.UpdateError, match="differ from its manifest"):
        updates.verify(*crafted(key, [member("release/a", b"x")], manifest), trusted(key),
                       "0.1.0")


@pytest.mark.parametrize(("version", "running", "words"), [
    ("0.1.0", "0.1.0", "not newer"), ("0.0.9", "0.1.0", "not newer"),
])
def test_a_downgrade_or_the_same_version_is_refused(key, version, running, words):
    with pytest.raises(updates.UpdateError, match=words):
        updates.verify(*crafted(key, [member("release/a")], version=version), trusted(key),
                       running)


def test_an_update_from_a_version_too_old_is_refused(key):
    manifest = {"version": "9.0.0", "min_from": "5.0.0", "notes": "",
                "files": {"release/a": hashlib.sha256(b"x").hexdigest()}}
    with pytest.raises(updates.UpdateError, match="updates from 5.0.0"):
        updates.verify(*crafted(key, [member("release/a")], manifest), trusted(key), "0.1.0")


def test_make_release_builds_the_three_files(tmp_path):
    env_dir = tmp_path / "data"
    command = [sys.executable, "manage.py", "lbadmin_release"]
    env = {"LBADMIN_DATA_DIR": str(env_dir), "PATH": "/usr/bin:/bin"}
    subprocess.run([*command, "--make-key", "--key", str(tmp_path / "k.pem")], cwd=ROOT,
                   env=env, check=True, capture_output=True)
    subprocess.run([*command, "--release-version", "0.2.0", "--key", str(tmp_path / "k.pem"),
                    "--out", str(tmp_path / "dist")], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    archive = tmp_path / "dist" / "lbadmin-0.2.0.tar.gz"
    manifest = updates.verify(*files(archive), updates.trusted_keys(env_dir / "update-keys"),
                              "0.1.0")
    assert manifest.version == "0.2.0"


@pytest.fixture
def trusted_here(settings):
    """Where a key this appliance trusts goes; removed afterwards, so no other test trusts it."""
    trusted_dir = settings.DATA_DIR / "update-keys"
    trusted_dir.mkdir(exist_ok=True)
    path = trusted_dir / "offline-test-release.pub"
    yield path
    path.unlink(missing_ok=True)


@pytest.mark.django_db
def test_the_offline_update_page_verifies_and_refuses(client, release, key, trusted_here,
                                                     settings):
    trusted_here.write_bytes((key / "trusted" / "release.pub").read_bytes())
    client.force_login(get_user_model().objects.create_user("loadbalancer", password="x" * 12))
    archive, checksum, signature = files(release)

    def upload(checksum_bytes):
        return client.post(reverse("maintenance:software-update"), {
            "archive": SimpleUploadedFile("a.tar.gz", archive),
            "checksum": SimpleUploadedFile("a.sha256", checksum_bytes),
            "signature": SimpleUploadedFile("a.sig", signature)})

    refused = upload(b"0" * 64).content.decode()
    assert "Refused: Wrong checksum" in refused
    assert not UpdateJob.objects.exists()
    # verified, then started; no Redis here, so the start fails and says why
    settings.REDIS_URL = "unix:///nonexistent/redis.sock"
    response = upload(checksum)
    assert response.status_code == 302
    job = UpdateJob.objects.get()
    assert job.to_version == "9.0.0" and "signed by a trusted key" in job.log
    assert job.status == UpdateJob.Status.FAILED and "Not started: Redis is down" in job.log


# Finding 8: the private key is created 0600, never world-readable then chmod-ed.

def test_the_signing_key_is_created_0600_whatever_the_umask(tmp_path, monkeypatch):
    opened, chmods = [], []
    real_open = updates.os.open

    def observe(path, flags, mode=0o777, **kwargs):
        opened.append((Path(path).name, flags, mode))
        return real_open(path, flags, mode, **kwargs)

    monkeypatch.setattr(updates.os, "open", observe)
    monkeypatch.setattr(Path, "chmod", lambda *args: chmods.append(args))
    previous = updates.os.umask(0)  # the worst case: nothing masked
    try:
        updates.make_key(tmp_path / "release.pem", tmp_path / "trusted" / "release.pub")
    finally:
        updates.os.umask(previous)
    name, flags, mode = opened[0]
    assert name == "release.pem" and mode == 0o600  # created with that mode: no window
    assert flags & updates.os.O_CREAT and flags & updates.os.O_EXCL
    assert chmods == []  # never widened then narrowed
    assert (tmp_path / "release.pem").stat().st_mode & 0o777 == 0o600
    assert b"PRIVATE KEY" in (tmp_path / "release.pem").read_bytes()


def test_an_existing_signing_key_is_never_overwritten(tmp_path):
    (tmp_path / "release.pem").write_text("the old key")
    with pytest.raises(updates.UpdateError, match="exists: a signing key is never overwritten"):
        updates.make_key(tmp_path / "release.pem", tmp_path / "release.pub")
    assert (tmp_path / "release.pem").read_text() == "the old key"


# Finding 4: latest.json is signed by the same key as the archive.

def test_the_offer_beside_the_release_is_signed_by_its_key(release, key, tmp_path):
    offer = (release.parent / "latest.json").read_bytes()
    signature = (release.parent / "latest.json.sig").read_bytes()
    assert json.loads(offer)["archive"] == release.name
    updates.check_signature(offer, signature, trusted(key), "offer")  # no error
    with pytest.raises(updates.UpdateError, match="Bad signature: no trusted key signed this "
                                                  "offer"):
        updates.check_signature(offer.replace(b"9.0.0", b"9.9.9"), signature, trusted(key),
                                "offer")
    other = tmp_path / "other"
    other.mkdir()
    updates.make_key(other / "k.pem", other / "k.pub")
    with pytest.raises(updates.UpdateError, match="Bad signature"):
        updates.check_signature(offer, signature, updates.trusted_keys(other), "offer")
