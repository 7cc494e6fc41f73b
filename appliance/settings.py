"""The one settings module. Everything a deployment changes comes from LBADMIN_* variables,
read strictly by appliance.environment (a bad value stops start-up and names the variable)."""

import os
import secrets

from core import environment as env

BASE_DIR = env.BASE_DIR
DATA_DIR = env.data_dir()


def _secret_key():
    """LBADMIN_SECRET_KEY, or a key made at first start and kept (0600) in the data directory."""
    given = env.text("LBADMIN_SECRET_KEY", "")
    if given:
        return given
    path = DATA_DIR / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env.boolean("LBADMIN_DEBUG", False)
# Django's own Host check lets every name through because the appliance's addresses are its
# configuration, not settings: appliance.middleware.allowed_hosts answers 400 to any Host but
# localhost, the address the connection arrived on, the configured interface addresses and
# hostname, and the names the administrator allows in LBADMIN_ALLOWED_HOSTS (a comma list;
# "*" = any name, the old behaviour).
ALLOWED_HOSTS = ["*"]
LBADMIN_ALLOWED_HOSTS = [name.strip() for name in env.text("LBADMIN_ALLOWED_HOSTS", "").split(",")
                         if name.strip()]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "appliance",
    "core",
    "network",
    "clusters",
    "healthchecks",
    "maintenance",
    "ha",
    "reports",
    "api",
    # django-ninja's static files: the REST API's Swagger UI, served from the appliance (an
    # image without the rest-api extra has no REST API: api.urls says so)
    *(["ninja"] if env.installed("ninja") else []),
]

MIDDLEWARE = [
    "appliance.middleware.allowed_hosts",
    "django.middleware.security.SecurityMiddleware",
    # HSTS from Local Configuration › Security (SECURE_HSTS_SECONDS is 0: fixed at start)
    "appliance.middleware.strict_transport_security",
    "appliance.middleware.content_security_policy",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "appliance.middleware.no_store",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "appliance.middleware.htmx_login_redirect",
    "django.contrib.messages.middleware.MessageMiddleware",
    # times shown in the time zone of Local Configuration › System Date & time
    "network.middleware.time_zone",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # On a Secondary, Cluster Configuration is read-only (Halt/Drain/Online excepted: queued
    # for the Primary). After the session and htmx, so it knows the user and the request kind.
    "ha.middleware.secondary_read_only",
    "appliance.middleware.idle_timeout",
    "appliance.middleware.password_check_throttle",
    # Who may do what (core.roles), checked in process_view: after every middleware above
    # (a stale session is logged out first; on a Secondary its own refusal comes first).
    "appliance.middleware.RoleRequired",
]

ROOT_URLCONF = "appliance.urls"
WSGI_APPLICATION = "appliance.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "appliance.context_processors.appliance",
                "ha.context_processors.ha",
                "appliance.context_processors.roles_context",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "lbadmin.sqlite3",
        # WAL lets the web process read while a worker writes; IMMEDIATE avoids the
        # "database is locked" upgrade race between processes.
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
        # A file, not memory, so workers started by a test see the test database.
        "TEST": {"NAME": DATA_DIR / "test-lbadmin.sqlite3"},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
APPLIANCE_USER = "loadbalancer"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env.text("LBADMIN_TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "/lbadmin/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True  # serve straight from static/ without collectstatic

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview:index"
LOGOUT_REDIRECT_URL = "login"

# Sessions end after Local Configuration › Security's Session Timeout without the user doing
# anything (pages refreshing themselves do not count: appliance.middleware.idle_timeout;
# LBADMIN_SESSION_TIMEOUT, in seconds, is its value until one is saved there), after 12 hours
# in any case, and with the browser.
SESSION_IDLE_TIMEOUT = env.integer("LBADMIN_SESSION_TIMEOUT", 1800, 60, 7 * 24 * 3600)
SESSION_COOKIE_AGE = max(12 * 3600, SESSION_IDLE_TIMEOUT)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
LOGIN_URL_PATH = "/lbadmin/login/"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Strict"
SESSION_COOKIE_NAME = "lbadmin_session"
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_SAMESITE = "Strict"
CSRF_COOKIE_NAME = "lbadmin_csrftoken"
SECURE_HSTS_SECONDS = 0  # set per response from Local Configuration › Security
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# No inline script or style anywhere: templates load static files only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)
LBADMIN_HTTPS_PORT = env.https_port()

# Celery: Redis on a unix socket in the data directory (see appliance.environment).
REDIS_SOCKET = env.redis_socket()
CELERY_BROKER_URL = f"redis+socket://{REDIS_SOCKET}"
CELERY_RESULT_BACKEND = f"redis+socket://{REDIS_SOCKET}"
REDIS_URL = f"unix://{REDIS_SOCKET}"

# Hostname and resolv.conf are written here: /etc on an appliance; by default the data
# directory, so the demo and tests never write over the host's files.
ETC_DIR = env.data_dir_path("LBADMIN_ETC_DIR", DATA_DIR / "etc")
# Seconds a change that removed the browser's address waits for confirmation.
NETWORK_CONFIRM_SECONDS = env.integer("LBADMIN_NETWORK_CONFIRM_SECONDS", 60, 5, 3600)
BACKUP_DIR = DATA_DIR / "backups"
BACKUPS_KEPT = env.integer("LBADMIN_BACKUPS_KEPT", 14, 1, 1000)
UPDATE_ALLOW_LOOPBACK = env.boolean("LBADMIN_UPDATE_ALLOW_LOOPBACK", False)  # on 127/8, ::1
# Where Support > Contact Us and Useful Links send people: the project's page (its issue
# tracker is there). By default the appliance's own copy of the README.
LBADMIN_PROJECT_URL = env.text("LBADMIN_PROJECT_URL", "/lbadmin/support/documentation/")
if not LBADMIN_PROJECT_URL.startswith(("/", "https://", "http://")) or \
        any(c in LBADMIN_PROJECT_URL for c in "\"'<> "):
    raise env.ConfigurationError(f"LBADMIN_PROJECT_URL={LBADMIN_PROJECT_URL!r}: expected a "
                                 "path starting with / or an http(s):// URL")
LOG_DIR = DATA_DIR / "logs"
UPLOAD_DIR = DATA_DIR / "uploads"
LOG_DIR.mkdir(exist_ok=True)
UPLOAD_DIR.mkdir(exist_ok=True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "file": {
            "class": "logging.handlers.WatchedFileHandler",
            "filename": LOG_DIR / "lbadmin.log",
            "formatter": "plain",
        },
    },
    "root": {"handlers": ["console", "file"], "level": "INFO"},
}
