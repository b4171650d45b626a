"""ACME certificates for custom domains: the pure parts, then Pebble end to end.

The integration tests run Debian's `pebble` (Let's Encrypt's test ACME server) on loopback with
a tiny DNS server of our own that sends every name to 127.0.0.1, so Pebble's http-01
validation fetches `http://<name>:<router http port>/.well-known/acme-challenge/<token>`
from the real HAProxy, which forwards it to Baepo's `ChallengeResponder`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import socket
import ssl
import stat
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from baepo.clock import FakeClock
from baepo.router import (
    AcmeIssuer,
    AcmeSettings,
    CertificateBroker,
    CertificateError,
    ChallengeResponder,
    HAProxyRouter,
    IssuedCertificate,
    LocalCA,
    RouterSettings,
)
from baepo.router.acme import is_local, split_hostnames
from baepo.router.certificates import CertificateNotes, Leaf, needs_renewal
from baepo.router.configuration import render_config
from baepo.router.table import RoutingTable
from tests.components import missing
from tests.router.backends import Backend
from tests.router.conftest import HAPROXY, free_port
from tests.router.routes import add_server, ensure_service

PEBBLE = "/usr/bin/pebble"


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- which authority answers which names -----------------------------------------------


@pytest.mark.parametrize(
    ("hostname", "local"),
    [
        ("localhost", True),
        ("app.localhost", True),
        ("*.localhost", True),
        ("APP.Baepo.Test.", True),
        ("baepo.test", True),
        ("a.b.baepo.test", True),
        ("app.example.com", False),
        ("notbaepo.test", False),
        ("*.example.com", False),
    ],
)
def test_names_under_local_domains_are_local(hostname: str, local: bool) -> None:
    assert is_local(hostname, ["baepo.test"]) is local


def test_split_keeps_order() -> None:
    names = ["app.baepo.test", "www.example.com", "app.localhost", "example.com"]
    assert split_hostnames(names, ["baepo.test"]) == (
        ("app.baepo.test", "app.localhost"),
        ("www.example.com", "example.com"),
    )


class FakeSource:
    """A `CertificateSource` that records requests and signs with a local CA (or fails)."""

    def __init__(self, ca: LocalCA, error: str | None = None) -> None:
        self.ca = ca
        self.error = error
        self.requests: list[tuple[str, ...]] = []

    def issue(self, hostnames: Sequence[str]) -> IssuedCertificate:
        self.requests.append(tuple(hostnames))
        if self.error:
            raise CertificateError(self.error)
        return self.ca.issue(hostnames)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(now())


@pytest.fixture
def local(tmp_path: Path, clock: FakeClock) -> FakeSource:
    return FakeSource(LocalCA(tmp_path / "local", clock))


def sans(pem: str) -> set[str]:
    return sans_of(x509.load_pem_x509_certificate(pem.encode()))


def sans_of(cert: x509.Certificate) -> set[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(ext.get_values_for_type(x509.DNSName))


def assert_notes_agree(pem: str) -> None:
    """The notes an issuer wrote say what the certificate itself says."""
    leaf = Leaf.parse(pem)
    assert leaf is not None and CertificateNotes.of(pem).leaf == leaf
    cert = x509.load_pem_x509_certificate(pem.encode())
    assert set(leaf.names) == sans_of(cert)
    assert leaf.not_after == cert.not_valid_after_utc


def test_broker_without_acme_signs_everything_locally(local: FakeSource, clock: FakeClock) -> None:
    broker = CertificateBroker(local, ["baepo.test"], clock)
    issued = broker.issue(["app.baepo.test", "www.example.com"])
    assert local.requests == [("app.baepo.test", "www.example.com")]
    assert sans(issued.pem) == {"app.baepo.test", "www.example.com"}
    assert not needs_renewal(issued.pem, ["app.baepo.test", "www.example.com"], clock.now())


def test_broker_sends_public_names_to_acme(
    tmp_path: Path, local: FakeSource, clock: FakeClock
) -> None:
    public = FakeSource(LocalCA(tmp_path / "public", clock))
    broker = CertificateBroker(local, ["baepo.test"], clock, public=public)
    assert sans(broker.issue(["a.baepo.test"]).pem) == {"a.baepo.test"}
    assert public.requests == []

    names = ["app.baepo.test", "www.example.com"]
    issued = broker.issue(names)
    assert public.requests == [("www.example.com",)]
    assert sans(issued.pem) == {"www.example.com"}
    # The router compares a certificate with the service's names: the note keeps it content.
    assert not needs_renewal(issued.pem, names, clock.now())
    assert needs_renewal(issued.pem, [*names, "new.example.com"], clock.now())
    assert CertificateNotes.of(issued.pem).requested == tuple(names)
    assert_notes_agree(issued.pem)  # kept beside the request


def test_broker_falls_back_and_retries_later(
    tmp_path: Path, local: FakeSource, clock: FakeClock
) -> None:
    public = FakeSource(LocalCA(tmp_path / "public", clock), error="challenge failed: nope")
    broker = CertificateBroker(
        local, ["baepo.test"], clock, public=public, retry_after=dt.timedelta(hours=1)
    )
    names = ["app.baepo.test", "www.example.com"]
    stand_in = broker.issue(names)
    assert sans(stand_in.pem) == set(names)  # the local CA vouches for all, meanwhile
    assert broker.failures() == {tuple(names): "challenge failed: nope"}
    assert CertificateNotes.of(stand_in.pem).retry_after == clock.now() + dt.timedelta(hours=1)
    assert_notes_agree(stand_in.pem)
    assert not needs_renewal(stand_in.pem, names, clock.now())
    clock.advance(3601)
    assert needs_renewal(stand_in.pem, names, clock.now())

    public.error = None
    broker.issue(names)
    assert broker.failures() == {}


def test_notes_round_trip_and_replace() -> None:
    at = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    pem = "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"
    noted = CertificateNotes(("a.example.com", "b.localhost"), at).apply(pem)
    assert noted.endswith(pem)
    assert CertificateNotes.of(noted) == CertificateNotes(("a.example.com", "b.localhost"), at)
    renoted = CertificateNotes(("c.example.com",)).apply(noted)
    assert CertificateNotes.of(renoted) == CertificateNotes(("c.example.com",), None)
    assert CertificateNotes.of(pem) == CertificateNotes()
    everything = CertificateNotes(("a.example.com",), at, ("a.example.com", "*.localhost"), at)
    assert CertificateNotes.of(everything.apply(pem)) == everything
    assert everything.leaf == Leaf(("a.example.com", "*.localhost"), at)


def test_http_redirect_lets_acme_challenges_through() -> None:
    settings = RouterSettings(state_dir=Path("/s"), acme_challenge_address="127.0.0.1:8089")
    redirect = [
        line for line in render_config(RoutingTable(), settings).splitlines() if "redirect" in line
    ]
    assert len(redirect) == 1 and redirect[0].endswith("!acme_challenge"), redirect


# --- the challenge responder and the issuer without a server ---------------------------


def test_responder_serves_key_authorizations_only() -> None:
    with ChallengeResponder() as responder:
        responder.add("tok-EN_1", "tok-EN_1.thumb")
        base = f"http://{responder.address}/.well-known/acme-challenge/"
        assert httpx.get(base + "tok-EN_1").text == "tok-EN_1.thumb"
        assert httpx.get(base + "other").status_code == 404
        assert httpx.get(f"http://{responder.address}/").status_code == 404
        responder.remove("tok-EN_1")
        assert httpx.get(base + "tok-EN_1").status_code == 404
        with pytest.raises(ValueError):
            responder.add("../etc/passwd", "x")


def test_account_key_is_created_once_and_private(tmp_path: Path) -> None:
    issuer = AcmeIssuer(
        AcmeSettings("https://127.0.0.1:1/dir", tmp_path / "acme"), ChallengeResponder()
    )
    key = issuer.account_key()
    path = tmp_path / "acme" / "account.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = AcmeIssuer(
        AcmeSettings("https://127.0.0.1:1/dir", tmp_path / "acme"), ChallengeResponder()
    )
    assert again.account_key().private_numbers() == key.private_numbers()


def test_issuer_errors_are_certificate_errors(tmp_path: Path) -> None:
    url = f"https://127.0.0.1:{free_port()}/dir"  # nothing listens there
    issuer = AcmeIssuer(AcmeSettings(url, tmp_path / "acme"), ChallengeResponder())
    with pytest.raises(CertificateError, match="unreachable"):
        issuer.issue(["app.example.com"])
    with pytest.raises(CertificateError, match="wildcard"):
        issuer.issue(["*.example.com"])


# --- Pebble, end to end -----------------------------------------------------------------


def dns_reply(query: bytes, answers: dict[str, str], default: str = "127.0.0.1") -> bytes | None:
    """The answer to one DNS query: an A record for A queries, "no data" for any other type."""
    if len(query) < 12:
        return None
    qid, flags, qdcount = struct.unpack("!3H", query[:6])
    if qdcount != 1:
        return None
    i, labels = 12, []
    while i < len(query) and query[i]:
        labels.append(query[i + 1 : i + 1 + query[i]].decode("ascii", "replace").lower())
        i += 1 + query[i]
    question = query[12 : i + 5]
    if len(question) != i + 5 - 12:
        return None
    qtype, qclass = struct.unpack("!HH", query[i + 1 : i + 5])
    answer = b""
    if qtype == 1 and qclass == 1:
        address = socket.inet_aton(answers.get(".".join(labels), default))
        answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 0, 4) + address
    reply_flags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080  # response, authoritative, RD, RA
    header = struct.pack("!6H", qid, reply_flags, 1, 1 if answer else 0, 0, 0)
    return header + question + answer


class DnsResponder:
    """A UDP DNS server on loopback for Pebble's validation authority (`answers` overrides)."""

    def __init__(self) -> None:
        self.answers: dict[str, str] = {}
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self._sock.getsockname()
        return f"{host}:{port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                query, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = dns_reply(query, dict(self.answers))
            if reply is not None:
                self._sock.sendto(reply, peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


def test_dns_reply_answers_a_with_loopback_and_aaaa_with_nothing() -> None:
    def query(name: str, qtype: int) -> bytes:
        labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
        return (
            struct.pack("!6H", 7, 0x0100, 1, 0, 0, 0)
            + labels
            + b"\0"
            + struct.pack("!HH", qtype, 1)
        )

    a = dns_reply(query("App.Example.test", 1), {"other.test": "127.0.0.2"})
    assert (
        a is not None
        and a[:2] == b"\0\7"
        and a[6:8] == b"\0\1"
        and a.endswith(bytes([127, 0, 0, 1]))
    )
    b = dns_reply(query("other.test", 1), {"other.test": "127.0.0.2"})
    assert b is not None and b.endswith(bytes([127, 0, 0, 2]))
    aaaa = dns_reply(query("app.example.test", 28), {})
    assert aaaa is not None and aaaa[6:8] == b"\0\0"


class AcmePlane:
    """Pebble, a DNS responder, a challenge responder and a started `HAProxyRouter` whose
    certificates come from a `CertificateBroker` over a local CA and Pebble."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.clock = FakeClock(now())
        self.dns = DnsResponder()
        self.responder = ChallengeResponder()
        self.responder.start()
        self.pebble: subprocess.Popen[bytes] | None = None
        self.router: HAProxyRouter | None = None
        self.local_ca = LocalCA(directory / "ca", self.clock)
        self.settings = RouterSettings(
            state_dir=directory / "router",
            domain="baepo.test",
            http_port=free_port(),
            https_port=free_port(),
            bind_address="127.0.0.1",
            acme_challenge_address=self.responder.address,
            haproxy_binary=HAPROXY,
        )

    def start(self) -> None:
        # Debian's pebble ships no test certificate for its own HTTPS: make one.
        tls_ca = LocalCA(self.directory / "pebble-tls", self.clock)
        issued = tls_ca.issue(["localhost"])
        cut = issued.pem.index("-----BEGIN PRIVATE KEY-----")
        (self.directory / "pebble-cert.pem").write_text(issued.pem[:cut])
        (self.directory / "pebble-key.pem").write_text(issued.pem[cut:])
        self.pebble_tls_ca = tls_ca.ca_path
        api, management = free_port(), free_port()
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{api}",
                "managementListenAddress": f"127.0.0.1:{management}",
                "certificate": str(self.directory / "pebble-cert.pem"),
                "privateKey": str(self.directory / "pebble-key.pem"),
                "httpPort": self.settings.http_port,
                "tlsPort": free_port(),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        }
        (self.directory / "pebble.json").write_text(json.dumps(config))
        env = {
            **os.environ,
            "PEBBLE_VA_NOSLEEP": "1",
            "PEBBLE_VA_ALWAYS_VALID": "0",
            "PEBBLE_WFE_NONCEREJECT": "0",
        }
        self.pebble_log = self.directory / "pebble.log"
        with self.pebble_log.open("wb") as log:
            self.pebble = subprocess.Popen(
                [
                    PEBBLE,
                    "-config",
                    str(self.directory / "pebble.json"),
                    "-dnsserver",
                    self.dns.address,
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.directory_url = f"https://localhost:{api}/dir"
        self.management = f"https://localhost:{management}"
        self.tls = ssl.create_default_context(cafile=str(self.pebble_tls_ca))
        wait_until(self._pebble_answers)
        self.root_pem = self._management_get("/roots/0")
        self.intermediate = x509.load_pem_x509_certificate(
            self._management_get("/intermediates/0").encode()
        )
        self.issuer = AcmeIssuer(self.acme_settings("acme"), self.responder)
        self.broker = CertificateBroker(
            self.local_ca, [self.settings.domain], self.clock, public=self.issuer
        )
        self.router = HAProxyRouter(self.settings, self.broker, self.clock)
        self.router.start()

    def acme_settings(self, state: str) -> AcmeSettings:
        return AcmeSettings(
            directory_url=self.directory_url,
            state_dir=self.directory / state,
            email="ops@example.test",
            ca_bundle=self.pebble_tls_ca,
            order_timeout_s=30,
        )

    def _pebble_answers(self) -> bool:
        assert self.pebble is not None and self.pebble.poll() is None, self.pebble_log.read_text()
        try:
            return httpx.get(self.directory_url, verify=self.tls, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def _management_get(self, path: str) -> str:
        response = httpx.get(self.management + path, verify=self.tls, timeout=10)
        response.raise_for_status()
        return response.text

    def peer_certificate(self, host: str, trust: ssl.SSLContext) -> x509.Certificate:
        """The leaf HAProxy presents for SNI `host`, after `trust` verified the chain."""
        with (
            socket.create_connection(("127.0.0.1", self.settings.https_port), timeout=10) as raw,
            trust.wrap_socket(raw, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der)

    def get(self, host: str, trust: ssl.SSLContext) -> httpx.Response:
        with httpx.Client(verify=trust, timeout=10) as client:
            return client.get(
                f"https://127.0.0.1:{self.settings.https_port}/",
                headers={"Host": host},
                extensions={"sni_hostname": host},
            )

    def close(self) -> None:
        if self.router is not None:
            self.router.stop()
        if self.pebble is not None:
            self.pebble.terminate()
            try:
                self.pebble.wait(10)
            except subprocess.TimeoutExpired:
                self.pebble.kill()
                self.pebble.wait(10)
        self.responder.stop()
        self.dns.close()


@pytest.fixture(scope="module")
def acme() -> Iterator[AcmePlane]:
    for binary in (PEBBLE, HAPROXY):
        if not shutil.which(binary):
            missing(f"{binary} is not installed")
    directory = Path(tempfile.mkdtemp(prefix="baepo-acme-", dir="/tmp"))  # short socket paths
    plane = AcmePlane(directory)
    try:
        plane.start()
        yield plane
    finally:
        plane.close()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def backend() -> Iterator[Backend]:
    b = Backend("a1")
    yield b
    b.close()


def trusting(pem: str) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=pem)


@pytest.mark.integration
def test_custom_domain_gets_a_pebble_certificate_through_haproxy(
    acme: AcmePlane, backend: Backend
) -> None:
    assert acme.router is not None
    started = time.monotonic()
    ensure_service(acme.router, "app", ["app.baepo.test", "app.example.test"])
    took = time.monotonic() - started
    add_server(acme.router, "app", "a1", backend.address)

    pebble = trusting(acme.root_pem)
    leaf = acme.peer_certificate("app.example.test", pebble)
    assert leaf.issuer == acme.intermediate.subject
    assert sans_of(leaf) == {"app.example.test"}
    assert acme.get("app.example.test", pebble).text == "a1 host=app.example.test proto=https"
    written = (acme.settings.paths.cert_dir / "svc_app_custom.pem").read_text()
    assert_notes_agree(written)
    assert x509.load_pem_x509_certificate(written.encode()) == leaf  # what HAProxy serves
    assert acme.responder.requests >= 1  # Pebble's fetch came through HAProxy's HTTP frontend

    # The service's own name keeps the local CA's wildcard certificate.
    local = trusting(acme.local_ca.ca_pem())
    assert acme.get("app.baepo.test", local).text.startswith("a1 ")
    # Renewal is content with what it has: nothing to re-issue, no ACME order.
    assert acme.router.renew_certificates() == []
    print(f"\nACME issuance through HAProxy took {took:.2f} s")


class Unpublished:
    """A `ChallengeStore` that never publishes: every challenge goes unanswered (404)."""

    def add(self, token: str, key_authorization: str) -> None:
        pass

    def remove(self, token: str) -> None:
        pass


@pytest.mark.integration
def test_unanswered_challenge_is_a_certificate_error_with_pebbles_detail(
    acme: AcmePlane,
) -> None:
    issuer = AcmeIssuer(acme.acme_settings("acme-unpublished"), Unpublished())
    with pytest.raises(CertificateError) as caught:
        issuer.issue(["lost.example.test"])
    message = str(caught.value)
    assert message.startswith("ACME challenge failed for lost.example.test: ")
    assert "404" in message, message


@pytest.mark.integration
def test_router_keeps_serving_locally_when_acme_fails_and_retries_later(
    acme: AcmePlane, backend: Backend
) -> None:
    assert acme.router is not None
    acme.dns.answers["down.example.test"] = "127.0.0.2"  # nothing listens there: refused
    ensure_service(acme.router, "down", ["down.baepo.test", "down.example.test"])
    add_server(acme.router, "down", "a1", backend.address)

    local = trusting(acme.local_ca.ca_pem())
    assert acme.get("down.example.test", local).text.startswith("a1 host=down.example.test")
    # The service's own name has its own local certificate; only the custom domain asks ACME.
    failure = acme.broker.failures()[("down.example.test",)]
    assert "down.example.test" in failure and "refused" in failure.lower(), failure
    assert acme.router.renew_certificates() == []  # not before the retry time

    del acme.dns.answers["down.example.test"]
    acme.clock.advance(2 * 3600)
    assert acme.router.renew_certificates() == ["svc_down_custom"]
    leaf = acme.peer_certificate("down.example.test", trusting(acme.root_pem))
    assert leaf.issuer == acme.intermediate.subject
    assert acme.broker.failures() == {}


@pytest.mark.integration
def test_a_restarted_issuer_uses_the_same_account(acme: AcmePlane) -> None:
    acme.issuer.issue(["first.example.test"])  # the account exists on the server
    key_before = (acme.directory / "acme" / "account.key").read_bytes()
    restarted = AcmeIssuer(acme.acme_settings("acme"), acme.responder)
    issued = restarted.issue(["again.example.test"])
    assert sans(issued.pem) == {"again.example.test"}
    assert (acme.directory / "acme" / "account.key").read_bytes() == key_before
    assert "-----BEGIN PRIVATE KEY-----" in issued.pem
    assert issued.pem.count("-----BEGIN CERTIFICATE-----") == 2  # leaf and intermediate
    assert_notes_agree(issued.pem)
    assert issued.not_after == CertificateNotes.of(issued.pem).not_after


@pytest.mark.integration
def test_an_untrusted_acme_server_is_a_clear_error(acme: AcmePlane) -> None:
    settings = dataclasses.replace(acme.acme_settings("acme-untrusted"), ca_bundle=None)
    with pytest.raises(CertificateError, match="cannot verify the ACME server"):
        AcmeIssuer(settings, acme.responder).issue(["app.example.test"])
