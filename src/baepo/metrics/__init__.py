"""The metrics room: what the router and the engine say about each service's load, read on a
schedule and handed to whoever needs it (the autoscaler, the metrics kept for people).

`Sampler` reads the router's load once a second and feeds `Scaling.observe` (control/);
`UsageReader` reads each running instance's CPU and memory from the engine every 10 s. What
they feed is injected by the composition root: this room imports no other domain room.
"""

from baepo.metrics.sampler import Deltas, Sample, Sampler, grown
from baepo.metrics.usage import InstanceUsage, UsageReader

__all__ = ["Deltas", "InstanceUsage", "Sample", "Sampler", "UsageReader", "grown"]
