"""Issue 10: an appliance running release 0.1.0 updates to this one through Maintenance ›
Software Update, under its OLD supervisor, and keeps its whole configuration, its password and
its keys.

Release 0.1.0 is the commit before this work, unpacked with `git archive` and started as its
own `make demo` starts it (its lab, its services, its supervisor in the main thread). It is
configured in Chromium, then a release of this working tree, version 0.2.0, is uploaded and
installed; 0.1.0's maintenance worker stages and checks it and 0.1.0's supervisor switches the
services over to it.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import tomllib
from pathlib import Path

import pytest
import redis
from playwright.sync_api import expect

from lab import (
    FLOATING_IP,
    PRIMARY_ADDRESS,
    SECONDARY_ADDRESS,
    VIP,
    Lab,
    stop_processes,
    unique_test_prefix,
)
from tests import releases
from tests.conftest import free_port, needs_root
from tests.netns.traffic import HeldConnection, connect_many

from .conftest import log_in, type_guide_deployment

pytestmark = pytest.mark.browser

OLD_RELEASE = "2d543c6"  # version 0.1.0: the release before issue 10's restructuring
NEW_VERSION = "0.2.0"
START_TIMEOUT = 120  # s: 0.1.0's demo builds its lab, migrates and starts every service
SWITCH_TIMEOUT = 240_000  # ms: stage, check, migrate a copy, stop, migrate, start, check
FIRST_PASSWORD = "Lb-update-first-7Qx!"  # LBADMIN_PASSWORD at 0.1.0's first start
CHANGED_PASSWORD = "Lb-update-changed-9Kp!"  # set on 0.1.0's Maintenance › Passwords
HOSTNAME = "lb-pacs-01"
DNS = "192.0.2.53"
STATE_KEY = "lbadmin:supervisor:state"  # what 0.1.0's supervisor publishes in Redis


def virtualenv_of(code_dir, target):
    """The virtualenv 0.1.0's `make demo` makes (`pip install -e '.[test]'` of its checkout),
    without downloading anything: the packages of ours, and setuptools' editable-install hook
    pointing at 0.1.0's checkout. Ours points at this working tree: it would lend 0.1.0 the
    modules 0.1.0 does not have (Django finds clusters/apps.py, which imports core/), and it
    would not lend the new release's services 0.1.0's modules, as an appliance's would.
    Returns its python."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(target)], check=True)
    python = Path(target) / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    ours = Path(sysconfig.get_paths()["purelib"])
    (site / "lbadmin-packages.pth").write_text(f"{ours}\n")  # a path line: no hooks of ours
    with open(code_dir / "pyproject.toml", "rb") as handle:
        include = tomllib.load(handle)["tool"]["setuptools"]["packages"]["find"]["include"]
    mapping = {name.rstrip("*"): str(code_dir / name.rstrip("*")) for name in include
               if (code_dir / name.rstrip("*")).is_dir()}
    for finder in ours.glob("__editable___lbadmin_*_finder.py"):
        text = re.sub(r"^MAPPING\b.*$", lambda _: f"MAPPING = {mapping!r}", finder.read_text(),
                      count=1, flags=re.MULTILINE)
        (site / finder.name).write_text(text)
        (site / "__editable__.lbadmin-0.1.0.pth").write_text(
            f"import {finder.stem}; {finder.stem}.install()\n")
    return python


