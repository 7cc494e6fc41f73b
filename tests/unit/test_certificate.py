import stat

from cryptography import x509

from maintenance import certificate


def test_a_self_signed_certificate_is_made_once_and_its_key_kept_private(tmp_path):
    assert certificate.ensure_certificate(tmp_path) is True
    cert_path, key_path = certificate.paths(tmp_path)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    made = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert made.issuer == made.subject
    before = cert_path.read_bytes()
    assert certificate.ensure_certificate(tmp_path) is False
    assert cert_path.read_bytes() == before
