"""A blocking read, run in a worker thread on a schedule, bounded, and quiet about outages.

What the metrics read (HAProxy's stats socket, the engine's API) blocks, and may hang. A
`BoundedRead` runs it in a worker thread and waits at most `timeout_s` for it; a read still
running when the next one is due is waited for again rather than started twice, so a hung
source costs one thread, not one per interval. A read that raises one of the source's errors,
or does not answer in time, is an outage: logged once when it starts and once when it ends,
never once per interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from baepo.clock import Clock

log = logging.getLogger(__name__)

T = TypeVar("T")


class BoundedRead(Generic[T]):
    def __init__(
        self,
        call: Callable[[], T],
        *,
        what: str,
        meanwhile: str,
        errors: tuple[type[Exception], ...],
        timeout_s: float,
    ) -> None:
        """`what` is read ("the router's load"); `meanwhile` says what an outage means for
        the user ("autoscaling keeps the instance counts")."""
        self._call = call
        self._what = what
        self._meanwhile = meanwhile
        self._errors = errors
        self._timeout_s = timeout_s
        self._pending: asyncio.Future[T] | None = None
        self.outage: str | None = None
        """Why the source cannot be read, while it cannot."""

    async def __call__(self) -> T | None:
        """The source's answer, or None during an outage."""
        if self._pending is None or self._pending.done():
            self._pending = asyncio.get_running_loop().run_in_executor(None, self._call)
        pending = self._pending
        try:
            answer = await asyncio.wait_for(asyncio.shield(pending), self._timeout_s)
        except TimeoutError:
            self._down(f"no answer in {self._timeout_s:g} s")
            return None
        except self._errors as exc:
            self._down(str(exc) or type(exc).__name__)
            return None
        if self.outage is not None:
            log.info("%s can be read again", self._what)
            self.outage = None
        return answer

    def _down(self, why: str) -> None:
        if self.outage is None:
            log.warning("cannot read %s: %s; %s until it can", self._what, why, self._meanwhile)
        self.outage = why


async def every(clock: Clock, interval_s: float, step: Callable[[], Awaitable[object]]) -> None:
    """`step()` every `interval_s` on `clock` (the next one right away if a step took longer),
    until cancelled; a step that raises is logged and the next one runs on time."""
    while True:
        started = clock.monotonic()
        try:
            await step()
        except Exception:  # a bug must not end the metrics for good
            log.exception("metrics step failed")
        elapsed = clock.monotonic() - started
        await clock.sleep(max(0.0, interval_s - elapsed))
