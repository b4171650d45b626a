"""What each running instance consumes, from the engine: CPU (% of one core) and memory.

Every `interval_s` (10 s), this Baepo's containers (by the labels the composition root gives)
and one `usage` call per running instance, off the event loop in a pool of its own:
Docker answers a one-shot stats call at its collector's next tick (up to a second later), so
the calls run side by side (`PARALLEL` at a time), and 100 instances take a few seconds, not a
hundred. The whole read is bounded (`BoundedRead`): a hung engine call delays these figures,
never the router's sampler or the reconciler, which use other threads.

CPU % is the CPU time an instance used between two readings over the time between them (100 %
is one core busy); an instance's first reading has memory but no CPU figure yet.

A stats call costs Baepo about 0.7 ms of CPU (bench/metrics.py). The instances of a service
that took no request lately (`busy` says which do) are asked once a minute
(`IDLE_INTERVAL_S`), and their last figures repeated in between: a hundred idle services cost
a sixth of the calls, and their per-minute points are still filled.

The containers come from `listing` when it has them: the reconciler's last listing, which it
takes again only when the engine reports a change (and on its full passes). A listing costs an
inspect per container (about 0.2 ms of CPU each): taken here every 10 s, it was the larger part
of these figures' cost at 100 idle instances.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass

from baepo.clock import Clock
from baepo.executor import DaemonExecutor
from baepo.metrics.reading import BoundedRead, every
from baepo.runtime import (
    LABEL_INSTANCE,
    LABEL_SERVICE,
    ContainerNotFound,
    Engine,
    EngineError,
    Instance,
    Usage,
)

INTERVAL_S = 10.0
IDLE_INTERVAL_S = 60.0
READ_TIMEOUT_S = 30.0
PARALLEL = 16


@dataclass(frozen=True)
class InstanceUsage:
    service: str
    instance: str  # the instance's id (its `baepo.instance` label), else its container name
    cpu_percent: float | None  # of one core, since the last reading; None at the first
    memory_bytes: int
    memory_limit_bytes: int | None


RecordUsage = Callable[[list[InstanceUsage]], None]
"""Whoever keeps the figures (the metrics store)."""
Listing = Callable[[], list[Instance] | None]
"""This Baepo's containers as last listed (`Reconciler.listing`), None when it has no listing
(then they are listed here). Safe from any thread."""


@dataclass(frozen=True)
class _Reading:
    at: float  # monotonic seconds
    usage: Usage


def cpu_percent(before: _Reading | None, after: _Reading) -> float | None:
    if before is None or after.at <= before.at or after.usage.cpu_ns < before.usage.cpu_ns:
        return None
    used_s = (after.usage.cpu_ns - before.usage.cpu_ns) / 1e9
    return round(100 * used_s / (after.at - before.at), 2)


class UsageReader:
    """`run()` reads every instance's usage every `interval_s` until cancelled; `read()` is
    one reading."""

    def __init__(
        self,
        engine: Engine,
        labels: Mapping[str, str],
        clock: Clock,
        *,
        record: RecordUsage | None = None,
        busy: Callable[[str], bool] | None = None,
        listing: Listing | None = None,
        interval_s: float = INTERVAL_S,
        read_timeout_s: float = READ_TIMEOUT_S,
        pool: Executor | None = None,
    ) -> None:
        self._engine = engine
        self._labels = dict(labels)
        self._clock = clock
        self._record = record
        self._busy = busy or (lambda service: True)
        self._listing = listing or (lambda: None)
        self._interval_s = interval_s
        self._pool = pool or DaemonExecutor(PARALLEL, "baepo-usage")
        self._last: dict[str, _Reading] = {}  # container id → its last reading
        self._reported: dict[str, InstanceUsage] = {}  # container id → what it last said
        self._read = BoundedRead(
            self._read_all,
            what="the instances' CPU and memory from the engine",
            meanwhile="those figures pause",
            errors=(EngineError,),
            timeout_s=read_timeout_s,
        )

    @property
    def outage(self) -> str | None:
        return self._read.outage

    async def run(self) -> None:
        await every(self._clock, self._interval_s, self.read)

    async def read(self) -> list[InstanceUsage] | None:
        """Every running instance's figures now, or None if the engine cannot be read."""
        found = await self._read()
        if found is None:
            return None
        if self._record is not None:
            self._record(found)
        return found

    def _read_all(self) -> list[InstanceUsage]:
        """Blocking: in a worker thread."""
        listed = self._listing()
        if listed is None:
            listed = self._engine.list(self._labels)
        running = [i for i in listed if i.running and LABEL_SERVICE in i.labels]
        now = self._clock.monotonic()
        due = [i for i in running if self._due(i, now)]
        readings = dict(zip((i.id for i in due), self._pool.map(self._usage, due), strict=True))
        found = []
        last: dict[str, _Reading] = {}
        reported: dict[str, InstanceUsage] = {}
        for instance in running:
            if instance.id not in readings:  # idle: what it said last time
                last[instance.id] = self._last[instance.id]
                reported[instance.id] = self._reported[instance.id]
                found.append(reported[instance.id])
                continue
            reading = readings[instance.id]
            if reading is None:
                continue  # it stopped since the list
            last[instance.id] = reading
            reported[instance.id] = InstanceUsage(
                service=instance.labels[LABEL_SERVICE],
                instance=instance.labels.get(LABEL_INSTANCE, instance.name),
                cpu_percent=cpu_percent(self._last.get(instance.id), reading),
                memory_bytes=reading.usage.memory_bytes,
                memory_limit_bytes=reading.usage.memory_limit_bytes,
            )
            found.append(reported[instance.id])
        self._last, self._reported = last, reported  # instances gone are forgotten
        return found

    def _due(self, instance: Instance, now: float) -> bool:
        before = self._last.get(instance.id)
        return (
            before is None
            or instance.id not in self._reported
            or now - before.at >= IDLE_INTERVAL_S
            or self._busy(instance.labels[LABEL_SERVICE])
        )

    def _usage(self, instance: Instance) -> _Reading | None:
        try:
            usage = self._engine.usage(instance.id)
        except ContainerNotFound:
            return None
        return None if usage is None else _Reading(self._clock.monotonic(), usage)
