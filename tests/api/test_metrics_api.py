"""`GET /metrics` (Prometheus), `GET /api/v1/services/{name}/metrics` and `GET /api/v1/metrics`
(recent series), in process: the real API app over the control room's fakes and a metrics
store fed by hand."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from baepo.control import SpecChange
from baepo.metrics import SERIES, InstanceUsage, Sample
from baepo.router import AccessRecord
from tests.api.rights_world import REGISTRY, RightsWorld, basic, bearer, build

S = "/api/v1/services"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RightsWorld]:
    for world in build(tmp_path_factory.mktemp("metrics")):
        for user in ("admin", "alice", "bob"):
            world.headers[user] = basic(user)
        world.headers["app-token"] = bearer(world.token("alice", "t1", services=("app",)))
        world.headers["repo-token"] = bearer(world.token("alice", "t2", repositories=("a/b",)))
        for name, owner in (("app", "alice"), ("bobs", "bob")):
            _, op = world.services.create(
                SpecChange({"name": name, "image": f"{REGISTRY}/{owner}/app:1"}), owner=owner
            )
            assert world.settle(op.id) == "SUCCEEDED"
        store = world.metrics
        for _ in range(3):
            store.record_samples(
                [
                    Sample("app", 2, 1, 10, http_2xx=9, http_4xx=0, http_5xx=1, instances=1),
                    Sample("bobs", 0, 0, 1, 1, 0, 0, 1),
                ]
            )
            store.record_request(AccessRecord("app", 200, 20, 25))
            world.clock.advance(60)
        store.record_usage([InstanceUsage("app", "i-1", 25.0, 50 << 20, 512 << 20)])
        yield world


def scrape(world: RightsWorld, who: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    r = world.request(who, "GET", "/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            found.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return found


def test_prometheus_sees_the_callers_services_only(world: RightsWorld) -> None:
    alice = scrape(world, "alice")
    assert alice["baepo_service_requests_total"] == {(("service", "app"),): 30}
    assert alice["baepo_service_responses_total"][(("code", "5xx"), ("service", "app"))] == 3
    assert alice["baepo_service_requests_in_flight"] == {(("service", "app"),): 2}
    p50 = alice["baepo_service_request_duration_seconds"][(("quantile", "0.5"), ("service", "app"))]
    assert abs(p50 - 0.025) <= 0.025 * 0.045
    labels = (("instance", "i-1"), ("service", "app"))
    assert alice["baepo_instance_cpu_cores"] == {labels: 0.25}
    assert alice["baepo_instance_memory_bytes"] == {labels: 50 << 20}
    assert alice["baepo_instance_memory_limit_bytes"] == {labels: 512 << 20}
    everyone = scrape(world, "admin")["baepo_service_requests_total"]
    assert set(everyone) == {(("service", "app"),), (("service", "bobs"),)}
    assert set(scrape(world, "bob")["baepo_service_requests_total"]) == {(("service", "bobs"),)}
    assert set(scrape(world, "app-token")["baepo_service_instances"]) == {(("service", "app"),)}


@pytest.mark.parametrize(("who", "status"), [("anonymous", 401), ("repo-token", 403)])
def test_prometheus_must_sign_in_with_rights_on_services(
    world: RightsWorld, who: str, status: int
) -> None:
    assert world.request(who, "GET", "/metrics").status_code == status


def test_the_series_of_a_service_one_point_a_minute(world: RightsWorld) -> None:
    r = world.request("alice", "GET", f"{S}/app/metrics?window=10m")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["service"], body["window"], body["step_seconds"]) == ("app", "10m", 60)
    assert set(body["series"]) == set(SERIES)
    assert len(body["minutes"]) == 4  # three minutes done and the one under way
    assert body["series"]["requests"] == [10, 10, 10, None]
    assert body["series"]["http_5xx"][:3] == [1, 1, 1]
    assert body["series"]["p95_ms"][0] == pytest.approx(25, rel=0.045)
    assert body["series"]["cpu_percent"][-1] == 25.0
    assert body["series"]["memory_bytes"][-1] == 50 << 20
    short = world.request("alice", "GET", f"{S}/app/metrics?window=2m").json()
    assert short["series"]["requests"] == [10, None]


def test_a_service_without_metrics_yet_has_empty_series(world: RightsWorld) -> None:
    world.metrics.record_samples([Sample("app", 0, 0, 0, 0, 0, 0, 1)])  # bobs: not routed now
    r = world.request("bob", "GET", f"{S}/bobs/metrics")
    assert r.status_code == 200, r.text
    assert r.json()["minutes"] == [] and r.json()["series"]["requests"] == []


@pytest.mark.parametrize("window", ["soon", "0m", "30s", "2d", "2026-12-02T10:00:00Z", ""])
def test_a_window_that_is_no_span_of_a_day_or_less_is_refused(
    world: RightsWorld, window: str
) -> None:
    r = world.request("alice", "GET", f"{S}/app/metrics?window={window}")
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "INVALID_REQUEST"


def test_anothers_service_does_not_exist(world: RightsWorld) -> None:
    theirs = world.request("bob", "GET", f"{S}/app/metrics")
    nobodys = world.request("bob", "GET", f"{S}/nope/metrics")
    assert theirs.status_code == nobodys.status_code == 404
    assert theirs.json()["error"]["code"] == "SERVICE_NOT_FOUND"


def test_every_service_the_caller_reads_in_one_call(world: RightsWorld) -> None:
    mine = world.request("alice", "GET", "/api/v1/metrics?window=10m")
    assert mine.status_code == 200, mine.text
    assert [m["service"] for m in mine.json()] == ["app"]
    one = world.request("alice", "GET", f"{S}/app/metrics?window=10m").json()
    assert mine.json()[0] == one
    every = world.request("admin", "GET", "/api/v1/metrics").json()
    assert [m["service"] for m in every] == ["app", "bobs"]
    assert world.request("repo-token", "GET", "/api/v1/metrics").status_code == 403
