"""A service's metrics end to end: requests sent through the real router to a real instance
come back as counts, latencies, load, CPU and memory from all three places a user reads them:
`GET /metrics` (Prometheus), `GET /api/v1/services/{name}/metrics` and `baepo services metrics`."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.integration

OK, MISSING = 30, 5


def totals(series: dict[str, list[float | None]], key: str) -> float:
    return sum(v for v in series[key] if v is not None)


def test_requests_come_back_from_prometheus_the_api_and_the_cli(stack: Stack) -> None:
    name = f"metered-{secrets.token_hex(2)}"
    image = stack.push("baepo-test/hello:1", f"team/{name}:1")
    stack.cli(
        "services", "create", name, "--image", image, "--cpu", "0.25", "--memory", "512", "--wait"
    )
    host = f"{name}.localhost"
    with stack.client(host) as client:
        for _ in range(OK):
            assert client.get("/").status_code == 200
        for _ in range(MISSING):
            assert client.get("/missing").status_code == 404

    # The router is read once a second, the engine every 10 s (CPU needs two readings).
    deadline = time.monotonic() + 60
    body: dict[str, Any] = {}
    with stack.baepo.api() as api:
        while time.monotonic() < deadline:
            body = api.get(f"/api/v1/services/{name}/metrics", params={"window": "10m"}).json()
            s = body["series"]
            if (
                totals(s, "requests") >= OK + MISSING
                and any(v is not None for v in s["cpu_percent"])
                and any(v is not None for v in s["p50_ms"])
            ):
                break
            time.sleep(1)
        series = body["series"]
        assert totals(series, "requests") == OK + MISSING, body
        assert totals(series, "http_2xx") == OK and totals(series, "http_4xx") == MISSING, body
        assert totals(series, "http_5xx") == 0
        p99 = max(v for v in series["p99_ms"] if v is not None)
        assert 0 <= min(v for v in series["p50_ms"] if v is not None) <= p99 < 5000, body
        assert series["instances"][-1] == 1
        memory = [v for v in series["memory_bytes"] if v is not None]
        assert memory and 0 < memory[-1] < 512 << 20, body
        assert any(v is not None and v >= 0 for v in series["cpu_percent"]), body

        scraped = api.get("/metrics")
        assert scraped.status_code == 200
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(scraped.text)
            for s in family.samples
        }
    assert samples[("baepo_service_requests_total", (("service", name),))] == OK + MISSING
    assert samples[("baepo_service_responses_total", (("code", "4xx"), ("service", name)))] == 5
    assert samples[("baepo_service_instances", (("service", name),))] == 1
    limits = [
        v
        for (n, labels), v in samples.items()
        if n == "baepo_instance_memory_limit_bytes" and ("service", name) in labels
    ]
    assert limits == [512 << 20]

    shown = stack.cli("services", "metrics", name, "--window", "10m").stdout
    lines = {line.split()[0]: line.split() for line in shown.splitlines()[2:] if line.strip()}
    assert f"{name}: 10m, a point a minute" in shown
    assert 0 < int(lines["requests"][2]) <= OK + MISSING, shown  # the largest minute
    assert lines["memory"][-1] != "-", shown
    stack.cli("services", "rm", name, "--wait")
