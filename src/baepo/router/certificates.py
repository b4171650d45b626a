"""TLS certificates for the data plane: a local CA, and the certificate files HAProxy loads.

A `CertificateSource` turns hostnames into a certificate. `LocalCA` is the one used today: a
root created once with the `cryptography` package and kept in its directory

    <ca dir>/
    ├── ca.key     the root's private key (PEM, mode 0600)
    └── ca.pem     the root certificate: what a user exports (`ca_pem()`) and trusts

issuing short-lived leaf certificates (90 days, renewed 30 days before they expire). The
server does not run it itself: `SigningChild` (`signing.py`) runs it in a child process that
lives only while there is work, so that the server never loads `cryptography` for it. ACME
for public names is another `CertificateSource` (`AcmeIssuer`), and `CertificateBroker` picks
between the two per hostname set (both in `acme.py`).

A combined PEM may start with notes, lines of PEM explanatory text (RFC 7468 §5.2) that
OpenSSL, and so HAProxy, skips:

    # baepo requested: app.localhost app.example.com   the names it answers, when the leaf
                                                       names fewer (ACME can't name *.localhost)
    # baepo retry-after: 2030-01-01T00:00:00+00:00     a stand-in: issue again from then on
    # baepo names: app.localhost                       the leaf's DNS names (subjectAltName)
    # baepo not-after: 2030-03-31T00:00:00+00:00       and its expiry, both written by the issuer
                                                       from the certificate it made

With the last two, `needs_renewal` decides without parsing the certificate, so a restart does
not load `cryptography` (megabytes of memory) when no certificate is due; a PEM without them
(written by an older Baepo) is parsed. `cryptography` is imported by the functions that sign
or parse, never by importing this module.

`CertificateFiles` keeps what HAProxy reads: one combined PEM (chain + key) per certificate
in the certificate directory, and a crt-list naming them, the default certificate
(`<domain>`, `*.<domain>`) first, so a client without SNI or with an unknown name still gets it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from baepo.clock import Clock
from baepo.keyfiles import write_private
from baepo.router.errors import CertificateError

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

LEAF_LIFETIME = dt.timedelta(days=90)
RENEW_BEFORE = dt.timedelta(days=30)
CA_LIFETIME = dt.timedelta(days=3650)
DEFAULT_CERTIFICATE = "default"


@dataclass(frozen=True)
class IssuedCertificate:
    hostnames: tuple[str, ...]
    pem: str  # leaf, then chain, then private key: the combined form HAProxy loads
    not_after: dt.datetime


class CertificateSource(Protocol):
    def issue(self, hostnames: Sequence[str]) -> IssuedCertificate:
        """A certificate valid for every name in `hostnames` (wildcards allowed)."""
        ...


class CertificateAuthority(CertificateSource, Protocol):
    """A `CertificateSource` with a root certificate of its own (`LocalCA`, `SigningChild`)."""

    def ca_pem(self) -> str:
        """The root certificate (PEM), for a user to trust (browsers, curl `--cacert`)."""
        ...


class LocalCA:
    """A private certificate authority whose root lives in `directory`."""

    def __init__(self, directory: Path, clock: Clock, name: str = "Baepo local CA") -> None:
        self.directory = directory
        self._clock = clock
        self._name = name
        self._key: ec.EllipticCurvePrivateKey | None = None
        self._cert: x509.Certificate | None = None

    @property
    def ca_path(self) -> Path:
        return self.directory / "ca.pem"

    def ca_pem(self) -> str:
        """The root certificate, for a user to trust (browsers, curl `--cacert`, httpx `verify`)."""
        from cryptography.hazmat.primitives import serialization

        _, cert = self._root()
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    def issue(self, hostnames: Sequence[str]) -> IssuedCertificate:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        if not hostnames:
            raise CertificateError("a certificate needs at least one hostname")
        ca_key, ca_cert = self._root()
        now = self._clock.now()
        key = ec.generate_private_key(ec.SECP256R1())
        not_after = now + LEAF_LIFETIME
        try:
            cert = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
                .issuer_name(ca_cert.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(hours=1))
                .not_valid_after(not_after)
                .add_extension(
                    x509.SubjectAlternativeName([x509.DNSName(h) for h in hostnames]),
                    critical=False,
                )
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(_key_usage(digital_signature=True), critical=True)
                .add_extension(
                    x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
                )
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                    critical=False,
                )
                .sign(ca_key, hashes.SHA256())
            )
        except ValueError as exc:
            raise CertificateError(f"cannot issue a certificate for {hostnames}: {exc}") from exc
        pem = (
            cert.public_bytes(serialization.Encoding.PEM)
            + ca_cert.public_bytes(serialization.Encoding.PEM)
            + key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        ).decode()
        return IssuedCertificate(
            tuple(hostnames), with_leaf_notes(pem, cert), cert.not_valid_after_utc
        )

    def _root(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        if self._key is None or self._cert is None:
            self._key, self._cert = self._load() or self._create()
        return self._key, self._cert

    def _load(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        key_path = self.directory / "ca.key"
        if not key_path.exists() or not self.ca_path.exists():
            return None
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            cert = x509.load_pem_x509_certificate(self.ca_path.read_bytes())
        except (OSError, ValueError) as exc:
            raise CertificateError(f"cannot read the local CA in {self.directory}: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CertificateError(f"the local CA key in {self.directory} is not an EC key")
        return key, cert

    def _create(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = self._clock.now()
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self._name)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_private(self.directory / "ca.key", key_pem)
            write_private(self.ca_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
        except OSError as exc:
            raise CertificateError(f"cannot write the local CA to {self.directory}: {exc}") from exc
        return key, cert


class CertificateFiles:
    """The certificate directory and crt-list HAProxy loads (see the module docstring)."""

    def __init__(self, cert_dir: Path, crt_list: Path) -> None:
        self.cert_dir = cert_dir
        self.crt_list = crt_list

    def path(self, name: str) -> Path:
        return self.cert_dir / f"{name}.pem"

    def names(self) -> list[str]:
        """Certificate names in crt-list order: the default first, then the others sorted."""
        try:
            found = sorted(p.stem for p in self.cert_dir.glob("*.pem"))
        except OSError as exc:
            raise CertificateError(f"cannot list {self.cert_dir}: {exc}") from exc
        if DEFAULT_CERTIFICATE in found:
            found.remove(DEFAULT_CERTIFICATE)
            found.insert(0, DEFAULT_CERTIFICATE)
        return found

    def read(self, name: str) -> str | None:
        try:
            return self.path(name).read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CertificateError(f"cannot read certificate {name}: {exc}") from exc

    def write(self, name: str, pem: str) -> Path:
        try:
            self.cert_dir.mkdir(parents=True, exist_ok=True)
            write_private(self.path(name), pem.encode())
            self.write_crt_list()
        except OSError as exc:
            raise CertificateError(f"cannot write certificate {name}: {exc}") from exc
        return self.path(name)

    def remove(self, name: str) -> None:
        try:
            self.path(name).unlink(missing_ok=True)
            self.write_crt_list()
        except OSError as exc:
            raise CertificateError(f"cannot remove certificate {name}: {exc}") from exc

    def write_crt_list(self) -> None:
        lines = "".join(f"{self.path(n)}\n" for n in self.names())
        write_private(self.crt_list, lines.encode(), mode=0o644)


@dataclass(frozen=True)
class CertificateNotes:
    """What a combined PEM's notes say (see the module docstring)."""

    requested: tuple[str, ...] | None = None
    retry_after: dt.datetime | None = None
    names: tuple[str, ...] | None = None
    not_after: dt.datetime | None = None

    def apply(self, pem: str) -> str:
        """`pem` with these notes in front (replacing any it had)."""
        lines = []
        if self.requested is not None:
            lines.append(f"{_NOTE}requested: {' '.join(self.requested)}\n")
        if self.retry_after is not None:
            lines.append(f"{_NOTE}retry-after: {self.retry_after.isoformat()}\n")
        if self.names is not None:
            lines.append(f"{_NOTE}names: {' '.join(self.names)}\n")
        if self.not_after is not None:
            lines.append(f"{_NOTE}not-after: {self.not_after.isoformat()}\n")
        return "".join(lines) + _without_notes(pem)

    @classmethod
    def of(cls, pem: str) -> CertificateNotes:
        notes = cls()
        for line in pem.splitlines():
            if not line.startswith(_NOTE):
                break
            key, _, value = line[len(_NOTE) :].partition(":")
            if key == "requested":
                notes = replace(notes, requested=tuple(value.split()))
            elif key == "retry-after":
                notes = replace(notes, retry_after=_time(value) or _LONG_AGO)  # unreadable: now
            elif key == "names":
                notes = replace(notes, names=tuple(value.split()))
            elif key == "not-after":
                notes = replace(notes, not_after=_time(value))  # unreadable: parse the leaf
        return notes

    @property
    def leaf(self) -> Leaf | None:
        """What the leaf names and until when, if the notes say both."""
        if self.names is None or self.not_after is None:
            return None
        return Leaf(self.names, self.not_after)


