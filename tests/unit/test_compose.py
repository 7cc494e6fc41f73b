import re
from pathlib import Path

import yaml

from runner.stack import WORKERS

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def load():
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_names_the_appliance_services():
    services = load()["services"]
    assert set(services) == {"data-init", "redis", "web", "worker-dataplane", "worker-reader",
                             "worker-checks", "worker-maintenance", "beat"}


def test_every_service_uses_the_host_network_and_the_data_volume():
    compose = load()
    for name, service in compose["services"].items():
        assert service["network_mode"] == "host", name
        volume_sources = [v.split(":")[0] for v in service.get("volumes", [])]
        assert "lbadmin-data" in volume_sources, name
    assert "lbadmin-data" in compose["volumes"]


def setpriv_drop(service):
    """(uid, gid, ambient capabilities) a service's `setpriv` prefix drops it to, or None."""
    command = " ".join(service["command"].split())
    if not command.startswith("setpriv "):
        return None
    options = dict(re.findall(r"--([a-z-]+)=(\S+)", command.split(" -- ")[0]))
    ambient = {cap[1:].upper() for cap in options["ambient-caps"].split(",")
               if cap.startswith("+")}
    bounding = {cap[1:].upper() for cap in options["bounding-set"].split(",")
                if cap.startswith("+")}
    assert options["ambient-caps"].startswith("-all") and options["bounding-set"].startswith(
        "-all")
    assert ambient == bounding, "what is kept is exactly what may ever be held"
    return int(options["reuid"]), int(options["regid"]), ambient


def running(service):
    """(uid, gid, capabilities) a service's process finally runs with."""
    assert service.get("cap_drop") == ["ALL"]
    dropped = setpriv_drop(service)
    if dropped:
        uid, gid, ambient = dropped
        # it may hand over only what the container gave it
        assert ambient <= set(service["cap_add"])
        return uid, gid, ambient
    uid, gid, _groups = identity(service)
    return uid, gid, set(service.get("cap_add", []))


EXPECTED_CAPABILITIES = {
    "redis": set(), "web": set(), "beat": set(), "worker-maintenance": set(),
    "worker-dataplane": {"NET_ADMIN"},
    "worker-reader": {"NET_ADMIN"},  # reads conntrack and nftables' counters
    # ping checks and scripts dropped to nobody; never NET_ADMIN (the conntrack sampler is the
    # reader's)
    "worker-checks": {"NET_RAW", "SETUID", "SETGID"},
}


def test_every_service_runs_as_the_service_user_with_only_its_capabilities():
    services = load()["services"]
    for name, expected in EXPECTED_CAPABILITIES.items():
        uid, gid, capabilities = running(services[name])
        assert (uid, gid) == (int(REDIS_IMAGE_USER), int(REDIS_IMAGE_USER)), name
        assert capabilities == expected, name


def test_a_service_that_starts_as_root_holds_only_what_it_drops_with():
    for name, service in load()["services"].items():
        if name == "data-init" or identity(service)[0] != 0:
            continue
        assert setpriv_drop(service), f"{name} runs as root"
        extra = set(service["cap_add"]) - setpriv_drop(service)[2]
        assert extra <= {"SETPCAP", "SETUID", "SETGID"}, name  # only what setpriv needs


def test_the_dataplane_worker_runs_one_task_at_a_time():
    command = load()["services"]["worker-dataplane"]["command"]
    assert "-Q dataplane" in command and "-c 1" in command


def test_the_reader_worker_runs_its_tasks_in_threads_as_the_runner_does():
    command = " ".join(load()["services"]["worker-reader"]["command"].split())
    assert f"-Q reader {' '.join(WORKERS['reader'])} " in command


# Finding 11 (issue 12): users, groups and modes of the shared volume agree

DATA = "/var/lib/lbadmin"
REDIS_IMAGE_USER = "999"  # the official Redis image's "redis" user and group


def volume_setup(compose):
    """(uid, gid, mode) the data-init service gives the volume's top directory."""
    init = compose["services"]["data-init"]
    script = " ".join(init["entrypoint"])
    owner = re.search(rf"chown (\d+):(\d+) {DATA}(?:\s|$)", script)
    mode = re.search(rf"chmod ([0-7]{{3,4}}) {DATA}(?:\s|$)", script)
    assert owner and mode, script
    assert init["user"] in ("0", "0:0", "root")  # only root may chown
    assert init["restart"] == "no"
    return int(owner[1]), int(owner[2]), int(mode[1], 8)


def identity(service):
    """(uid, gid, extra gids) the service runs as. A service without `user:` runs as its
    image's user: root for lbadmin's image (no USER in the Dockerfile); the Redis image would
    start as root and drop to 999 itself, so redis must say `user:`."""
    user = str(service.get("user", "0:0"))
    uid, _, gid = user.partition(":")
    return int(uid), int(gid or uid), {int(g) for g in service.get("group_add", [])}


def can_write(uid, gid, groups, owner, group, mode):
    if uid == owner:
        return bool(mode & 0o200) and bool(mode & 0o100)
    if gid == group or group in groups:
        return bool(mode & 0o020) and bool(mode & 0o010)
    return bool(mode & 0o002) and bool(mode & 0o001)


def test_every_service_on_the_volume_can_write_it_without_root_privileges():
    compose = load()
    owner, group, mode = volume_setup(compose)
    assert mode == 0o700  # the service user alone
    for name, service in compose["services"].items():
        if name == "data-init":
            continue
        uid, gid, _capabilities = running(service)
        # no reliance on root's CAP_DAC_OVERRIDE: the modes alone let it in
        assert can_write(uid, gid, set(), owner, group, mode), name
        depends = service.get("depends_on", {})
        assert depends.get("data-init", {}).get("condition") == \
            "service_completed_successfully", name


def test_redis_runs_as_the_service_user_and_its_socket_is_that_users_alone():
    compose = load()
    owner, group, _mode = volume_setup(compose)
    redis = compose["services"]["redis"]
    assert str(redis["user"]) == f"{REDIS_IMAGE_USER}:{REDIS_IMAGE_USER}"
    assert (owner, group) == (int(REDIS_IMAGE_USER), int(REDIS_IMAGE_USER))
    command = redis["command"]
    socket_mode = int(re.search(r"--unixsocketperm (\d+)", command)[1], 8)
    assert f"--unixsocket {DATA}/redis.sock" in command
    assert socket_mode == 0o700
    for name, service in compose["services"].items():
        if name in ("redis", "data-init"):
            continue
        assert service["environment"]["LBADMIN_REDIS_SOCKET"] == f"{DATA}/redis.sock", name
        assert running(service)[0] == owner, name


def test_the_image_makes_the_service_user_with_the_uid_compose_runs_as():
    dockerfile = (COMPOSE.parent / "Dockerfile").read_text()
    assert re.search(rf"useradd [^\n]*--uid {REDIS_IMAGE_USER}\b[^\n]* lbadmin", dockerfile)
    assert re.search(rf"groupadd [^\n]*--gid {REDIS_IMAGE_USER}\b[^\n]* lbadmin", dockerfile)


def test_the_volume_arrangement_is_documented_in_the_file():
    text = COMPOSE.read_text()
    for words in ("uid 999", "0700", "setpriv", "cap_drop", "--unixsocketperm"):
        assert words in text, words
