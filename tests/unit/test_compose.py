import re
from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def load():
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_names_the_appliance_services():
    services = load()["services"]
    assert set(services) == {"data-init", "redis", "web", "worker-dataplane", "worker-checks",
                             "worker-maintenance", "beat"}


def test_every_service_uses_the_host_network_and_the_data_volume():
    compose = load()
    for name, service in compose["services"].items():
        assert service["network_mode"] == "host", name
        volume_sources = [v.split(":")[0] for v in service.get("volumes", [])]
        assert "lbadmin-data" in volume_sources, name
    assert "lbadmin-data" in compose["volumes"]


def test_the_dataplane_worker_gets_net_admin_and_the_unprivileged_services_no_capability():
    services = load()["services"]
    assert "NET_ADMIN" in services["worker-dataplane"]["cap_add"]
    for name in ("web", "beat", "worker-maintenance", "redis", "data-init"):
        assert not services[name].get("cap_add"), name


def test_the_checks_worker_may_ping_but_never_gets_net_admin():
    cap_add = set(load()["services"]["worker-checks"]["cap_add"])
    assert "NET_RAW" in cap_add  # ping checks
    assert "NET_ADMIN" not in cap_add  # the conntrack sampler belongs to the dataplane worker


def test_the_dataplane_worker_runs_one_task_at_a_time():
    command = load()["services"]["worker-dataplane"]["command"]
    assert "-Q dataplane" in command and "-c 1" in command


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
    assert mode & 0o007 == 0  # nobody else
    assert mode & 0o2000  # setgid: files made in it belong to the shared group
    for name, service in compose["services"].items():
        if name == "data-init":
            continue
        uid, gid, groups = identity(service)
        # no reliance on root's CAP_DAC_OVERRIDE: the modes alone let it in
        assert can_write(uid, gid, groups, owner, group, mode), name
        depends = service.get("depends_on", {})
        assert depends.get("data-init", {}).get("condition") == \
            "service_completed_successfully", name


def test_redis_runs_as_its_image_user_and_its_socket_is_for_the_shared_group_only():
    compose = load()
    owner, group, _mode = volume_setup(compose)
    redis = compose["services"]["redis"]
    assert str(redis["user"]) == f"{REDIS_IMAGE_USER}:{REDIS_IMAGE_USER}"
    assert (owner, group) == (int(REDIS_IMAGE_USER), int(REDIS_IMAGE_USER))
    command = redis["command"]
    socket_mode = int(re.search(r"--unixsocketperm (\d+)", command)[1], 8)
    assert f"--unixsocket {DATA}/redis.sock" in command
    assert socket_mode & 0o007 == 0 and socket_mode & 0o060 == 0o060  # group: read, write
    for name, service in compose["services"].items():
        if name in ("redis", "data-init"):
            continue
        assert service["environment"]["LBADMIN_REDIS_SOCKET"] == f"{DATA}/redis.sock", name
        uid, gid, groups = identity(service)
        assert uid == int(REDIS_IMAGE_USER) or group in {gid, *groups}, name


def test_the_volume_arrangement_is_documented_in_the_file():
    text = COMPOSE.read_text()
    for words in ("uid 999", "2770", "group_add", "--unixsocketperm"):
        assert words in text, words
