"""Software update archives: how they are built and how they are verified before anything is
changed.

An update is three files:
    lbadmin-<version>.tar.gz          manifest.json + release/<every file of the release>
    lbadmin-<version>.tar.gz.sha256   "<sha256 hex>  lbadmin-<version>.tar.gz"
    lbadmin-<version>.tar.gz.sig      base64 ed25519 signature of the archive's bytes
manifest.json: {"version", "min_from" (oldest version it can update), "notes",
"files": {"release/<path>": "<sha256>"}}. The appliance trusts the public keys (PEM) in
<data>/update-keys/.
Beside them `make release` writes latest.json (what an update server offers) and
latest.json.sig, its signature by the same key.
"""

import base64
import hashlib
import io
import json
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core import versions

MAX_ARCHIVE = 200 * 1024 * 1024
MAX_MEMBER = 50 * 1024 * 1024
MAX_TOTAL = 500 * 1024 * 1024
OFFER_NAME = "latest.json"  # what an update server offers; latest.json.sig signs it


# The version the code imports, and the copy supervisors of 0.1.0 read as text.
VERSION_FILES = ("core/version.py", "appliance/version.py")
# Test and demo tooling: never in a release (it would run on no appliance).
NOT_SHIPPED = ("lab/", "tests/", "bench/")


def version_file(version):
    return (f'"""The running release\'s version (written by `make release`)."""\n\n'
            f'__version__ = "{version}"\n').encode()


def shipped(name):
    return not name.startswith(NOT_SHIPPED)


class UpdateError(Exception):
    """The update is refused; the message says why. Nothing was changed."""


@dataclass
class Manifest:
    version: str
    min_from: str
    notes: str
    files: dict


def version_tuple(text):
    try:
        return versions.version_tuple(text)
    except versions.VersionError as error:
        raise UpdateError(str(error)) from None


def make_key(private_path, public_path):
    """A new ed25519 signing key. The private key's file is created 0600 (O_CREAT|O_EXCL with
    that mode, then fchmod so no umask changes it): it is never readable by others, not even
    for a moment, and an existing key is never overwritten."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise UpdateError(f"{private_path} exists: a signing key is never overwritten.") \
            from None
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(pem)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def sign(key, data):
    """The base64 ed25519 signature of `data`, as the .sig files hold it."""
    return base64.b64encode(key.sign(data)) + b"\n"


def check_signature(data, signature, keys, what):
    """Refuse (UpdateError, in words) `data` unless a trusted key signed it."""
    if not signature or not signature.strip():
        raise UpdateError(f"The signature is missing: only signed {what}s are trusted.")
    try:
        raw = base64.b64decode(signature.strip(), validate=True)
    except ValueError:
        raise UpdateError(f"The signature file of the {what} is not a signature.") from None
    if not keys:
        raise UpdateError("This appliance trusts no update key yet (put a public key in "
                          "<data>/update-keys/).")
    for key in keys:
        try:
            key.verify(raw, data)
            return
        except InvalidSignature:
            continue
    raise UpdateError(f"Bad signature: no trusted key signed this {what}.")


def release_files(root, untracked=False):
    """The files of a checkout, as git knows them (with `untracked`, also the new files git
    does not ignore: tests build releases of a working tree that is not committed yet)."""
    extra = ["--others", "--exclude-standard", "--cached"] if untracked else []
    output = subprocess.run(["git", "ls-files", "-z", *extra], cwd=root, capture_output=True,
                            check=True).stdout
    return [name for name in output.decode().split("\0") if name]


def build_release(root, version, min_from, notes, private_key_pem, out_dir, files=None):
    """Build the three files from a checkout; returns the archive's path."""
    version_tuple(version), version_tuple(min_from)
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    names = files if files is not None else release_files(root)
    contents = {f"release/{name}": (Path(root) / name).read_bytes() for name in names
                if (Path(root) / name).is_file() and shipped(name)}
    # the release's code says its own version (System Overview, the next update's check)
    for name in VERSION_FILES:
        contents[f"release/{name}"] = version_file(version)
    manifest = {"version": version, "min_from": min_from, "notes": notes,
                "files": {n: hashlib.sha256(d).hexdigest() for n, d in contents.items()}}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in [("manifest.json", json.dumps(manifest, indent=1).encode()),
                           *sorted(contents.items())]:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"lbadmin-{version}.tar.gz"
    path.write_bytes(data)
    Path(f"{path}.sha256").write_text(f"{hashlib.sha256(data).hexdigest()}  {path.name}\n")
    Path(f"{path}.sig").write_bytes(sign(key, data))
    # what an update server offers (maintenance/online.py): serve out_dir as it is. The offer
    # is signed by the same key, so a server (or anyone between) cannot announce what it likes.
    offer = (json.dumps({"version": version, "min_from": min_from, "notes": notes,
                         "archive": path.name}, indent=1) + "\n").encode()
    (out_dir / OFFER_NAME).write_bytes(offer)
    (out_dir / f"{OFFER_NAME}.sig").write_bytes(sign(key, offer))
    return path


