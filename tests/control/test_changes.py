"""A pass's inputs as one signature: equal inputs, equal signature; any change shows."""

from __future__ import annotations

import dataclasses

from baepo.control.changes import ChangeTracker, ServiceKey, signature
from baepo.router import Check, Route, RouteState, Server, ServerHealth
from baepo.runtime import Instance
from baepo.runtime.engine import Limits

KEY = ServiceKey("id1", "app", ("2026-12-02", 1, 1, False, False, "RUNNING", 3, 0))
ROUTE = Route("app", ("app.localhost",), (Server("i1", "10.0.0.2:8080"),), check=Check())
STATE = RouteState(ROUTE, {"i1": 0}, {"i1": ServerHealth(True, "Layer4 check passed")})
CONTAINER = Instance(
    id="c1",
    name="app-1",
    image="app@sha256:x",
    image_id="sha256:x",
    labels={},
    state="running",
    exit_code=None,
    port=8080,
    address="10.0.0.2:8080",
    started_at=None,
    finished_at=None,
    oom_killed=False,
    error="",
    limits=Limits(None, None, None, True, (), ()),
)


def test_the_same_inputs_give_the_same_signature_and_in_flight_counts_do_not_matter() -> None:
    busy = dataclasses.replace(STATE, in_flight={"i1": 7})
    assert signature(KEY, [CONTAINER], STATE) == signature(KEY, [CONTAINER], busy)


def test_each_input_changes_the_signature() -> None:
    base = signature(KEY, [CONTAINER], STATE)
    changes = [
        signature(dataclasses.replace(KEY, mark=(*KEY.mark[:-2], 4, 1)), [CONTAINER], STATE),
        signature(KEY, [dataclasses.replace(CONTAINER, state="exited")], STATE),
        signature(KEY, [], STATE),
        signature(KEY, [CONTAINER], None),
        signature(KEY, [CONTAINER], dataclasses.replace(STATE, route=ROUTE.without_server("i1"))),
        signature(
            KEY,
            [CONTAINER],
            dataclasses.replace(STATE, health={"i1": ServerHealth(False, "Layer4 timeout")}),
        ),
    ]
    assert all(change != base for change in changes)


def test_a_service_is_quiet_only_after_a_quiet_pass_with_the_same_inputs() -> None:
    tracker = ChangeTracker()
    now = signature(KEY, [CONTAINER], STATE)
    assert tracker.changed(KEY, now)  # never passed over
    tracker.settle(KEY.id, now)
    assert not tracker.changed(KEY, now)
    tracker.unsettle(KEY.id)  # a pass began
    assert tracker.changed(KEY, now)
    tracker.settle(KEY.id, now)
    tracker.forget_all_but([])
    assert tracker.changed(KEY, now)
