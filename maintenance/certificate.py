"""The WebUI's certificate (Local Configuration › Security): the self-signed one made at first
start, one generated later for the appliance's names, or the administrator's own, uploaded as
PEM with its chain and key.

gunicorn (appliance/gunicorn_conf.py) serves <data>/webui-cert.pem with <data>/webui-key.pem and
re-reads them for new connections and on SIGHUP, so a pair that gunicorn cannot load must never
reach those names: `check` refuses, in words, what a browser or OpenSSL would (a key that is not
the certificate's, a certificate out of its validity, a weak key, a chain out of order, a
passphrase), and `install` writes the files only after OpenSSL itself loaded the pair.

No Django here: gunicorn's configuration imports this before Django is set up.
"""

import contextlib
import datetime
import hashlib
import ipaddress
import os
import socket
import ssl
import tempfile
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERTIFICATE_NAME = "webui-cert.pem"
KEY_NAME = "webui-key.pem"
VALID_DAYS = 3650
MAX_PEM_BYTES = 64 * 1024  # a chain of a few certificates is a few KiB
RSA_MIN_BITS = 2048
# The curves browsers accept for a server's key: P-256 and stronger.
EC_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
WEAK_SIGNATURES = {"md5", "sha1"}


class CertificateRefused(ValueError):
    """Why a certificate or key cannot be served, in words; `field` is the form field it is
    about ("certificate" or "key")."""

    def __init__(self, message, field="certificate"):
        super().__init__(message)
        self.field = field


def paths(data_dir):
    return data_dir / CERTIFICATE_NAME, data_dir / KEY_NAME


def fingerprint(certificate):
    """SHA-256 of the certificate (DER), hex, as ha.peer pins it."""
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def _now():
    return datetime.datetime.now(datetime.UTC)


def _name(certificate):
    """The certificate's common name, or its whole subject when it has none."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else certificate.subject.rfc4514_string() or "(no name)"


def _when(moment):
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def self_signed(hostname, addresses=()):
    """(certificate PEM, key PEM): a new EC P-256 key and a certificate for `hostname`,
    localhost and `addresses` (IP address strings) as subject alternative names."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, hostname),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "lbadmin appliance (self-signed)"),
    ])
    alternatives = [x509.DNSName(hostname)] + ([x509.DNSName("localhost")]
                                               if hostname != "localhost" else [])
    seen = set()
    for address in ("127.0.0.1", "::1", *addresses):
        parsed = ipaddress.ip_address(address)
        if parsed not in seen:
            seen.add(parsed)
            alternatives.append(x509.IPAddress(parsed))
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def ensure_certificate(data_dir):
    """Make a self-signed certificate and key at first start (for the machine's hostname)
    unless both exist; True if made now."""
    cert_path, key_path = paths(data_dir)
    if cert_path.exists() and key_path.exists():
        return False
    install(data_dir, *self_signed(socket.gethostname()), check_first=False)
    return True


def _load_certificates(cert_pem):
    if not cert_pem.strip():
        raise CertificateRefused("Choose the certificate file (PEM).")
    if len(cert_pem) > MAX_PEM_BYTES:
        raise CertificateRefused(f"The certificate file is larger than {MAX_PEM_BYTES // 1024} "
                                 "KiB: it should hold the certificate and its chain only.")
    if b"-----BEGIN CERTIFICATE-----" not in cert_pem:
        raise CertificateRefused("This is not a PEM certificate: it holds no “-----BEGIN "
                                 "CERTIFICATE-----” block (a DER or PKCS#12 file must be "
                                 "converted to PEM first).")
    try:
        return x509.load_pem_x509_certificates(cert_pem)
    except ValueError as error:
        raise CertificateRefused(f"The certificate file cannot be read as PEM: {error}.") \
            from None