def trusted_keys(directory):
    keys = []
    for path in sorted(Path(directory).glob("*.pub")):
        try:
            keys.append(serialization.load_pem_public_key(path.read_bytes()))
        except ValueError:
            continue
    return keys


def _check_member(member):
    path = PurePosixPath(member.name)
    if path.is_absolute():
        raise UpdateError(f"The archive holds an absolute path: {member.name}")
    if ".." in path.parts:
        raise UpdateError(f"The archive holds a path that climbs out: {member.name}")
    if member.isdev() or member.isfifo():
        raise UpdateError(f"The archive holds a device or pipe: {member.name}")
    if member.issym() or member.islnk():
        target = PurePosixPath(member.linkname)
        resolved = target if member.islnk() else path.parent / target
        if target.is_absolute() or ".." in PurePosixPath(*resolved.parts).parts:
            raise UpdateError(f"The archive holds a link pointing outside: {member.name} → "
                              f"{member.linkname}")
    if member.size > MAX_MEMBER:
        raise UpdateError(f"{member.name} is larger than {MAX_MEMBER // 2**20} MiB.")


def verify(archive, checksum, signature, keys, running):
    """Check everything before anything changes; returns the Manifest or raises UpdateError."""
    if len(archive) > MAX_ARCHIVE:
        raise UpdateError(f"The archive is larger than {MAX_ARCHIVE // 2**20} MiB.")
    expected = (checksum or b"").decode(errors="replace").strip().split()
    if not expected:
        raise UpdateError("The checksum file is empty.")
    if hashlib.sha256(archive).hexdigest() != expected[0].lower():
        raise UpdateError("Wrong checksum: the archive is not the one the checksum describes.")
    check_signature(archive, signature, keys, "archive")
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            members = tar.getmembers()
            total = 0
            for member in members:
                _check_member(member)
                total += member.size
            if total > MAX_TOTAL:
                raise UpdateError(f"The archive unpacks to more than {MAX_TOTAL // 2**20} MiB.")
            by_name = {m.name: m for m in members}
            if "manifest.json" not in by_name:
                raise UpdateError("The archive has no manifest.json.")
            manifest = json.loads(tar.extractfile(by_name["manifest.json"]).read())
            files = {m.name: hashlib.sha256(tar.extractfile(m).read()).hexdigest()
                     for m in members if m.isfile() and m.name != "manifest.json"}
    except (tarfile.TarError, EOFError, OSError, json.JSONDecodeError) as error:
        raise UpdateError(f"Not a readable gzip tar archive ({error}).") from None
    for key in ("version", "min_from", "notes", "files"):
        if key not in manifest:
            raise UpdateError(f"The manifest has no “{key}”.")
    if files != manifest["files"]:
        differing = sorted(set(files.items()) ^ set(manifest["files"].items()))
        raise UpdateError(f"The archive's files differ from its manifest "
                          f"(first: {differing[0][0]}).")
    if version_tuple(manifest["version"]) <= version_tuple(running):
        raise UpdateError(f"Version {manifest['version']} is not newer than the running "
                          f"{running}.")
    if version_tuple(running) < version_tuple(manifest["min_from"]):
        raise UpdateError(f"Version {manifest['version']} updates from {manifest['min_from']} "
                          f"or newer; this appliance runs {running}.")
    return Manifest(manifest["version"], manifest["min_from"], manifest["notes"],
                    manifest["files"])
