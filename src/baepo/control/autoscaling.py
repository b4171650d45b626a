"""The autoscaler's decision: how many instances a service wants, from the requests it carries.

A pure, deterministic core: no clock, no threads, no I/O. The loop that reads the router's
stats feeds `Autoscaler.observe(now, in_flight, queued)` at least once a second (the requests in
flight and queued, summed over the service's instances and the activator) and asks
`Autoscaler.decide(now, ready_instances)` for a `Decision`: the instance count, whether the
autoscaler is panicking, and the reason, one line for the service's event log. `now` is a
reading of one monotonic clock (`Clock.monotonic()`), so tests drive time with plain numbers.

The model is Knative's pod autoscaler (KPA), with App Runner's names and defaults:

    target       max_concurrency x target utilization: 100 x 70 % = 70 requests per instance
    demand       requests in flight + queued, averaged over a window of per-second buckets:
                 the stable window (60 s) and the panic window (6 s)
    want         ceil(demand / target), for each window
    rates        a decision stays within [floor(ready / max_scale_down_rate),
                 ceil(max(1, ready) x max_scale_up_rate)]: at most halving, by default
    panic        entered when the panic window's want reaches the panic threshold (200 %) of
                 the ready instances; while in it the larger want counts and the count never
                 goes down; it ends after a whole stable window without the condition
    delay        a lower count applies only once it has been wanted for the whole scale-down
                 delay (the highest want over the delay counts)
    bounds       [min_size, max_size], last
    idle         once no request was seen for the idle period (and the scale-down delay), the
                 load is gone whatever the stable window remembers: the count halves,
                 decision by decision, down to min_size, zero included when it is 0. While a
                 request was seen in that period the count is at least 1, so a request the
                 activator holds at zero gets an instance

and three cases of its own:

- Before the first observation (a new service, or Baepo just started) the autoscaler knows
  nothing: it keeps the ready count (within the bounds). Once it observes, it does not scale
  down before it has watched for the scale-down delay: after a restart, a quiet first second
  says nothing about the minute before it. (Knative starts such an autoscaler in panic mode,
  for the same reason.)
- A second without an observation is unknown, not zero: windows average the seconds they
  have. With no observation in the whole panic window the data is stale (the stats could not
  be read): the autoscaler keeps the ready count rather than mistake silence for idleness.
- A request shorter than the time between two observations never shows in a sampled in-flight
  count; `observe(..., arrived=n)` (the router's request counter, differenced) still marks the
  service as not idle.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from baepo.control.errors import InvalidServiceSpec
from baepo.service_fields import MAX_CONCURRENCY, MAX_INSTANCES

TIMES = "\N{MULTIPLICATION SIGN}"
LONGEST_WINDOW_S = 3600
"""Knative's bound for the stable window and the scale-down delay (one hour)."""


class InvalidAutoScalingConfiguration(InvalidServiceSpec):
    """An autoscaling configuration out of bounds; `problems` names every bad field.

    A kind of `InvalidServiceSpec`, so the API answers it the same way (400, with the fields)."""


