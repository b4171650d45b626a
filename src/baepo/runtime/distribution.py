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
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import socket
from urllib.parse import urlencode

import httpx

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
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
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
        with httpx.Client(timeout=timeout_s, trust_env=False, follow_redirects=False) as client:
            return _ask(client, url, path, auth, ref, inside=_internal(host))
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise Unreachable(f"cannot ask {host} for {ref}: {exc}") from exc


def _ask(
    client: httpx.Client, url: str, path: str, auth: Credentials | None, ref: str, inside: bool
) -> str:
    headers = {"Accept": MANIFEST_TYPES}
    response = client.head(url, headers=headers)
    if response.status_code == 401:
        headers["Authorization"] = _authorization(client, response, path, auth, ref, inside)
        response = client.head(url, headers=headers)
    if response.status_code in (401, 403):
        raise PullFailed(f"cannot pull {ref}: unauthorized: the registry refused the credentials")
    if response.status_code == 404:
        raise ImageNotFound(f"cannot pull {ref}: manifest unknown (HTTP 404)")
    if response.status_code != 200:
        raise Unreachable(f"the registry answered HTTP {response.status_code} for {ref}")
    digest = str(response.headers.get("Docker-Content-Digest", ""))
    if digest.startswith("sha256:"):
        return digest
    body = client.get(url, headers=headers)
    if body.status_code != 200:
        raise Unreachable(f"the registry answered HTTP {body.status_code} for {ref}")
    return "sha256:" + hashlib.sha256(body.content).hexdigest()


def _authorization(
    client: httpx.Client,
    challenge: httpx.Response,
    path: str,
    auth: Credentials | None,
    ref: str,
    inside: bool,
) -> str:
    """The Authorization header the challenge asks for; `inside`: the registry itself is on
    a loopback or private address (only then may its realm be)."""
    scheme, _, rest = challenge.headers.get("WWW-Authenticate", "").partition(" ")
    basic = httpx.BasicAuth(*auth) if auth else None
    if scheme.lower() == "basic":
        if auth is None:
            raise PullFailed(f"cannot pull {ref}: unauthorized: authentication required")
        pair = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        return f"Basic {pair}"
    if scheme.lower() != "bearer":
        raise Unreachable(f"the registry asks for {scheme or 'no'} auth, which is not spoken")
    params = dict(_CHALLENGE_PARAM.findall(rest))
    realm = params.pop("realm", "")
    if not realm:
        raise Unreachable("the registry's bearer challenge names no realm")
    target = httpx.URL(realm)
    if target.scheme not in ("http", "https") or (not inside and _internal(target.host)):
        raise Unreachable("the registry's token realm points inside this network; not asked")
    query = {k: v for k, v in params.items() if k in ("service", "scope")}
    query.setdefault("scope", f"repository:{path}:pull")
    answer = client.get(f"{realm}?{urlencode(query)}", auth=basic or httpx.USE_CLIENT_DEFAULT)
    if answer.status_code in (401, 403):
        raise PullFailed(f"cannot pull {ref}: unauthorized: the registry refused the credentials")
    if answer.status_code != 200:
        raise Unreachable(f"the token realm answered HTTP {answer.status_code}")
    try:
        document = answer.json()
    except ValueError as exc:
        raise Unreachable("the token realm answered something that is not JSON") from exc
    if not isinstance(document, dict):
        raise Unreachable("the token realm answered JSON that is not an object")
    token = document.get("token") or document.get("access_token")
    if not isinstance(token, str) or not token:
        raise Unreachable("the token realm answered no token")
    return f"Bearer {token}"


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
