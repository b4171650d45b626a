"""Ask a registry what a tag points to: the manifest digest, as the registry answers it.

A revision pins the digest its registry gave for the tag, never one read back from an engine's
bookkeeping: Podman lists an image's `RepoDigests` as every name it has times every digest it
was ever stored under, so two digests can match one repository, and which comes first is not
defined. `DockerEngine.pull` asks here first, then pulls exactly `repository@digest`.

Only what that needs from the distribution spec: `HEAD /v2/<name>/manifests/<tag>` with the
manifest media types in `Accept`, answered by `Docker-Content-Digest` (or, for a registry
that omits it, a `GET` whose body is hashed); and the auth a registry asks for in its `401`
challenge: Basic, or a bearer token from the realm it names (Docker's token spec).
Loopback registries are spoken to over plain HTTP, as engines do by default; others over HTTPS.

What a registry answers must not make Baepo a probe of its own network: redirects are not
followed (a registry that redirects a manifest HEAD is pulled by tag instead), and a public
registry's token realm may not point at a loopback, private or link-local address.

Spoken with the standard library's `http.client`, one connection per request (a resolve makes
two to four), each operation bounded by the timeout and each body by `MAX_BODY_BYTES`: the
long-running server carries no HTTP client library for this. HTTPS uses the system's trust
store (`ssl.create_default_context`), as the engine that pulls next does.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import ipaddress
import json
import re
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urlencode, urlsplit, urlunsplit

from baepo.runtime.engine import Credentials, image_reference
from baepo.runtime.errors import ImageNotFound, PullFailed

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
MAX_BODY_BYTES = 4 * 1024 * 1024
"""The most read of a manifest or a token answer: distribution refuses manifests past 4 MiB."""
USER_AGENT = "baepo"
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
_DOCKER_HUB = "registry-1.docker.io"


class Unreachable(Exception):
    """The registry could not be asked (no answer, no TLS, an unexpected answer): the caller
    falls back to what the engine reports."""


def resolve(ref: str, auth: Credentials | None, timeout_s: float = 30) -> str:
    """The digest `ref`'s registry answers for its tag (`latest` if none).

    Raises `ImageNotFound` (no such repository or tag), `PullFailed` (credentials refused), or
    `Unreachable` (the registry could not be asked).
    """
    reference = image_reference(ref)
    if reference.digest:
        return reference.digest
    canonical = reference.canonical
    domain, path = canonical.domain or "docker.io", canonical.path
    host = _DOCKER_HUB if domain == "docker.io" else domain
    tag = reference.tag or "latest"
    url = f"{_scheme(host)}://{host}/v2/{path}/manifests/{tag}"
    try:
        return _ask(_Client(timeout_s), url, path, auth, ref, inside=_internal(host))
    # OSError: no route, refused, timed out, TLS; HTTPException: not HTTP, cut short;
    # ValueError: a URL or a header value http.client will not send.
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise Unreachable(f"cannot ask {host} for {ref}: {str(exc) or type(exc).__name__}") from exc


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: Message
    body: bytes
    """Read only for a `GET` answered 200."""


class _Client:
    """The requests of one resolve, each on a connection of its own; an answer is what it is
    (a redirect is not followed)."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._tls: ssl.SSLContext | None = None

    def head(self, url: str, headers: Mapping[str, str]) -> _Answer:
        return self._request("HEAD", url, headers)

    def get(self, url: str, headers: Mapping[str, str]) -> _Answer:
        return self._request("GET", url, headers)

    def _request(self, method: str, url: str, headers: Mapping[str, str]) -> _Answer:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Unreachable(f"not an http(s) URL: {url}")
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            connection = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=self._timeout_s, context=self._tls
            )
        else:
            connection = http.client.HTTPConnection(
                parts.hostname, parts.port, timeout=self._timeout_s
            )
        target = urlunsplit(("", "", parts.path or "/", parts.query, ""))
        try:
            connection.request(method, target, headers={**headers, "User-Agent": USER_AGENT})
            response = connection.getresponse()
            body = _body(response, url) if method == "GET" and response.status == 200 else b""
            return _Answer(response.status, response.headers, body)
        finally:
            connection.close()


