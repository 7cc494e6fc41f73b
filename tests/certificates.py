"""Certificates and keys made for tests with `cryptography`: a small CA, a server certificate
it issued, and the faulty ones Local Configuration › Security must refuse."""

import datetime
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


def ec_key(curve=None):
    return ec.generate_private_key(curve or ec.SECP256R1())


def rsa_key(bits=2048):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def certificate(key, name, issuer_key=None, issuer_name=None, not_before=None,
                not_after=None, ca=False, addresses=("127.0.0.1",), usage=None):
    """A certificate for `key` named `name`, issued by issuer_key/issuer_name (else itself)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]) \
        if issuer_name else subject
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before or NOW - DAY)
               .not_valid_after(not_after or NOW + 30 * DAY)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(name)] + [x509.IPAddress(ipaddress.ip_address(a))
                                    for a in addresses]), critical=False)
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def pem(*certificates):
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def key_pem(key, passphrase=None):
    encryption = serialization.BestAvailableEncryption(passphrase) if passphrase \
        else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             encryption)


def server_with_chain(name="webui.example", addresses=("127.0.0.1",)):
    """(certificate file: server then intermediate, key file, server certificate)."""
    root_key, intermediate_key, server_key = ec_key(), ec_key(), ec_key()
    intermediate = certificate(intermediate_key, "Test Intermediate CA", root_key,
                               "Test Root CA", ca=True)
    server = certificate(server_key, name, intermediate_key, "Test Intermediate CA",
                         addresses=addresses, usage=[ExtendedKeyUsageOID.SERVER_AUTH])
    return pem(server, intermediate), key_pem(server_key), server


def self_signed_pair(name="webui.example", key=None, **options):
    key = key or ec_key()
    return pem(certificate(key, name, **options)), key_pem(key)