@dataclass(frozen=True)
class Leaf:
    """What renewal needs to know of a certificate."""

    names: tuple[str, ...]  # its subjectAltName DNS names
    not_after: dt.datetime

    @classmethod
    def of(cls, cert: x509.Certificate) -> Leaf:
        from cryptography import x509

        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return cls((), cert.not_valid_after_utc)
        return cls(tuple(san.get_values_for_type(x509.DNSName)), cert.not_valid_after_utc)

    @classmethod
    def parse(cls, pem: str) -> Leaf | None:
        """A combined PEM's first certificate, read from the certificate itself (which loads
        `cryptography`), or None if there is no readable certificate."""
        from cryptography import x509

        try:
            return cls.of(x509.load_pem_x509_certificate(pem.encode()))
        except ValueError:
            return None


def with_leaf_notes(pem: str, cert: x509.Certificate) -> str:
    """`pem`, whose first certificate is `cert`, with notes saying what it names and until
    when (keeping the notes it had): what an issuer writes, from the certificate it made."""
    leaf = Leaf.of(cert)
    notes = replace(CertificateNotes.of(pem), names=leaf.names, not_after=leaf.not_after)
    return notes.apply(pem)


def needs_renewal(pem: str | None, hostnames: Sequence[str], now: dt.datetime) -> bool:
    """Whether a combined PEM is missing, names other hosts, expires within `RENEW_BEFORE`,
    or is a stand-in whose retry time has come."""
    if pem is None:
        return True
    notes = CertificateNotes.of(pem)
    if notes.retry_after is not None and now >= notes.retry_after:
        return True
    leaf = notes.leaf or Leaf.parse(pem)  # no notes: written by an older Baepo
    if leaf is None:
        return True
    named = set(leaf.names)
    if notes.requested is None:
        if named != set(hostnames):
            return True
    elif set(notes.requested) != set(hostnames) or not named <= set(hostnames):
        return True
    return leaf.not_after - now < RENEW_BEFORE


def _time(value: str) -> dt.datetime | None:
    """A note's time, or None if it is no ISO 8601 time with its offset."""
    try:
        found = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return found if found.tzinfo is not None else None


_NOTE = "# baepo "
_LONG_AGO = dt.datetime.min.replace(tzinfo=dt.UTC)


def _without_notes(pem: str) -> str:
    lines = pem.splitlines(keepends=True)
    while lines and lines[0].startswith(_NOTE):
        lines.pop(0)
    return "".join(lines)


def _key_usage(
    digital_signature: bool = False, key_cert_sign: bool = False, crl_sign: bool = False
) -> x509.KeyUsage:
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )
