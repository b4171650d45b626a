"""The autoscaler's decision, driven by a fake clock: plain numbers for `now`, one observation
and one decision a second, no sleeping.

`simulate` plays a service under a load: each second the router reports the load as requests
in flight (up to max_concurrency per ready instance) and queued (the rest), the autoscaler
decides, and the ready count follows the decision (new instances after `start_s`, surplus ones
at once). Hypothesis checks the invariants on arbitrary observation sequences.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st

from baepo.clock import FakeClock
from baepo.control import InvalidServiceSpec
from baepo.control.autoscaling import (
    Autoscaler,
    AutoScalingConfiguration,
    Decision,
    InvalidAutoScalingConfiguration,
)

X = "\N{MULTIPLICATION SIGN}"
"""The multiplication sign of the reasons ("in flight 340 over 3 instances {X} 70 → 5")."""
STEP_CONFIG = AutoScalingConfiguration(max_concurrency=50)
"""The issue's load step: max concurrency 50, so 35 requests per instance at 70 %."""


@dataclass(frozen=True)
class Tick:
    t: int
    load: int
    ready: int
    """Ready instances when the decision was made."""
    decision: Decision


def simulate(
    autoscaler: Autoscaler,
    load: Callable[[int], int],
    seconds: range,
    *,
    ready: int = 1,
    start_s: int = 0,
) -> list[Tick]:
    per_instance = autoscaler.configuration.max_concurrency
    starting: list[int] = []  # when each instance being started is ready
    ticks = []
    for t in seconds:
        ready += sum(1 for at in starting if at <= t)
        starting = [at for at in starting if at > t]
        demand = load(t)
        served = min(demand, ready * per_instance)
        autoscaler.observe(t, served, demand - served)
        decision = autoscaler.decide(t, ready)
        ticks.append(Tick(t, demand, ready, decision))
        missing = decision.desired - ready - len(starting)
        if missing > 0:
            starting += [t + start_s] * missing
        elif missing < 0:
            cancelled = min(len(starting), -missing)
            starting = starting[cancelled:]
            ready -= -missing - cancelled
        if start_s == 0:
            ready += len(starting)
            starting = []
    return ticks


def step(before: int, after: int, at: int) -> Callable[[int], int]:
    return lambda t: before if t < at else after


def desired(ticks: list[Tick]) -> list[int]:
    return [tick.decision.desired for tick in ticks]


# --- Scaling up ---------------------------------------------------------------------------


def test_a_load_step_scales_up_within_the_panic_window() -> None:
    autoscaler = Autoscaler(STEP_CONFIG)
    ticks = simulate(autoscaler, step(5, 300, at=120), range(0, 180), start_s=2)
    before, after = ticks[:120], ticks[120:]
    assert set(desired(before)) == {1}
    assert not any(tick.decision.panic for tick in before)

    # The first second of the step asks for more, and panic mode takes over.
    assert after[0].decision.desired > 1
    assert after[0].decision.panic
    assert after[0].decision.reason.startswith("panic: ")
    # Within the panic window (6 s) it asks for all it needs: 300 / 35 → 9.
    needed = math.ceil(300 / 35)
    assert max(desired(after[:6])) == needed
    # … and never asks for less while the load lasts.
    first = desired(after).index(needed)
    assert set(desired(after[first:])) == {needed}


def test_a_steady_load_holds() -> None:
    autoscaler = Autoscaler(STEP_CONFIG)
    ticks = simulate(autoscaler, lambda t: 300, range(0, 600), start_s=2)
    settled = ticks[120:]
    assert set(desired(settled)) == {9}
    assert {tick.ready for tick in settled} == {9}
    assert not settled[-1].decision.panic
    assert settled[-1].decision.reason == f"in flight 300 over 9 instances {X} 35 → 9"


def test_scale_up_is_limited_by_the_scale_up_rate() -> None:
    config = AutoScalingConfiguration(max_scale_up_rate=2)
    ticks = simulate(Autoscaler(config), step(0, 1000, at=10), range(0, 40))
    growth = [(tick.ready, tick.decision.desired) for tick in ticks]
    assert all(want <= max(1, ready) * 2 for ready, want in growth)
    assert [want for _, want in growth[10:13]] == [2, 4, 8]
    assert ticks[-1].decision.desired == math.ceil(1000 / 70)


# --- Scaling down -------------------------------------------------------------------------


