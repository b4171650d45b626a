"""A service's pipeline settings: defaults, changes checked field by field, the webhook secret
shown once and sealed at rest, and the rights of whoever asks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from baepo.clock import FakeClock
from baepo.control import SYSTEM, Caller, SecretBox, ServiceIdentity, ServiceNotFound
from baepo.pipelines.errors import InvalidPipelineSettings
from baepo.pipelines.settings import PipelineSettings, Settings, check_branch
from baepo.pipelines.tables import SettingsRow
from baepo.store import Database
from tests.pipelines.world import ALICE, BOB, Directory, database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    made = database(tmp_path)
    yield made
    made.dispose()


@pytest.fixture
def settings(db: Database) -> Settings:
    box = SecretBox(SecretBox.generate_key())
    return Settings(db=db, secrets=box, services=Directory({"app": "alice"}), clock=FakeClock())


def test_defaults_then_changes(settings: Settings) -> None:
    assert settings.get("app", caller=ALICE) == PipelineSettings("app", "main", None, False)
    changed = settings.update(
        "app", caller=ALICE, deploy_branch="release/1.x", source_url="https://git.example/a.git"
    )
    assert changed == PipelineSettings("app", "release/1.x", "https://git.example/a.git", False)
    assert settings.deploy_branch("app") == "release/1.x"
    kept = settings.update("app", caller=ALICE, source_url="")  # forgets the URL only
    assert kept == PipelineSettings("app", "release/1.x", None, False)


def test_the_webhook_secret_is_shown_once_and_sealed(settings: Settings, db: Database) -> None:
    assert settings.webhook_secret("app") is None
    secret = settings.rotate_webhook_secret("app", caller=ALICE)
    assert len(secret) >= 32 and settings.webhook_secret("app") == secret
    assert settings.get("app", caller=ALICE).has_webhook_secret
    with db.session() as s:
        stored = s.scalars(sa.select(SettingsRow.webhook_secret)).one()
    assert stored is not None and secret not in stored
    again = settings.rotate_webhook_secret("app", caller=ALICE)
    assert again != secret and settings.webhook_secret("app") == again


def test_another_callers_service_does_not_exist_for_them(settings: Settings) -> None:
    for call in (
        lambda: settings.get("app", caller=BOB),
        lambda: settings.update("app", caller=BOB, deploy_branch="x"),
        lambda: settings.rotate_webhook_secret("app", caller=BOB),
        lambda: settings.get("nope", caller=SYSTEM),
    ):
        with pytest.raises(ServiceNotFound):
            call()


@pytest.mark.parametrize(
    "branch",
    ["", "-x", "a..b", "a b", "a~1", "x.lock", "a/", "/a", "@", "a@{1}", "a:b", "a//b", "x" * 256],
)
def test_branches_git_would_refuse_are_refused(branch: str) -> None:
    with pytest.raises(InvalidPipelineSettings) as caught:
        check_branch(branch)
    assert caught.value.field == "deploy_branch"


@pytest.mark.parametrize("branch", ["main", "release/1.x", "feature/ABC-12_x", "v1.2"])
def test_branches(branch: str) -> None:
    assert check_branch(branch) == branch


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("file:///srv/git/app.git", "not an http(s) URL"),
        ("ssh://git@host/app.git", "not an http(s) URL"),
        ("https://", "not an http(s) URL"),
        ("https://user:pw@host/app.git", "carries no credentials"),
    ],
)
def test_source_urls_are_http_without_credentials(settings: Settings, url: str, words: str) -> None:
    with pytest.raises(InvalidPipelineSettings, match=re.escape(words)):
        settings.update("app", caller=ALICE, source_url=url)


def test_a_new_service_of_a_deleted_ones_name_starts_from_the_defaults(db: Database) -> None:
    """Alice's old service had a webhook secret and a source; Bob's new `app` has neither:
    Alice's secret must not start runs of Bob's service."""
    clock = FakeClock()
    directory = Directory({"app": "alice"})
    box = SecretBox(SecretBox.generate_key())
    settings = Settings(db=db, secrets=box, services=directory, clock=clock)
    settings.update("app", caller=ALICE, deploy_branch="prod", source_url="https://git.example/a")
    settings.rotate_webhook_secret("app", caller=ALICE)

    clock.advance(60)
    made = clock.now()

    class Remade(Directory):
        def identity(self, name: str, *, caller: Caller = SYSTEM) -> ServiceIdentity:
            return replace(super().identity(name, caller=caller), created_at=made)

    again = Settings(db=db, secrets=box, services=Remade({"app": "bob"}), clock=clock)
    assert again.get("app", caller=BOB) == PipelineSettings("app", "main", None, False)
    assert again.webhook_secret("app") is None
    assert again.deploy_branch("app") == "main"
    clock.advance(1)
    assert again.update("app", caller=BOB, deploy_branch="next") == PipelineSettings(
        "app", "next", None, False
    )
