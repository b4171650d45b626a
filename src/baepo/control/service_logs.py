"""A service's logs, read: what its instances wrote, and its event log.

    application   each instance's stdout and stderr: what the log keeper kept of instances
                  that are gone (`logkeeper.py`), and what the engine still has of those it
                  runs (the live tail), merged in time order by the engine's timestamps
    events        the service's event log: its operations' log lines (deploys, health
                  results, drains, restarts) and its events (crashes, replacements); App
                  Runner's service log group, beside the application log group

`LogQuery` filters both (since, instance, revision, a line limit). `ServiceLogs.read` answers
it once; `ServiceLogs.follow` answers it and then follows: its `LogFollower` hands out what is
written from then on, as it comes, until it is closed.

A follow costs threads: one per followed instance, each waiting on the engine's output stream
(`Engine.output(follow=True)`), and one waiting on the engine's start events, to follow each
new instance of the service from its first line. Their lines wait in a bounded queue: a
reader that does not keep up holds the engine's streams back instead of growing the queue.
The event log is read again from the database at most once a second. At most
`MAX_FOLLOWERS` follows run at once (`TooManyFollowers` past that).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from baepo.clock import Clock
from baepo.control.errors import InvalidLogQuery, TooManyFollowers
from baepo.control.instances import LABEL_INSTALLATION
from baepo.control.logkeeper import KeptLine, LogKeeper
from baepo.control.views import LogEntry
from baepo.runtime import (
    LABEL_INSTANCE,
    LABEL_REVISION,
    LABEL_SERVICE,
    Engine,
    EngineError,
    EventStream,
    OutputLine,
    OutputStream,
)

log = logging.getLogger(__name__)

MAX_FOLLOWERS = 32
QUEUE_LINES = 10_000
"""Lines a follow holds for a reader that is behind."""
POLL_LINES = 1_000
EVENTS_EVERY_S = 1.0
MAX_LOG_LINES = 10_000

EventLog = Callable[[datetime | None, int], list[LogEntry]]
"""(since, limit) → the last `limit` entries of the service's event log from `since` on,
oldest first."""

_DURATION = re.compile(r"(\d{1,9})([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class LogSource(StrEnum):
    APPLICATION = "application"
    """What the instances wrote."""
    EVENTS = "events"
    """The service's event log."""
    ALL = "all"
    """Both, merged in time order."""


@dataclass(frozen=True)
class LogQuery:
    """Which lines: at most `limit` of them, the last ones."""

    since: datetime | timedelta | None = None
    """From this time on, or from this long ago (resolved against the clock by the facade)."""
    instance: str | None = None
    revision: int | None = None
    limit: int = 1000
    source: LogSource = LogSource.APPLICATION

    def __post_init__(self) -> None:
        if not 0 <= self.limit <= MAX_LOG_LINES:
            raise InvalidLogQuery(f"a line limit is 0 to {MAX_LOG_LINES}, not {self.limit}")

    def resolved(self, now: datetime, floor: datetime) -> LogQuery:
        """`since` as a time, and never before `floor` (the service's creation: a service
        of the same name before it is another one)."""
        try:
            since = now - self.since if isinstance(self.since, timedelta) else self.since
        except OverflowError:  # before the year 1: since the beginning
            since = None
        return replace(self, since=floor if since is None or since < floor else since)

    @property
    def start(self) -> datetime | None:
        assert not isinstance(self.since, timedelta), "a query is resolved before it is read"
        return self.since

    @property
    def application(self) -> bool:
        return self.source is not LogSource.EVENTS

    @property
    def events(self) -> bool:
        return self.source is not LogSource.APPLICATION

    def wants(self, entry: LogEntry) -> bool:
        start = self.start
        if start is not None and entry.at < start:
            return False
        if self.instance is not None and entry.instance != self.instance:
            return False
        if self.revision is not None and entry.revision != self.revision:
            return False
        return self.application if entry.source == "application" else self.events


def parse_since(text: str) -> datetime | timedelta:
    """`10m`, `1h30m`, `2d` (that long ago) or an RFC 3339 time (UTC when it names no zone)."""
    value = text.strip()
    if value and _DURATION.sub("", value) == "":
        seconds = sum(int(n) * _UNITS[unit] for n, unit in _DURATION.findall(value))
        try:
            return timedelta(seconds=seconds)
        except OverflowError as exc:
            raise InvalidLogQuery(f"since {text[:100]!r} is longer ago than time goes") from exc
    try:
        at = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidLogQuery(
            f"since {text[:100]!r} is neither a duration (10m, 1h30m, 2d) nor a time "
            "(2026-12-02T09:00:00Z)"
        ) from exc
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def application_entry(line: OutputLine | KeptLine, instance: str, revision: int | None) -> LogEntry:
    return LogEntry(line.at, "application", line.stream, instance, revision, line.text)


