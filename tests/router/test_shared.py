"""Routes shared by several processes (`SharedRouter`): two real HAProxy routers on one state
database (SQLite and PostgreSQL in turn), one leading, the other following its table, each
reporting its load to the other."""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from baepo.clock import SystemClock
from baepo.router import Check, Route, Server, ServerState, SharedRouter
from baepo.router.shared import STALE_S, Counters, FleetCounters
from baepo.store import Database
from tests.components import missing
from tests.router.backends import Backend
from tests.router.conftest import HAPROXY, Plane

pytestmark = pytest.mark.integration

HOST = "app.baepo.test"


class LateClock(SystemClock):
    """A clock some seconds behind: the reports it dates look old."""

    def __init__(self, behind_s: float) -> None:
        self.behind = timedelta(seconds=behind_s)

    def now(self) -> datetime:
        return super().now() - self.behind


@pytest.fixture
def planes() -> Iterator[tuple[Plane, Plane]]:
    if not shutil.which(HAPROXY):
        missing("HAProxy is not installed (apt install haproxy)")
    made = []
    try:
        for _ in range(2):
            plane = Plane(Path(tempfile.mkdtemp(prefix="baepo-shared-", dir="/tmp")))
            plane.router.start()
            made.append(plane)
        yield made[0], made[1]
    finally:
        for plane in made:
            plane.close()
            shutil.rmtree(plane.directory, ignore_errors=True)


@pytest.fixture
def backends() -> Iterator[tuple[Backend, Backend]]:
    one, two = Backend("one"), Backend("two")
    yield one, two
    one.close()
    two.close()


def shared(
    plane: Plane, db: Database, holder: str, demanded: list[str] | None = None
) -> SharedRouter:
    return SharedRouter(
        plane.router, db, holder, plane.clock, (demanded if demanded is not None else []).append
    )


def answer(plane: Plane, path: str = "/") -> httpx.Response:
    """A request on a new connection: a kept-alive one stays with the HAProxy worker it opened
    on, which a reload retires with its old configuration."""
    with httpx.Client(verify=plane.tls, timeout=30) as client:
        return client.get(
            f"https://127.0.0.1:{plane.settings.https_port}{path}",
            headers={"Host": HOST},
            extensions={"sni_hostname": HOST},
        )


def pair(
    a: Plane, b: Plane, db: Database, first: Server, demanded: list[str] | None = None
) -> tuple[SharedRouter, SharedRouter]:
    """A leader on `a` that routes to `first`, and a follower on `b` that carries its route."""
    leader, follower = shared(a, db, "a", demanded), shared(b, db, "b")
    leader.leading = True
    leader.put(route(first))
    follower.step()
    return leader, follower


def route(*servers: Server) -> Route:
    return Route("app", (HOST,), servers, check=Check(path="/"))


def test_a_follower_carries_the_leaders_routes_and_its_changes(
    planes: tuple[Plane, Plane], backends: tuple[Backend, Backend], state_db: Database
) -> None:
    (a, b), (one, two) = planes, backends
    leader, follower = shared(a, state_db, "a"), shared(b, state_db, "b")
    leader.leading = True
    leader.put(route(Server("s1", one.address)))
    assert b.router.table().services == ()  # not followed yet
    follower.step()
    assert answer(b).text.startswith("one ")
    leader.put(route(Server("s2", two.address)))
    follower.step()
    assert answer(b).text.startswith("two ")
    leader.remove("app")
    follower.step()
    assert answer(b).status_code == 404
    assert follower.table().services == ()


def test_a_drain_waits_for_the_followers_requests_and_for_a_follower_behind(
    planes: tuple[Plane, Plane], backends: tuple[Backend, Backend], state_db: Database
) -> None:
    (a, b), (one, two) = planes, backends
    leader, follower = pair(a, b, state_db, Server("s1", one.address))
    answered: list[str] = []
    slow = threading.Thread(target=lambda: answered.append(answer(b, "/slow?seconds=3").text))
    slow.start()
    assert one.started.wait(10)
    follower.step()  # reports the request in flight on s1
    drained = route(Server("s1", one.address, ServerState.DRAIN), Server("s2", two.address))
    leader.put(drained)
    leader.step()
    # Only the follower has a request on s1, and it has not seen the drain yet.
    assert leader.states()["app"].in_flight["s1"] >= 1
    follower.step()  # on the new table now, still serving the slow request
    assert answer(b).text.startswith("two ")  # new requests go to s2 on the follower too
    leader_view = SharedRouter(a.router, state_db, "a", a.clock, print)
    assert leader_view.states()["app"].in_flight["s1"] >= 1
    slow.join(timeout=30)
    assert answered and answered[0].startswith("one ")
    follower.step()
    fresh = SharedRouter(a.router, state_db, "a", a.clock, print)  # no cached reports
    assert fresh.states()["app"].in_flight.get("s1", 0) == 0


