"""Custom domains end to end: `baepo up --acme-directory …` against Pebble, a service with
`--domain app.example.test`, and the certificate HAProxy then presents for that name.

Pebble (Debian's, Let's Encrypt's test ACME server) resolves every name through the tiny DNS
responder of tests/router/test_acme.py, which answers 127.0.0.1; its http-01 validation then
fetches `http://app.example.test:<router http port>/.well-known/acme-challenge/<token>` from
Baepo's real HAProxy, which hands it to Baepo's challenge responder.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from baepo.clock import SystemClock
from baepo.router import LocalCA
from tests.components import missing
from tests.conftest import free_port
from tests.e2e.conftest import Stack, open_stack
from tests.router.conftest import HAPROXY
from tests.router.test_acme import PEBBLE, DnsResponder, sans_of, wait_until

pytestmark = pytest.mark.integration

DOMAIN = "app.example.test"
WORDS = ("acme", "certificate", "challenge", "pebble")


class Pebble:
    """Pebble on loopback, validating http-01 challenges on `http_port` of 127.0.0.1."""

    def __init__(self, directory: Path, http_port: int, dns: DnsResponder) -> None:
        # Debian's pebble ships no certificate for its own HTTPS: make one.
        tls = LocalCA(directory / "pebble-tls", SystemClock())
        issued = tls.issue(["localhost"])
        cut = issued.pem.index("-----BEGIN PRIVATE KEY-----")
        (directory / "pebble-cert.pem").write_text(issued.pem[:cut])
        (directory / "pebble-key.pem").write_text(issued.pem[cut:])
        self.tls_ca = tls.ca_path
        api, management = free_port(), free_port()
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{api}",
                "managementListenAddress": f"127.0.0.1:{management}",
                "certificate": str(directory / "pebble-cert.pem"),
                "privateKey": str(directory / "pebble-key.pem"),
                "httpPort": http_port,
                "tlsPort": free_port(),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        }
        (directory / "pebble.json").write_text(json.dumps(config))
        self.log_path = directory / "pebble.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [PEBBLE, "-config", str(directory / "pebble.json"), "-dnsserver", dns.address],
                env={
                    **os.environ,
                    "PEBBLE_VA_NOSLEEP": "1",
                    "PEBBLE_VA_ALWAYS_VALID": "0",
                    "PEBBLE_WFE_NONCEREJECT": "0",
                },
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.directory_url = f"https://localhost:{api}/dir"
        self.management = f"https://localhost:{management}"
        self.trust = ssl.create_default_context(cafile=str(self.tls_ca))
        wait_until(self._answers)

    def _answers(self) -> bool:
        assert self.process.poll() is None, self.log_path.read_text()
        try:
            return httpx.get(self.directory_url, verify=self.trust, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def root_pem(self) -> str:
        """The root Pebble signs with (made anew each time Pebble starts)."""
        r = httpx.get(self.management + "/roots/0", verify=self.trust, timeout=10)
        r.raise_for_status()
        return r.text

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@dataclass
class AcmeStack:
    stack: Stack
    pebble: Pebble


@pytest.fixture(scope="module")
def acme_stack() -> Iterator[AcmeStack]:
    for binary in (PEBBLE, HAPROXY):
        if not shutil.which(binary):
            missing(f"{binary} is not installed")
    root = Path(tempfile.mkdtemp(prefix="baepo-domains-", dir="/tmp"))  # short socket paths
    dns = DnsResponder()
    pebble: Pebble | None = None
    try:
        http_port = free_port()
        pebble = Pebble(root, http_port, dns)
        flags = (
            "--deploy-timeout",
            "20",
            "--acme-directory",
            pebble.directory_url,
            "--acme-email",
            "ops@example.test",
            "--acme-ca-bundle",
            str(pebble.tls_ca),
            "--acme-challenge-port",
            str(free_port()),
        )
        with open_stack(root, *flags, http_port=http_port) as stack:
            yield AcmeStack(stack, pebble)
    finally:
        if pebble is not None:
            pebble.stop()
        dns.close()
        shutil.rmtree(root, ignore_errors=True)


def presented(port: int, host: str) -> x509.Certificate:
    """The leaf the router presents for SNI `host`, unverified (for the failure message)."""
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        unverified.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def get(port: int, host: str, trust: ssl.SSLContext) -> httpx.Response:
    """GET https://<host>/ at the router on 127.0.0.1, with SNI `host`, verified by `trust`."""
    with httpx.Client(verify=trust, timeout=10) as client:
        return client.get(
            f"https://127.0.0.1:{port}/",
            headers={"Host": host},
            extensions={"sni_hostname": host},
        )


