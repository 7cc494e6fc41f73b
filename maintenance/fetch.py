"""Every outbound HTTP(S) request of the appliance goes through `fetch`.

- A TOTAL deadline: one monotonic deadline for the whole request — name resolution,
  connecting, every redirect, the headers and every read of the body. Before each socket
  operation the socket's timeout is set to the time that remains, and the deadline is checked
  between reads, so a server trickling one byte every half second cannot hold it longer.
- A size cap: a body larger than `limit` bytes is refused (by its Content-Length at once,
  else as soon as limit + 1 bytes have arrived).
- Where it may go: http:// and https:// only; the host name is resolved here and every
  address it resolves to is checked (`refusal`) before connecting — to the checked address,
  so a second resolution cannot swap it — and so is every redirect, which must keep the
  scheme. Link-local (169.254.0.0/16, a cloud's metadata service; fe80::/10), multicast,
  unspecified and broadcast addresses and the appliance's own addresses are refused, and
  loopback unless LBADMIN_UPDATE_ALLOW_LOOPBACK is on.
"""

import hashlib
import hmac
import http.client
import io
import ipaddress
import socket
import ssl
import threading
import time
import urllib.parse

from django.conf import settings

from core.configuration import FLOATING, INTERFACE, VIP, holders
from core.version import __version__

MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)
CHUNK = 64 * 1024
OWN_KINDS = {INTERFACE, VIP, FLOATING}  # addresses this appliance answers on


class FetchError(Exception):
    """The request failed or was refused; the message says why, naming the URL."""


class DeadlineExceeded(FetchError):
    pass


def _ip(text):
    """An ipaddress object (an IPv4-mapped IPv6 address as the IPv4 one), or None."""
    try:
        ip = ipaddress.ip_address(str(text).split("%", 1)[0])
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def own_addresses():
    """The appliance's own addresses as configured: its interfaces, VIPs and floating IPs."""
    return {ip for ip in (_ip(holder.address) for holder in holders(kinds=OWN_KINDS)) if ip}


def refusal(address, allow_loopback=None, own=None):
    """Why an outbound request may not go to `address` (words), or None when it may."""
    ip = _ip(address)
    if ip is None:
        return f"{address} is not an IP address"
    allow_loopback = settings.UPDATE_ALLOW_LOOPBACK if allow_loopback is None \
        else allow_loopback
    if ip.is_link_local:
        return (f"{ip} is a link-local address (169.254.0.0/16, fe80::/10: e.g. a cloud's "
                "metadata service)")
    if ip.is_multicast:
        return f"{ip} is a multicast address"
    if ip.is_unspecified or (ip.version == 4 and ip in ipaddress.ip_network("0.0.0.0/8")):
        return f"{ip} is an unspecified address"
    if ip.version == 4 and ip == ipaddress.IPv4Address("255.255.255.255"):
        return f"{ip} is the broadcast address"
    if ip.is_loopback and not allow_loopback:
        return (f"{ip} is a loopback address (this appliance itself; allowed only with "
                "LBADMIN_UPDATE_ALLOW_LOOPBACK=1)")
    if ip in (own_addresses() if own is None else own):
        return f"{ip} is one of this appliance's own addresses"
    return None


def literal_addresses(host):
    """The addresses a host written as a number stands for (192.0.2.1, [2001:db8::1], also
    the old forms 2852039166 or 0xa9.254.169.254), found without asking DNS; None for a name."""
    try:
        found = socket.getaddrinfo(host.strip("[]"), None, type=socket.SOCK_STREAM,
                                   flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError):
        return None
    return sorted({info[4][0] for info in found})


def check_url(url):
    """The URL's parts (scheme, host, port) if it is http(s) with a host; else FetchError."""
    try:
        parsed = urllib.parse.urlsplit(url)
        port = parsed.port
    except ValueError:
        raise FetchError(f"{url} is not an http:// or https:// address.") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise FetchError(f"{url} is not an http:// or https:// address.")
    return parsed, port or (443 if parsed.scheme == "https" else 80)


class _Clock:
    def __init__(self, url, seconds):
        self.url, self.seconds = url, seconds
        self.end = time.monotonic() + seconds

    def remaining(self):
        left = self.end - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded(f"{self.url} did not answer completely within "
                                   f"{self.seconds:g} s (the whole request's deadline).")
        return left


def _resolve(host, port, clock):
    """getaddrinfo under the deadline (it takes no timeout: it runs in a thread)."""
    answer = {}

    def run():
        try:
            answer["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            answer["error"] = error

    thread = threading.Thread(target=run, daemon=True, name=f"resolve {host}")
    thread.start()
    thread.join(clock.remaining())
    if thread.is_alive():
        clock.remaining()
        raise DeadlineExceeded(f"{clock.url}: {host} did not resolve within "
                               f"{clock.seconds:g} s.")
    if "error" in answer:
        raise FetchError(f"{clock.url} cannot be fetched ({host} does not resolve: "
                         f"{answer['error']}).")
    return answer["infos"]


class _DeadlineReader(io.RawIOBase):
    """The socket's bytes, each read given only the time that remains."""

    def __init__(self, sock, clock):
        super().__init__()
        self.sock, self.clock = sock, clock

    def readable(self):
        return True

    def readinto(self, buffer):
        self.sock.settimeout(self.clock.remaining())
        try:
            return self.sock.recv_into(buffer)
        except TimeoutError:
            self.clock.remaining()
            raise


class _DeadlineSocket:
    """What http.client sees as its socket: sends and reads under the deadline."""

    def __init__(self, sock, clock):
        self.sock, self.clock = sock, clock

    def makefile(self, mode="rb", *args, **kwargs):
        return io.BufferedReader(_DeadlineReader(self.sock, self.clock))

    def sendall(self, data):
        self.sock.settimeout(self.clock.remaining())
        return self.sock.sendall(data)

    def close(self):
        """http.client closes its connection while the response still reads from it: the
        socket is closed by `fetch` once the response is done with."""

    def __getattr__(self, name):
        return getattr(self.sock, name)


def _connect(infos, parsed, clock, tls=None):
    """A socket to the first checked address that accepts, TLS-wrapped for https (by `tls`,
    a PinnedTLS, when given: the HA pair's calls; else with the system's CAs)."""
    problems = []
    for family, kind, proto, _name, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(clock.remaining())
            sock.connect(sockaddr)
        except DeadlineExceeded:
            sock.close()
            raise
        except OSError as error:
            sock.close()
            if isinstance(error, TimeoutError):
                clock.remaining()
            problems.append(f"{sockaddr[0]}: {error.strerror or error}")
            continue
        if parsed.scheme == "https":
            try:
                sock.settimeout(clock.remaining())
                context = tls.context() if tls else ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=parsed.hostname)
                if tls:
                    tls.check(sock.getpeercert(binary_form=True) or b"")
            except FetchError:
                sock.close()
                raise
            except ssl.SSLError as error:
                sock.close()
                raise FetchError(f"{clock.url} cannot be fetched (TLS: {error}).") from None
            except OSError:
                sock.close()
                clock.remaining()
                raise
        return sock
    raise FetchError(f"{clock.url} cannot be fetched ({'; '.join(problems)}).")


def _request(url, parsed, port, clock, allow_loopback, method="GET", body=None, headers=(),
             tls=None):
    """One request (no redirect followed): (the response, its socket)."""
    infos = _resolve(parsed.hostname, port, clock)
    own = own_addresses()
    for info in infos:
        reason = refusal(info[4][0], allow_loopback, own)
        if reason:
            raise FetchError(f"{url} is refused: {parsed.hostname} is {info[4][0]}, and "
                             f"{reason}.")
    raw = _connect(infos, parsed, clock, tls)
    kind = http.client.HTTPSConnection if parsed.scheme == "https" else \
        http.client.HTTPConnection  # never connects itself: for the Host header
    connection = kind(parsed.hostname, port)
    connection.sock = _DeadlineSocket(raw, clock)  # connected, checked, under the deadline
    try:
        path = urllib.parse.urlunsplit(("", "", parsed.path or "/", parsed.query, ""))
        connection.putrequest(method, path, skip_accept_encoding=True)
        connection.putheader("Accept-Encoding", "identity")
        connection.putheader("User-Agent", f"lbadmin/{__version__}")
        connection.putheader("Connection", "close")
        for name, value in headers:
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        return connection.getresponse(), raw
    except BaseException:
        raw.close()
        raise


