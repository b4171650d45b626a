"""One suite for the `Router` interface, run against the tests' `MemoryRouter` and a real HAProxy.

Whatever `control/` learns from the fake must hold for the real data plane.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

import pytest

from baepo.router import (
    Check,
    HAProxyUnavailable,
    InvalidRoute,
    Route,
    Router,
    RouteState,
    Server,
    ServerHealth,
    ServerState,
)
from tests.fakes.router import MemoryRouter
from tests.router.backends import Backend
from tests.router.conftest import Plane, free_port


class Harness(Protocol):
    router: Router

    def address(self, name: str) -> str: ...

    def busy(self, service: str, host: str, server: str) -> AbstractContextManager[None]: ...

    def dead_address(self) -> str:
        """An address where nothing answers (a health check there fails)."""
        ...

    def break_down(self) -> None:
        """The data plane goes away."""
        ...


class MemoryHarness:
    def __init__(self) -> None:
        self.memory = MemoryRouter()
        self.router: Router = self.memory
        self._port = 20000

    def address(self, name: str) -> str:
        self._port += 1
        return f"127.0.0.1:{self._port}"

    @contextmanager
    def busy(self, service: str, host: str, server: str) -> Iterator[None]:
        self.memory.in_flight.setdefault(service, {})[server] = 1
        yield
        self.memory.in_flight[service][server] = 0

    def dead_address(self) -> str:
        address = self.address("dead")
        self.memory.unreachable.add(address)
        return address

    def break_down(self) -> None:
        self.memory.available = False


class HAProxyHarness:
    def __init__(self, plane: Plane, backends: dict[str, Backend]) -> None:
        self.plane = plane
        self.router: Router = plane.router
        self.backends = backends

    def address(self, name: str) -> str:
        return self.backends[name].address

    @contextmanager
    def busy(self, service: str, host: str, server: str) -> Iterator[None]:
        """Hold one slow request on `server` (the only ready server of `service`); it must
        succeed whatever the test did to the route meanwhile."""
        result: list[int] = []
        thread = threading.Thread(
            target=lambda: result.append(self.plane.get(host, "/slow?seconds=1.5").status_code)
        )
        thread.start()
        wait_until(lambda: in_flight(self.router, service, server) >= 1)
        try:
            yield
        finally:
            thread.join()
        assert result == [200]
        wait_until(lambda: in_flight(self.router, service, server) == 0)

    def dead_address(self) -> str:
        return f"127.0.0.1:{free_port()}"

    def break_down(self) -> None:
        self.plane.router.stop()


def got(router: Router, service: str) -> RouteState:
    state = router.get(service)
    assert state is not None, f"no route for {service}"
    return state


def in_flight(router: Router, service: str, server: str) -> int:
    state = router.get(service)
    return state.in_flight.get(server, 0) if state else 0


def wait_until(condition: object, timeout: float = 10.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.fixture(params=["memory", pytest.param("haproxy", marks=pytest.mark.integration)])
def harness(request: pytest.FixtureRequest) -> Harness:
    if request.param == "memory":
        return MemoryHarness()
    plane = request.getfixturevalue("plane")
    return HAProxyHarness(plane, request.getfixturevalue("backends"))


def states(router: Router, service: str) -> dict[str, ServerState]:
    return {s.name: s.state for s in got(router, service).route.servers}


def test_a_route_put_is_what_get_returns(harness: Harness) -> None:
    router = harness.router
    a = harness.address("a")
    route = Route("app", ("app.localhost", "www.example.com"), (Server("a", a),), 10)
    router.put(route)
    router.put(route)  # idempotent
    assert got(router, "app") == RouteState(route, {"a": 0})


def test_a_server_put_at_a_new_address_moves_there(harness: Harness) -> None:
    router = harness.router
    router.put(Route("app", ("app.localhost",), (Server("a", harness.address("a")),)))
    moved = Route("app", ("app.localhost",), (Server("a", harness.address("b")),))
    router.put(moved)
    assert got(router, "app").route == moved


def test_drain_then_drop_a_server(harness: Harness) -> None:
    router = harness.router
    a = Server("a", harness.address("a"))
    b = Server("b", harness.address("b"))
    drained = Server("a", a.address, ServerState.DRAIN)
    router.put(Route("app", ("app.localhost",), (a, b)))
    router.put(Route("app", ("app.localhost",), (drained, b)))
    assert states(router, "app") == {"a": ServerState.DRAIN, "b": ServerState.READY}
    router.put(Route("app", ("app.localhost",), (a, b)))
    assert states(router, "app")["a"] is ServerState.READY  # ready again
    router.put(Route("app", ("app.localhost",), (drained, b)))
    router.put(Route("app", ("app.localhost",), (b,)))
    router.put(Route("app", ("app.localhost",), (b,)))  # idempotent
    assert states(router, "app") == {"b": ServerState.READY}
    assert got(router, "app").in_flight == {"b": 0}


def test_a_busy_server_dropped_from_its_route_finishes_its_requests(harness: Harness) -> None:
    router = harness.router
    router.put(Route("app", ("app.localhost",), (Server("a", harness.address("a")),)))
    with harness.busy("app", "app.localhost", "a"):
        assert got(router, "app").in_flight["a"] >= 1
        router.put(Route("app", ("app.localhost",)))
        assert got(router, "app").route.servers == ()
    assert got(router, "app").in_flight == {}


def test_a_service_without_a_route(harness: Harness) -> None:
    router = harness.router
    assert router.get("nope") is None
    router.remove("nope")  # idempotent
    assert router.get("nope") is None


def test_pause_resume_and_remove_a_route(harness: Harness) -> None:
    router = harness.router
    a = Server("a", harness.address("a"))
    router.put(Route("app", ("app.localhost",), (a,), paused=True))
    assert got(router, "app").route.paused
    router.put(Route("app", ("app.localhost",), (a,), max_concurrency=3))
    assert got(router, "app").route == Route("app", ("app.localhost",), (a,), 3)
    router.remove("app")
    router.remove("app")  # idempotent
    assert router.get("app") is None


def test_put_converges_one_route_and_leaves_the_others(harness: Harness) -> None:
    router = harness.router
    old = Route("old", ("old.localhost",))
    router.put(old)
    router.put(Route("app", ("app.localhost",), (Server("gone", harness.address("gone")),)))
    wanted = Route(
        "app",
        ("app.localhost", "app2.localhost"),
        (
            Server("a", harness.address("a")),
            Server("b", harness.address("b"), ServerState.DRAIN),
        ),
        max_concurrency=5,
    )
    router.put(wanted)
    router.put(Route("new", ("new.localhost",), paused=True))
    assert got(router, "app") == RouteState(wanted, {"a": 0, "b": 0})
    assert got(router, "old") == RouteState(old, {})
    assert got(router, "new").route.paused


def test_a_host_name_belongs_to_one_route(harness: Harness) -> None:
    router = harness.router
    router.put(Route("app", ("app.localhost", "shop.example.com")))
    with pytest.raises(InvalidRoute):
        router.put(Route("blog", ("blog.localhost", "shop.example.com")))
    assert router.get("blog") is None
    assert got(router, "app").route.hostnames == ("app.localhost", "shop.example.com")


def test_a_router_that_is_down_refuses_changes(harness: Harness) -> None:
    harness.break_down()
    with pytest.raises(HAProxyUnavailable):
        harness.router.put(Route("app", ("app.localhost",)))


def test_states_is_every_routes_get_at_once(harness: Harness) -> None:
    router = harness.router
    assert router.states() == {}
    router.put(Route("app", ("app.localhost",), (Server("a", harness.address("a")),)))
    router.put(Route("api", ("api.localhost",), (Server("b", harness.address("b")),)))
    states = router.states()
    assert states == {"app": got(router, "app"), "api": got(router, "api")}


def test_the_router_checks_the_servers_of_a_route_with_a_check(harness: Harness) -> None:
    router = harness.router
    live, dead = harness.address("a"), harness.dead_address()
    check = Check(interval_s=1, timeout_s=1, rise=1, fall=1)
    router.put(
        Route("app", ("app.localhost",), (Server("a", live), Server("b", dead)), check=check)
    )

    def verdicts() -> dict[str, bool]:
        return {name: v.up for name, v in router.states()["app"].health.items()}

    wait_until(lambda: verdicts() == {"a": True, "b": False})
    down = got(router, "app").health["b"]
    assert isinstance(down, ServerHealth) and "Layer4" in down.detail
    # A route without a check has no verdicts: every server is taken as up.
    router.put(Route("app", ("app.localhost",), (Server("a", live), Server("b", dead))))
    wait_until(lambda: got(router, "app").health == {})


def test_an_http_check_wants_a_2xx_answer_on_its_path(harness: Harness) -> None:
    if isinstance(harness, MemoryHarness):
        pytest.skip("the memory router sends no request to check")
    router = harness.router
    check = Check("/status/404", interval_s=1, timeout_s=1, rise=1, fall=1)
    router.put(Route("app", ("app.localhost",), (Server("a", harness.address("a")),), check=check))
    wait_until(lambda: not got(router, "app").health.get("a", ServerHealth(True, "")).up)
    assert "Layer7 wrong status" in got(router, "app").health["a"].detail
    # Another path (a new revision's check): the route's backend is reloaded with it.
    router.put(
        Route(
            "app",
            ("app.localhost",),
            (Server("a", harness.address("a")),),
            check=Check("/healthz", interval_s=1, timeout_s=1, rise=1, fall=1),
        )
    )
    wait_until(lambda: got(router, "app").health.get("a", ServerHealth(False, "")).up)
