"""Webhooks from GitHub, Gitea (and Forgejo) and GitLab: who sent them, and what was pushed. Pure.

How each provider proves a delivery is its own (checked in constant time over the raw body):

    github   X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>
    gitea    X-Gitea-Signature: <hex HMAC-SHA256(secret, body)>  (Forgejo: X-Forgejo-Signature)
    gitlab   X-Gitlab-Token: <the secret itself>

What a delivery is, and its id (a delivery sent again carries the same id: a replay runs once):

    github   X-GitHub-Event: push | ping | …      X-GitHub-Delivery
    gitea    X-Gitea-Event: push | …              X-Gitea-Delivery  (X-Forgejo-*)
    gitlab   X-Gitlab-Event: Push Hook | …        Idempotency-Key (kept across GitLab's
                                                  retries), else X-Gitlab-Event-UUID

A push event names the ref, the commit after the push and the repository's URLs:
`ref`, `after`, `repository.clone_url` / `html_url` (GitHub, Gitea) and `project.git_http_url`
/ `web_url` (GitLab). Only a branch pushed to a commit runs anything: a ping, a tag push, a
deleted branch (`after` all zeros) and any other event are `Ignored`, with the reason.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from baepo.pipelines.errors import InvalidWebhookPayload, WebhookRejected

PROVIDERS = ("github", "gitea", "gitlab")
MAX_DELIVERY_ID = 128
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_DELIVERY_ID = re.compile(r"[\x21-\x7e]{1,128}")
_BAD_BRANCH = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|^[-/.]|[/.]$|\.lock$")


@dataclass(frozen=True)
class PushEvent:
    provider: str
    delivery_id: str
    branch: str
    commit: str
    clone_url: str
    """The repository's http(s) clone URL as the provider names it."""
    urls: tuple[str, ...] = ()
    """Every http(s) URL the payload gives for the repository (clone and web): the service's
    source URL must be one of them (`same_repository`)."""


@dataclass(frozen=True)
class Ignored:
    """A delivery that runs nothing: a ping, a tag push, a deleted branch, another event."""

    provider: str
    delivery_id: str
    reason: str


def verify(provider: str, headers: Mapping[str, str], body: bytes, secret: str) -> None:
    """Whether the delivery was signed with `secret`; `WebhookRejected` if not. Every compare
    is constant-time; an empty secret accepts nothing."""
    found = _lower(headers)
    if not secret:
        raise WebhookRejected("no webhook secret is set")
    key = secret.encode()
    if provider == "github":
        given = found.get("x-hub-signature-256", "")
        expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    elif provider == "gitea":
        given = found.get("x-gitea-signature") or found.get("x-forgejo-signature", "")
        expected = hmac.new(key, body, hashlib.sha256).hexdigest()
    elif provider == "gitlab":
        given = found.get("x-gitlab-token", "")
        expected = secret
    else:
        raise WebhookRejected(f"unknown provider {provider!r}")
    if not given:
        raise WebhookRejected("the delivery is not signed")
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise WebhookRejected("the signature does not match")


def delivery_id(provider: str, headers: Mapping[str, str]) -> str:
    """The id the provider gives this delivery (the same when it sends it again)."""
    found = _lower(headers)
    names = {
        "github": ("x-github-delivery",),
        "gitea": ("x-gitea-delivery", "x-forgejo-delivery"),
        "gitlab": ("idempotency-key", "x-gitlab-event-uuid"),
    }.get(provider, ())
    for name in names:
        value = found.get(name, "").strip()
        if value:
            if not _DELIVERY_ID.fullmatch(value):
                raise InvalidWebhookPayload(f"{name}: not a delivery id")
            return value
    raise InvalidWebhookPayload(f"no delivery id ({', '.join(names) or 'unknown provider'})")


def read_event(provider: str, headers: Mapping[str, str], body: bytes) -> PushEvent | Ignored:
    """What a (verified) delivery asks for: a branch's new commit, or nothing and why."""
    found = _lower(headers)
    delivery = delivery_id(provider, headers)
    event = {
        "github": found.get("x-github-event", ""),
        "gitea": found.get("x-gitea-event") or found.get("x-forgejo-event", ""),
        "gitlab": found.get("x-gitlab-event", ""),
    }.get(provider, "")
    if provider == "github" and event == "ping":
        return Ignored(provider, delivery, "ping")
    if event != ("Push Hook" if provider == "gitlab" else "push"):
        return Ignored(provider, delivery, f"event {event or '(none)'!r} runs nothing")
    payload = _payload(body)
    ref = _text(payload, "ref")
    if not ref.startswith("refs/heads/"):
        return Ignored(provider, delivery, f"{ref} is not a branch")
    branch = ref.removeprefix("refs/heads/")
    if len(branch) > 255 or _BAD_BRANCH.search(branch):
        raise InvalidWebhookPayload(f"ref: {ref!r} is not a branch name")
    after = _text(payload, "after").lower()
    if payload.get("deleted") is True or (after and set(after) == {"0"}):
        return Ignored(provider, delivery, f"branch {branch} was deleted")
    if not _COMMIT.fullmatch(after):
        raise InvalidWebhookPayload(f"after: {after!r} is not a commit id")
    if provider == "gitlab":
        project = _section(payload, "project")
        repository = _section(payload, "repository")
        candidates = [
            project.get("git_http_url"),
            repository.get("git_http_url"),
            project.get("web_url"),
            repository.get("homepage"),
        ]
    else:
        repository = _section(payload, "repository")
        candidates = [repository.get("clone_url"), repository.get("html_url")]
    urls = tuple(u for u in candidates if isinstance(u, str) and _is_http(u))
    if not urls:
        raise InvalidWebhookPayload("the payload names no http(s) URL of the repository")
    return PushEvent(provider, delivery, branch, after, urls[0], urls)


def parse_push(provider: str, headers: Mapping[str, str], body: bytes) -> PushEvent | None:
    """The push to run, or None for a delivery that runs nothing (`read_event` says why)."""
    event = read_event(provider, headers, body)
    return event if isinstance(event, PushEvent) else None


def same_repository(source_url: str, urls: tuple[str, ...]) -> bool:
    """Whether the service's source URL names one of the payload's repository URLs: the same
    scheme, host, port and path, ignoring credentials, case of the host, a trailing `/` and
    `.git`."""
    wanted = _canonical(source_url)
    return wanted is not None and any(_canonical(u) == wanted for u in urls)


def _canonical(url: str) -> tuple[str, str, int | None, str] | None:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    path = parts.path.rstrip("/").removesuffix(".git").rstrip("/")
    default = {"http": 80, "https": 443}[parts.scheme.lower()]
    return (parts.scheme.lower(), parts.hostname.lower(), port or default, path)


def _is_http(url: str) -> bool:
    return _canonical(url) is not None


def _payload(body: bytes) -> dict[str, Any]:
    """The JSON body, also when the provider was set to send a form (`payload=<json>`)."""
    try:
        text = body.decode("utf-8")
        if text.startswith("payload="):
            text = parse_qs(text, strict_parsing=True)["payload"][0]
        payload = json.loads(text)
    except (ValueError, KeyError, RecursionError) as exc:
        raise InvalidWebhookPayload(f"the body is not JSON: {type(exc).__name__}") from None
    if not isinstance(payload, dict):
        raise InvalidWebhookPayload("the body is not a JSON object")
    return payload


def _text(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str):
        raise InvalidWebhookPayload(f"{key}: missing")
    return value


def _section(payload: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = payload.get(key)
    return value if isinstance(value, dict) else {}


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}