def _load_key(key_pem):
    if not key_pem.strip():
        raise CertificateRefused("Choose the private key file (PEM), or upload a certificate "
                                 "file that holds the key too.", "key")
    if len(key_pem) > MAX_PEM_BYTES:
        raise CertificateRefused("The key file is too large to be one private key.", "key")
    try:
        return serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise CertificateRefused(
            "This private key is protected by a passphrase. The WebUI must read it unattended "
            "at every start, so it needs the key without one: remove the passphrase (e.g. "
            "`openssl pkey -in key.pem -out plain-key.pem`) and upload that.", "key") from None
    except (ValueError, UnsupportedAlgorithm) as error:
        raise CertificateRefused(f"This is not a PEM private key: {error}.", "key") from None


def _key_problem(key):
    """Why the key is too weak or of a kind browsers refuse, or None."""
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < RSA_MIN_BITS:
            return (f"The key is RSA with {key.key_size} bits: too weak. Use at least "
                    f"{RSA_MIN_BITS} bits (or an EC key on P-256 or stronger).")
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name not in EC_CURVES:
            return (f"The key is EC on the curve {key.curve.name}, which browsers do not accept "
                    "for a server: use P-256, P-384 or P-521.")
        return None
    kind = {dsa.DSAPrivateKey: "DSA", ed25519.Ed25519PrivateKey: "Ed25519",
            ed448.Ed448PrivateKey: "Ed448"}
    name = next((label for cls, label in kind.items() if isinstance(key, cls)),
                type(key).__name__)
    return (f"The key is {name}, which browsers do not accept for a server: use RSA "
            f"({RSA_MIN_BITS} bits or more) or EC (P-256 or stronger).")


def _public_bytes(public_key):
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def _server_auth_problem(leaf):
    try:
        usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    if ExtendedKeyUsageOID.SERVER_AUTH in usage or \
            x509.ObjectIdentifier("2.5.29.37.0") in usage:  # anyExtendedKeyUsage
        return None
    return ("The certificate is not for a server: its Extended Key Usage does not include "
            "TLS Web Server Authentication, so browsers refuse it.")


def _chain_problem(chain):
    """Why the certificates are not leaf first, each next one the issuer of the one before."""
    for number, (issued, issuer) in enumerate(zip(chain, chain[1:], strict=False), start=1):
        try:
            issued.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            return (f"The chain is not in order: certificate {number + 1} in the file "
                    f"(“{_name(issuer)}”) did not issue certificate {number} "
                    f"(“{_name(issued)}”). Put the server's certificate first, then the "
                    "certificate that issued it, and so on towards the root.")
    return None


def _validity_problem(certificate, now, which):
    if now < certificate.not_valid_before_utc:
        return (f"{which} is not valid yet: it is valid from "
                f"{_when(certificate.not_valid_before_utc)} (now {_when(now)}).")
    if now > certificate.not_valid_after_utc:
        return (f"{which} has expired: it was valid until "
                f"{_when(certificate.not_valid_after_utc)} (now {_when(now)}).")
    return None


@dataclass
class Checked:
    """A pair that passed `check`: the certificates (leaf first) and the key, as PEM."""

    chain: list
    cert_pem: bytes
    key_pem: bytes


def check(cert_pem, key_pem=b"", now=None):
    """The certificate file (leaf first, then its chain) and the key file, checked: a Checked,
    or CertificateRefused saying why. An empty key file takes the key from the certificate
    file when it holds one."""
    now = now or _now()
    chain = _load_certificates(cert_pem)
    if not key_pem.strip() and b"PRIVATE KEY-----" in cert_pem:
        key_pem = cert_pem
    key = _load_key(key_pem)
    leaf = chain[0]
    if _public_bytes(leaf.public_key()) != _public_bytes(key.public_key()):
        raise CertificateRefused(
            f"The private key does not match the certificate “{_name(leaf)}” (the first "
            "certificate in the file must be the server's own, the one made for this key).",
            "key")
    if problem := _key_problem(key):
        raise CertificateRefused(problem, "key")
    if problem := _validity_problem(leaf, now, "The certificate"):
        raise CertificateRefused(problem)
    algorithm = leaf.signature_hash_algorithm
    if algorithm is not None and algorithm.name in WEAK_SIGNATURES:
        raise CertificateRefused(f"The certificate is signed with {algorithm.name.upper()}, "
                                 "which browsers refuse: ask its issuer for one signed with "
                                 "SHA-256 or stronger.")
    if problem := _server_auth_problem(leaf) or _chain_problem(chain):
        raise CertificateRefused(problem)
    for number, issuer in enumerate(chain[1:], start=2):
        if problem := _validity_problem(issuer, now, f"Certificate {number} in the chain "
                                                     f"(“{_name(issuer)}”)"):
            raise CertificateRefused(problem)
    certificates = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    plain_key = key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    return Checked(chain, certificates, plain_key)


