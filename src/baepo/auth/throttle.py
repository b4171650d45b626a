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

Both are pure bookkeeping over an injected clock, so tests jump instead of waiting. Both are
each process's own: several processes behind one load balancer (sharing one database) let an
attacker guess that many times faster, still a bounded rate (and the address a process sees
may be the balancer's, whose bucket then holds every client's failures).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from baepo.clock import Clock


@dataclass
class _Bucket:
    level: float
    at: float


class Throttle:
    def __init__(
        self, clock: Clock, *, burst: int = 10, rate: float = 0.2, max_keys: int = 10_000
    ) -> None:
        if burst < 1 or rate <= 0:
            raise ValueError("a throttle needs burst >= 1 and rate > 0")
        self._clock = clock
        self.burst = burst
        self.rate = rate
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def wait(self, keys: Iterable[str]) -> float:
        """Seconds before any of `keys` may try again (0 when all may try now)."""
        now = self._clock.monotonic()
        longest = 0.0
        with self._lock:
            for key in keys:
                bucket = self._buckets.get(key)
                if bucket is None:
                    continue
                # Room for one more failure once the level is down to burst - 1.
                over = self._drained(bucket, now) - (self.burst - 1)
                if over > 1e-9:
                    longest = max(longest, over / self.rate)
        return longest

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
