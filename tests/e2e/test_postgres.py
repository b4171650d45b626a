"""`baepo up --database-url postgresql+psycopg://…`: the whole flow with its state in PostgreSQL
(the other end-to-end tests run on SQLite; the store's suites run on both)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.databases import PostgresDatabases
from tests.e2e.conftest import Stack, open_stack

pytestmark = pytest.mark.integration


@pytest.fixture
def postgres_url(postgres_databases: PostgresDatabases) -> Iterator[str]:
    """A new, empty database: `baepo up` migrates it."""
    with postgres_databases.database(migrated=False) as url:
        yield url


@pytest.fixture
def stack(tmp_path: Path, postgres_url: str) -> Iterator[Stack]:
    with open_stack(tmp_path, "--database-url", postgres_url, "--deploy-timeout", "20") as made:
        yield made


def test_push_create_and_auto_deploy_with_the_state_in_postgresql(
    stack: Stack, postgres_url: str, tmp_path: Path
) -> None:
    ref = stack.push("baepo-test/hello:1", "team/on-pg:live")
    created = stack.cli(
        *("services", "create", "on-pg", "--image", ref, "--port", "8080"),
        *("--health-check-path", "/healthz", "--wait"),
    )
    assert "SUCCEEDED" in created.stdout
    stack.wait_for("on-pg.localhost", "hello v1")
    stack.push("baepo-test/hello:2", "team/on-pg:live")  # the tracked tag moves: a deploy
    stack.wait_for("on-pg.localhost", "hello v2")
    assert stack.wait_idle("on-pg")["active_revision"] == 2

    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        tags = conn.execute(sa.text("SELECT name FROM registry_tags")).scalars().all()
        services = conn.execute(sa.text("SELECT name, status FROM control_services")).all()
    engine.dispose()
    assert tags == ["live"]
    assert [tuple(row) for row in services] == [("on-pg", "RUNNING")]
    assert not (tmp_path / "data" / "baepo.db").exists()  # nothing went to SQLite
    stack.cli("services", "rm", "on-pg", "--wait")
