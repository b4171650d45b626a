"""What the reconciler writes about a service: its operation's log, progress and events.

A person following a deploy reads three things the reconciler writes:

- the operation's log, a line per step ("started instance web-3-x1 of revision 3", "GET
  /healthz answered HTTP 404"); a line that repeats the operation's last one is dropped, so a
  pass that retries the same failure every 250 ms writes it once. With no operation in
  progress, lines go to Baepo's own log;
- the operation's message, where a start stands ("waiting for web-3-x1: ..., 1 of 3
  passing"), rewritten at most every `PROGRESS_EVERY_S`;
- the service's events (an instance found unhealthy, a scaling), kept after the operation
  ends, and also a line of the operation's log while one is in progress.

Lines are only written while the operation is IN_PROGRESS: one that ended (or was cancelled)
between the pass's read and its write keeps the log it ended with.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from baepo.clock import Clock
from baepo.control import records
from baepo.control.operations import OperationStatus
from baepo.control.service_state import ServiceState
from baepo.store import Database

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 1.0


class Journal:
    """Writes the reconciler's lines, messages and events. Used from the event loop (and
    `note_waiting` from one worker thread at a time)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._last_line: dict[str, str] = {}  # operation → the last line written to its log
        self._progress: dict[str, tuple[str, float]] = {}  # operation → (message, when)

    async def note(self, state: ServiceState, line: str) -> None:
        """A line in the operation's log (repeats of the last line are dropped)."""
        op_id = state.operation_id
        if op_id is None:
            log.info("%s: %s", state.desired.service, line)
            return
        if self._last_line.get(op_id) == line:
            return
        self._last_line[op_id] = line
        await asyncio.to_thread(self._write_line, op_id, line)

    def note_waiting(self, service_ids: Iterable[str], line: str) -> None:
        """Tell each operation in flight (pending ones too) why nothing moves, once."""
        with self._db.session() as s, s.begin():
            for service_id in service_ids:
                op = records.operation_in_flight(s, service_id)
                if op is None or self._last_line.get(op.id) == line:
                    continue
                self._last_line[op.id] = line
                records.log(s, op, self._clock.now(), line)

    async def progress(self, op_id: str, message: str) -> None:
        """The operation's message: where it stands (unchanged ones and any within
        `PROGRESS_EVERY_S` of the last are not written)."""
        now = self._clock.monotonic()
        last = self._progress.get(op_id)
        if last is not None and (last[0] == message or now - last[1] < PROGRESS_EVERY_S):
            return
        self._progress[op_id] = (message, now)
        await asyncio.to_thread(self._write_progress, op_id, message)

    async def event(self, state: ServiceState, kind: str, instance: str, message: str) -> None:
        """One of the service's events, and a line of its operation's log."""

        def write() -> None:
            with self._db.session() as s, s.begin():
                records.record_event(
                    s, state.service_id, self._clock.now(), kind, message, instance
                )

        await asyncio.to_thread(write)
        log.info("%s: %s", state.desired.service, message)
        if state.operation_id is not None:
            await self.note(state, message)

    def finished(self, op_id: str) -> None:
        """The operation ended: nothing more is written to it."""
        self._last_line.pop(op_id, None)
        self._progress.pop(op_id, None)

    def _write_progress(self, op_id: str, message: str) -> None:
        with self._db.session() as s, s.begin():
            op = records.operation_by_id(s, op_id)
            if op.status == OperationStatus.IN_PROGRESS.value:
                op.message = message

    def _write_line(self, op_id: str, line: str) -> None:
        with self._db.session() as s, s.begin():
            op = records.operation_by_id(s, op_id)
            if op.status == OperationStatus.IN_PROGRESS.value:
                records.log(s, op, self._clock.now(), line)
