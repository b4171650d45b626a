"""What a wrong password costs the one who sends it, and not everyone else.

A password check is scrypt on purpose (~50 ms and 16 MiB each), so a flood of wrong passwords
is a flood of CPU and memory. Two bounds keep it the attacker's problem:

- `Throttle` counts failed sign-ins per key — a client address, an account name — in a leaky
  bucket: `burst` failures are free, then one more every `1 / rate` seconds. A key over its
  bucket is refused at once, with the seconds until its next try (`Retry-After`), before any
  hashing. Successes do not empty a bucket: an attacker with an account of their own could
  otherwise reset their address between guesses. Buckets that have drained are forgotten, and
  the table never holds more than `max_keys`.
- `Hashing` lets only a few scrypt checks run at once (one per core); a check that cannot get a
  turn within `patience` seconds is refused as busy rather than queued without end.

Both are bookkeeping over an injected clock, so tests jump instead of waiting. `Throttle`
keeps its buckets in memory, for a process alone on its database (SQLite). Processes sharing
a PostgreSQL database behind one load balancer use `SharedThrottle`: the same buckets as rows
(`auth_sign_in_buckets`), so an attacker who spreads guesses over the processes gets the one
rate, not one per process. (The address a process sees may be the balancer's, whose bucket
then holds every client's failures.) `Hashing` stays each process's own: it bounds that
process's CPU and memory.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from baepo.auth.errors import AuthUnavailable
from baepo.auth.tables import SignInBucketRow
from baepo.clock import Clock
from baepo.store import Database


class SignInThrottle(Protocol):
    def wait(self, keys: Iterable[str]) -> float:
        """Seconds before any of `keys` may try again (0 when all may try now)."""
        ...

    def failed(self, keys: Iterable[str]) -> None:
        """A sign-in with `keys` failed: one more failure in each of their buckets."""
        ...


@dataclass
class _Bucket:
    level: float
    at: float


class _LeakyBuckets:
    """`burst` failures free, then one more every `1 / rate` seconds."""

    def __init__(self, clock: Clock, burst: int, rate: float) -> None:
        if burst < 1 or rate <= 0:
            raise ValueError("a throttle needs burst >= 1 and rate > 0")
        self._clock = clock
        self.burst = burst
        self.rate = rate

    def _longest_wait(self, levels: Iterable[float]) -> float:
        """Seconds until every bucket at one of these (drained) `levels` has room for one more
        failure: once its level is down to burst - 1."""
        over = max((level - (self.burst - 1) for level in levels), default=0.0)
        return over / self.rate if over > 1e-9 else 0.0


class Throttle(_LeakyBuckets):
    def __init__(
        self, clock: Clock, *, burst: int = 10, rate: float = 0.2, max_keys: int = 10_000
    ) -> None:
        super().__init__(clock, burst, rate)
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def wait(self, keys: Iterable[str]) -> float:
        """Seconds before any of `keys` may try again (0 when all may try now)."""
        now = self._clock.monotonic()
        with self._lock:
            buckets = [b for b in map(self._buckets.get, keys) if b is not None]
            return self._longest_wait(self._drained(b, now) for b in buckets)

    def failed(self, keys: Iterable[str]) -> None:
        now = self._clock.monotonic()
        with self._lock:
            for key in keys:
                bucket = self._buckets.get(key)
                if bucket is None:
                    self._make_room(now)
                    self._buckets[key] = _Bucket(1.0, now)
                else:
                    bucket.level = self._drained(bucket, now) + 1
                    bucket.at = now

    def __len__(self) -> int:
        return len(self._buckets)

    def _drained(self, bucket: _Bucket, now: float) -> float:
        return max(0.0, bucket.level - (now - bucket.at) * self.rate)

    def _make_room(self, now: float) -> None:
        if len(self._buckets) < self.max_keys:
            return
        for key in [k for k, b in self._buckets.items() if self._drained(b, now) == 0]:
            del self._buckets[key]
        while len(self._buckets) >= self.max_keys:  # still full: the longest-quiet go first
            del self._buckets[min(self._buckets, key=lambda k: self._buckets[k].at)]


class SharedThrottle(_LeakyBuckets):
    """`Throttle`'s leaky buckets as rows of the state database, dated by the wall clock, so
    that every process sharing it counts a key's failures together. A check reads its keys'
    rows; a failure updates them in one transaction (each row locked while it does). Rows
    that have drained for long are deleted, at most once a minute per process."""

    SWEEP_S = 60.0

    def __init__(self, db: Database, clock: Clock, *, burst: int = 10, rate: float = 0.2) -> None:
        super().__init__(clock, burst, rate)
        self._db = db
        self._swept = float("-inf")

    def wait(self, keys: Iterable[str]) -> float:
        now = self._clock.now()
        stored = [_stored_key(k) for k in keys]
        try:
            with self._db.session() as s:
                rows = s.execute(
                    sa.select(SignInBucketRow.level, SignInBucketRow.at).where(
                        SignInBucketRow.key.in_(stored)
                    )
                ).all()
        except SQLAlchemyError as exc:
            raise _unavailable(exc) from exc
        return self._longest_wait(self._drained(level, at, now) for level, at in rows)

    def failed(self, keys: Iterable[str]) -> None:
        now = self._clock.now()
        stored = sorted({_stored_key(k) for k in keys})  # one order: no deadlock between two
        for attempt in range(3):
            try:
                with self._db.session() as s, s.begin():
                    for key in stored:
                        row = s.get(SignInBucketRow, key, with_for_update=True)
                        if row is None:
                            s.add(SignInBucketRow(key=key, level=1.0, at=now))
                        else:
                            row.level = self._drained(row.level, row.at, now) + 1
                            row.at = now
                    if self._clock.monotonic() - self._swept >= self.SWEEP_S:
                        drained_since = now - timedelta(seconds=2 * self.burst / self.rate)
                        s.execute(
                            sa.delete(SignInBucketRow).where(SignInBucketRow.at < drained_since)
                        )
                        self._swept = self._clock.monotonic()
                return
            except IntegrityError:  # another process made a row first: count on it
                if attempt == 2:
                    raise AuthUnavailable("cannot count a failed sign-in") from None
            except SQLAlchemyError as exc:
                raise _unavailable(exc) from exc

    def _drained(self, level: float, at: datetime, now: datetime) -> float:
        return max(0.0, level - max(0.0, (now - at).total_seconds()) * self.rate)


def _stored_key(key: str) -> str:
    """The key as a row names it: a long one by its hash."""
    if len(key) <= 128:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _unavailable(exc: SQLAlchemyError) -> AuthUnavailable:
    reason = getattr(exc, "orig", None) or exc
    return AuthUnavailable(f"the state database cannot be used: {reason}")


def retry_after(seconds: float) -> int:
    """Whole seconds for a `Retry-After` header (at least 1)."""
    return max(1, math.ceil(seconds))


class Hashing:
    """At most `slots` password checks at once; the others wait up to `patience` seconds."""

    def __init__(self, slots: int, patience: float = 5.0) -> None:
        if slots < 1:
            raise ValueError("hashing needs at least one slot")
        self.slots = slots
        self.patience = patience
        self._turns = threading.BoundedSemaphore(slots)

    def acquire(self) -> bool:
        return self._turns.acquire(timeout=self.patience)

    def release(self) -> None:
        self._turns.release()
