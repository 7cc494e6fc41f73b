from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def load():
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_names_the_appliance_services():
    services = load()["services"]
    assert set(services) == {"redis", "web", "worker-dataplane", "worker-checks",
                             "worker-maintenance", "beat"}


def test_every_service_uses_the_host_network_and_the_data_volume():
    compose = load()
    for name, service in compose["services"].items():
        assert service["network_mode"] == "host", name
        volume_sources = [v.split(":")[0] for v in service.get("volumes", [])]
        assert "lbadmin-data" in volume_sources, name
    assert "lbadmin-data" in compose["volumes"]


def test_only_the_privileged_workers_get_net_admin():
    services = load()["services"]
    for name in ("worker-dataplane", "worker-checks"):
        assert "NET_ADMIN" in services[name]["cap_add"], name
    for name in ("web", "beat", "worker-maintenance", "redis"):
        assert "NET_ADMIN" not in services[name].get("cap_add", []), name


def test_the_dataplane_worker_runs_one_task_at_a_time():
    command = load()["services"]["worker-dataplane"]["command"]
    assert "-Q dataplane" in command and "-c 1" in command
