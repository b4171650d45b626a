"""The sampler: once a second, every routed service's load from the router, turned into what
the autoscaler observes (and, per second, what the metrics keep).

The router's counters (`ServiceStats.total`, the 2xx/4xx/5xx counts) only grow, except when
HAProxy reloads: the new worker counts from 0 again. A reading lower than the last is such a
reset, and the new value is what arrived since it. The first reading after Baepo starts (an
adopted HAProxy may have counted millions) is a baseline: nothing arrived yet. A service that
appears later is a backend added since the last reading (a reload made it), so its counters
started at 0 and all of them count.

The read runs in a worker thread (the router's runtime API is a blocking socket), bounded by
`read_timeout_s` (see `BoundedRead`): an outage is logged once when it starts and once when it
ends; while it lasts nothing is observed, and the autoscaler keeps what it has.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from baepo.clock import Clock
from baepo.metrics.reading import BoundedRead, every
from baepo.router import RouterError, ServerState, ServiceStats

INTERVAL_S = 1.0
READ_TIMEOUT_S = 5.0

Load = Callable[[], Mapping[str, ServiceStats]]
"""Every routed service's load (`HAProxyRouter.load`); blocking, raises `RouterError`."""
Observe = Callable[[str, int, int, int], bool | None]
"""`Scaling.observe(service, in_flight, queued, arrived)`: True when the service outgrew the
instances it was given (a scale-up is due now, not at the reconciler's next pass)."""


@dataclass(frozen=True)
class Sample:
    """One service over one sampling interval: gauges as read, counters as deltas."""

    service: str
    in_flight: int
    queued: int
    arrived: int  # requests that came in since the last reading
    http_2xx: int
    http_4xx: int
    http_5xx: int
    instances: int  # servers taking new requests (ready), the instances serving


Record = Callable[[list[Sample]], None]
"""Whoever keeps the samples (the metrics store)."""


def grown(before: int, after: int) -> int:
    """How much a counter grew; a counter that went down was reset (a new HAProxy worker), so
    everything it counts now came since."""
    return after - before if after >= before else after


@dataclass(frozen=True)
class _Counters:
    total: int
    http_2xx: int
    http_4xx: int
    http_5xx: int

    @classmethod
    def of(cls, stats: ServiceStats) -> _Counters:
        return cls(stats.total, stats.http_2xx, stats.http_4xx, stats.http_5xx)


_ZERO = _Counters(0, 0, 0, 0)


class Deltas:
    """The counters' last values per service, and what grew since (pure, no I/O)."""

    def __init__(self) -> None:
        self._last: dict[str, _Counters] | None = None  # None: no reading yet

    def samples(self, load: Mapping[str, ServiceStats]) -> list[Sample]:
        first = self._last is None
        last = self._last or {}
        now = {service: _Counters.of(stats) for service, stats in load.items()}
        found = []
        for service, stats in sorted(load.items()):
            before = now[service] if first else last.get(service, _ZERO)
            after = now[service]
            found.append(
                Sample(
                    service=service,
                    in_flight=stats.in_flight,
                    queued=stats.queued,
                    arrived=grown(before.total, after.total),
                    http_2xx=grown(before.http_2xx, after.http_2xx),
                    http_4xx=grown(before.http_4xx, after.http_4xx),
                    http_5xx=grown(before.http_5xx, after.http_5xx),
                    instances=sum(1 for s in stats.servers if s.state is ServerState.READY),
                )
            )
        self._last = now  # services no longer routed are forgotten
        return found


class Sampler:
    """Reads the router's load every `interval_s` (on the injected clock) and feeds `observe`
    and `record` with it; calls `wake` (the reconciler's) when an observation says a service
    outgrew its instances, so a load step is acted on within the second it is seen rather
    than at the next idle pass. `run()` until cancelled; `sample()` is one reading."""

    def __init__(
        self,
        load: Load,
        clock: Clock,
        observe: Observe,
        *,
        record: Record | None = None,
        wake: Callable[[], None] | None = None,
        interval_s: float = INTERVAL_S,
        read_timeout_s: float = READ_TIMEOUT_S,
    ) -> None:
        self._clock = clock
        self._observe = observe
        self._record = record
        self._wake = wake
        self._interval_s = interval_s
        self._deltas = Deltas()
        self._read = BoundedRead(
            load,
            what="the router's load",
            meanwhile="autoscaling keeps the instance counts",
            errors=(RouterError,),
            timeout_s=read_timeout_s,
        )

    @property
    def outage(self) -> str | None:
        """Why the router cannot be read, while it cannot."""
        return self._read.outage

    async def run(self) -> None:
        """Sample every interval until cancelled; a reading that fails is logged (once per
        outage) and the next one tried on time."""
        await every(self._clock, self._interval_s, self.sample)

    async def sample(self) -> list[Sample] | None:
        """One reading: the samples observed, or None when the router could not be read."""
        load = await self._read()
        if load is None:
            return None
        samples = self._deltas.samples(load)
        pressed = False
        for s in samples:
            pressed = bool(self._observe(s.service, s.in_flight, s.queued, s.arrived)) or pressed
        if pressed and self._wake is not None:
            self._wake()
        if self._record is not None:
            self._record(samples)
        return samples
