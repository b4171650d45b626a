"""Issue 10's webhook checks against a running `baepo up`: push events sent as GitHub, Gitea and
GitLab send them, for a repository on a git server on loopback (the real `git http-backend`),
as a self-hosted Gitea on the same machine would be. Signed right: the commit is fetched,
built and deployed, and the service answers with it. Signed wrong: rejected, no run. Sent
again: acknowledged, no second run. And without `--webhook-private-sources`, a source on
loopback is refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.e2e.conftest import Stack, open_stack
from tests.e2e.test_git_push import SEED, runs
from tests.pipelines.git_server import make_repository, serving
from tests.pipelines.test_webhooks import push_payload, signed

pytestmark = pytest.mark.integration

PRIVATE = "--webhook-private-sources"
SERVICE = "hooked"
HOST = f"{SERVICE}.localhost"
PROVIDERS = ("github", "gitea", "gitlab")
DOCKERFILE = """\
FROM baepo-test/busybox:1
COPY index.html /www/index.html
EXPOSE 8080
CMD ["/bin/sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"]
"""


def page(provider: str) -> str:
    return f"webhook app via {provider}\n"


@dataclass
class World:
    stack: Stack
    secret: str
    web_url: str
    """The repository as the forge names it in a push event (cloned from `web_url.git`)."""
    commits: dict[str, str]
    """provider → the commit its push event announces (a page naming the provider)."""

    def deliver(self, provider: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(
            f"{self.stack.baepo.url}/api/v1/hooks/{provider}/{SERVICE}",
            content=body,
            headers=headers,
            timeout=60,
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A Baepo that may fetch from loopback; a git server there with one commit per provider;
    the service `hooked` with that repository as its source URL and a webhook secret."""
    root = tmp_path_factory.mktemp("webhooks")
    (root / "git").mkdir()
    ids = make_repository(
        root / "git",
        "app",
        [{"Dockerfile": DOCKERFILE, "index.html": page(PROVIDERS[0])}]
        + [{"index.html": page(provider)} for provider in PROVIDERS[1:]],
    )
    with (
        serving(root / "git") as git_url,
        open_stack(root, "--deploy-timeout", "20", PRIVATE) as stack,
    ):
        image = stack.push(SEED, f"admin/{SERVICE}:seed")
        stack.cli("services", "create", SERVICE, "--image", image, "--port", "8080")
        stack.wait_idle(SERVICE)
        web_url = f"{git_url}/smart/app"
        stack.cli("pipelines", "settings", SERVICE, "--source-url", f"{web_url}.git")
        secret = stack.cli("pipelines", "webhook-secret", SERVICE).stdout.strip()
        yield World(stack, secret, web_url, dict(zip(PROVIDERS, ids, strict=True)))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_signed_push_deploys_once_and_a_wrong_signature_nothing(
    world: World, provider: str
) -> None:
    stack, commit = world.stack, world.commits[provider]
    before = runs(stack, SERVICE)
    body = push_payload(provider, world.web_url, commit)
    headers = signed(provider, body, secret=world.secret)

    forged = world.deliver(provider, body, signed(provider, body, secret="not-the-secret"))
    assert forged.status_code == 401, forged.text
    assert forged.json()["error"]["code"] == "WEBHOOK_REJECTED"
    assert runs(stack, SERVICE) == before

    # The same delivery id signed right: a rejected delivery did not use it up.
    queued = world.deliver(provider, body, headers)
    assert queued.status_code == 202, queued.text
    assert queued.json()["status"] == "queued"
    run = queued.json()["run"]

    replayed = world.deliver(provider, body, headers)
    assert replayed.status_code == 200, replayed.text
    assert replayed.json() == {"status": "duplicate", "run": run}

    followed = stack.cli("pipelines", "logs", run, "-f", check=False)
    assert followed.returncode == 0, followed.stdout + followed.stderr
    stack.wait_for(HOST, page(provider))
    after = runs(stack, SERVICE)
    assert [r["id"] for r in after] == [run] + [r["id"] for r in before]
    assert (after[0]["status"], after[0]["commit"], after[0]["trigger"]) == (
        "SUCCEEDED",
        commit,
        provider,
    )


def test_without_the_flag_a_source_on_loopback_is_refused(world: World) -> None:
    stack = world.stack
    flags = stack.baepo.extra_args
    stack.baepo.extra_args = tuple(flag for flag in flags if flag != PRIVATE)
    stack.baepo.restart()
    try:
        before = runs(stack, SERVICE)
        body = push_payload("gitea", world.web_url, world.commits["gitea"])
        headers = signed("gitea", body, secret=world.secret)
        headers["X-Gitea-Delivery"] = str(uuid.uuid4())  # a new push, not a replay
        refused = world.deliver("gitea", body, headers)
        assert refused.status_code == 502, refused.text
        error = refused.json()["error"]
        assert error["code"] == "FETCH_FAILED"
        assert "127.0.0.1 is this machine or a private network" in error["message"]
        assert runs(stack, SERVICE) == before
    finally:
        stack.baepo.extra_args = flags
        stack.baepo.restart()
