"""Webhook deliveries as GitHub, Gitea and GitLab send them: signed right, signed wrong, not
signed; pushes, pings, tags and deleted branches; the repository URL a service must name."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlencode

import pytest

from baepo.pipelines.errors import InvalidWebhookPayload, WebhookRejected
from baepo.pipelines.webhooks import (
    Ignored,
    PushEvent,
    delivery_id,
    parse_push,
    read_event,
    same_repository,
    verify,
)

SECRET = "s3cret-for-hooks"
COMMIT = "5d1f0b3c4e2a6f7089abcdef0123456789abcdef"
ZEROS = "0" * 40


def github_payload(ref: str = "refs/heads/main", after: str = COMMIT, **extra: Any) -> bytes:
    """The fields of GitHub's push event Baepo reads, among some it does not."""
    return json.dumps(
        {
            "ref": ref,
            "before": "1" * 40,
            "after": after,
            "created": False,
            "deleted": after == ZEROS,
            "forced": False,
            "repository": {
                "full_name": "alice/app",
                "html_url": "https://github.com/alice/app",
                "clone_url": "https://github.com/alice/app.git",
                "ssh_url": "git@github.com:alice/app.git",
            },
            "pusher": {"name": "alice"},
            "head_commit": {"id": after, "message": "change"},
            **extra,
        }
    ).encode()


def gitea_payload(ref: str = "refs/heads/main", after: str = COMMIT) -> bytes:
    return json.dumps(
        {
            "ref": ref,
            "before": "1" * 40,
            "after": after,
            "compare_url": "",
            "repository": {
                "full_name": "alice/app",
                "html_url": "http://gitea.example:3000/alice/app",
                "clone_url": "http://gitea.example:3000/alice/app.git",
                "ssh_url": "git@gitea.example:alice/app.git",
            },
        }
    ).encode()


def gitlab_payload(ref: str = "refs/heads/main", after: str = COMMIT) -> bytes:
    return json.dumps(
        {
            "object_kind": "push",
            "event_name": "push",
            "ref": ref,
            "before": "1" * 40,
            "after": after,
            "checkout_sha": None if after == ZEROS else after,
            "project": {
                "path_with_namespace": "alice/app",
                "web_url": "https://gitlab.example/alice/app",
                "git_http_url": "https://gitlab.example/alice/app.git",
                "git_ssh_url": "git@gitlab.example:alice/app.git",
            },
            "repository": {
                "homepage": "https://gitlab.example/alice/app",
                "git_http_url": "https://gitlab.example/alice/app.git",
            },
        }
    ).encode()


