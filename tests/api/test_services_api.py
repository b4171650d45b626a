"""`/api/v1/services`: bad input gets a JSON error with a stable code, and nothing is kept."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import BaepoProcess

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        ({"image": "x"}, 422, "INVALID_REQUEST", "name"),
        ({"name": "ok-name", "image": "x", "colour": "red"}, 422, "INVALID_REQUEST", "colour"),
        ({"name": "Bad_Name", "image": "x"}, 400, "INVALID_SERVICE_SPEC", "name"),
        ({"name": "ok-name"}, 400, "INVALID_SERVICE_SPEC", "image"),
        ({"name": "ok-name", "image": "UPPER/Case"}, 400, "INVALID_SERVICE_SPEC", "image"),
        ({"name": "ok-name", "image": "x", "cpu": 3}, 400, "INVALID_SERVICE_SPEC", "cpu"),
        (
            {"name": "ok-name", "image": "x", "cpu": 1, "memory": 512},
            400,
            "INVALID_SERVICE_SPEC",
            "memory",
        ),
        ({"name": "ok-name", "image": "x", "port": 0}, 400, "INVALID_SERVICE_SPEC", "port"),
        # A boolean is no port, no CPU and no instance count (lax JSON made `true` port 1).
        ({"name": "ok-name", "image": "x", "port": True}, 422, "INVALID_REQUEST", "port"),
        ({"name": "ok-name", "image": "x", "cpu": True}, 422, "INVALID_REQUEST", "cpu"),
        ({"name": "ok-name", "image": "x", "auto_deploy": 1}, 422, "INVALID_REQUEST", "auto"),
        (
            {"name": "ok-name", "image": "x", "command": "x" * 100_000},
            400,
            "INVALID_SERVICE_SPEC",
            "command",
        ),
        (
            {"name": "ok-name", "image": "x", "env": {"A": "nul\u0000byte"}},
            422,  # refused at the edge, the field named (api/text.py)
            "INVALID_REQUEST",
            "env.A: must not hold a NUL",
        ),
        (
            {"name": "ok-name", "image": "x", "min_instances": 3, "max_instances": 2},
            400,
            "INVALID_SERVICE_SPEC",
            "instances",
        ),
        (
            {"name": "ok-name", "image": "x", "health_check": {"protocol": "udp"}},
            400,
            "INVALID_SERVICE_SPEC",
            "health_check",
        ),
        (
            {"name": "ok-name", "image": "x", "env": {"1BAD": "x"}},
            400,
            "INVALID_SERVICE_SPEC",
            "env",
        ),
        (
            {
                "name": "ok-name",
                "image": "x",
                "custom_domains": [f"d{i}.example.com" for i in range(6)],
            },
            400,
            "INVALID_SERVICE_SPEC",
            "custom_domains",
        ),
    ],
)
def test_bad_service_specs(
    baepo_server: BaepoProcess, body: dict[str, object], status: int, code: str, words: str
) -> None:
    with baepo_server.api() as api:
        r = api.post("/api/v1/services", json=body)
        assert r.status_code == status, r.text
        error = r.json()["error"]
        assert error["code"] == code and words in error["message"], error
        names = [s["name"] for s in api.get("/api/v1/services").json()]
        assert "ok-name" not in names


def test_unknown_things_are_404_with_codes(baepo_server: BaepoProcess) -> None:
    with baepo_server.api() as api:
        for path, code in [
            ("/api/v1/services/nope", "SERVICE_NOT_FOUND"),
            ("/api/v1/services/nope/operations", "SERVICE_NOT_FOUND"),
            ("/api/v1/operations/0123456789abcdef", "OPERATION_NOT_FOUND"),
        ]:
            r = api.get(path)
            assert r.status_code == 404 and r.json()["error"]["code"] == code, (path, r.text)
        r = api.post("/api/v1/services/nope/rollback", json={"revision": 1})
        assert r.json()["error"]["code"] == "SERVICE_NOT_FOUND"
        r = api.post("/api/v1/services/nope/rollback", json={"revision": 0})
        assert r.status_code == 422


def test_services_need_a_signed_in_caller(baepo_server: BaepoProcess) -> None:
    r = httpx.get(f"{baepo_server.url}/api/v1/services")
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHENTICATED"
    doc = httpx.get(f"{baepo_server.url}/api/v1/openapi.json").json()
    assert {
        "/api/v1/services",
        "/api/v1/services/{name}/rollback",
        "/api/v1/operations/{operation_id}",
    } <= set(doc["paths"])