def test_a_router_behind_the_published_table_is_counted_until_it_follows(
    planes: tuple[Plane, Plane], backends: tuple[Backend, Backend], state_db: Database
) -> None:
    (a, b), (one, two) = planes, backends
    leader, follower = pair(a, b, state_db, Server("s1", one.address))
    follower.step()  # reports the version it carries
    assert leader.states()["app"].routers_behind == 0
    leader.put(route(Server("s2", two.address)))
    leader._peers_read = -1.0  # read the reports again now
    assert leader.states()["app"].routers_behind == 1
    follower.step()
    leader._peers_read = -1.0
    assert leader.states()["app"].routers_behind == 0
    assert answer(b).text.startswith("two ")


def test_the_leader_reads_the_fleets_load_and_demand(
    planes: tuple[Plane, Plane], backends: tuple[Backend, Backend], state_db: Database
) -> None:
    (a, b), (one, _) = planes, backends
    demanded: list[str] = []
    leader, follower = pair(a, b, state_db, Server("s1", one.address), demanded)
    follower.step()  # a first report: the follower's baseline
    assert leader.load()["app"].total == 0
    for _ in range(3):
        assert answer(b).status_code == 200
    assert answer(a).status_code == 200
    follower.waiting("app")
    follower.step()
    fresh = shared(a, state_db, "a", demanded)
    fresh.load()  # baselines
    first = fresh.load()["app"]
    for _ in range(2):
        assert answer(b).status_code == 200
    follower.step()
    fresh._peers_read = -1.0  # read the reports again now
    second = fresh.load()["app"]
    assert second.total - first.total == 2
    assert second.http_2xx - first.http_2xx == 2
    assert "app" in demanded


def test_a_stale_report_is_a_stopped_process(
    planes: tuple[Plane, Plane], backends: tuple[Backend, Backend], state_db: Database
) -> None:
    (a, b), (one, _) = planes, backends
    leader = shared(a, state_db, "a")
    leader.leading = True
    leader.put(route(Server("s1", one.address, ServerState.DRAIN)))
    late = SharedRouter(b.router, state_db, "b", LateClock(STALE_S * 2), print)
    late.step()  # follows the table, but its report is dated long ago
    assert leader.states()["app"].in_flight.get("s1", 0) == 0


def test_a_new_leader_publishes_from_the_table_it_followed(
    planes: tuple[Plane, Plane], backends: tuple[Backend, Backend], state_db: Database
) -> None:
    (a, b), (one, two) = planes, backends
    first, second = shared(a, state_db, "a"), shared(b, state_db, "b")
    first.leading = True
    first.put(route(Server("s1", one.address)))
    second.step()
    second.leading = True  # the first one stopped
    second.put(route(Server("s1", one.address), Server("s2", two.address)))
    third = shared(a, state_db, "a2")
    third.step()
    assert [s.name for s in a.router.table().services[0].servers] == ["s1", "s2"]


def test_fleet_counters_add_what_each_router_grew_by() -> None:
    counters = FleetCounters()
    counters.add("a", {"app": Counters(100, 100)})  # baselines: counted before
    counters.add("b", {"app": Counters(50, 50)})
    assert counters.of("app") == Counters()
    counters.add("a", {"app": Counters(110, 110)})
    counters.add("b", {"app": Counters(3, 3)})  # b restarted: its 3 are new
    assert counters.of("app") == Counters(13, 13)
    counters.forget_all_but({"a"}, {"app"})  # b stopped: the sum stays
    counters.add("a", {"app": Counters(111, 111)})
    assert counters.of("app") == Counters(14, 14)


def test_a_router_that_is_down_is_told_once_and_followed_when_back(
    planes: tuple[Plane, Plane],
    backends: tuple[Backend, Backend],
    state_db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="baepo.router.shared")
    (a, b), (one, _) = planes, backends
    leader = shared(a, state_db, "a")
    follower = shared(b, state_db, "b")
    leader.leading = True
    leader.put(route(Server("s1", one.address)))
    b.router.stop()
    for _ in range(3):
        follower.step()
    told = [r for r in caplog.records if "cannot follow the published routes" in r.message]
    assert len(told) == 1
    b.router.start()
    follower.step()
    assert answer(b).text.startswith("one ")
    assert "sharing the routes again" in caplog.text
