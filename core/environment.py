"""Read lbadmin's environment variables strictly: a bad value stops start-up with its name.

Settings, gunicorn's config and the process runner all read through these functions, so a
variable means the same thing everywhere.
"""

import importlib.util
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


class ConfigurationError(Exception):
    pass


def installed(module):
    """Whether this image has an optional library (pyproject.toml's extras), without importing
    it: an update replaces code, not the Python packages, so a release must run without them."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def text(name, default):
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def boolean(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name}={value!r}: expected one of 1/0, true/false, yes/no, on/off")


def integer(name, default, minimum, maximum):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigurationError(f"{name}={value!r}: expected a whole number") from None
    if not minimum <= number <= maximum:
        raise ConfigurationError(f"{name}={value!r}: expected {minimum} to {maximum}")
    return number


def data_dir():
    """The data directory: database, certificate, secret key, logs, uploads, Redis socket."""
    path = Path(text("LBADMIN_DATA_DIR", str(BASE_DIR / "var"))).resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigurationError(f"LBADMIN_DATA_DIR={str(path)!r}: {error.strerror}") from None
    if not os.access(path, os.W_OK):
        raise ConfigurationError(f"LBADMIN_DATA_DIR={str(path)!r}: not writable")
    return path


def data_dir_path(name, default):
    return Path(text(name, str(default)))


def redis_socket():
    """Redis listens on a unix socket: a path reaches every network namespace, 127.0.0.1 not."""
    return Path(text("LBADMIN_REDIS_SOCKET", str(data_dir() / "redis.sock")))


def listen_address():
    return text("LBADMIN_LISTEN_ADDRESS", "0.0.0.0")  # noqa: S104 - an appliance's WebUI


def https_port():
    return integer("LBADMIN_HTTPS_PORT", 9443, 1, 65535)


def http_port():
    """The plain-HTTP redirect's port (0: the guide's 9080); whether it runs is Local
    Configuration › Security's setting (off by default). It only redirects to HTTPS."""
    return integer("LBADMIN_HTTP_PORT", 0, 0, 65535)
