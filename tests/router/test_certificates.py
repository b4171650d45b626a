from __future__ import annotations

from pathlib import Path

from cryptography import x509

from baepo.clock import FakeClock
from baepo.router.certificates import CertificateFiles, LocalCA, needs_renewal


def leaf_of(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificates(pem.encode())[0]


def test_the_ca_is_created_once_and_kept(tmp_path: Path) -> None:
    clock = FakeClock()
    first = LocalCA(tmp_path, clock).ca_pem()
    assert (tmp_path / "ca.key").stat().st_mode & 0o777 == 0o600
    assert LocalCA(tmp_path, clock).ca_pem() == first


def test_leaves_are_signed_by_the_ca_for_their_names(tmp_path: Path) -> None:
    ca = LocalCA(tmp_path, FakeClock())
    issued = ca.issue(["app.localhost", "www.example.com"])
    leaf = leaf_of(issued.pem)
    root = x509.load_pem_x509_certificate(ca.ca_pem().encode())
    leaf.verify_directly_issued_by(root)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["app.localhost", "www.example.com"]
    assert "PRIVATE KEY" in issued.pem  # the combined PEM HAProxy loads
    assert issued.not_after == leaf.not_valid_after_utc


def test_renewal_is_due_before_expiry_or_when_names_change(tmp_path: Path) -> None:
    clock = FakeClock()
    pem = LocalCA(tmp_path, clock).issue(["app.localhost"]).pem
    assert not needs_renewal(pem, ["app.localhost"], clock.now())
    assert needs_renewal(pem, ["app.localhost", "new.example.com"], clock.now())
    assert needs_renewal(None, ["app.localhost"], clock.now())
    clock.advance(59 * 86400)
    assert not needs_renewal(pem, ["app.localhost"], clock.now())
    clock.advance(2 * 86400)  # 61 days of 90: within the 30-day renewal window
    assert needs_renewal(pem, ["app.localhost"], clock.now())


def test_crt_list_puts_the_default_certificate_first(tmp_path: Path) -> None:
    files = CertificateFiles(tmp_path / "certs", tmp_path / "certs.list")
    for name in ("svc_b", "default", "svc_a"):
        files.write(name, f"pem of {name}")
    assert (tmp_path / "certs.list").read_text().splitlines() == [
        str(tmp_path / "certs" / f"{n}.pem") for n in ("default", "svc_a", "svc_b")
    ]
    files.remove("svc_a")
    assert files.names() == ["default", "svc_b"]
    assert files.read("svc_a") is None
