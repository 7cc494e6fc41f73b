import pytest

from core import environment as env


def test_booleans_accept_the_usual_words(monkeypatch):
    for word, value in (("1", True), ("Yes", True), ("on", True), ("0", False), ("false", False)):
        monkeypatch.setenv("LBADMIN_X", word)
        assert env.boolean("LBADMIN_X", not value) is value


def test_a_bad_boolean_stops_start_up_and_names_the_variable(monkeypatch):
    monkeypatch.setenv("LBADMIN_DEBUG", "maybe")
    with pytest.raises(env.ConfigurationError, match="LBADMIN_DEBUG='maybe'"):
        env.boolean("LBADMIN_DEBUG", False)


def test_ports_must_be_whole_numbers_in_range(monkeypatch):
    monkeypatch.setenv("LBADMIN_HTTPS_PORT", "94x3")
    with pytest.raises(env.ConfigurationError, match="whole number"):
        env.https_port()
    monkeypatch.setenv("LBADMIN_HTTPS_PORT", "70000")
    with pytest.raises(env.ConfigurationError, match="1 to 65535"):
        env.https_port()
    monkeypatch.setenv("LBADMIN_HTTPS_PORT", "8443")
    assert env.https_port() == 8443


def test_defaults_follow_the_guide(monkeypatch):
    for name in ("LBADMIN_HTTPS_PORT", "LBADMIN_HTTP_PORT", "LBADMIN_LISTEN_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    assert env.https_port() == 9443
    assert env.http_port() == 0  # plain HTTP (the guide's 9080) is off by default
    assert env.listen_address() == "0.0.0.0"


def test_an_unusable_data_directory_is_refused(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("LBADMIN_DATA_DIR", str(blocker / "data"))
    with pytest.raises(env.ConfigurationError, match="LBADMIN_DATA_DIR"):
        env.data_dir()


def test_the_redis_socket_lives_in_the_data_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("LBADMIN_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("LBADMIN_REDIS_SOCKET", raising=False)
    assert env.redis_socket() == tmp_path / "redis.sock"