def signed(
    provider: str, body: bytes, secret: str = SECRET, event: str | None = None
) -> dict[str, str]:
    """The headers the provider sends with `body`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if provider == "github":
        return {
            "X-GitHub-Event": event or "push",
            "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            "X-Hub-Signature-256": f"sha256={digest}",
            "X-Hub-Signature": "sha1=ignored",
            "Content-Type": "application/json",
        }
    if provider == "gitea":
        return {
            "X-Gitea-Event": event or "push",
            "X-Gitea-Delivery": "f6266f16-1bf3-46a5-9ea4-602e06ead473",
            "X-Gitea-Signature": digest,
        }
    return {
        "X-Gitlab-Event": event or "Push Hook",
        "X-Gitlab-Token": secret,
        "X-Gitlab-Event-UUID": "13792a34-cac6-4fda-95a8-c58e00a3954e",
        "Idempotency-Key": "f5e5f430-f57b-4e6e-9fac-d9128cd7232f",
    }


PAYLOADS = {"github": github_payload, "gitea": gitea_payload, "gitlab": gitlab_payload}


def push_payload(provider: str, web_url: str, after: str, ref: str = "refs/heads/main") -> bytes:
    """A push event of `provider` whose repository is at `web_url` (cloned from `web_url.git`)."""
    body = PAYLOADS[provider](ref=ref, after=after)
    for name in (
        "https://github.com/alice/app",
        "http://gitea.example:3000/alice/app",
        "https://gitlab.example/alice/app",
    ):
        body = body.replace(name.encode(), web_url.encode())
    return body


@pytest.mark.parametrize("provider", ["github", "gitea", "gitlab"])
def test_a_push_signed_right(provider: str) -> None:
    body = PAYLOADS[provider]()
    headers = signed(provider, body)
    verify(provider, headers, body, SECRET)
    event = parse_push(provider, headers, body)
    assert isinstance(event, PushEvent)
    assert (event.provider, event.branch, event.commit) == (provider, "main", COMMIT)
    assert event.clone_url.endswith("/alice/app.git")
    assert (
        event.delivery_id
        == {
            "github": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            "gitea": "f6266f16-1bf3-46a5-9ea4-602e06ead473",
            # GitLab keeps Idempotency-Key across its retries of one delivery.
            "gitlab": "f5e5f430-f57b-4e6e-9fac-d9128cd7232f",
        }[provider]
    )


@pytest.mark.parametrize("provider", ["github", "gitea", "gitlab"])
def test_header_names_are_case_insensitive(provider: str) -> None:
    body = PAYLOADS[provider]()
    headers = {k.lower(): v for k, v in signed(provider, body).items()}
    verify(provider, headers, body, SECRET)
    assert isinstance(read_event(provider, headers, body), PushEvent)


WRONG = [
    ("other secret", "does not match"),
    ("body changed", "does not match"),
    ("no signature", "not signed"),
    ("empty secret", "no webhook secret"),
]


@pytest.mark.parametrize(
    ("provider", "change", "reason"),
    [
        (provider, change, reason)
        for provider in ("github", "gitea", "gitlab")
        for change, reason in WRONG
        # GitLab's token is the secret itself: it does not sign the body.
        if (provider, change) != ("gitlab", "body changed")
    ],
)
def test_a_delivery_signed_wrong_is_rejected(provider: str, change: str, reason: str) -> None:
    body = PAYLOADS[provider]()
    headers = signed(provider, body, secret="other" if change == "other secret" else SECRET)
    if change == "body changed":
        body = body.replace(b"main", b"mair")
    if change == "no signature":
        headers = {
            k: v
            for k, v in headers.items()
            if "signature" not in k.lower() and "token" not in k.lower()
        }
    secret = "" if change == "empty secret" else SECRET
    with pytest.raises(WebhookRejected, match=reason):
        verify(provider, headers, body, secret)


def test_a_signature_of_another_provider_does_not_count() -> None:
    body = github_payload()
    headers = signed("github", body)
    with pytest.raises(WebhookRejected, match="not signed"):
        verify("gitea", headers, body, SECRET)
    with pytest.raises(WebhookRejected, match="unknown provider"):
        verify("bitbucket", headers, body, SECRET)


def test_forgejo_headers_count_as_gitea() -> None:
    body = gitea_payload()
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-Forgejo-Event": "push",
        "X-Forgejo-Delivery": "d-1",
        "X-Forgejo-Signature": digest,
    }
    verify("gitea", headers, body, SECRET)
    event = parse_push("gitea", headers, body)
    assert event is not None and event.delivery_id == "d-1"


def test_gitlab_without_idempotency_key_uses_the_event_uuid() -> None:
    headers = signed("gitlab", b"")
    del headers["Idempotency-Key"]
    assert delivery_id("gitlab", headers) == "13792a34-cac6-4fda-95a8-c58e00a3954e"


@pytest.mark.parametrize("provider", ["github", "gitea", "gitlab"])
def test_a_delivery_without_an_id_is_invalid(provider: str) -> None:
    body = PAYLOADS[provider]()
    headers = {
        k: v
        for k, v in signed(provider, body).items()
        if not any(w in k.lower() for w in ("delivery", "uuid", "idempotency"))
    }
    with pytest.raises(InvalidWebhookPayload, match="no delivery id"):
        read_event(provider, headers, body)


@pytest.mark.parametrize(
    ("provider", "body", "event", "reason"),
    [
        ("github", b'{"zen": "Keep it logically awesome.", "hook_id": 1}', "ping", "ping"),
        ("github", github_payload(), "pull_request", "event 'pull_request' runs nothing"),
        ("github", github_payload(ref="refs/tags/v1.0"), None, "refs/tags/v1.0 is not a branch"),
        ("github", github_payload(after=ZEROS), None, "branch main was deleted"),
        ("gitea", gitea_payload(ref="refs/tags/v1"), None, "refs/tags/v1 is not a branch"),
        ("gitea", gitea_payload(after=ZEROS), None, "branch main was deleted"),
        ("gitea", gitea_payload(), "delete", "event 'delete' runs nothing"),
        ("gitlab", gitlab_payload(ref="refs/tags/v1"), "Tag Push Hook", "runs nothing"),
        ("gitlab", gitlab_payload(after=ZEROS), None, "branch main was deleted"),
        ("gitlab", gitlab_payload(), "Merge Request Hook", "runs nothing"),
    ],
)
def test_deliveries_that_run_nothing(
    provider: str, body: bytes, event: str | None, reason: str
) -> None:
    headers = signed(provider, body, event=event)
    verify(provider, headers, body, SECRET)
    found = read_event(provider, headers, body)
    assert isinstance(found, Ignored) and reason in found.reason
    assert parse_push(provider, headers, body) is None


def test_a_branch_with_slashes() -> None:
    body = github_payload(ref="refs/heads/release/1.2")
    event = parse_push("github", signed("github", body), body)
    assert event is not None and event.branch == "release/1.2"


def test_a_form_encoded_github_delivery() -> None:
    body = urlencode({"payload": github_payload().decode()}).encode()
    event = parse_push("github", signed("github", body), body)
    assert event is not None and event.commit == COMMIT


def test_a_sha256_repository_commit() -> None:
    body = github_payload(after="ab" * 32)
    event = parse_push("github", signed("github", body), body)
    assert event is not None and event.commit == "ab" * 32


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b"[" * 100_000, "not JSON"),
        (b"{}", "ref: missing"),
        (b'{"ref": "refs/heads/main"}', "after: missing"),
        (b'{"ref": "refs/heads/main", "after": "xyz"}', "after: 'xyz' is not a commit id"),
        (b'{"ref": "refs/heads/a..b", "after": "' + COMMIT.encode() + b'"}', "not a branch name"),
        (b'{"ref": "refs/heads/-x", "after": "' + COMMIT.encode() + b'"}', "not a branch name"),
        (github_payload(repository={"ssh_url": "git@x:y.git"}), r"names no http\(s\) URL"),
        (github_payload(repository={"clone_url": "file:///etc"}), r"names no http\(s\) URL"),
    ],
)
def test_a_payload_that_is_not_a_push_event(body: bytes, message: str) -> None:
    with pytest.raises(InvalidWebhookPayload, match=message):
        read_event("github", signed("github", body), body)


@pytest.mark.parametrize(
    ("source", "matches"),
    [
        ("https://github.com/alice/app.git", True),
        ("https://github.com/alice/app", True),
        ("https://GitHub.com/alice/app/", True),
        ("https://alice:token@github.com/alice/app.git", True),
        ("https://github.com:443/alice/app", True),
        ("http://github.com/alice/app", False),
        ("https://github.com/alice/app2", False),
        ("https://github.com/Alice/app", False),
        ("https://github.com.evil/alice/app", False),
        ("https://github.com:8443/alice/app", False),
        ("git@github.com:alice/app.git", False),
        ("file:///srv/alice/app.git", False),
        ("https://[::1", False),
        ("", False),
    ],
)
def test_the_source_url_must_name_the_payloads_repository(source: str, matches: bool) -> None:
    body = github_payload()
    event = parse_push("github", signed("github", body), body)
    assert event is not None
    assert same_repository(source, event.urls) is matches
