"""Online Update: ask the update server what it offers, and download it.

The update server is any plain HTTP(S) server holding the files `make release` writes:
    latest.json                  {"version", "min_from", "notes", "archive": "<file name>"}
    latest.json.sig              its base64 ed25519 signature, by a trusted key
    lbadmin-<version>.tar.gz     and its .sha256 and .sig beside it
A download is verified exactly as an uploaded archive is (updates.verify) before anything is
changed. Every request goes through maintenance.fetch (total deadline, size cap, refused
addresses and redirects). A check runs in the maintenance worker (tasks.check_for_update),
never in a web request.
"""

import json
import urllib.parse

from django.conf import settings
from django.utils import timezone

from core.version import __version__

from . import updates
from .fetch import FetchError
from .fetch import fetch as fetch_url
from .models import OnlineUpdate
from .updates import UpdateError

MANIFEST_NAME = updates.OFFER_NAME
MAX_MANIFEST = 64 * 1024
MAX_SIGNATURE = 4096
DOWNLOAD_DEADLINE = 900  # seconds for each file of an update, the whole transfer (200 MiB)
CHECK_DEADLINE = 20  # seconds for latest.json, and again for its signature


def fetch(url, limit, deadline=DOWNLOAD_DEADLINE):
    """The body at `url` through the one outbound HTTP helper (maintenance.fetch: a total
    deadline, a size cap, refused addresses and redirects); UpdateError with the reason."""
    try:
        return fetch_url(url, limit, deadline)
    except FetchError as problem:
        raise UpdateError(str(problem)) from None


def _base(server_url):
    return server_url if server_url.endswith("/") else server_url + "/"


def read_offer(server_url):
    """The update server's latest.json, checked: (version, notes, archive URL). It must be
    signed (latest.json.sig) by a key this appliance trusts, like the archives."""
    url = urllib.parse.urljoin(_base(server_url), MANIFEST_NAME)
    data = fetch(url, MAX_MANIFEST, CHECK_DEADLINE)
    try:
        signature = fetch(url + ".sig", MAX_SIGNATURE, CHECK_DEADLINE)
    except UpdateError as problem:
        raise UpdateError(f"{url} is not signed, so it is not believed ({problem} `make "
                          "release` writes latest.json.sig beside it).") from None
    try:
        updates.check_signature(data, signature, updates.trusted_keys(
            settings.DATA_DIR / "update-keys"), "offer (latest.json)")
    except UpdateError as problem:
        raise UpdateError(f"{url} is refused: {problem}") from None
    try:
        offer = json.loads(data)
        version, notes, archive = offer["version"], offer.get("notes", ""), offer["archive"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
        raise UpdateError(f"{url} is not an update manifest (version, notes, archive).") \
            from None
    updates.version_tuple(version)
    if not isinstance(archive, str) or "/" in archive or archive.startswith(".") or \
            not archive.endswith(".tar.gz"):
        raise UpdateError(f"{url} names an archive that is not a plain .tar.gz file name.")
    return version, str(notes), urllib.parse.urljoin(_base(server_url), archive)


# What a check found: cleared when the check is switched off or its server changes.
FOUND = ("available_version", "available_notes", "available_archive", "check_error",
         "checked_at")


def asks(online):
    """Whether the check is on and has a server to ask."""
    return bool(online.enabled and online.server_url)


def withdraw(online):
    """Forget what the last check found (not saved): an offer is only ever the answer of the
    server now set, with the check on."""
    online.available_version = online.available_notes = online.available_archive = ""
    online.check_error = ""
    online.checked_at = None
    return online


def check(online=None, running=__version__):
    """Ask the update server (when the check is on and a server is set); remember a newer
    release, or the reason the check failed. Returns the OnlineUpdate row.

    With the check off or no server, any earlier answer is withdrawn. The answer is stored
    only if the settings are still the ones asked (a check running in the worker must not
    bring back an offer the administrator withdrew meanwhile, nor undo the settings)."""
    online = online or OnlineUpdate.load()
    if not asks(online):
        if any(getattr(online, field) for field in FOUND):
            withdraw(online).save(update_fields=FOUND)
        return online
    try:
        version, notes, archive = read_offer(online.server_url)
    except UpdateError as problem:
        online.check_error = str(problem)[:500]
    else:
        online.check_error = ""
        newer = updates.version_tuple(version) > updates.version_tuple(running)
        online.available_version = version if newer else ""
        online.available_notes = notes if newer else ""
        online.available_archive = archive if newer else ""
    online.checked_at = timezone.now()
    stored = OnlineUpdate.objects.filter(pk=online.pk, enabled=True,
                                         server_url=online.server_url)
    if not stored.update(**{field: getattr(online, field) for field in FOUND}):
        return OnlineUpdate.load()  # switched off or changed while asking: not stored
    return online


def download(archive_url, expected_version, running=__version__):
    """Download the archive, its checksum and signature, verify them as an upload is, and
    store the archive in the upload directory; returns its path."""
    archive = fetch(archive_url, updates.MAX_ARCHIVE)
    checksum = fetch(archive_url + ".sha256", 4096, CHECK_DEADLINE)
    signature = fetch(archive_url + ".sig", MAX_SIGNATURE, CHECK_DEADLINE)
    manifest = updates.verify(archive, checksum, signature,
                              updates.trusted_keys(settings.DATA_DIR / "update-keys"), running)
    if manifest.version != expected_version:
        raise UpdateError(f"The server offered {expected_version} but the archive is "
                          f"{manifest.version}.")
    stored = settings.UPLOAD_DIR / f"lbadmin-{manifest.version}.tar.gz"
    stored.write_bytes(archive)
    return stored


def offered(running=__version__):
    """The release the banner announces and the Update button installs: found by the check
    of the server now set, with the check on, and newer than the running one; else None."""
    online = OnlineUpdate.objects.filter(pk=1, enabled=True).exclude(server_url="").only(
        "enabled", "server_url", "available_version", "available_archive").first()
    if online and online.available_version and online.available_archive:
        try:
            if updates.version_tuple(online.available_version) > \
                    updates.version_tuple(running):
                return online
        except UpdateError:
            return None
    return None
