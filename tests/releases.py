"""Real update archives of this working tree, for the update tests."""

import contextlib
import functools
import http.server
import io
import shutil
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

from lab import CLIENT_ADDRESS
from maintenance import updates

ROOT = Path(__file__).resolve().parents[1]

# The migrations below follow the newest of clusters' (a new one there must not make two leaves).
CLUSTERS_LATEST = sorted(p.stem for p in (ROOT / "clusters" / "migrations").glob("0*.py"))[-1]

FAILING_MIGRATION = b'''from django.db import migrations


def fail(apps, schema_editor):
    raise RuntimeError("this migration fails on purpose")


class Migration(migrations.Migration):
    dependencies = [("clusters", "LATEST")]
    operations = [migrations.RunPython(fail)]
'''.replace(b"LATEST", CLUSTERS_LATEST.encode())

# A migration that works: the table it makes shows whether a switch-back restored the database.
PROBE_MIGRATION = b'''from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("clusters", "LATEST")]
    operations = [migrations.RunSQL("CREATE TABLE update_probe (id integer)")]
'''.replace(b"LATEST", CLUSTERS_LATEST.encode())

# A WebUI that cannot start: gunicorn exits when the application fails to import.
BROKEN_WSGI = b'raise RuntimeError("this release cannot start its WebUI, on purpose")\n'


def signing_key(folder, trusted_dir=None):
    """A release signing key: the private PEM's bytes; its public half goes into
    `trusted_dir` (an appliance's <data>/update-keys) or beside it as release.pub."""
    folder = Path(folder)
    updates.make_key(folder / "release.pem",
                     Path(trusted_dir or folder) / f"{folder.name}-release.pub")
    return (folder / "release.pem").read_bytes()


def build(tmp_path, version, key_pem, changes=None, notes="", min_from="0.1.0"):
    """Copy the working tree (committed or not, minus what git ignores), apply `changes`
    ({path: bytes}), and build a signed release of it; returns the archive's path."""
    source = Path(tmp_path) / f"src-{version}"
    names = updates.release_files(ROOT, untracked=True)
    for name in names:
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    for name, data in (changes or {}).items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
        names.append(name)
    return updates.build_release(source, version, min_from, notes, key_pem,
                                 Path(tmp_path) / "dist", files=sorted(set(names)))


LAB_UPDATE_SERVER_PORT = 8080  # on the lab's client, a namespace of its own: always free


@contextlib.contextmanager
def update_server(directory, lab=None):
    """A plain HTTP update server serving `directory`; yields its base URL. With a lab it runs
    on the lab's client (198.51.100.10), a host on a network the appliance reaches — its
    services run in the lab's lb namespace; without one, on this process's loopback."""
    if lab is not None:
        with _update_server_in(lab, directory) as url:
            yield url
        return
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


def unpack_commit(commit, target):
    """The tree of a commit (`git archive`: a release from before this work) unpacked into
    `target`; LookupError naming the commit when the repository does not hold it."""
    if subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT,
                      capture_output=True).returncode:
        raise LookupError(f"commit {commit} is not in the repository at {ROOT} (a shallow "
                          "clone? fetch it: git fetch --unshallow)")
    tree = subprocess.run(["git", "archive", "--format=tar", commit], cwd=ROOT,
                          capture_output=True, check=True).stdout
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(tree)) as archive:
        archive.extractall(target, filter="data")
    return target


@contextlib.contextmanager
def _update_server_in(lab, directory):
    server = subprocess.Popen(
        [*lab.exec_prefix("client"), sys.executable, "-u", "-m", "http.server", "--bind",
         CLIENT_ADDRESS, "--directory", str(directory), str(LAB_UPDATE_SERVER_PORT)],
        # its request log goes to stderr: dropped, so it can never fill a pipe and stall
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        first = server.stdout.readline()  # "Serving HTTP on …" once it listens
        if "Serving HTTP" not in first:
            raise RuntimeError("the lab's update server did not start (port "
                               f"{LAB_UPDATE_SERVER_PORT} on {CLIENT_ADDRESS}): {first.strip()}")
        yield f"http://{CLIENT_ADDRESS}:{LAB_UPDATE_SERVER_PORT}/"
    finally:
        server.terminate()
        server.wait(timeout=10)
