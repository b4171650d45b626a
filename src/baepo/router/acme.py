"""Certificates from an ACME server (RFC 8555) for public names, and the broker that picks.

`AcmeIssuer` is a `CertificateSource` built on the `acme` package (certbot's client library).
One `issue(hostnames)` is one order:

    account key   <state dir>/account.key (EC P-256, PEM, mode 0600), created once; the
                  account is registered (terms of service agreed, optional e-mail) on first
                  use in each process: registering a known key returns the existing account
    new order     one identifier per hostname (no wildcards: http-01 cannot prove them)
    challenges    for each pending authorization, its http-01 key authorization is published
                  in a `ChallengeStore` (the `ChallengeResponder` HAProxy forwards to) and the
                  challenge answered; the server fetches it and validates
    finalize      a CSR for a fresh EC P-256 key, polled until the order is valid (bounded by
                  `order_timeout_s`), then the chain is downloaded
    result        leaf + chain + key: the combined PEM HAProxy loads

`CertificateBroker` is the `CertificateSource` the router is given. Per hostname set:

    every name local (the configured private domains, `localhost`) → the local CA
    some public name, no ACME configured                             → the local CA, all names
    some public name, ACME configured → ACME for the public names; the local ones are served
        by the default certificate (`*.<domain>`), and a note records the full request so the
        router does not see a mismatch (see `certificates.CertificateNotes`)
    ACME fails → a local CA stand-in, noted to be retried after `retry_after` (the router's
        `renew_certificates` does it); the failure is logged and kept in `failures()`

Errors from `acme`, `josepy` and `requests` become `CertificateError` here, with what the
server said (for a failed challenge: the ACME server's problem detail).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from baepo.clock import Clock
from baepo.keyfiles import write_private
from baepo.router.certificates import (
    CertificateNotes,
    CertificateSource,
    IssuedCertificate,
    with_leaf_notes,
)
from baepo.router.challenges import ChallengeStore
from baepo.router.errors import CertificateError

if TYPE_CHECKING:
    # The ACME client (acme, josepy: 12 MB of Baepo's memory) is imported only once Baepo
    # talks to an ACME server, which most installations never do; `cryptography` only once
    # there is a key to make or a certificate to read.
    from acme import client as acme_client
    from acme import errors as acme_errors
    from acme import messages
    from cryptography.hazmat.primitives.asymmetric import ec

log = logging.getLogger(__name__)

USER_AGENT = "baepo-acme"
DEFAULT_RETRY_AFTER = dt.timedelta(hours=1)  # Let's Encrypt allows 5 failed validations/hour


@dataclass(frozen=True)
class AcmeSettings:
    """Where the ACME server is and how Baepo talks to it.

    Configuring an issuer means agreeing to the ACME server's terms of service.
    `ca_bundle` is a PEM file of roots to trust for the server's own HTTPS (a test server such
    as Pebble has its own); None trusts the system's.
    """

    directory_url: str
    state_dir: Path
    email: str | None = None
    ca_bundle: Path | None = None
    order_timeout_s: float = 60.0
    network_timeout_s: int = 30

    @property
    def account_key_path(self) -> Path:
        return self.state_dir / "account.key"


class AcmeIssuer:
    """A `CertificateSource` whose certificates an ACME server signs (see the module doc)."""

    def __init__(self, settings: AcmeSettings, challenges: ChallengeStore) -> None:
        self.settings = settings
        self._challenges = challenges
        self._client: acme_client.ClientV2 | None = None
        self._lock = threading.Lock()

    def issue(self, hostnames: Sequence[str]) -> IssuedCertificate:
        names = tuple(dict.fromkeys(hostnames))
        if not names:
            raise CertificateError("a certificate needs at least one hostname")
        wildcards = [n for n in names if n.startswith("*.")]
        if wildcards:
            raise CertificateError(
                f"ACME http-01 cannot prove wildcard names: {', '.join(wildcards)}"
            )
        with self._lock, self._boundary(names):
            return self._order(names)

    def account_key(self) -> ec.EllipticCurvePrivateKey:
        """The account's key, created (0600) on first use."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        path = self.settings.account_key_path
        try:
            if path.exists():
                key = serialization.load_pem_private_key(path.read_bytes(), password=None)
                if not isinstance(key, ec.EllipticCurvePrivateKey):
                    raise CertificateError(f"the ACME account key {path} is not an EC key")
                return key
            key = ec.generate_private_key(ec.SECP256R1())
            path.parent.mkdir(parents=True, exist_ok=True)
            write_private(path, _key_pem(key))
            return key
        except (OSError, ValueError) as exc:
            raise CertificateError(
                f"cannot read or create the ACME account key {path}: {exc}"
            ) from exc

    # --- one order ----------------------------------------------------------------------

    def _order(self, names: tuple[str, ...]) -> IssuedCertificate:
        from acme import crypto_util, messages
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric import ec

        client = self._account()
        key = ec.generate_private_key(ec.SECP256R1())
        key_pem = _key_pem(key)
        order = client.new_order(crypto_util.make_csr(key_pem, list(names)))
        published: list[str] = []
        try:
            for authz in order.authorizations:
                if authz.body.status == messages.STATUS_VALID:
                    continue  # proved recently; the server reuses the authorization
                challenge = _http01(authz)
                response, validation = challenge.response_and_validation(client.net.key)
                token = challenge.chall.encode("token")
                self._challenges.add(token, validation)
                published.append(token)
                client.answer_challenge(challenge, response)
            deadline = dt.datetime.now() + dt.timedelta(seconds=self.settings.order_timeout_s)
            order = client.poll_and_finalize(order, deadline)
        finally:
            for token in published:
                self._challenges.remove(token)
        chain = order.fullchain_pem
        if not chain:
            raise CertificateError(f"the ACME server sent no certificate for {', '.join(names)}")
        leaf = x509.load_pem_x509_certificate(chain.encode())
        pem = (chain if chain.endswith("\n") else chain + "\n") + key_pem.decode()
        return IssuedCertificate(names, with_leaf_notes(pem, leaf), leaf.not_valid_after_utc)

    def _account(self) -> acme_client.ClientV2:
        from acme import client as acme_client
        from acme import errors as acme_errors
        from acme import messages
        from josepy.jwa import ES256
        from josepy.jwk import JWKEC

        if self._client is not None:
            return self._client
        key = JWKEC(key=self.account_key())
        net = acme_client.ClientNetwork(
            key,
            alg=ES256,
            user_agent=USER_AGENT,
            timeout=self.settings.network_timeout_s,
        )
        if self.settings.ca_bundle is not None:
            bundle = str(self.settings.ca_bundle)
            net.verify_ssl = bundle  # type: ignore[assignment]  # acme says bool; requests takes a path
        directory = acme_client.ClientV2.get_directory(self.settings.directory_url, net)
        client = acme_client.ClientV2(directory, net)
        registration = messages.NewRegistration.from_data(
            email=self.settings.email, terms_of_service_agreed=True
        )
        try:
            client.new_account(registration)
        except acme_errors.ConflictError as exc:  # this key has an account already
            net.account = messages.RegistrationResource(
                body=messages.Registration(), uri=exc.location
            )
        self._client = client
        return client

    @contextmanager
    def _boundary(self, names: tuple[str, ...]) -> Iterator[None]:
        """Map foreign errors to `CertificateError`; forget the client after any failure (a
        restarted server no longer knows the account)."""
        import josepy
        import requests
        from acme import errors as acme_errors
        from acme import messages

        what = ", ".join(names)
        url = self.settings.directory_url
        try:
            yield
        except CertificateError:
            self._client = None
            raise
        except acme_errors.ValidationError as exc:
            self._client = None
            raise CertificateError(
                f"ACME challenge failed for {what}: {_validation_detail(exc)}"
            ) from exc
        except acme_errors.IssuanceError as exc:
            self._client = None
            raise CertificateError(f"ACME order for {what} is invalid: {exc.error}") from exc
        except acme_errors.TimeoutError as exc:
            self._client = None
            raise CertificateError(
                f"ACME order for {what} not finished within {self.settings.order_timeout_s:g} s"
            ) from exc
        except messages.Error as exc:
            self._client = None
            raise CertificateError(
                f"ACME server {url} refused the order for {what}: {exc}"
            ) from exc
        except requests.exceptions.SSLError as exc:
            self._client = None
            raise CertificateError(
                f"cannot verify the ACME server {url}'s TLS certificate (set a CA bundle?): {exc}"
            ) from exc
        except requests.exceptions.RequestException as exc:
            self._client = None
            raise CertificateError(f"ACME server {url} unreachable: {exc}") from exc
        except (acme_errors.Error, josepy.errors.Error) as exc:
            self._client = None
            raise CertificateError(
                f"unexpected answer from ACME server {url} for {what}: {exc}"
            ) from exc


