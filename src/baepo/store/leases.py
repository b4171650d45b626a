"""Leases: one holder at a time for a named duty, among processes sharing one database.

Several Baepo processes may share one PostgreSQL (behind a load balancer): each serves the API
and the registry, but the loops that act on the world (the reconciler, the autoscaler, the
expiries) must run in one of them only. The one holding the `control` lease runs them.

A lease is a row: its holder (an id made fresh by each process) and when it expires. `claim`
takes the lease if it is free or expired, or renews it if this holder has it, in one UPDATE
whose WHERE says so, so two claimants never both succeed: on PostgreSQL the second UPDATE
waits for the first's row lock, then finds the row no longer matches; on SQLite the database's
one writer orders them. Each takeover counts a new `term`. A holder that stops renewing loses
the lease when it expires, and `release` (a clean stop) hands it over at once.

Time is the claimants' own (an injected `Clock`): their clocks must agree to well within the
lease's length (NTP does), and a holder stops acting a margin before its lease expires
(`baepo.leadership`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column

from baepo.clock import Clock
from baepo.store.database import Base, Database, affected, reason
from baepo.store.errors import StoreUnavailable
from baepo.store.types import UtcDateTime

LEASE_S = 10.0
"""How long a claim holds the lease without being renewed."""


class LeaseRow(Base):
    __tablename__ = "store_leases"

    name: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(sa.String(128))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    term: Mapped[int] = mapped_column(sa.Integer)
    """Counts the holders it has had: a new one each takeover."""


class Lease:
    def __init__(
        self, db: Database, name: str, holder: str, clock: Clock, lease_s: float = LEASE_S
    ) -> None:
        self._db = db
        self.name = name
        self.holder = holder
        self._clock = clock
        self._length = timedelta(seconds=lease_s)

    def claim(self) -> datetime | None:
        """Take the lease, or renew it: when it expires if this holder has it now, None if
        another one does."""
        now = self._clock.now()
        until = now + self._length
        mine = LeaseRow.holder == self.holder
        take = (
            sa.update(LeaseRow)
            .where(LeaseRow.name == self.name, mine | (LeaseRow.expires_at <= now))
            .values(
                holder=self.holder,
                expires_at=until,
                term=sa.case((mine, LeaseRow.term), else_=LeaseRow.term + 1),
            )
        )
        try:
            with self._db.session() as s, s.begin():
                if affected(s.execute(take, execution_options={"synchronize_session": False})):
                    return until
                if s.get(LeaseRow, self.name) is not None:
                    return None  # another holder's, not expired
                s.add(LeaseRow(name=self.name, holder=self.holder, expires_at=until, term=1))
        except IntegrityError:
            return None  # another claimant made the row first
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"cannot claim the lease {self.name}: {reason(exc)}") from exc
        return until

    def release(self) -> None:
        """Let the lease go now, if this holder has it: the next claimant need not wait."""
        try:
            with self._db.session() as s, s.begin():
                s.execute(
                    sa.update(LeaseRow)
                    .where(LeaseRow.name == self.name, LeaseRow.holder == self.holder)
                    .values(expires_at=self._clock.now()),
                    execution_options={"synchronize_session": False},
                )
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"cannot release the lease {self.name}: {reason(exc)}") from exc

    def holder_now(self) -> tuple[str, int, datetime] | None:
        """(holder, term, expiry) as the database has them; None before the first claim."""
        try:
            with self._db.session() as s:
                row = s.get(LeaseRow, self.name)
                return None if row is None else (row.holder, row.term, row.expires_at)
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"cannot read the lease {self.name}: {reason(exc)}") from exc