@dataclass(frozen=True)
class AutoScalingConfiguration:
    """How one service (or several: App Runner shares them) scales. Checked when built.

    The first three are App Runner's `AutoScalingConfiguration` (MinSize, MaxSize,
    MaxConcurrency). App Runner's API takes MaxConcurrency 1..200 (default 100), MinSize 1..25
    (default 1) and MaxSize from 1 (default 25); Baepo keeps the limits its service fields
    already have (`baepo.service_fields`: concurrency up to 200, up to 25 instances) and allows
    min_size 0, scale to zero, which App Runner does not. (Knative's container concurrency goes
    up to 1000; following App Runner, whose bound the service spec already enforces, keeps a
    configuration from allowing what a service refuses.)

    The others are Knative's KPA knobs, with its defaults and bounds, except two: the
    scale-down delay is 30 s where Knative's is 0 s (a dip in the load does not shed instances
    the next second), and the idle period plays the part of Knative's scale-to-zero grace
    period (30 s too) but asks for no request at all in it.
    """

    min_size: int = 1
    max_size: int = MAX_INSTANCES
    max_concurrency: int = 100
    target_utilization_percent: float = 70.0
    """Of max_concurrency, what the autoscaler aims for (Knative: 1..100)."""
    stable_window_s: int = 60
    """Averaging window of stable mode (Knative: 6 s..1 h)."""
    panic_window_s: int = 6
    """Averaging window of panic mode (Knative: 10 % of the stable window)."""
    panic_threshold_percent: float = 200.0
    """Panic when the panic window wants this much of the ready instances (Knative: 110..1000)."""
    max_scale_down_rate: float = 2.0
    """A decision keeps at least ready / this (2: at most halving)."""
    max_scale_up_rate: float = 1000.0
    """A decision asks for at most ready x this."""
    scale_down_delay_s: int = 30
    """A lower count applies once it has been wanted this long (Knative: 0 s..1 h, default 0)."""
    idle_period_s: int = 30
    """No request for this long (and for the delay): down to min_size, zero included."""

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise InvalidAutoScalingConfiguration(problems)

    @property
    def target(self) -> float:
        """The requests per instance the autoscaler aims for."""
        return self.max_concurrency * self.target_utilization_percent / 100

    def _problems(self) -> Iterator[tuple[str, str]]:
        wrong = []
        for f in dataclasses.fields(self):
            value, whole = getattr(self, f.name), f.name in _WHOLE
            if not _is_number(value, whole):
                kind = "a whole number" if whole else "a number"
                wrong.append((f.name, f"must be {kind} (got {value!r})"))
        if wrong:
            yield from wrong
            return
        yield from _between("min_size", self.min_size, 0, MAX_INSTANCES)
        yield from _between("max_size", self.max_size, 1, MAX_INSTANCES)
        if self.min_size > self.max_size:
            yield "min_size", f"must not exceed max_size ({self.min_size} > {self.max_size})"
        yield from _between("max_concurrency", self.max_concurrency, 1, MAX_CONCURRENCY)
        yield from _between("target_utilization_percent", self.target_utilization_percent, 1, 100)
        yield from _between("stable_window_s", self.stable_window_s, 6, LONGEST_WINDOW_S)
        yield from _between("panic_window_s", self.panic_window_s, 1, self.stable_window_s)
        yield from _between("panic_threshold_percent", self.panic_threshold_percent, 110, 1000)
        for name in ("max_scale_down_rate", "max_scale_up_rate"):
            rate = getattr(self, name)
            if not 1 < rate <= MAX_RATE:
                yield name, f"must be greater than 1 and at most {MAX_RATE:g} (got {rate!r})"
        yield from _between("scale_down_delay_s", self.scale_down_delay_s, 0, LONGEST_WINDOW_S)
        yield from _between("idle_period_s", self.idle_period_s, 1, LONGEST_WINDOW_S)


_WHOLE = frozenset(
    {
        "min_size",
        "max_size",
        "max_concurrency",
        "stable_window_s",
        "panic_window_s",
        "scale_down_delay_s",
        "idle_period_s",
    }
)
"""Counts, and durations in whole seconds (the windows are made of one-second buckets)."""
MAX_RATE = 1000.0
"""Knative's default scale-up rate, as the bound of both rates (it keeps the arithmetic finite)."""


def _is_number(value: object, whole: bool) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (not whole and isinstance(value, float))


def _between(name: str, value: float, low: float, high: float) -> Iterator[tuple[str, str]]:
    if not low <= value <= high:  # NaN fails too
        yield name, f"must be between {low:g} and {high:g} (got {value!r})"


@dataclass(frozen=True)
class Decision:
    """One decision of an `Autoscaler`, with its reason for the service's event log."""

    desired: int
    """The instance count to converge to, within [min_size, max_size]."""
    reason: str
    """One line for the event log: "in flight 340 over 3 instances x 70 → 5" (the x a
    multiplication sign)."""
    panic: bool
    stable_demand: float | None = None
    """Requests in flight and queued, averaged over the stable window (None: no data)."""
    panic_demand: float | None = None


