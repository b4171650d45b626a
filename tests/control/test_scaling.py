"""The control loop's autoscaling: observations in, a wanted instance count out, at most one
decision a second, and the reason only when the count changes."""

from __future__ import annotations

from baepo.clock import FakeClock
from baepo.control.scaling import Bounds, Scaling

BOUNDS = Bounds(min_instances=1, max_instances=10, max_concurrency=10)


def feed(scaling: Scaling, clock: FakeClock, seconds: int, in_flight: int) -> None:
    for _ in range(seconds):
        scaling.observe("app", in_flight, 0, arrived=in_flight)
        clock.advance(1)


def test_a_service_never_observed_wants_its_minimum() -> None:
    scaling = Scaling(FakeClock())
    wanted = scaling.want("app", BOUNDS, ready=0)
    assert wanted.instances == 1
    assert wanted.reason is None
    assert scaling.want("app", Bounds(2, 10, 10), ready=5).instances == 2  # a lower min applies


def test_observations_that_stop_keep_the_count() -> None:
    clock = FakeClock()
    scaling = Scaling(clock)
    scaling.want("app", BOUNDS, ready=1)
    feed(scaling, clock, 10, in_flight=35)
    assert scaling.want("app", BOUNDS, ready=1).instances == 5
    clock.advance(30)  # the router stopped answering: no observation since
    assert scaling.want("app", BOUNDS, ready=5).instances == 5


def test_load_scales_up_with_the_reason_once() -> None:
    clock = FakeClock()
    scaling = Scaling(clock)
    assert scaling.want("app", BOUNDS, ready=1).instances == 1  # the autoscaler now exists
    feed(scaling, clock, 10, in_flight=35)  # 35 in flight over a target of 7 each: 5
    wanted = scaling.want("app", BOUNDS, ready=1)
    assert wanted.instances == 5
    assert wanted.reason is not None and "→ 5" in wanted.reason
    clock.advance(1)
    scaling.observe("app", 35, 0, arrived=35)
    again = scaling.want("app", BOUNDS, ready=5)
    assert again.instances == 5
    assert again.reason is None  # no change, no event


def test_one_decision_a_second_whatever_the_passes() -> None:
    clock = FakeClock()
    scaling = Scaling(clock)
    scaling.want("app", BOUNDS, ready=1)
    feed(scaling, clock, 10, in_flight=35)
    first = scaling.want("app", BOUNDS, ready=1)
    clock.advance(0.25)
    assert scaling.want("app", BOUNDS, ready=1) == type(first)(first.instances, None)


def test_the_bounds_apply_at_once() -> None:
    clock = FakeClock()
    scaling = Scaling(clock)
    scaling.want("app", BOUNDS, ready=1)
    feed(scaling, clock, 10, in_flight=70)
    assert scaling.want("app", BOUNDS, ready=1).instances == 10
    clock.advance(0.5)
    narrow = Bounds(min_instances=1, max_instances=3, max_concurrency=10)
    assert scaling.want("app", narrow, ready=10).instances == 3
    clock.advance(1)
    assert scaling.want("app", narrow, ready=3).instances == 3


def test_services_that_are_gone_are_forgotten() -> None:
    clock = FakeClock()
    scaling = Scaling(clock)
    scaling.want("app", BOUNDS, ready=1)
    feed(scaling, clock, 10, in_flight=35)
    scaling.forget_all_but([])
    assert scaling.want("app", BOUNDS, ready=0).instances == 1  # a fresh start


ZERO = Bounds(min_instances=0, max_instances=10, max_concurrency=10)


def test_a_min_zero_service_never_observed_keeps_what_runs() -> None:
    # After a restart of Baepo, before the sampler's first reading: nothing is stopped.
    scaling = Scaling(FakeClock())
    assert scaling.want("app", ZERO, ready=2).instances == 2
    assert scaling.want("other", ZERO, ready=0).instances == 0


def test_a_min_zero_service_idles_down_to_zero() -> None:
    clock = FakeClock()
    scaling = Scaling(clock)
    scaling.want("app", ZERO, ready=1)
    feed(scaling, clock, 5, in_flight=1)
    assert scaling.want("app", ZERO, ready=1).instances == 1
    wanted = [scaling.want("app", ZERO, ready=1)]
    for _ in range(40):  # idle: no request for the idle period (30 s) and the delay
        scaling.observe("app", 0, 0)
        clock.advance(1)
        wanted.append(scaling.want("app", ZERO, ready=1))
    assert wanted[-1].instances == 0
    reasons = [w.reason for w in wanted if w.reason is not None]
    assert len(reasons) == 1 and "no request for 3" in reasons[0] and reasons[0].endswith("0")


def idle_at_zero(scaling: Scaling, clock: FakeClock) -> None:
    scaling.want("app", ZERO, ready=0)
    for _ in range(40):
        scaling.observe("app", 0, 0)
        clock.advance(1)
        assert scaling.want("app", ZERO, ready=0).instances == 0


def test_a_demand_at_zero_wants_one_instance_at_once() -> None:
    clock = FakeClock()
    scaling = Scaling(clock)
    idle_at_zero(scaling, clock)
    clock.advance(0.1)  # within the second of the last decision: it would stand
    assert not scaling.waiting("app")
    for _ in range(50):  # fifty requests held at zero: the activator's notices
        scaling.demand("app")
    assert scaling.waiting("app")
    wanted = scaling.want("app", ZERO, ready=0)
    assert wanted.instances == 1, "many requests at zero start one instance"
    assert wanted.reason is not None and wanted.reason.endswith("→ 1")
    clock.advance(0.5)
    scaling.observe("app", 0, 0)
    assert scaling.want("app", ZERO, ready=0).instances == 1  # starting: still one
    clock.advance(5)
    assert not scaling.waiting("app")


def test_a_demand_before_the_first_pass_counts() -> None:
    clock = FakeClock()
    scaling = Scaling(clock)
    scaling.demand("app")  # a request at zero right after Baepo started
    assert scaling.want("app", ZERO, ready=0).instances == 1


def test_a_demand_after_a_restart_keeps_what_runs_and_asks_for_one() -> None:
    clock = FakeClock()
    scaling = Scaling(clock)
    assert scaling.want("app", ZERO, ready=3).instances == 3
    scaling.demand("app")
    assert scaling.want("app", ZERO, ready=3).instances == 3  # watching before scaling down


def test_an_observation_beyond_the_instances_given_asks_for_a_pass_now() -> None:
    clock = FakeClock()
    scaling = Scaling(clock)
    assert scaling.observe("app", 50, 0) is False  # no autoscaler yet: nothing was given
    scaling.want("app", BOUNDS, ready=1)  # one instance, a target of 7 requests
    assert scaling.observe("app", 7, 0) is False  # within its share
    assert scaling.observe("app", 5, 3) is True  # in flight and queued: 8 > 7
    clock.advance(1)
    assert scaling.want("app", BOUNDS, ready=1).instances > 1
    at_max = Bounds(min_instances=1, max_instances=1, max_concurrency=10)
    scaling.want("other", at_max, ready=1)
    assert scaling.observe("other", 500, 0) is False  # no more to start: no hurry


def test_requests_beyond_the_instances_count_as_waiting_for_a_few_seconds() -> None:
    clock = FakeClock()
    scaling = Scaling(clock)
    scaling.want("app", BOUNDS, ready=1)
    scaling.observe("app", 3, 0)
    assert not scaling.waiting("app")
    scaling.observe("app", 50, 20)
    assert scaling.waiting("app")  # a new instance is probed in a hurry
    clock.advance(3)
    assert not scaling.waiting("app")