def _body(response: http.client.HTTPResponse, url: str) -> bytes:
    """The whole body, at most `MAX_BODY_BYTES`; one cut short is not taken for whole."""
    declared = response.getheader("Content-Length", "")
    chunked = response.getheader("Transfer-Encoding") is not None
    expected = int(declared) if declared.isascii() and declared.isdigit() and not chunked else None
    too_big = Unreachable(f"{url} answered more than {MAX_BODY_BYTES // 2**20} MiB")
    if expected is not None and expected > MAX_BODY_BYTES:
        raise too_big
    body = response.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise too_big
    if expected is not None and len(body) != expected:
        raise Unreachable(f"{url} answered {len(body)} of the {expected} bytes it announced")
    return body


def _ask(
    client: _Client, url: str, path: str, auth: Credentials | None, ref: str, inside: bool
) -> str:
    headers = {"Accept": MANIFEST_TYPES}
    response = client.head(url, headers)
    if response.status == 401:
        challenge = response.headers.get("WWW-Authenticate", "")
        headers["Authorization"] = _authorization(client, challenge, path, auth, ref, inside)
        response = client.head(url, headers)
    if response.status in (401, 403):
        raise PullFailed(f"cannot pull {ref}: unauthorized: the registry refused the credentials")
    if response.status == 404:
        raise ImageNotFound(f"cannot pull {ref}: manifest unknown (HTTP 404)")
    if response.status != 200:
        raise Unreachable(f"the registry answered HTTP {response.status} for {ref}")
    digest = str(response.headers.get("Docker-Content-Digest", "")).strip()
    if _SHA256.fullmatch(digest):
        return digest
    body = client.get(url, headers)
    if body.status != 200:
        raise Unreachable(f"the registry answered HTTP {body.status} for {ref}")
    return "sha256:" + hashlib.sha256(body.body).hexdigest()


def _authorization(
    client: _Client,
    challenge: str,
    path: str,
    auth: Credentials | None,
    ref: str,
    inside: bool,
) -> str:
    """The Authorization header the challenge (a `WWW-Authenticate` value) asks for; `inside`:
    the registry itself is on a loopback or private address (only then may its realm be)."""
    scheme, _, rest = challenge.strip().partition(" ")
    basic = _basic(auth) if auth else None
    if scheme.lower() == "basic":
        if basic is None:
            raise PullFailed(f"cannot pull {ref}: unauthorized: authentication required")
        return basic
    if scheme.lower() != "bearer":
        raise Unreachable(f"the registry asks for {scheme or 'no'} auth, which is not spoken")
    params = dict(_CHALLENGE_PARAM.findall(rest))
    realm = params.pop("realm", "")
    if not realm:
        raise Unreachable("the registry's bearer challenge names no realm")
    target = urlsplit(realm)
    if target.scheme not in ("http", "https") or not target.hostname:
        raise Unreachable("the registry's token realm is not an http(s) URL; not asked")
    if not inside and _internal(target.hostname):
        raise Unreachable("the registry's token realm points inside this network; not asked")
    query = {k: v for k, v in params.items() if k in ("service", "scope")}
    query.setdefault("scope", f"repository:{path}:pull")
    joined = f"{target.query}&{urlencode(query)}" if target.query else urlencode(query)
    answer = client.get(
        urlunsplit((target.scheme, target.netloc, target.path, joined, "")),
        {"Authorization": basic} if basic else {},
    )
    if answer.status in (401, 403):
        raise PullFailed(f"cannot pull {ref}: unauthorized: the registry refused the credentials")
    if answer.status != 200:
        raise Unreachable(f"the token realm answered HTTP {answer.status}")
    try:
        document = json.loads(answer.body)
    except ValueError as exc:
        raise Unreachable("the token realm answered something that is not JSON") from exc
    if not isinstance(document, dict):
        raise Unreachable("the token realm answered JSON that is not an object")
    token = document.get("token") or document.get("access_token")
    if not isinstance(token, str) or not token:
        raise Unreachable("the token realm answered no token")
    return f"Bearer {token}"


def _basic(auth: Credentials) -> str:
    pair = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    return f"Basic {pair}"


def _scheme(host: str) -> str:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    if name == "localhost" or name.endswith(".localhost"):
        return "http"
    try:
        return "http" if ipaddress.ip_address(name).is_loopback else "https"
    except ValueError:
        return "https"


def _internal(host: str) -> bool:
    """Whether `host` (a name or an address, maybe with a port) is on loopback, a private or
    link-local network, or otherwise not a public address. A name that does not resolve is
    not: asking it fails anyway."""
    name = host
    if host.startswith("["):
        name = host[1 : host.find("]")]
    elif host.count(":") == 1:
        name = host.split(":", 1)[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not ip.is_global:
            return True
    return False