class CertificateBroker:
    """A `CertificateSource` that sends each hostname set to the right authority (module doc)."""

    def __init__(
        self,
        local: CertificateSource,
        local_domains: Sequence[str],
        clock: Clock,
        public: CertificateSource | None = None,
        retry_after: dt.timedelta = DEFAULT_RETRY_AFTER,
    ) -> None:
        self._local = local
        self._local_domains = tuple(d.lower().strip(".") for d in local_domains)
        self._clock = clock
        self._public = public
        self._retry_after = retry_after
        self._failures: dict[tuple[str, ...], str] = {}
        self._lock = threading.Lock()

    def issue(self, hostnames: Sequence[str]) -> IssuedCertificate:
        requested = tuple(hostnames)
        local, public = split_hostnames(requested, self._local_domains)
        if not public or self._public is None:
            return self._local.issue(requested)
        try:
            issued = self._public.issue(public)
        except CertificateError as exc:
            log.warning("%s; serving a local CA certificate meanwhile", exc)
            with self._lock:
                self._failures[requested] = str(exc)
            stand_in = self._local.issue(requested)
            notes = replace(
                CertificateNotes.of(stand_in.pem),
                requested=requested,
                retry_after=self._clock.now() + self._retry_after,
            )
            return IssuedCertificate(requested, notes.apply(stand_in.pem), stand_in.not_after)
        with self._lock:
            self._failures.pop(requested, None)
        if not local:
            return issued
        # The leaf names only the public names; the note keeps the router from re-issuing.
        pem = replace(CertificateNotes.of(issued.pem), requested=requested).apply(issued.pem)
        return IssuedCertificate(requested, pem, issued.not_after)

    def failures(self) -> dict[tuple[str, ...], str]:
        """Hostname sets whose last ACME attempt failed, with why (for status pages and logs)."""
        with self._lock:
            return dict(self._failures)


