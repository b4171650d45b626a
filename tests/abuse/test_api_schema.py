"""Schemathesis over the API's own OpenAPI document, against a real `baepo up`: whatever it
sends, no answer is a 500 and every answer matches the document.

The server gets an engine that does not exist, and every image the generated requests name is
replaced by one in Baepo's own registry: nothing is pulled, and no request reaches any host
but this one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi import checks

from tests.conftest import BaepoProcess, running

pytestmark = pytest.mark.integration

LOCAL_IMAGE = "127.0.0.1:5000/team/app:1"
# What must hold of every answer. Not "a schema-valid request is accepted": the document says
# a name is a string, the service room says which strings are names (a 400 that says so).
CHECKS = [
    not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaepoProcess]:
    data = tmp_path_factory.mktemp("schema") / "data"
    dead = f"unix://{data.parent / 'no-engine.sock'}"
    with running(data, "--docker-host", dead) as baepo:
        yield baepo


@pytest.fixture(scope="module")
def api_schema(server: BaepoProcess) -> Any:
    with server.api() as api:
        token = api.post("/api/v1/tokens", json={"name": "schemathesis"}).json()["token"]
    document = httpx.get(f"{server.url}/api/v1/openapi.json", timeout=10).json()
    loaded = schemathesis.openapi.from_dict(document)
    loaded.config.update(base_url=server.url, headers={"Authorization": f"Bearer {token}"})
    return loaded


def _local_images(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: LOCAL_IMAGE if k == "image" and isinstance(v, str) else _local_images(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_local_images(v) for v in value]
    return value


def _revokes_our_token(case: Any) -> bool:
    return case.method.upper() == "DELETE" and "/tokens" in case.path


def _follows(case: Any) -> bool:
    """A followed log answers for as long as its `timeout` (up to a day): the generated
    cases would each hold the run that long. Its stream is tested in tests/api and tests/e2e;
    the same endpoint without `follow` is checked here."""
    follow = str((case.query or {}).get("follow", "")).lower()  # as pydantic reads a bool
    accept = str((case.headers or {}).get("Accept", ""))
    return follow in ("1", "true", "t", "yes", "y", "on") or "text/event-stream" in accept


def test_no_answer_is_a_server_error_or_off_the_document(api_schema: Any) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: Any) -> None:
            if case.body is not None:
                case.body = _local_images(case.body)
            if _revokes_our_token(case) or _follows(case):
                return
            case.call_and_validate(checks=CHECKS)

        check()
