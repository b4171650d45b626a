"""`instance_counts.serving`: a service's size as its autoscaler sees it."""

from __future__ import annotations

from baepo.control.instance_counts import serving
from baepo.router import Check, Route, RouteState, Server, ServerHealth, ServerState

UP = ServerHealth(True, "Layer7 check passed")
DOWN = ServerHealth(False, "Layer7 wrong status")


def state(*servers: tuple[str, ServerState], health: dict[str, ServerHealth]) -> RouteState:
    made = tuple(
        Server(name, f"10.0.0.{n + 2}:8080", ready) for n, (name, ready) in enumerate(servers)
    )
    return RouteState(Route("app", ("app.localhost",), made, check=Check()), {}, health)


def test_the_ready_instances_of_the_revision_with_the_most() -> None:
    ready, drain = ServerState.READY, ServerState.DRAIN
    deploy = state(
        ("app-1-a", ready), ("app-1-b", ready), ("app-2-c", ready), ("app-2-d", drain), health={}
    )
    assert serving("app", deploy) == 2
    assert serving("app", None) == 0


def test_an_instance_the_checks_find_down_is_not_counted_beside_its_replacement() -> None:
    ready = ServerState.READY
    replacing = state(("app-1-a", ready), ("app-1-b", ready), health={"app-1-a": DOWN})
    assert serving("app", replacing) == 1
    checked = state(("app-1-a", ready), ("app-1-b", ready), health={"app-1-a": UP})
    assert serving("app", checked) == 2
