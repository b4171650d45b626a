"""The conformance suite's client: registry auth (Docker token flow, Basic) and one
repository's routes, with the status and error-code checks the Go suite makes."""

from __future__ import annotations

import base64
import re
from collections.abc import Collection, Generator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from . import conformance_data as data

SUCCESS = frozenset(range(200, 300))
TAG = "tagtest0"


class ConformanceWarning(UserWarning):
    """Optional behaviour the Go suite only warns about (no-layer manifests, referrer filters)."""


# --- the client: auth, and one repository's routes ----------------------------------------------


class RegistryAuthError(Exception):
    """The token endpoint named by a registry's challenge did not give a token."""


_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^,\s]*))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]] | None:
    """`Bearer realm="…",service="…",scope="…"` → ("bearer", {realm, service, scope})."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _CHALLENGE_PARAM.finditer(rest)
    }
    return scheme.lower(), params


class RegistryAuth(httpx.Auth):
    """Answers a registry's 401 the way Docker clients (and the Go suite's client) do.

    Bearer: GET the challenge's realm with its service and scope, with HTTP Basic credentials when
    there are any, and retry with the `token` (or `access_token`) it returns. Basic: retry with the
    credentials. The last header that worked goes out up front; a new 401 (an expired token), or
    a 403 whose Bearer challenge says `error="insufficient_scope"` (RFC 6750: the cached token
    lacks this repository's scope), starts the exchange again.
    """

    requires_response_body = True

    def __init__(self, username: str | None = None, password: str | None = None) -> None:
        self._basic: str | None = None
        if username is not None:
            pair = f"{username}:{password or ''}".encode()
            self._basic = "Basic " + base64.b64encode(pair).decode()
        self._authorization: str | None = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._authorization is not None:
            request.headers["Authorization"] = self._authorization
        response = yield request
        challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        if challenge is None:
            return
        scheme, params = challenge
        stale_scope = (
            response.status_code == 403
            and params.get("error") == "insufficient_scope"
            and self._authorization is not None
        )
        if response.status_code != 401 and not stale_scope:
            return
        if scheme == "basic" and self._basic is not None:
            authorization = self._basic
        elif scheme == "bearer" and "realm" in params:
            token_response = yield self._token_request(params)
            authorization = "Bearer " + self._token(token_response)
        else:
            return
        self._authorization = authorization
        request.headers["Authorization"] = authorization
        yield request

    def _token_request(self, challenge: dict[str, str]) -> httpx.Request:
        query: dict[str, str | list[str]] = {"scope": challenge.get("scope", "").split()}
        if "service" in challenge:
            query["service"] = challenge["service"]
        headers = {} if self._basic is None else {"Authorization": self._basic}
        url = httpx.URL(challenge["realm"]).copy_merge_params(query)
        return httpx.Request("GET", url, headers=headers)

    @staticmethod
    def _token(response: httpx.Response) -> str:
        if response.status_code != 200:
            raise RegistryAuthError(
                f"token endpoint {response.url} answered {response.status_code}: "
                + response.text[:300]
            )
        body = response.json()
        token = body.get("token") or body.get("access_token")
        if not isinstance(token, str) or not token:
            raise RegistryAuthError(f"token endpoint {response.url} gave no token: {body!r}")
        return token


def describe(response: httpx.Response) -> str:
    request = response.request
    return f"{request.method} {request.url} -> {response.status_code}: {response.text[:400]!r}"


def _wanted(accepted: Collection[int]) -> str:
    codes = set(accepted)
    parts = []
    if codes >= SUCCESS:
        parts.append("2xx")
        codes -= SUCCESS
    return ", ".join(parts + [str(code) for code in sorted(codes)])


def expect_status(response: httpx.Response, accepted: Collection[int]) -> None:
    assert response.status_code in accepted, f"expected {_wanted(accepted)}; {describe(response)}"


def expect_error_code(response: httpx.Response, codes: Collection[str]) -> None:
    """The body is the spec's error JSON and its first code is one of `codes`."""
    try:
        errors = response.json()["errors"]
        code = errors[0]["code"]
    except (ValueError, KeyError, IndexError, TypeError):
        pytest.fail(f"not an OCI error body: {describe(response)}")
    assert code in codes, f"error code {code!r} not in {sorted(codes)}; {describe(response)}"


@dataclass
class Repository:
    """One repository of the registry under test, reached through one client."""

    client: httpx.Client
    name: str

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, f"/v2/{self.name}/{path}", **kwargs)

    def location(self, response: httpx.Response) -> str:
        """The absolute URL a response's `Location` names (it may be relative)."""
        location = response.headers.get("Location")
        assert location, f"no Location header; {describe(response)}"
        return str(response.url.join(location))

    def start_upload(self, **params: str) -> httpx.Response:
        return self.request("POST", "blobs/uploads/", params=params, content=b"")

    def upload(self, blob: data.Blob) -> httpx.Response:
        """POST a session, then PUT the whole blob with its digest (the Go suite's setup)."""
        return self.finish_upload(self.start_upload(), blob.digest, blob.content)

    def finish_upload(
        self, response: httpx.Response, digest: str, content: bytes = b""
    ) -> httpx.Response:
        """PUT the session a response points at, with the digest (and a last chunk, if any)."""
        # The Location may carry its own query (distribution's `_state`): keep it.
        url = httpx.URL(self.location(response)).copy_merge_params({"digest": digest})
        headers = {"Content-Type": data.OCTET_STREAM}
        return self.client.put(url, headers=headers, content=content)

    def put_manifest(self, manifest: data.Blob, reference: str | None = None) -> httpx.Response:
        return self.request(
            "PUT",
            f"manifests/{reference or manifest.digest}",
            headers={"Content-Type": manifest.media_type},
            content=manifest.content,
        )

    def get_manifest(self, reference: str, method: str = "GET") -> httpx.Response:
        return self.request(method, f"manifests/{reference}", headers={"Accept": data.MANIFEST_V1})

    def tags(self, **params: str | int) -> httpx.Response:
        return self.request("GET", "tags/list", params=params)

    def referrers(self, digest: str, **params: str) -> httpx.Response:
        return self.request("GET", f"referrers/{digest}", params=params)

    def push_image(self, image: data.Image, reference: str | None = None) -> httpx.Response:
        for blob in image.blobs:
            expect_status(self.upload(blob), SUCCESS)
        return self.put_manifest(image.manifest, reference)


def tag_list(response: httpx.Response) -> list[str]:
    tags = response.json().get("tags") or []
    assert isinstance(tags, list), describe(response)
    return [str(tag) for tag in tags]


def index_manifests(response: httpx.Response) -> list[dict[str, Any]]:
    expect_status(response, {200})
    content_type = response.headers.get("Content-Type")
    assert content_type == data.INDEX_V1, f"Content-Type {content_type!r}; {describe(response)}"
    manifests = response.json().get("manifests") or []
    assert isinstance(manifests, list)
    return manifests


@dataclass
class Cleanup:
    """Teardown deletes, each held to the statuses the Go suite accepts there; all are tried."""

    failures: list[str] = field(default_factory=list)

    def delete(self, repo: Repository, path: str, accepted: Collection[int]) -> None:
        response = repo.request("DELETE", path)
        if response.status_code not in accepted:
            self.failures.append(describe(response))

    def check(self) -> None:
        assert not self.failures, "teardown deletes failed:\n" + "\n".join(self.failures)