class OldAppliance:
    """Release 0.1.0 running as `make demo` runs it, in a process of its own."""

    def __init__(self, code_dir, data_dir, key_pem, python):
        self.code_dir, self.data_dir, self.key_pem = code_dir, data_dir, key_pem
        self.python = python
        self.prefix = unique_test_prefix()  # lbt-<our pid>-…: stale-lab cleanup knows it
        self.lab = Lab(self.prefix)  # a handle on the lab 0.1.0 builds (names, exec prefix)
        self.https_port = free_port()
        self.webui = f"https://127.0.0.1:{self.https_port}"
        self.output = []
        self.process = None

    def start(self):
        env = {name: value for name, value in os.environ.items()
               if not name.startswith("LBADMIN_") and name not in (
                   "DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
        env.update({
            "PYTHONPATH": str(self.code_dir), "PYTHONUNBUFFERED": "1",
            "LBADMIN_DATA_DIR": str(self.data_dir), "LBADMIN_LAB_PREFIX": self.prefix,
            "LBADMIN_HTTPS_PORT": str(self.https_port),
            "LBADMIN_LISTEN_ADDRESS": "127.0.0.1", "LBADMIN_PASSWORD": FIRST_PASSWORD,
        })
        self.process = subprocess.Popen(
            [self.python, "-m", "appliance.demo"], cwd=self.code_dir, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)  # a Ctrl-C of the test run reaches it through stop()
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while not any("lbadmin is running: https://" in line for line in self.output):
            if self.process.poll() is not None:
                pytest.fail(f"0.1.0's demo exited with {self.process.returncode}:\n"
                            + self.diagnostics())
            if time.monotonic() > deadline:
                pytest.fail(f"0.1.0's demo did not come up in {START_TIMEOUT} s:\n"
                            + self.diagnostics())
            time.sleep(0.2)

    def _read(self):
        for line in self.process.stdout:
            self.output.append(line.rstrip("\n"))

    def stop(self):
        """Ctrl-C, as at the demo's terminal: it stops its services and removes its lab. Then
        whatever is left of it (a demo that had to be killed) goes too."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._kill_processes_of_our_data_dir()
        self.lab.down()  # every namespace with our prefix, and what runs in it

    def _kill_processes_of_our_data_dir(self):
        """Services a killed demo left behind: exactly the processes started with our data
        directory in their environment (every one of them was started by this test)."""
        marker = f"LBADMIN_DATA_DIR={self.data_dir}\0".encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                with contextlib.suppress(OSError):
                    if marker in (entry / "environ").read_bytes():
                        pids.append(int(entry.name))
        stop_processes(pids, timeout=5)

    def supervisor_state(self):
        client = redis.Redis(unix_socket_path=str(self.data_dir / "redis.sock"),
                             socket_timeout=5)
        try:
            raw = client.get(STATE_KEY)
        finally:
            client.close()
        return json.loads(raw) if raw else None

    def keys_and_secrets(self):
        """The files an update must leave alone, byte for byte."""
        names = ["secret_key", "webui-cert.pem", "webui-key.pem",
                 *sorted(f"update-keys/{path.name}"
                         for path in (self.data_dir / "update-keys").glob("*.pub"))]
        return {name: (self.data_dir / name).read_bytes() for name in names}

    def diagnostics(self, page=None):
        parts = ["--- 0.1.0's demo (stdout and stderr):", *self.output[-40:]]
        if page is not None:
            with contextlib.suppress(Exception):
                parts += ["--- #update-log:", page.locator("#update-log").inner_text(timeout=2000)]
        for log in sorted((self.data_dir / "logs").glob("*.out")):
            lines = log.read_text(errors="replace").splitlines()
            parts += [f"--- {log.name}:", *last_error(lines), "(last lines:)", *lines[-12:]]
        return "\n".join(parts)


def last_error(lines):
    """The end of a log's last traceback: its innermost frames and the exception."""
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback")]
    if not starts:
        return []
    for end in range(starts[-1] + 1, len(lines)):
        if lines[end] and not lines[end].startswith(" "):
            return ["(its last traceback ends:)", *lines[max(starts[-1], end - 6):end + 1]]
    return lines[starts[-1]:]


@pytest.fixture
def old_appliance(tmp_path):
    needs_root()
    code_dir = Path(tempfile.mkdtemp(prefix="lbadmin-0.1.0-code-")).resolve()
    data_dir = Path(tempfile.mkdtemp(prefix="lbadmin-0.1.0-data-")).resolve()
    venv_dir = Path(tempfile.mkdtemp(prefix="lbadmin-0.1.0-venv-")).resolve()
    appliance = None
    try:
        try:
            releases.unpack_commit(OLD_RELEASE, code_dir)
        except LookupError as missing:
            pytest.fail(f"Release 0.1.0 cannot be built: {missing}")
        assert '__version__ = "0.1.0"' in (code_dir / "appliance" / "version.py").read_text(), (
            f"{OLD_RELEASE} is not release 0.1.0")
        # The signing key of the release under test: trusted by this appliance from the start.
        # (0.1.0 makes its data directory itself; make_key makes update-keys/ in it.)
        (tmp_path / "release-key").mkdir()
        key_pem = releases.signing_key(tmp_path / "release-key", data_dir / "update-keys")
        python = virtualenv_of(code_dir, venv_dir)
        appliance = OldAppliance(code_dir, data_dir, key_pem, python)
        appliance.start()
        yield appliance
    finally:
        if appliance is not None:
            appliance.stop()
        # its logs stay with the test's other files (pytest keeps the last three runs)
        with contextlib.suppress(OSError):
            shutil.copytree(data_dir / "logs", tmp_path / "appliance-logs")
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(code_dir, ignore_errors=True)
        shutil.rmtree(venv_dir, ignore_errors=True)


def user_log(page, webui):
    page.goto(f"{webui}/lbadmin/logs/user/")
    rows = page.locator("table.list tbody tr")
    expect(rows.first).to_be_visible()
    return [" | ".join(cells) for cells in (
        row.locator("td").all_inner_texts() for row in rows.all())]


def served_certificate(port):
    return ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(("127.0.0.1", port)))


def lb_addresses(lab):
    return subprocess.run(["ip", "-n", lab.ns("lb"), "-br", "addr"], capture_output=True,
                          text=True, check=True).stdout


def answers_from_the_primary(lab):
    answers = connect_many(lab, VIP, [12000, 12100], 6)
    return {answer.split(" client")[0] for answer in answers}


def test_an_appliance_on_0_1_0_updates_to_this_release_and_keeps_everything(
        chromium, old_appliance, tmp_path):
    old = old_appliance
    webui, lab = old.webui, old.lab
    context = chromium.new_context(ignore_https_errors=True)
    context.set_default_timeout(20_000)
    page = context.new_page()

    # --- on 0.1.0: the guide's deployment and a change on every kind of page ---------------
    log_in(page, webui, FIRST_PASSWORD)
    expect(page.locator("#version")).to_have_text("0.1.0")
    type_guide_deployment(page)  # VNA, its fallback, PrimaryCluster; applied
    assert answers_from_the_primary(lab) == {"primary port 12000", "primary port 12100"}

    page.goto(f"{webui}/lbadmin/local/hostname-dns/")  # NetworkConfiguration (now network/)
    page.get_by_label("Hostname", exact=True).fill(HOSTNAME)
    page.get_by_label("DNS Server 1").fill(DNS)
    page.get_by_role("button", name="Update").click()
    expect(page.locator(".message")).to_contain_text("Hostname and DNS saved and written.")

    page.goto(f"{webui}/lbadmin/cluster/floating-ips/")
    page.get_by_label("New Floating IP").fill(FLOATING_IP)
    page.get_by_role("button", name="Add Floating IP").click()
    expect(page.locator(f"tr[data-floating='{FLOATING_IP}']")).to_contain_text("eth0")
    assert f"{FLOATING_IP}/24" in lb_addresses(lab)

    page.goto(f"{webui}/lbadmin/maintenance/passwords/")  # only its hash is kept
    page.get_by_label("Old password").fill(FIRST_PASSWORD)
    page.get_by_label("New password", exact=True).fill(CHANGED_PASSWORD)
    page.get_by_label("New password confirmation").fill(CHANGED_PASSWORD)
    page.get_by_role("button", name="Update").click()
    expect(page.locator(".message")).to_contain_text("The password of loadbalancer is changed.")

    entries_before = user_log(page, webui)  # AuditEntry (now core/)
    assert any(f"set hostname {HOSTNAME}" in entry for entry in entries_before)
    assert any("changed the password" in entry for entry in entries_before)
    secrets_before = old.keys_and_secrets()
    assert any(name.startswith("update-keys/") for name in secrets_before)
    state = old.supervisor_state()
    assert state["version"] == "0.1.0" and state["release"] == str(old.code_dir)

    # --- the update: a release of this working tree, installed by 0.1.0 -----------------------
    archive = releases.build(tmp_path, NEW_VERSION, old.key_pem,
                             notes="The house in order (issue 10).")
    with HeldConnection(lab, VIP, 12000) as held:
        assert held.greeting.startswith("primary port 12000")
        page.goto(f"{webui}/lbadmin/maintenance/software-update/")
        page.get_by_label("Archive").set_input_files(str(archive))
        page.get_by_label("Checksum").set_input_files(f"{archive}.sha256")
        page.get_by_label("Signature").set_input_files(f"{archive}.sig")
        page.get_by_role("button", name="Upload and Install").click()
        try:
            expect(page.locator("#update-log")).to_contain_text(
                f"version {NEW_VERSION}, signed by a trusted key")
            status = page.locator("#update-status")
            expect(status).to_have_text(re.compile("Completed|Failed"), timeout=SWITCH_TIMEOUT)
            expect(status).to_have_text("Completed", timeout=1000)
        except AssertionError as failed:
            raise AssertionError(
                f"The update from 0.1.0 did not complete: {failed}\n{old.diagnostics(page)}\n"
                f"(the appliance's logs are kept in {tmp_path / 'appliance-logs'})") from None
        # the data plane kept forwarding through the switch-over: the open connection too
        assert "primary port 12000" in held.talk("still there?")
    expect(page.locator("progress")).to_have_attribute("value", "100")
    expect(page.locator("#update-log")).to_contain_text(
        f"Update completed successfully: {NEW_VERSION} is serving.")
    context.close()

    # --- the services run the new release's code, started by 0.1.0's supervisor -------------
    release = (old.data_dir / "releases" / NEW_VERSION).resolve()
    assert (old.data_dir / "current").resolve() == release
    assert not (release / "lab").exists() and not (release / "tests").exists()
    state = old.supervisor_state()
    assert state["version"] == NEW_VERSION and state["release"] == str(release)
    for name, service in state["services"].items():
        assert service["running"], f"{name} is not running: {service}"
        if name != "redis":  # Redis stays up through an update
            assert service["version"] == NEW_VERSION, (name, service)
            assert Path(f"/proc/{service['pid']}/cwd").resolve() == release, name
    assert old.process.poll() is None  # the old supervisor itself still runs

    # --- the same password, keys and certificate ---------------------------------------------
    assert old.keys_and_secrets() == secrets_before
    assert served_certificate(old.https_port) == ssl.PEM_cert_to_DER_cert(
        secrets_before["webui-cert.pem"].decode())
    context = chromium.new_context(ignore_https_errors=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        log_in(page, webui, FIRST_PASSWORD)  # the password 0.1.0 was started with: replaced
        expect(page.get_by_role("alert")).to_contain_text(
            "Please enter a correct username and password")
        log_in(page, webui, CHANGED_PASSWORD)
        expect(page.locator("#version")).to_have_text(NEW_VERSION)
        status = page.locator("#service-status")
        for queue in ("dataplane", "checks", "maintenance"):
            expect(status.locator(f"[data-service=queue-{queue}]")).to_contain_text(
                "answering", timeout=30_000)

        # --- the whole configuration ----------------------------------------------------------
        page.goto(f"{webui}/lbadmin/cluster/virtual-services/")
        vna = page.locator("[data-service=VNA]")
        for text in (VIP, "12000", f"{SECONDARY_ADDRESS}:", "MASQ"):
            expect(vna).to_contain_text(text)
        page.goto(f"{webui}/lbadmin/cluster/real-servers/")
        expect(page.locator("[data-real-server=PrimaryCluster]")).to_contain_text(
            PRIMARY_ADDRESS)
        page.goto(f"{webui}/lbadmin/cluster/floating-ips/")
        expect(page.locator(f"tr[data-floating='{FLOATING_IP}']")).to_contain_text("eth0")
        assert f"{FLOATING_IP}/24" in lb_addresses(lab)
        page.goto(f"{webui}/lbadmin/local/hostname-dns/")
        expect(page.get_by_label("Hostname", exact=True)).to_have_value(HOSTNAME)
        expect(page.get_by_label("DNS Server 1")).to_have_value(DNS)
        entries_after = user_log(page, webui)
        assert set(entries_before) <= set(entries_after), "User Log entries of 0.1.0 are lost"

        # the data plane serves through the VIP, from the client to the primary
        assert answers_from_the_primary(lab) == {"primary port 12000", "primary port 12100"}

        # and the new release changes what 0.1.0 stored: the moved models are writable
        page.goto(f"{webui}/lbadmin/local/hostname-dns/")
        page.get_by_label("DNS Server 2").fill("192.0.2.54")
        page.get_by_role("button", name="Update").click()
        expect(page.locator(".message")).to_contain_text("Hostname and DNS saved and written.")
        assert any("192.0.2.54" in entry for entry in user_log(page, webui))

        page.goto(f"{webui}/lbadmin/maintenance/software-update/")
        history = page.locator("table.list")
        expect(history.locator("tr", has_text="Completed")).to_contain_text(NEW_VERSION)
    except AssertionError as failed:
        raise AssertionError(f"{failed}\n{old.diagnostics()}") from None
    finally:
        context.close()