def test_when_the_load_stops_it_halves_after_the_delay_down_to_min() -> None:
    autoscaler = Autoscaler(STEP_CONFIG)
    simulate(autoscaler, lambda t: 300, range(0, 300))
    ticks = simulate(autoscaler, lambda t: 0, range(300, 420), ready=9)

    # The last request was seen at 299: nothing goes before the idle period and the delay
    # (30 s) have passed.
    assert set(desired(ticks[:29])) == {9}
    first = ticks[29]
    assert first.decision.reason == "no request for 30 s → 0; at most halving → 4"
    # At most halving per decision, down to min_size.
    for tick in ticks:
        assert tick.decision.desired >= tick.ready // 2
    assert desired(ticks)[29:33] == [4, 2, 1, 1]
    assert ticks[-1].decision.desired == ticks[-1].ready == 1


def test_a_lower_load_applies_only_after_the_scale_down_delay() -> None:
    autoscaler = Autoscaler(STEP_CONFIG)
    simulate(autoscaler, lambda t: 300, range(0, 300))
    ticks = simulate(autoscaler, lambda t: 35, range(300, 500), ready=9)

    lower = next(tick for tick in ticks if tick.decision.desired < 9)
    assert lower.t - 300 >= 30
    assert lower.decision.panic is False
    assert all(tick.decision.desired >= tick.ready // 2 for tick in ticks)
    # The stable window forgets the old load; 35 requests need one instance.
    assert ticks[-1].decision.desired == 1
    assert ticks[-1].decision.reason == f"in flight 35 over 1 instance {X} 35 → 1"


def test_with_no_scale_down_delay_a_lower_load_applies_at_once() -> None:
    config = AutoScalingConfiguration(max_concurrency=50, scale_down_delay_s=0)
    autoscaler = Autoscaler(config)
    simulate(autoscaler, lambda t: 300, range(0, 300))
    ticks = simulate(autoscaler, lambda t: 35, range(300, 400), ready=9)
    # The stable average falls under 8 x 35 after 5 s.
    assert next(tick.t for tick in ticks if tick.decision.desired < 9) - 300 < 10


# --- Scale to zero ------------------------------------------------------------------------


@pytest.mark.parametrize(("idle_period_s", "delay_s", "zero_after_s"), [(30, 30, 30), (60, 30, 60)])
def test_min_zero_goes_to_zero_after_the_idle_period_and_not_before(
    idle_period_s: int, delay_s: int, zero_after_s: int
) -> None:
    config = AutoScalingConfiguration(
        min_size=0, idle_period_s=idle_period_s, scale_down_delay_s=delay_s
    )
    autoscaler = Autoscaler(config)
    simulate(autoscaler, lambda t: 3, range(0, 120))
    ticks = simulate(autoscaler, lambda t: 0, range(120, 300))

    last_request = 119
    zero = next(tick for tick in ticks if tick.decision.desired == 0)
    assert zero.t - last_request == zero_after_s
    assert zero.decision.reason == f"no request for {zero_after_s} s → 0"
    assert all(tick.decision.desired == 1 for tick in ticks if tick.t < zero.t)
    assert all(tick.decision.desired == 0 for tick in ticks if tick.t >= zero.t)


def test_the_scale_down_delay_can_hold_the_last_instance_longer_than_the_idle_period() -> None:
    config = AutoScalingConfiguration(min_size=0, idle_period_s=30, scale_down_delay_s=90)
    autoscaler = Autoscaler(config)
    simulate(autoscaler, lambda t: 3, range(0, 120))
    ticks = simulate(autoscaler, lambda t: 0, range(120, 300))
    assert next(tick.t for tick in ticks if tick.decision.desired == 0) - 119 == 90


def test_a_request_at_zero_starts_one_instance() -> None:
    autoscaler = Autoscaler(AutoScalingConfiguration(min_size=0))
    idle = simulate(autoscaler, lambda t: 0, range(0, 100), ready=0)
    assert set(desired(idle)) == {0}

    # The activator holds the request; it shows as queued, with no instance to serve it.
    autoscaler.observe(100, 0, 1)
    decision = autoscaler.decide(100, 0)
    assert decision.desired == 1
    # (One request in the last minute: 1/60 on average.)
    assert decision.reason == f"in flight 0 + 0.017 queued over 0 instances {X} 70 → 1"


@pytest.mark.parametrize("held", [1, 50, 300])
def test_many_requests_at_zero_start_one_instance(held: int) -> None:
    autoscaler = Autoscaler(AutoScalingConfiguration(min_size=0))
    simulate(autoscaler, lambda t: 0, range(0, 100), ready=0)
    autoscaler.observe(100, 0, held)
    assert autoscaler.decide(100, 0).desired == 1


def test_a_service_at_zero_stays_up_while_requests_come() -> None:
    autoscaler = Autoscaler(AutoScalingConfiguration(min_size=0))
    ticks = simulate(autoscaler, lambda t: 0 if t < 100 else 1, range(0, 400), ready=0)
    assert desired(ticks)[100:] == [1] * 300


def test_short_requests_counted_as_arrived_keep_the_service_up() -> None:
    """Requests shorter than a second may never show in flight when sampled."""
    autoscaler = Autoscaler(AutoScalingConfiguration(min_size=0))
    for t in range(300):
        autoscaler.observe(t, 0, 0, arrived=3)
        assert autoscaler.decide(t, 1).desired == 1
    assert autoscaler.decide(299, 1).reason == (
        f"in flight 0 over 1 instance {X} 70 → 0; requests in the last 30 s → 1"
    )


# --- Bursts and panic ---------------------------------------------------------------------


def test_a_burst_shorter_than_the_panic_window_is_averaged_over_it() -> None:
    autoscaler = Autoscaler(STEP_CONFIG)
    # 60 requests for one second: the panic window averages it with 5 seconds of 20 (26.7).
    ticks = simulate(autoscaler, lambda t: 60 if t == 100 else 20, range(0, 200))
    assert set(desired(ticks)) == {1}
    assert not any(tick.decision.panic for tick in ticks)


def test_a_big_short_burst_panics_and_holds_until_a_stable_window_has_passed() -> None:
    autoscaler = Autoscaler(STEP_CONFIG)
    burst = {100, 101}
    ticks = simulate(autoscaler, lambda t: 300 if t in burst else 20, range(0, 400))
    during = [tick for tick in ticks if tick.decision.panic]
    assert during[0].t == 100
    # (4 x 20 + 2 x 300) / 6 = 113 in the panic window → 4 instances, and no fewer in panic.
    assert max(desired(ticks)) == 4
    assert all(tick.decision.desired == 4 for tick in during[1:])
    # Panic ends a stable window after its condition last held; then the delay, then down.
    assert 160 <= during[-1].t <= 170
    assert ticks[-1].decision.desired == 1
    calm = [tick for tick in ticks if tick.t > during[-1].t]
    assert all(tick.decision.desired >= tick.ready // 2 for tick in calm)


def test_panic_never_scales_down() -> None:
    autoscaler = Autoscaler(STEP_CONFIG)
    simulate(autoscaler, lambda t: 5, range(0, 60))
    autoscaler.observe(60, 50, 250)
    assert autoscaler.decide(60, 1).panic
    # The burst is gone and even the stable average wants 1, but panic holds what it asked.
    ticks = simulate(autoscaler, lambda t: 0, range(61, 100), ready=2)
    assert all(tick.decision.panic for tick in ticks)
    assert set(desired(ticks)) == {2}
    assert ticks[-1].decision.reason.endswith("panic, not scaling down → 2")


# --- Missing data -------------------------------------------------------------------------


def test_without_observations_the_current_count_stays() -> None:
    assert Autoscaler().decide(0, 3) == Decision(3, "no observations yet: keeping 3", False)
    config = AutoScalingConfiguration(min_size=2)
    assert Autoscaler(config).decide(0, 0).reason == "no observations yet: keeping 0; min 2 → 2"


def test_stale_observations_keep_the_current_count() -> None:
    autoscaler = Autoscaler()
    simulate(autoscaler, lambda t: 0, range(0, 100), ready=3)
    # The stats stop coming: silence is not idleness.
    decision = autoscaler.decide(110, 3)
    assert decision.desired == 3
    assert decision.reason == "no observation for 11 s: keeping 3"


def test_a_new_autoscaler_watches_for_the_delay_before_scaling_down() -> None:
    """After a restart the history is gone: a quiet first second says nothing."""
    autoscaler = Autoscaler()
    ticks = simulate(autoscaler, lambda t: 10, range(1000, 1060), ready=5)
    assert ticks[0].decision.reason == (
        f"in flight 10 over 5 instances {X} 70 → 1; at most halving → 2; "
        "watching 30 s before scaling down → 5"
    )
    assert next(tick.t for tick in ticks if tick.decision.desired < 5) == 1030


def test_a_new_autoscaler_without_requests_waits_for_the_idle_period() -> None:
    autoscaler = Autoscaler(AutoScalingConfiguration(min_size=0))
    ticks = simulate(autoscaler, lambda t: 0, range(1000, 1040), ready=3)
    assert desired(ticks)[:30] == [3] * 30
    assert desired(ticks)[30:34] == [1, 0, 0, 0]


def test_driven_by_the_clock_the_loop_will_use() -> None:
    """The loop reads `Clock.monotonic()`; FakeClock jumps, so 30 idle seconds take none."""
    clock = FakeClock()
    autoscaler = Autoscaler(AutoScalingConfiguration(min_size=0))
    ready, zero_at = 1, None
    for second in range(120):
        autoscaler.observe(clock.monotonic(), 2 if second < 30 else 0, 0)
        ready = autoscaler.decide(clock.monotonic(), ready).desired
        if ready == 0 and zero_at is None:
            zero_at = second
        clock.advance(1)
    assert zero_at == 29 + 30


def test_observations_out_of_order_count_as_the_latest() -> None:
    autoscaler = Autoscaler()
    autoscaler.observe(10.5, 70, 0)
    autoscaler.observe(9.0, 140, 0)
    assert autoscaler.decide(8.0, 1).stable_demand == 105


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        Autoscaler().observe(0, -1, 0)


# --- Reasons ------------------------------------------------------------------------------


def steady(
    config: AutoScalingConfiguration, in_flight: int, ready: int, seconds: int = 120
) -> Decision:
    autoscaler = Autoscaler(config)
    for t in range(seconds):
        autoscaler.observe(t, in_flight, 0)
        decision = autoscaler.decide(t, ready)
    return decision


@pytest.mark.parametrize(
    ("config", "in_flight", "ready", "reason"),
    [
        (AutoScalingConfiguration(), 340, 3, f"in flight 340 over 3 instances {X} 70 → 5"),
        (AutoScalingConfiguration(), 140, 2, f"in flight 140 over 2 instances {X} 70 → 2"),
        (
            AutoScalingConfiguration(scale_down_delay_s=0),
            10,
            8,
            f"in flight 10 over 8 instances {X} 70 → 1; at most halving → 4",
        ),
        (
            AutoScalingConfiguration(scale_down_delay_s=0, max_scale_down_rate=4),
            10,
            8,
            f"in flight 10 over 8 instances {X} 70 → 1; at most /4 down → 2",
        ),
        (
            AutoScalingConfiguration(),
            3000,
            25,
            f"in flight 3000 over 25 instances {X} 70 → 43; max 25 → 25",
        ),
        (
            AutoScalingConfiguration(min_size=3),
            10,
            3,
            f"in flight 10 over 3 instances {X} 70 → 1; min 3 → 3",
        ),
        (
            AutoScalingConfiguration(max_scale_up_rate=2),
            700,
            1,
            f"panic: in flight 700 over 1 instance {X} 70 → 10; at most {X}2 up → 2",
        ),
        (
            AutoScalingConfiguration(max_concurrency=7, target_utilization_percent=50),
            7,
            2,
            f"in flight 7 over 2 instances {X} 3.5 → 2",
        ),
    ],
)
def test_reasons(config: AutoScalingConfiguration, in_flight: int, ready: int, reason: str) -> None:
    assert steady(config, in_flight, ready).reason == reason


def test_the_reason_names_the_scale_down_delay() -> None:
    autoscaler = Autoscaler()
    for t in range(120):
        autoscaler.observe(t, 340, 0)
        autoscaler.decide(t, 5)
    for t in range(120, 140):
        autoscaler.observe(t, 100, 0)
    # (40 s of 340 and 20 s of 100: 260 on average.)
    assert autoscaler.decide(139, 5).reason == (
        f"in flight 260 over 5 instances {X} 70 → 4; kept for the 30 s scale-down delay → 5"
    )


def test_the_reason_at_zero() -> None:
    autoscaler = Autoscaler(AutoScalingConfiguration(min_size=0))
    ticks = simulate(autoscaler, lambda t: 0, range(0, 40), ready=1)
    assert ticks[-1].decision.reason == "no request for 39 s → 0"
    assert ticks[30].decision.reason == "no request for 30 s → 0"


# --- Configuration ------------------------------------------------------------------------


def test_the_defaults_are_app_runners_and_knatives() -> None:
    config = AutoScalingConfiguration()
    assert (config.min_size, config.max_size, config.max_concurrency) == (1, 25, 100)
    assert config.target == 70
    assert (config.stable_window_s, config.panic_window_s) == (60, 6)
    assert (config.panic_threshold_percent, config.max_scale_down_rate) == (200, 2)
    assert config.max_scale_up_rate == 1000
    assert (config.scale_down_delay_s, config.idle_period_s) == (30, 30)


@pytest.mark.parametrize(
    "fields",
    [
        {"min_size": 0},
        {"min_size": 25, "max_size": 25},
        {"max_size": 1, "min_size": 1},
        {"max_concurrency": 1},
        {"max_concurrency": 200},
        {"target_utilization_percent": 100, "panic_threshold_percent": 110},
        {"stable_window_s": 6, "panic_window_s": 6},
        {"stable_window_s": 3600, "scale_down_delay_s": 3600, "idle_period_s": 3600},
        {"scale_down_delay_s": 0, "max_scale_down_rate": 1.5, "max_scale_up_rate": 1.1},
    ],
)
def test_configurations_at_the_bounds_are_valid(fields: dict[str, float]) -> None:
    AutoScalingConfiguration(**fields)  # type: ignore[arg-type]  # ints and floats, by name


@pytest.mark.parametrize(
    ("fields", "problems"),
    [
        ({"min_size": -1}, [("min_size", "must be between 0 and 25 (got -1)")]),
        (
            {"min_size": 3, "max_size": 2},
            [("min_size", "must not exceed max_size (3 > 2)")],
        ),
        ({"max_size": 0, "min_size": 0}, [("max_size", "must be between 1 and 25 (got 0)")]),
        ({"max_size": 26}, [("max_size", "must be between 1 and 25 (got 26)")]),
        ({"max_concurrency": 0}, [("max_concurrency", "must be between 1 and 200 (got 0)")]),
        ({"max_concurrency": 1000}, [("max_concurrency", "must be between 1 and 200 (got 1000)")]),
        (
            {"target_utilization_percent": 0.5},
            [("target_utilization_percent", "must be between 1 and 100 (got 0.5)")],
        ),
        (
            {"target_utilization_percent": float("nan")},
            [("target_utilization_percent", "must be between 1 and 100 (got nan)")],
        ),
        (
            {"stable_window_s": 5},
            [
                ("stable_window_s", "must be between 6 and 3600 (got 5)"),
                ("panic_window_s", "must be between 1 and 5 (got 6)"),
            ],
        ),
        ({"panic_window_s": 0}, [("panic_window_s", "must be between 1 and 60 (got 0)")]),
        (
            {"panic_threshold_percent": 100},
            [("panic_threshold_percent", "must be between 110 and 1000 (got 100)")],
        ),
        (
            {"max_scale_down_rate": 1},
            [("max_scale_down_rate", "must be greater than 1 and at most 1000 (got 1)")],
        ),
        (
            {"max_scale_up_rate": float("inf")},
            [("max_scale_up_rate", "must be greater than 1 and at most 1000 (got inf)")],
        ),
        (
            {"scale_down_delay_s": -1},
            [("scale_down_delay_s", "must be between 0 and 3600 (got -1)")],
        ),
        ({"idle_period_s": 0}, [("idle_period_s", "must be between 1 and 3600 (got 0)")]),
        ({"min_size": 1.5}, [("min_size", "must be a whole number (got 1.5)")]),
        ({"idle_period_s": 0.5}, [("idle_period_s", "must be a whole number (got 0.5)")]),
        ({"max_size": True}, [("max_size", "must be a whole number (got True)")]),
        ({"max_scale_up_rate": "2"}, [("max_scale_up_rate", "must be a number (got '2')")]),
        (
            {"min_size": 30, "max_concurrency": 0},
            [
                ("min_size", "must be between 0 and 25 (got 30)"),
                ("min_size", "must not exceed max_size (30 > 25)"),
                ("max_concurrency", "must be between 1 and 200 (got 0)"),
            ],
        ),
    ],
)
def test_a_bad_configuration_names_every_problem(
    fields: dict[str, object], problems: list[tuple[str, str]]
) -> None:
    with pytest.raises(InvalidAutoScalingConfiguration) as caught:
        AutoScalingConfiguration(**fields)  # type: ignore[arg-type]  # wrong on purpose
    assert list(caught.value.problems) == problems
    assert caught.value.field == problems[0][0]
    # The API answers it like any bad service spec: 400 INVALID_SERVICE_SPEC, fields named.
    assert isinstance(caught.value, InvalidServiceSpec)


# --- Invariants ---------------------------------------------------------------------------


@st.composite
def configurations(draw: st.DrawFn) -> AutoScalingConfiguration:
    max_size = draw(st.integers(1, 25))
    stable = draw(st.integers(6, 120))
    return AutoScalingConfiguration(
        min_size=draw(st.integers(0, max_size)),
        max_size=max_size,
        max_concurrency=draw(st.integers(1, 200)),
        target_utilization_percent=draw(st.sampled_from([1, 50, 70, 100])),
        stable_window_s=stable,
        panic_window_s=draw(st.integers(1, stable)),
        panic_threshold_percent=draw(st.sampled_from([110, 200, 1000])),
        max_scale_down_rate=draw(st.sampled_from([1.5, 2, 3, 1000])),
        max_scale_up_rate=draw(st.sampled_from([1.1, 2, 1000])),
        scale_down_delay_s=draw(st.sampled_from([0, 1, 30, 90])),
        idle_period_s=draw(st.sampled_from([1, 30, 60])),
    )


@dataclass(frozen=True)
class Event:
    dt: float
    in_flight: int
    queued: int
    arrived: int
    ready: int
    decide: bool


EVENTS = st.lists(
    st.builds(
        Event,
        dt=st.sampled_from([0, 0.25, 1, 1, 1, 2, 7, 45]),
        in_flight=st.one_of(st.just(0), st.integers(0, 5), st.integers(0, 5000)),
        queued=st.one_of(st.just(0), st.integers(0, 2), st.integers(0, 500)),
        arrived=st.one_of(st.just(0), st.integers(0, 10)),
        ready=st.one_of(st.integers(0, 2), st.integers(0, 40)),
        decide=st.booleans(),
    ),
    max_size=150,
)


def play(
    config: AutoScalingConfiguration, events: list[Event]
) -> list[tuple[Event, float, Decision]]:
    autoscaler = Autoscaler(config)
    now = 1000.0
    played = []
    for event in events:
        now += event.dt
        if event.decide:
            played.append((event, now, autoscaler.decide(now, event.ready)))
        else:
            autoscaler.observe(now, event.in_flight, event.queued, event.arrived)
    return played


QUIET = Event(dt=1, in_flight=0, queued=0, arrived=0, ready=0, decide=False)
BUSY = Event(dt=1, in_flight=0, queued=0, arrived=1, ready=0, decide=False)


def decide(ready: int, dt: float = 1) -> Event:
    return Event(dt=dt, in_flight=0, queued=0, arrived=0, ready=ready, decide=True)


@seed(9)
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configurations(), EVENTS)
@example(AutoScalingConfiguration(min_size=0), [QUIET, decide(3)])  # a restart
@example(AutoScalingConfiguration(min_size=0), [BUSY, decide(1, dt=29)])  # a request, then quiet
@example(AutoScalingConfiguration(min_size=0), [BUSY, decide(1, dt=30)])
def test_invariants(config: AutoScalingConfiguration, events: list[Event]) -> None:
    played = play(config, events)
    assert played == play(config, events), "the same inputs give the same decisions"

    quiet_needed = max(config.idle_period_s, config.scale_down_delay_s)
    first: float | None = None
    last_active: float | None = None
    now = 1000.0
    decisions = iter(played)
    for event in events:
        now += event.dt
        if not event.decide:
            first = now if first is None else first
            if event.in_flight or event.queued or event.arrived:
                last_active = now
            continue
        _, _, decision = next(decisions)
        ready, want = event.ready, decision.desired
        assert config.min_size <= want <= config.max_size, decision.reason
        assert want >= min(math.floor(ready / config.max_scale_down_rate), config.max_size)
        if decision.panic:
            assert want >= min(ready, config.max_size), decision.reason
        if first is None or now - first < config.scale_down_delay_s:
            assert want >= min(ready, config.max_size), "down before watching for the delay"
        if want == 0:
            assert config.min_size == 0
            assert last_active is None or now - last_active >= quiet_needed, decision.reason
