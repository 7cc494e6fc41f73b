"""Calls between the two appliances of a pair: HTTPS to the other's WebUI, signed.

- `transport` is the one seam for the HTTP between the nodes (tests point it at the other
  node's Django test client). The real one goes through maintenance.fetch (a total deadline, a
  size cap, refused addresses) with the peer's certificate pinned by its SHA-256 fingerprint.
- Every call after pairing carries `X-Lbadmin-Timestamp` and `X-Lbadmin-Signature`: the
  HMAC-SHA256, with the pairing secret, of "<timestamp>\\n" + the body. The receiver refuses a
  wrong signature and a timestamp more than MAX_SKEW seconds from its own clock.
"""

import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from django.conf import settings
from django.utils import timezone

from maintenance.fetch import FetchError, PinnedTLS, exchange

WEBUI_PATH = "/lbadmin/cluster/ha/peer/"
TIMESTAMP_HEADER = "X-Lbadmin-Timestamp"
SIGNATURE_HEADER = "X-Lbadmin-Signature"
MAX_SKEW = 60  # seconds either way
DEADLINE = 10  # seconds for one call, all of it
MAX_ANSWER = 12 * 1024 * 1024  # a replication answer is small; a payload may be 10 MiB+
# The WebUI certificate (maintenance.certificate makes it at first start and replaces it from
# Local Configuration › Security, which refuses that while this appliance is in a pair).
CERTIFICATE_NAME = "webui-cert.pem"


class PeerError(Exception):
    """The other node could not be reached, or answered something unreadable (in words)."""


@dataclass
class Answer:
    status: int
    data: dict
    fingerprint: str = ""  # the certificate the answer came over (sha256 hex)


def https_transport(url, body, headers, pin):
    """The real transport: (status, body bytes, certificate fingerprint) or FetchError."""
    tls = PinnedTLS(pin)
    status, answer = exchange(url, body, MAX_ANSWER, DEADLINE, headers=list(headers.items()),
                              tls=tls)
    return status, answer, tls.seen


transport = https_transport  # the seam: tests replace it


def own_fingerprint():
    """SHA-256 of this appliance's WebUI certificate (DER), hex; "" when it has none yet."""
    path = settings.DATA_DIR / CERTIFICATE_NAME
    if not path.exists():
        return ""
    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()


def url_of(peer_ip, name):
    host = f"[{peer_ip}]" if ":" in str(peer_ip) else str(peer_ip)
    return f"https://{host}:{settings.LBADMIN_HTTPS_PORT}{WEBUI_PATH}{name}/"


def signature(secret, timestamp, body):
    return hmac.new(bytes.fromhex(secret), f"{timestamp}\n".encode() + body,
                    hashlib.sha256).hexdigest()


def signed_headers(secret, body, now=None):
    timestamp = str(int(now if now is not None else time.time()))
    return {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(secret, timestamp, body)}


def refusal_of_signature(secret, timestamp, given, body, now=None):
    """Why a signed call is refused (words), or None when its signature and time hold."""
    if not secret:
        return "this appliance is not paired"
    if not timestamp or not given:
        return "the call is not signed"
    try:
        skew = abs((now if now is not None else time.time()) - int(timestamp))
    except ValueError:
        return "the call's timestamp is not a number"
    if skew > MAX_SKEW:
        return (f"the call's timestamp is {int(skew)} s away from this appliance's clock "
                f"(at most {MAX_SKEW} s): replayed, or the clocks differ")
    if not hmac.compare_digest(signature(secret, timestamp, body), str(given)):
        return "the call's signature is wrong (not signed with this pair's secret)"
    return None


def _post(peer_ip, name, payload, headers, pin):
    body = json.dumps(payload).encode()
    try:
        status, answer, fingerprint = transport(url_of(peer_ip, name), body,
                                                headers(body), pin)
    except FetchError as problem:
        raise PeerError(str(problem)) from None
    try:
        data = json.loads(answer or b"{}")
        if not isinstance(data, dict):
            raise ValueError
    except (ValueError, UnicodeDecodeError):
        raise PeerError(f"the peer at {peer_ip} answered {status} with something that is not "
                        "lbadmin's JSON (is it an lbadmin appliance?)") from None
    return Answer(status, data, fingerprint)


def call_unsigned(peer_ip, name, payload):
    """The pairing call: no secret and no pin yet (the peer checks the password)."""
    return _post(peer_ip, name, payload, lambda body: {"Content-Type": "application/json"},
                 None)


def call(pair, name, payload):
    """A signed call to the paired node, over its pinned certificate. Records the contact."""
    answer = _post(pair.peer_ip, name, payload,
                   lambda body: signed_headers(pair.secret, body), pair.peer_fingerprint)
    pair.last_contact = timezone.now()
    return answer