def merge(query: LogQuery, *groups: Iterable[LogEntry]) -> list[LogEntry]:
    """The entries `query` wants, in time order (stable), the last `limit` of them."""
    wanted = sorted((e for group in groups for e in group if query.wants(e)), key=_at)
    return wanted[len(wanted) - query.limit :] if query.limit else []


class ServiceLogs:
    def __init__(
        self, engine: Engine, keeper: LogKeeper | None, installation: str, clock: Clock
    ) -> None:
        self._engine = engine
        self._keeper = keeper
        self._installation = installation
        self._clock = clock
        self._followers = threading.BoundedSemaphore(MAX_FOLLOWERS)

    def read(self, service: str, query: LogQuery, events: EventLog) -> list[LogEntry]:
        """`query` (resolved) answered from the kept lines, the engine and the event log."""
        found: list[LogEntry] = []
        if query.application:
            found += self._application(service, query)
        if query.events:
            found += events(query.start, query.limit)
        return merge(query, found)

    def follow(self, service: str, query: LogQuery, events: EventLog) -> LogFollower:
        """`read`'s answer (the follower's `backlog`), then what comes: `close()` it."""
        if not self._followers.acquire(blocking=False):
            raise TooManyFollowers(
                f"{MAX_FOLLOWERS} logs are followed already; try again when one has ended"
            )
        try:
            began = self._clock.now()
            backlog = self.read(service, query, events)
            follower = LogFollower(
                self._engine,
                self._labels(service, query),
                query,
                backlog,
                events,
                began,
                self._clock,
                self._followers.release,
            )
            follower.start()
        except BaseException:
            self._followers.release()
            raise
        return follower

    def _application(self, service: str, query: LogQuery) -> list[LogEntry]:
        found: list[LogEntry] = []
        until: Mapping[str, datetime] = {}
        if self._keeper is not None:
            until = self._keeper.kept_until(service)
            for line in self._keeper.kept(service, query.start):
                found.append(application_entry(line, line.instance, line.revision))
        try:
            containers = self._engine.list(self._labels(service, query))
        except EngineError as exc:
            log.warning("cannot list the instances of %s for its logs: %s", service, exc)
            return found
        for container in containers:
            instance, revision = _instance(container.labels)
            if query.revision is not None and revision != query.revision:
                continue
            floor = until.get(instance)
            try:
                stream = self._engine.output(container.id, since=query.start, tail=query.limit)
                try:
                    lines = list(stream)
                finally:
                    stream.close()
            except EngineError as exc:  # gone meanwhile (then kept), or the engine is down
                log.info("cannot read the output of %s: %s", instance, exc)
                continue
            found += [
                application_entry(line, instance, revision)
                for line in lines
                if floor is None or line.at > floor
            ]
        return found

    def _labels(self, service: str, query: LogQuery) -> dict[str, str]:
        labels = {LABEL_INSTALLATION: self._installation, LABEL_SERVICE: service}
        if query.instance is not None:
            labels[LABEL_INSTANCE] = query.instance
        return labels