@dataclass
class _Second:
    """The observations made in one second of the monotonic clock."""

    second: int
    in_flight: int = 0
    queued: int = 0
    count: int = 0


class Autoscaler:
    """One service's autoscaler: the observations of the last stable window, and the state
    that spans decisions (panic mode, the wants of the scale-down delay).

    `configuration` may be replaced between calls; the history is kept.
    """

    def __init__(self, configuration: AutoScalingConfiguration | None = None) -> None:
        self.configuration = configuration or AutoScalingConfiguration()
        self._seconds: deque[_Second] = deque()
        self._first: float | None = None
        self._latest: float | None = None
        self._last_active: float | None = None
        self._panic_signal: float | None = None
        """When the panic condition last held; None outside panic mode."""
        self._panic_floor = 0
        self._wants: deque[tuple[int, int]] = deque()
        """(second, the highest want decided in it), over the scale-down delay."""

    def observe(self, now: float, in_flight: int, queued: int, arrived: int = 0) -> None:
        """Record the requests in flight and queued at `now`; `arrived`: the requests that
        arrived since the previous observation, if the caller counts them."""
        if in_flight < 0 or queued < 0 or arrived < 0:
            raise ValueError(f"negative counts: {in_flight}, {queued}, {arrived}")
        if self._latest is None:
            self._first = now
        else:
            now = max(now, self._latest)  # one clock, read out of order: the same instant
        self._latest = now
        if in_flight or queued or arrived:
            self._last_active = now
        second = math.floor(now)
        if not self._seconds or self._seconds[-1].second != second:
            self._seconds.append(_Second(second))
        bucket = self._seconds[-1]
        bucket.in_flight += in_flight
        bucket.queued += queued
        bucket.count += 1
        while self._seconds[0].second <= second - self.configuration.stable_window_s:
            self._seconds.popleft()

    def waiting(self, now: float) -> None:
        """A request waits for an instance (the activator holds it at zero): not idle now,
        so the next decision wants at least one instance. No sample: the sampler's counts
        carry the load."""
        if self._latest is None:
            self._first = now
        now = max(now, self._latest if self._latest is not None else now)
        self._latest = now
        self._last_active = now

    def decide(self, now: float, ready_instances: int) -> Decision:
        """The instance count the service should converge to, with `ready_instances` ready
        (healthy and routed) now. Decide about once a second: a scale-down halves at most per
        decision, and the panic and delay state moves with each one."""
        config = self.configuration
        ready = max(0, ready_instances)
        if self._latest is None or self._first is None:
            return self._keep(ready, "no observations yet", recent=False)
        now = max(now, self._latest)
        second = math.floor(now)
        needed = max(config.idle_period_s, config.scale_down_delay_s)
        quiet = now - (self._last_active if self._last_active is not None else self._first)
        recent = self._last_active is not None and quiet < needed
        idle = not recent and now - self._first >= needed
        stable = self._average(second, config.stable_window_s)
        panic = self._average(second, config.panic_window_s)
        if stable is None or panic is None:
            silent = now - self._latest
            return self._keep(ready, f"no observation for {silent:.0f} s", recent=recent)
        stable_demand, panic_demand = sum(stable), sum(panic)

        target = config.target
        want_stable = _instances(stable_demand, target)
        want_panic = _instances(panic_demand, target)
        basis = max(1, ready)
        if want_panic / basis >= config.panic_threshold_percent / 100:
            self._panic_signal = now
        elif self._panic_signal is not None and now - self._panic_signal >= config.stable_window_s:
            self._panic_signal = None
            self._panic_floor = 0
        panicking = self._panic_signal is not None

        if idle:
            base, want = f"no request for {math.floor(quiet)} s", 0
        elif panicking and want_panic > want_stable:
            base, want = f"panic: {_load(panic, ready, target)}", want_panic
        else:
            prefix = "panic: " if panicking else ""
            base, want = prefix + _load(stable, ready, target), want_stable
        steps = _Steps(want, f"{base} → {want}")
        if recent:
            steps.at_least(1, f"requests in the last {needed} s")
        steps.at_most(math.ceil(basis * config.max_scale_up_rate), _rate("up", config))
        steps.at_least(math.floor(ready / config.max_scale_down_rate), _rate("down", config))
        if panicking:
            steps.at_least(max(self._panic_floor, ready), "panic, not scaling down")
            self._panic_floor = max(self._panic_floor, steps.value)
        held = self._hold(second, steps.value)
        if not idle:
            steps.at_least(held, f"kept for the {config.scale_down_delay_s} s scale-down delay")
            if now - self._first < config.scale_down_delay_s:
                steps.at_least(ready, f"watching {config.scale_down_delay_s} s before scaling down")
        steps.bound(config)
        return Decision(steps.value, steps.text, panicking, stable_demand, panic_demand)

    def _average(self, second: int, window: int) -> tuple[float, float] | None:
        """Mean in flight and queued over the seconds in (second - window, second] that have
        observations; None when none has."""
        in_flight = queued = 0.0
        seconds = 0
        for bucket in reversed(self._seconds):
            if bucket.second <= second - window:
                break
            if bucket.second <= second:
                in_flight += bucket.in_flight / bucket.count
                queued += bucket.queued / bucket.count
                seconds += 1
        return (in_flight / seconds, queued / seconds) if seconds else None

    def _hold(self, second: int, want: int) -> int:
        """Record `want` and return the highest want over the scale-down delay."""
        horizon = second - self.configuration.scale_down_delay_s
        if self._wants and self._wants[-1][0] == second:
            want = max(want, self._wants.pop()[1])
        self._wants.append((second, want))
        while self._wants[0][0] <= horizon and len(self._wants) > 1:
            self._wants.popleft()
        return max(w for _, w in self._wants)

    def _keep(self, ready: int, why: str, *, recent: bool) -> Decision:
        config = self.configuration
        steps = _Steps(ready, f"{why}: keeping {ready}")
        if recent:
            needed = max(config.idle_period_s, config.scale_down_delay_s)
            steps.at_least(1, f"requests in the last {needed} s")
        steps.bound(config)
        return Decision(steps.value, steps.text, self._panic_signal is not None)


