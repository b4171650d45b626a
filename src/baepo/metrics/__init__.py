"""The metrics room: what the router and the engine say about each service's load, read on a
schedule, kept for a day, and handed to whoever needs it.

`Sampler` reads the router's load once a second and feeds `Scaling.observe` (control/) and
the `MetricsStore`; `UsageReader` reads each running instance's CPU and memory from the engine
every 10 s; `AccessLog` reads HAProxy's per-request datagrams for latencies. What they feed is
injected by the composition root: this room imports no other domain room.
"""

from baepo.metrics.latency import RELATIVE_ERROR, AccessLog, LatencyHistogram
from baepo.metrics.sampler import Deltas, Sample, Sampler, grown
from baepo.metrics.store import MINUTES, SERIES, MetricsStore, Series, Snapshot
from baepo.metrics.usage import InstanceUsage, UsageReader

__all__ = [
    "MINUTES",
    "RELATIVE_ERROR",
    "SERIES",
    "AccessLog",
    "Deltas",
    "InstanceUsage",
    "LatencyHistogram",
    "MetricsStore",
    "Sample",
    "Sampler",
    "Series",
    "Snapshot",
    "UsageReader",
    "grown",
]