def _read(response, url, limit):
    length = response.getheader("Content-Length")
    if length and length.strip().isdigit() and int(length) > limit:
        raise FetchError(f"{url} is larger than {limit} bytes ({int(length)} announced).")
    chunks, size = [], 0
    while True:
        chunk = response.read(min(CHUNK, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise FetchError(f"{url} is larger than {limit} bytes.")
    return b"".join(chunks)


def fetch(url, limit, deadline, allow_loopback=None):
    """The body at `url` (http or https only): refused beyond `limit` bytes, or when the
    whole request (redirects included) takes longer than `deadline` seconds, or when any
    address on the way is refused (see `refusal`). Raises FetchError with the reason."""
    clock = _Clock(url, deadline)
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        parsed, port = check_url(current)
        try:
            response, raw = _request(current, parsed, port, clock, allow_loopback)
            try:
                if response.status in REDIRECTS:
                    location = response.getheader("Location", "")
                    target = urllib.parse.urljoin(current, location.strip())
                    scheme = urllib.parse.urlsplit(target).scheme
                    if not location:
                        raise FetchError(f"{current} answered {response.status} without a "
                                         "Location.")
                    if scheme != parsed.scheme:
                        raise FetchError(f"{current} redirects to {target}: another scheme "
                                         f"({scheme or 'none'}:), refused.")
                    current = target
                    continue
                if response.status != 200:
                    raise FetchError(f"{current} answered {response.status} "
                                     f"{response.reason}.")
                return _read(response, current, limit)
            finally:
                response.close()
                raw.close()
        except FetchError:
            raise
        except TRANSPORT_ERRORS as error:
            raise _failed(current, "cannot be fetched", error, clock) from None
    raise FetchError(f"{url} redirects more than {MAX_REDIRECTS} times.")


TRANSPORT_ERRORS = (OSError, http.client.HTTPException, ValueError)


def _failed(url, words, error, clock):
    """The FetchError for a connection that broke; past the deadline, the clock says so."""
    clock.remaining()  # raises the deadline's own FetchError when that was the cause
    return FetchError(f"{url} {words} ({getattr(error, 'strerror', None) or error!r}).")


class PinnedTLS:
    """TLS for the HA pair's calls: the peer's WebUI certificate is self-signed, so it is not
    checked against CAs or names but against the SHA-256 fingerprint pinned at pairing.
    `pin` None (the pairing call only, authenticated by the peer's password) accepts any
    certificate and remembers its fingerprint in `seen`."""

    def __init__(self, pin=None):
        self.pin, self.seen = pin, ""

    def context(self):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the fingerprint below is the check
        return context

    def check(self, der):
        self.seen = hashlib.sha256(der).hexdigest()
        if self.pin is not None and not hmac.compare_digest(self.seen, self.pin):
            raise FetchError(f"the peer's certificate (SHA-256 {self.seen}) is not the one "
                             f"pinned at pairing ({self.pin}): refused, nothing was sent.")


def exchange(url, body, limit, deadline, headers=(), tls=None, allow_loopback=None):
    """POST `body` to `url` under the same rules as `fetch` (a total deadline, a size cap,
    refused addresses); no redirect is followed. Returns (status, response body) whatever the
    status; FetchError when no answer came."""
    clock = _Clock(url, deadline)
    parsed, port = check_url(url)
    try:
        response, raw = _request(url, parsed, port, clock, allow_loopback, "POST", body,
                                 headers, tls)
        try:
            return response.status, _read(response, url, limit)
        finally:
            response.close()
            raw.close()
    except FetchError:
        raise
    except TRANSPORT_ERRORS as error:
        raise _failed(url, "cannot be reached", error, clock) from None
