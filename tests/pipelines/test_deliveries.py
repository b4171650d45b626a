"""Webhook deliveries already seen: the first claim of an id wins, also among many at once; a
released claim can be made again; ids are forgotten after the keeping time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from baepo.clock import FakeClock
from baepo.pipelines.deliveries import DELIVERY_KEEP_S, Deliveries
from baepo.pipelines.errors import PipelinesUnavailable
from baepo.schema import schema
from baepo.store import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    made = Database(f"sqlite:///{tmp_path / 'baepo.db'}")
    made.migrate(schema())
    yield made
    made.dispose()


def test_a_delivery_is_claimed_once_and_remembers_its_run(db: Database) -> None:
    deliveries = Deliveries(db, FakeClock())
    assert deliveries.claim("github", "d1", "app") is True
    assert deliveries.claim("github", "d1", "app") is False
    assert deliveries.claim("gitea", "d1", "app") is True  # ids are per provider
    assert deliveries.run_of("github", "d1") is None
    deliveries.attach("github", "d1", "run-7")
    assert deliveries.run_of("github", "d1") == "run-7"
    deliveries.release("github", "d1")
    assert deliveries.run_of("github", "d1") is None
    assert deliveries.claim("github", "d1", "app") is True


def test_among_many_claims_at_once_one_wins(db: Database) -> None:
    deliveries = Deliveries(db, FakeClock())
    start = threading.Barrier(8)
    won: list[bool] = []

    def claim() -> None:
        start.wait()
        won.append(deliveries.claim("gitlab", "same", "app"))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(won) == [False] * 7 + [True]


def test_ids_are_forgotten_after_the_keeping_time(db: Database) -> None:
    clock = FakeClock()
    deliveries = Deliveries(db, clock)
    deliveries.claim("github", "old", "app")
    clock.advance(DELIVERY_KEEP_S - 1)
    deliveries.claim("github", "newer", "app")  # a claim prunes what is older than a week
    assert deliveries.claim("github", "old", "app") is False
    clock.advance(2)
    deliveries.prune()
    assert deliveries.claim("github", "old", "app") is True
    assert deliveries.claim("github", "newer", "app") is False


def test_a_database_that_cannot_be_used(tmp_path: Path) -> None:
    broken = Database(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    with pytest.raises(PipelinesUnavailable):
        Deliveries(broken, FakeClock()).claim("github", "d", "app")
