from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from baepo.clock import FakeClock
from baepo.router.certificates import (
    CertificateFiles,
    CertificateNotes,
    Leaf,
    LocalCA,
    needs_renewal,
)


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


def test_a_leaf_is_written_with_notes_that_say_what_it_names_and_until_when(
    tmp_path: Path,
) -> None:
    clock = FakeClock(dt.datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC))
    issued = LocalCA(tmp_path, clock).issue(["app.localhost", "*.app.localhost"])
    notes = CertificateNotes.of(issued.pem)
    leaf = leaf_of(issued.pem)
    assert notes.leaf == Leaf(("app.localhost", "*.app.localhost"), leaf.not_valid_after_utc)
    assert notes.leaf == Leaf.parse(issued.pem)
    assert issued.not_after == leaf.not_valid_after_utc  # to the second, as the certificate
    assert issued.pem.startswith("# baepo names: app.localhost *.app.localhost\n")


# (the names asked for, days after issuance): renewal decided from the notes and from the
# certificate itself must agree.
CASES = [
    (["app.localhost"], 0),
    (["app.localhost"], 59),
    (["app.localhost"], 60),
    (["app.localhost"], 61),
    (["app.localhost"], 95),
    (["app.localhost", "www.example.com"], 0),
    (["www.example.com"], 0),
    ([], 0),
]


@pytest.mark.parametrize(("hostnames", "days"), CASES)
def test_renewal_reads_the_same_from_notes_as_from_the_certificate(
    tmp_path: Path, hostnames: list[str], days: int
) -> None:
    clock = FakeClock()
    pem = LocalCA(tmp_path, clock).issue(["app.localhost"]).pem
    older = CertificateNotes().apply(pem)  # as an older Baepo wrote it: no notes
    assert CertificateNotes.of(older) == CertificateNotes()
    clock.advance(days * 86400)
    assert needs_renewal(pem, hostnames, clock.now()) == needs_renewal(
        older, hostnames, clock.now()
    )


def test_renewal_reads_the_notes_and_parses_only_without_them(tmp_path: Path) -> None:
    clock = FakeClock()
    pem = LocalCA(tmp_path, clock).issue(["app.localhost"]).pem
    now = clock.now()
    # Notes that say otherwise than the certificate show which one was read.
    moved = CertificateNotes(names=("other.localhost",), not_after=now + dt.timedelta(days=90))
    assert not needs_renewal(moved.apply(pem), ["other.localhost"], now)
    # A note without its pair, or unreadable: the certificate is parsed.
    for notes in (
        CertificateNotes(names=("other.localhost",)),
        CertificateNotes(not_after=now + dt.timedelta(days=90)),
    ):
        assert needs_renewal(notes.apply(pem), ["other.localhost"], now)
        assert not needs_renewal(notes.apply(pem), ["app.localhost"], now)
    unreadable = pem.replace("# baepo not-after: ", "# baepo not-after: soon ")
    assert CertificateNotes.of(unreadable).not_after is None
    assert not needs_renewal(unreadable, ["app.localhost"], now)
    naive = CertificateNotes.of(pem.replace("+00:00", ""))  # no offset: not a time to trust
    assert naive.names == ("app.localhost",) and naive.not_after is None
    # No readable certificate and no notes: issue again.
    assert needs_renewal("-----BEGIN CERTIFICATE-----\nAA==\n", ["app.localhost"], now)


def test_deciding_renewal_from_notes_does_not_load_cryptography(tmp_path: Path) -> None:
    """What a restart does for every certificate: it must not load `cryptography` (megabytes
    of memory) when nothing is due."""
    pem = LocalCA(tmp_path, FakeClock()).issue(["app.localhost"]).pem
    program = (
        "import sys\n"
        "from baepo.clock import FakeClock\n"
        "from baepo.router import HAProxyRouter, LocalCA\n"
        "from baepo.router.certificates import CertificateNotes, needs_renewal\n"
        "pem, now = sys.stdin.read(), FakeClock().now()\n"
        "assert not needs_renewal(pem, ['app.localhost'], now)\n"
        "print('cryptography' in sys.modules)\n"
        "older = CertificateNotes().apply(pem)  # no notes: parsed\n"
        "assert not needs_renewal(older, ['app.localhost'], now)\n"
        "print('cryptography' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        input=pem,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.split() == ["False", "True"]
