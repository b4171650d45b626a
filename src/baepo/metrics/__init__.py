"""The metrics room: what the router and the engine say about each service's load, read on a
schedule and handed to whoever needs it (the autoscaler, the metrics kept for people).

`Sampler` reads the router's load once a second and feeds `Scaling.observe` (control/), which is
injected by the composition root: this room imports no domain room.
"""

from baepo.metrics.sampler import Deltas, Sample, Sampler, grown

__all__ = ["Deltas", "Sample", "Sampler", "grown"]