class LogFollower:
    """What a service's instances write (and its event log), from when the follow began.

    `backlog` is what was there then; `poll` waits for what came since. `close()` (from any
    thread, more than once) ends the engine's streams and the threads reading them.
    """

    def __init__(
        self,
        engine: Engine,
        labels: Mapping[str, str],
        query: LogQuery,
        backlog: list[LogEntry],
        events: EventLog,
        began: datetime,
        clock: Clock,
        release: Callable[[], None],
    ) -> None:
        """`began`: a time taken before the backlog was read (what comes after it is new)."""
        self.backlog = backlog
        self._engine = engine
        self._labels = dict(labels)
        self._query = query
        self._events = events
        self._clock = clock
        self._began = began
        self._release: Callable[[], None] | None = release
        self._lines: queue.Queue[LogEntry] = queue.Queue(maxsize=QUEUE_LINES)
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._followed: set[str] = set()
        self._streams: set[OutputStream] = set()
        self._subscription: EventStream | None = None
        # Where the backlog ends, per instance: its last time and its lines with that time.
        # The follow goes on from there (engines may stamp lines to the second only: a line
        # with that time is new unless the backlog has it).
        self._seen: dict[str, tuple[datetime, Counter[tuple[str, str]]]] = {}
        for entry in backlog:
            if entry.source != "application":
                continue
            at, lines = self._seen.get(entry.instance, (entry.at, Counter()))
            if entry.at > at:
                at, lines = entry.at, Counter()
            if entry.at == at:
                lines[(entry.stream, entry.text)] += 1
            self._seen[entry.instance] = (at, lines)
        told = [e for e in backlog if e.source == "events"]
        self._events_from = max((e.at for e in told), default=began)
        self._events_told = {_key(e) for e in told if e.at == self._events_from}
        self._events_due = 0.0

    def start(self) -> None:
        """Follow the instances running now, and each one that starts from now on."""
        if not self._query.application:
            return
        try:
            subscription = self._engine.events(self._labels)  # first, then list: none missed
        except EngineError as exc:
            log.warning("cannot follow the instances that start: %s", exc)
            return
        with self._lock:
            self._subscription = subscription
        threading.Thread(
            target=self._watch, args=(subscription,), name="baepo-logs-starts", daemon=True
        ).start()
        try:
            running = [c for c in self._engine.list(self._labels) if c.running]
        except EngineError as exc:
            log.warning("cannot list the instances to follow: %s", exc)
            running = []
        for container in running:
            self._follow(container.id, container.labels, since=self._began)

    def poll(self, timeout_s: float) -> list[LogEntry]:
        """What came since the last poll, in time order; waits up to `timeout_s` for the
        first line (0: not at all; less once closed)."""
        found: list[LogEntry] = []
        if self._query.application and not self._closed.is_set():
            with contextlib.suppress(queue.Empty):
                found.append(
                    self._lines.get(timeout=timeout_s)
                    if timeout_s > 0
                    else self._lines.get_nowait()
                )
            while len(found) < POLL_LINES:
                try:
                    found.append(self._lines.get_nowait())
                except queue.Empty:
                    break
        elif not self._query.application:
            self._closed.wait(min(timeout_s, EVENTS_EVERY_S))
        if self._query.events and time.monotonic() >= self._events_due:
            self._events_due = time.monotonic() + EVENTS_EVERY_S
            found += self._new_events()
        return sorted(found, key=_at)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def now(self) -> datetime:
        """The time on the follow's clock: a follow resumed from a time taken before a poll
        misses nothing that poll did not return."""
        return self._clock.now()

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            streams = list(self._streams)
            subscription, self._subscription = self._subscription, None
            release, self._release = self._release, None
        if subscription is not None:
            subscription.close()
        for stream in streams:
            stream.close()
        if release is not None:
            release()

    # -- threads --------------------------------------------------------------------------

    def _watch(self, subscription: EventStream) -> None:
        try:
            for event in subscription:
                if event.action == "start":
                    self._follow(event.instance_id, event.labels, since=None)
        except EngineError as exc:
            if not self._closed.is_set():
                log.info("no longer following new instances: %s", exc)

    def _follow(self, container_id: str, labels: Mapping[str, str], since: datetime | None) -> None:
        instance, revision = _instance(labels)
        if self._query.revision is not None and revision != self._query.revision:
            return
        with self._lock:
            if self._closed.is_set() or container_id in self._followed:
                return
            self._followed.add(container_id)
        threading.Thread(
            target=self._pump,
            args=(container_id, instance, revision, since),
            name=f"baepo-logs-{instance}",
            daemon=True,
        ).start()

    def _pump(
        self, container_id: str, instance: str, revision: int | None, since: datetime | None
    ) -> None:
        try:
            stream = self._engine.output(container_id, since=since, follow=True)
        except EngineError:
            return  # gone already
        with self._lock:
            if self._closed.is_set():
                stream.close()
                return
            self._streams.add(stream)
        floor, told = self._seen.get(instance, (None, Counter[tuple[str, str]]()))
        try:
            for line in stream:
                entry = application_entry(line, instance, revision)
                if floor is not None and line.at < floor:
                    continue  # older than the backlog's last line: in it (or left out)
                if floor is not None and line.at == floor and told[(line.stream, line.text)] > 0:
                    told[(line.stream, line.text)] -= 1  # in the backlog already
                    continue
                if not self._query.wants(entry):
                    continue
                while not self._closed.is_set():
                    try:
                        self._lines.put(entry, timeout=0.5)
                        break
                    except queue.Full:
                        continue
        except EngineError as exc:
            log.info("stopped following %s: %s", instance, exc)
        finally:
            stream.close()
            with self._lock:
                self._streams.discard(stream)

    def _new_events(self) -> list[LogEntry]:
        try:
            told = self._events(self._events_from, POLL_LINES)
        except Exception as exc:  # the database: the next poll tries again
            log.info("cannot read the event log: %s", exc)
            return []
        new = [e for e in told if _key(e) not in self._events_told and self._query.wants(e)]
        if told:
            last = max(e.at for e in told)
            if last > self._events_from:
                self._events_from, self._events_told = last, set()
            self._events_told |= {_key(e) for e in told if e.at == last}
        return new


def _instance(labels: Mapping[str, str]) -> tuple[str, int | None]:
    revision = labels.get(LABEL_REVISION, "")
    return labels.get(LABEL_INSTANCE, ""), int(revision) if revision.isdigit() else None


def _at(entry: LogEntry) -> datetime:
    return entry.at


def _key(entry: LogEntry) -> tuple[object, ...]:
    return (entry.at, entry.stream, entry.operation, entry.instance, entry.text)