def about_certificates(log: str) -> str:
    lines = [line for line in log.splitlines() if any(w in line.lower() for w in WORDS)]
    return "\n".join(lines[-15:]) or "(nothing about ACME or certificates)"


def domains_of(stack: Stack, name: str) -> list[str]:
    config = stack.describe(name)["config"]
    assert isinstance(config, dict)
    return list(config["custom_domains"])


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_a_custom_domain_gets_a_certificate_from_the_acme_server(acme_stack: AcmeStack) -> None:
    stack, pebble = acme_stack.stack, acme_stack.pebble
    port = stack.baepo.https_port
    ref = stack.push("baepo-test/hello:1", "team/domains:1")
    started = time.monotonic()
    stack.cli(
        "services",
        "create",
        "domains",
        "--image",
        ref,
        "--health-check-path",
        "/healthz",
        "--domain",
        DOMAIN,
        "--wait",
    )
    assert domains_of(stack, "domains") == [DOMAIN]

    trust = ssl.create_default_context(cadata=pebble.root_pem())
    deadline = time.monotonic() + 60
    last = ""
    while True:
        try:
            answer = get(port, DOMAIN, trust)  # verifies the chain up to Pebble's root
            if answer.status_code == 200 and "hello v1" in answer.text:
                break
            last = f"{answer.status_code} {answer.text[:200]}"
        except httpx.HTTPError as exc:
            leaf = presented(port, DOMAIN)
            last = (
                f"{exc!r}; presented: issuer {leaf.issuer.rfc4514_string()}, SANs {sans_of(leaf)}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{DOMAIN} has no Pebble certificate after 60 s: {last}\n"
                f"Baepo's log about it:\n{about_certificates(stack.baepo.log())}\n"
                f"Pebble's log:\n{pebble.log_path.read_text()[-2000:]}"
            )
        time.sleep(0.5)
    took = time.monotonic() - started
    leaf = presented(port, DOMAIN)
    assert DOMAIN in sans_of(leaf)
    print(f"\ncreate → {DOMAIN} served with Pebble's certificate in {took:.1f} s")

    # The service's own name still has a certificate of the local CA, which `baepo ca` exports.
    try:
        stack.wait_for("domains.localhost", "hello v1", timeout=20)
    except AssertionError as exc:
        own = presented(port, "domains.localhost")
        raise AssertionError(
            f"{exc}; presented: issuer {own.issuer.rfc4514_string()}, SANs {sans_of(own)}"
        ) from None


def test_more_than_five_custom_domains_are_refused(acme_stack: AcmeStack) -> None:
    stack = acme_stack.stack
    ref = stack.push("baepo-test/hello:1", "team/many:1")
    six = [arg for i in range(6) for arg in ("--domain", f"d{i}.example.test")]
    line = one_line_error(
        stack.cli("services", "create", "many", "--image", ref, *six, check=False)
    )
    assert "at most 5" in line, line
    assert "many" not in stack.cli("services", "ls", "--json").stdout

    stack.cli("services", "create", "many", "--image", ref, *six[:10], "--wait")
    line = one_line_error(stack.cli("services", "update", "many", *six, check=False))
    assert "at most 5" in line, line
    assert len(domains_of(stack, "many")) == 5
    stack.cli("services", "rm", "many", "--wait")


def test_a_custom_domain_of_another_service_is_refused(acme_stack: AcmeStack) -> None:
    stack = acme_stack.stack
    ref = stack.push("baepo-test/hello:1", "team/owner:1")
    stack.cli("services", "create", "owner", "--image", ref, "--domain", "taken.example.test")
    stack.cli("services", "create", "other", "--image", ref, "--domain", "free.example.test")
    for args in (
        ["create", "thief", "--image", ref, "--domain", "Taken.Example.Test"],
        ["update", "other", "--domain", "taken.example.test"],
    ):
        line = one_line_error(stack.cli("services", *args, check=False))
        assert "taken.example.test is already used by owner" in line, line
    assert domains_of(stack, "other") == ["free.example.test"]
    for name in ("owner", "other"):
        stack.cli("services", "rm", name, "--wait")
