"""Webhook deliveries already seen, so that one delivered twice runs once.

A provider sends a delivery again when it thinks the first one failed (GitLab retries by
itself; GitHub and Gitea when someone presses "Redeliver"), with the same delivery id. The
first to `claim` an id (provider, delivery id: the table's primary key, so two at once cannot
both win) runs it; a claim whose work then failed is `release`d, so that the provider's next
attempt runs. Ids are kept `DELIVERY_KEEP_S` (a week), then pruned as new ones arrive.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from baepo.clock import Clock
from baepo.pipelines.errors import PipelinesUnavailable
from baepo.pipelines.tables import DeliveryRow
from baepo.store import Database, StoreError

DELIVERY_KEEP_S = 7 * 24 * 3600.0


class Deliveries:
    def __init__(self, db: Database, clock: Clock, keep_s: float = DELIVERY_KEEP_S) -> None:
        self._db = db
        self._clock = clock
        self._keep = timedelta(seconds=keep_s)

    def claim(self, provider: str, delivery_id: str, service: str) -> bool:
        """True if this delivery is new (and now claimed); False if it was seen before."""
        now = self._clock.now()
        try:
            with self._session() as s, s.begin():
                s.add(
                    DeliveryRow(
                        provider=provider, delivery_id=delivery_id, service=service, received_at=now
                    )
                )
        except IntegrityError:
            return False
        self.prune()
        return True

    def run_of(self, provider: str, delivery_id: str) -> str | None:
        """The run a claimed delivery started (None: none yet, or not claimed)."""
        with self._session() as s:
            row = s.get(DeliveryRow, (provider, delivery_id))
            return row.run_id if row is not None else None

    def attach(self, provider: str, delivery_id: str, run_id: str) -> None:
        with self._session() as s, s.begin():
            s.execute(
                sa.update(DeliveryRow)
                .where(DeliveryRow.provider == provider, DeliveryRow.delivery_id == delivery_id)
                .values(run_id=run_id)
            )

    def release(self, provider: str, delivery_id: str) -> None:
        """Forget a claim whose work failed: the same delivery sent again will run."""
        with self._session() as s, s.begin():
            s.execute(
                sa.delete(DeliveryRow).where(
                    DeliveryRow.provider == provider, DeliveryRow.delivery_id == delivery_id
                )
            )

    def prune(self) -> None:
        """Forget deliveries older than the keeping time."""
        cutoff = self._clock.now() - self._keep
        with self._session() as s, s.begin():
            s.execute(sa.delete(DeliveryRow).where(DeliveryRow.received_at < cutoff))

    @contextmanager
    def _session(self) -> Iterator[Session]:
        try:
            with self._db.session() as s:
                yield s
        except IntegrityError:
            raise
        except (SQLAlchemyError, StoreError) as exc:
            raise PipelinesUnavailable(f"the state database cannot be used: {exc}") from exc
