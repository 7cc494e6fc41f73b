"""Least privilege, proved on the running appliance (DESIGN.md, "Privileges"): each service
runs as the service user with exactly its capabilities, and from the WebUI's (and the
maintenance worker's) credentials the data plane cannot be touched — while the WebUI still
applies changes through the dataplane worker (tests/browser/test_layer4.py)."""

import os
import pwd
import stat
import subprocess

import pytest

from runner.stack import SERVICE_USER

# capability bits (linux/capability.h)
CAP_SETGID, CAP_SETUID, CAP_NET_ADMIN, CAP_NET_RAW = 6, 7, 12, 13
EXPECTED_CAPABILITIES = {
    "web": 0,
    "beat": 0,
    "worker-maintenance": 0,
    "redis": 0,
    "worker-dataplane": 1 << CAP_NET_ADMIN,
    "worker-reader": 1 << CAP_NET_ADMIN,
    "worker-checks": (1 << CAP_NET_RAW) | (1 << CAP_SETUID) | (1 << CAP_SETGID),
}


def status(pid):
    """/proc/<pid>/status as {field: value}. The stack's pid is the service's own: `ip netns
    exec`, setpriv (and the checks worker's cgroup step) exec, they do not fork."""
    fields = {}
    with open(f"/proc/{pid}/status") as lines:
        for line in lines:
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    return fields


@pytest.fixture(scope="module")
def account():
    return pwd.getpwnam(SERVICE_USER)


@pytest.mark.parametrize("service", sorted(EXPECTED_CAPABILITIES))
def test_each_service_runs_as_the_service_user_with_only_its_capabilities(
        appliance_stack, account, service):
    process = appliance_stack.processes[service]
    fields = status(process.pid)
    assert fields["Uid"].split() == [str(account.pw_uid)] * 4, (service, fields["Uid"])
    assert fields["Gid"].split() == [str(account.pw_gid)] * 4, (service, fields["Gid"])
    expected = EXPECTED_CAPABILITIES[service]
    for field in ("CapEff", "CapPrm", "CapAmb", "CapBnd"):
        assert int(fields[field], 16) == expected, (service, field, fields[field])
    assert not int(fields["CapEff"], 16) & ~expected
    # the checks worker can never change nftables
    if service == "worker-checks":
        assert not int(fields["CapBnd"], 16) & (1 << CAP_NET_ADMIN)


def test_the_services_create_files_with_umask_077(appliance_stack):
    for service in EXPECTED_CAPABILITIES:
        assert status(appliance_stack.processes[service].pid)["Umask"] == "0077", service


def as_service(stack, service, *command):
    """`command` in the appliance's namespace with exactly the credentials of `service` (its
    uid, gid, groups and capabilities, read from the running process)."""
    fields = status(stack.processes[service].pid)
    uid, gid = fields["Uid"].split()[0], fields["Gid"].split()[0]
    groups = fields["Groups"].split()
    caps = int(fields["CapEff"], 16)
    assert caps == 0, f"{service} holds capabilities {caps:#x}"
    return subprocess.run(
        [*stack.lab.exec_prefix("lb"), "setpriv", f"--reuid={uid}", f"--regid={gid}",
         f"--groups={','.join(groups)}" if groups else "--clear-groups",
         "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--", *command],
        capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("service", ["web", "worker-maintenance"])
def test_from_the_webui_and_the_maintenance_worker_the_data_plane_cannot_be_touched(
        appliance_stack, service):
    stack = appliance_stack
    # the dataplane worker has applied lbadmin's table: there is something to protect
    live = subprocess.run([*stack.lab.exec_prefix("lb"), "nft", "list", "table", "ip",
                           "lbadmin"], capture_output=True, text=True, timeout=30)
    assert live.returncode == 0, live.stderr
    listing = as_service(stack, service, "nft", "list", "ruleset")
    assert listing.returncode != 0 and "lbadmin" not in listing.stdout
    flush = as_service(stack, service, "nft", "delete", "table", "ip", "lbadmin")
    assert flush.returncode != 0
    address = as_service(stack, service, "ip", "addr", "add", "192.0.2.99/24", "dev", "eth0")
    assert address.returncode != 0, address.stdout
    assert "192.0.2.99" not in subprocess.run(
        [*stack.lab.exec_prefix("lb"), "ip", "-o", "addr", "show", "dev", "eth0"],
        capture_output=True, text=True, timeout=30).stdout
    dataplane = stack.processes["worker-dataplane"].pid
    environ = as_service(stack, service, "cat", f"/proc/{dataplane}/environ")
    assert environ.returncode != 0 and "LBADMIN" not in environ.stdout
    # and the ruleset is still there, untouched
    again = subprocess.run([*stack.lab.exec_prefix("lb"), "nft", "list", "table", "ip",
                            "lbadmin"], capture_output=True, text=True, timeout=30)
    assert again.returncode == 0


def test_the_data_directory_and_its_secrets_belong_to_the_service_user_alone(
        appliance_stack, account):
    data = appliance_stack.data_dir
    info = data.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (account.pw_uid, 0o700)
    for name in ("lbadmin.sqlite3", "secret_key", "webui-key.pem", "redis.sock"):
        info = (data / name).stat()
        assert info.st_uid == account.pw_uid, name
        assert stat.S_IMODE(info.st_mode) & 0o077 in (0, 0o040), \
            f"{name} is {oct(stat.S_IMODE(info.st_mode))}"
    for top, dirs, files in os.walk(data):
        for name in [top, *(os.path.join(top, entry) for entry in dirs + files)]:
            owner = os.lstat(name).st_uid
            assert owner == account.pw_uid, f"{name} belongs to uid {owner}"


def test_the_checks_worker_runs_in_its_delegated_cgroup(appliance_stack, account):
    """Scripts are killed by cgroup: the worker sits in lbadmin-checks, handed to the service
    user, so each script's own cgroup is its to make, fill and kill."""
    pid = appliance_stack.processes["worker-checks"].pid
    with open(f"/proc/{pid}/cgroup") as lines:
        unified = next(line for line in lines if line.startswith("0::"))
    assert unified.strip() == "0::/lbadmin-checks"
    mount = next(line.split()[1] for line in open("/proc/self/mounts")  # noqa: SIM115
                 if line.split()[2] == "cgroup2")
    assert os.stat(os.path.join(mount, "lbadmin-checks", "cgroup.procs")).st_uid == \
        account.pw_uid