class _Steps:
    """The decision's value and its reason, "base → n; why → m; …", built in order: each
    rule that changes the value adds why and the new value."""

    def __init__(self, value: int, text: str) -> None:
        self.value = value
        self.text = text

    def at_least(self, floor: int, why: str) -> None:
        if self.value < floor:
            self.value = floor
            self.text += f"; {why} → {floor}"

    def at_most(self, ceiling: int, why: str) -> None:
        if self.value > ceiling:
            self.value = ceiling
            self.text += f"; {why} → {ceiling}"

    def bound(self, config: AutoScalingConfiguration) -> None:
        self.at_least(config.min_size, f"min {config.min_size}")
        self.at_most(config.max_size, f"max {config.max_size}")


def _instances(demand: float, target: float) -> int:
    # Rounded first, as Knative does, so that 3 x 70 / 70 is never 3.0000000001 → 4.
    return math.ceil(round(demand / target, 6))


def _load(average: tuple[float, float], ready: int, target: float) -> str:
    in_flight, queued = average
    text = f"in flight {_number(in_flight)}"
    if queued:
        text += f" + {_number(queued)} queued"
    plural = "" if ready == 1 else "s"
    return f"{text} over {ready} instance{plural} {TIMES} {_number(target)}"


def _rate(direction: str, config: AutoScalingConfiguration) -> str:
    if direction == "up":
        return f"at most {TIMES}{_number(config.max_scale_up_rate)} up"
    if config.max_scale_down_rate == 2:
        return "at most halving"
    return f"at most /{_number(config.max_scale_down_rate)} down"


def _number(value: float) -> str:
    """340.0 → "340", 54.1666 → "54.2", 0.01666 → "0.017" (not "0", which it is not)."""
    if 0 < abs(value) < 0.05:
        return f"{value:.2g}"
    return f"{value:.1f}".removesuffix(".0")