def split_hostnames(
    hostnames: Sequence[str], local_domains: Sequence[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(local names, public names), in the order given."""
    local = tuple(h for h in hostnames if is_local(h, local_domains))
    return local, tuple(h for h in hostnames if h not in local)


def is_local(hostname: str, local_domains: Sequence[str]) -> bool:
    """Whether only the local CA can vouch for `hostname`: under `localhost` or a local domain."""
    name = hostname.lower().rstrip(".")
    name = name.removeprefix("*.")
    for domain in ("localhost", *local_domains):
        domain = domain.lower().strip(".")
        if name == domain or name.endswith("." + domain):
            return True
    return False


def _http01(authz: messages.AuthorizationResource) -> messages.ChallengeBody:
    from acme import challenges as acme_challenges

    for challenge in authz.body.challenges:
        if isinstance(challenge.chall, acme_challenges.HTTP01):
            return challenge
    name = authz.body.identifier.value
    raise CertificateError(f"the ACME server offers no http-01 challenge for {name}")


def _validation_detail(exc: acme_errors.ValidationError) -> str:
    details = []
    for authz in exc.failed_authzrs:
        for challenge in authz.body.challenges:
            if challenge.error is not None:
                error = challenge.error
                detail = error.detail or error.description or error.typ
                details.append(f"{authz.body.identifier.value}: {detail}")
    return "; ".join(details) or "the server gave no detail"


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
