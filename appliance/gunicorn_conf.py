"""gunicorn's configuration for the WebUI: HTTPS on LBADMIN_LISTEN_ADDRESS:LBADMIN_HTTPS_PORT.

Run as `gunicorn -c python:appliance.gunicorn_conf appliance.wsgi`.
"""

from core import environment
from maintenance import certificate

_data_dir = environment.data_dir()
_cert, _key = certificate.paths(_data_dir)

bind = [f"{environment.listen_address()}:{environment.https_port()}"]
certfile = str(_cert)
keyfile = str(_key)
workers = environment.integer("LBADMIN_WEB_WORKERS", 2, 1, 64)
threads = 4  # a few slow requests (a worker asked while the administrator waits) block no one
timeout = 60
# A graceful reload (a new certificate: Local Configuration › Security) or a stop gives the old
# workers' open connections this long to finish, then closes them: gunicorn's default, 30 s,
# kept a browser's idle keep-alive connection on the old certificate for up to half a minute.
graceful_timeout = 10
accesslog = str(_data_dir / "logs" / "web-access.log")
errorlog = "-"
proc_name = "lbadmin-web"
# gunicorn 27 opens a control socket in ~/.gunicorn by default, shared by every instance.
control_socket_disable = True
# API v2's key header is spelt X_LB_APIKEY by the commercial appliance's clients; gunicorn
# drops header names with underscores (header_map "drop"): "dangerous" would let every such
# name through, merged with its dashed twin (X_Forwarded_For into X-Forwarded-For). Instead
# this one name is a "forwarder header" every peer may send — and, since that trust is by
# forwarded_allow_ips, no scheme header is trusted from anyone (secure_scheme_headers empty):
# nothing else changes.
header_map = "drop"
forwarder_headers = "X_LB_APIKEY"
forwarded_allow_ips = "*"
secure_scheme_headers = {}