def _write_private(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def install(data_dir, cert_pem, key_pem, check_first=True):
    """Put a pair in place for gunicorn: checked (`check`), loaded by OpenSSL from files
    beside the final ones, then renamed over them (the key first: every name is whole at every
    moment). Both files are 0600. Returns the Checked pair."""
    checked = check(cert_pem, key_pem) if check_first else Checked([], cert_pem, key_pem)
    cert_path, key_path = paths(data_dir)
    with tempfile.TemporaryDirectory(dir=data_dir, prefix=".webui-cert-") as staging:
        new_cert = os.path.join(staging, CERTIFICATE_NAME)
        new_key = os.path.join(staging, KEY_NAME)
        _write_private(new_cert, checked.cert_pem)
        _write_private(new_key, checked.key_pem)
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(new_cert, new_key)
        except ssl.SSLError as error:
            raise CertificateRefused(f"OpenSSL refuses this certificate and key: "
                                     f"{error.reason or error}.") from None
        os.replace(new_key, key_path)
        os.replace(new_cert, cert_path)
    return checked


@dataclass
class Description:
    subject: str
    issuer: str
    self_signed: bool
    names: list
    valid_from: datetime.datetime
    valid_until: datetime.datetime
    fingerprint: str
    key: str
    chain_length: int

    def as_text(self):
        return "\n".join([
            f"subject: {self.subject}", f"issuer: {self.issuer}"
            + (" (self-signed)" if self.self_signed else ""),
            f"names: {', '.join(self.names) or '(none)'}",
            f"valid: {_when(self.valid_from)} to {_when(self.valid_until)}",
            f"sha-256 fingerprint: {self.fingerprint}", f"key: {self.key}",
            f"certificates in the file: {self.chain_length}", ""])


def _key_words(public_key):
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA {public_key.key_size} bits"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return f"EC {EC_CURVES.get(public_key.curve.name, public_key.curve.name)}"
    return type(public_key).__name__


def describe(data_dir):
    """What the WebUI serves now (its certificate file), or None when there is none."""
    cert_path, _key_path = paths(data_dir)
    with contextlib.suppress(FileNotFoundError):
        chain = x509.load_pem_x509_certificates(cert_path.read_bytes())
        leaf = chain[0]
        try:
            alternatives = leaf.extensions.get_extension_for_class(
                x509.SubjectAlternativeName).value
            names = [str(n.value) for n in alternatives
                     if isinstance(n, x509.DNSName | x509.IPAddress)]
        except x509.ExtensionNotFound:
            names = []
        return Description(
            subject=leaf.subject.rfc4514_string(), issuer=leaf.issuer.rfc4514_string(),
            self_signed=leaf.issuer == leaf.subject, names=names,
            valid_from=leaf.not_valid_before_utc, valid_until=leaf.not_valid_after_utc,
            fingerprint=fingerprint(leaf), key=_key_words(leaf.public_key()),
            chain_length=len(chain))
    return None


def key_lines(data_dir):
    """The base64 lines of the WebUI's private key (the Support Download removes them from
    whatever it holds)."""
    _cert_path, key_path = paths(data_dir)
    try:
        text = key_path.read_text(errors="replace")
    except OSError:
        return []
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.startswith("-----")]
