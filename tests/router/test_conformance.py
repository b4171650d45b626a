"""One suite for the `Router` interface, run against `MemoryRouter` and a real HAProxy.

Whatever `control/` and `autoscale/` learn from the fake must hold for the real data plane.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

import pytest

from baepo.router import (
    HAProxyUnavailable,
    InvalidRoute,
    MemoryRouter,
    Router,
    RoutingTable,
    Server,
    ServerBusy,
    ServerState,
    Service,
    UnknownServer,
    UnknownService,
)
from tests.router.backends import Backend
from tests.router.conftest import Plane


class Harness(Protocol):
    router: Router

    def address(self, name: str) -> str: ...

    def busy(self, service: str, host: str, server: str) -> AbstractContextManager[None]: ...


class MemoryHarness:
    def __init__(self) -> None:
        self.memory = MemoryRouter()
        self.router: Router = self.memory
        self.router.start()
        self._port = 20000

    def address(self, name: str) -> str:
        self._port += 1
        return f"127.0.0.1:{self._port}"

    @contextmanager
    def busy(self, service: str, host: str, server: str) -> Iterator[None]:
        self.memory.set_load(service, server, in_flight=1)
        yield
        self.memory.set_load(service, server, in_flight=0)


class HAProxyHarness:
    def __init__(self, plane: Plane, backends: dict[str, Backend]) -> None:
        self.plane = plane
        self.router: Router = plane.router
        self.backends = backends

    def address(self, name: str) -> str:
        return self.backends[name].address

    @contextmanager
    def busy(self, service: str, host: str, server: str) -> Iterator[None]:
        """Hold one slow request on `server` (the only ready server of `service`)."""
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


def in_flight(router: Router, service: str, server: str) -> int:
    return next(s.in_flight for s in router.server_stats(service) if s.name == server)


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
    return {s.name: s.state for s in router.server_stats(service)}


def test_services_and_servers_appear_in_table_and_stats(harness: Harness) -> None:
    router = harness.router
    router.ensure_service("app", ["app.localhost", "www.example.com"], max_concurrency=10)
    router.ensure_service("app", ["app.localhost", "www.example.com"], max_concurrency=10)
    a = harness.address("a")
    router.add_server("app", "a", a)
    router.add_server("app", "a", a)  # idempotent
    service = router.table().service("app")
    assert service == Service("app", ("app.localhost", "www.example.com"), (Server("a", a),), 10)
    [stats] = router.server_stats("app")
    assert (stats.name, stats.address, stats.state, stats.in_flight) == ("a", a, "ready", 0)


def test_a_server_name_keeps_its_address(harness: Harness) -> None:
    harness.router.ensure_service("app", ["app.localhost"])
    harness.router.add_server("app", "a", harness.address("a"))
    with pytest.raises(InvalidRoute):
        harness.router.add_server("app", "a", harness.address("b"))


def test_drain_then_remove(harness: Harness) -> None:
    router = harness.router
    router.ensure_service("app", ["app.localhost"])
    router.add_server("app", "a", harness.address("a"))
    router.add_server("app", "b", harness.address("b"))
    router.drain_server("app", "a")
    assert states(router, "app") == {"a": ServerState.DRAIN, "b": ServerState.READY}
    router.add_server("app", "a", router.table().service("app").servers[0].address)  # type: ignore[union-attr]
    assert states(router, "app")["a"] is ServerState.READY  # adding again makes it ready
    router.drain_server("app", "a")
    router.remove_server("app", "a")
    router.remove_server("app", "a")  # idempotent
    assert states(router, "app") == {"b": ServerState.READY}
    with pytest.raises(UnknownServer):
        router.drain_server("app", "a")


def test_a_busy_server_cannot_be_removed_until_its_requests_finish(harness: Harness) -> None:
    router = harness.router
    router.ensure_service("app", ["app.localhost"])
    router.add_server("app", "a", harness.address("a"))
    with harness.busy("app", "app.localhost", "a"):
        with pytest.raises(ServerBusy):
            router.remove_server("app", "a")
        assert states(router, "app") == {"a": ServerState.MAINT}
    router.remove_server("app", "a")
    assert router.server_stats("app") == []


def test_unknown_services(harness: Harness) -> None:
    router = harness.router
    router.remove_service("nope")  # idempotent
    router.remove_server("nope", "a")
    with pytest.raises(UnknownService):
        router.add_server("nope", "a", harness.address("a"))
    with pytest.raises(UnknownService):
        router.server_stats("nope")
    with pytest.raises(UnknownService):
        router.set_paused("nope", True)


def test_pause_resume_and_remove_a_service(harness: Harness) -> None:
    router = harness.router
    router.ensure_service("app", ["app.localhost"])
    router.add_server("app", "a", harness.address("a"))
    router.set_paused("app", True)
    assert router.table().service("app").paused  # type: ignore[union-attr]
    router.set_paused("app", False)
    router.ensure_service("app", ["app.localhost"], max_concurrency=3)  # keeps its servers
    assert [s.name for s in router.server_stats("app")] == ["a"]
    router.remove_service("app")
    assert router.table() == RoutingTable()
    with pytest.raises(UnknownService):
        router.server_stats("app")


def test_apply_converges_to_a_whole_table(harness: Harness) -> None:
    router = harness.router
    router.ensure_service("old", ["old.localhost"])
    router.ensure_service("app", ["app.localhost"])
    router.add_server("app", "gone", harness.address("gone"))
    table = RoutingTable(
        (
            Service(
                "app",
                ("app.localhost", "app2.localhost"),
                (
                    Server("a", harness.address("a")),
                    Server("b", harness.address("b"), ServerState.DRAIN),
                ),
                max_concurrency=5,
            ),
            Service("new", ("new.localhost",), paused=True),
        )
    )
    router.apply(table)
    router.apply(table)
    assert router.table() == table
    assert states(router, "app") == {"a": ServerState.READY, "b": ServerState.DRAIN}
    assert router.server_stats("new") == []


def test_a_stopped_router_refuses_work(harness: Harness) -> None:
    harness.router.stop()
    with pytest.raises(HAProxyUnavailable):
        harness.router.ensure_service("app", ["app.localhost"])
