"""`RefuseNul` (api/text.py): text Baepo would keep may hold no NUL; a provider's webhook
payload is not such text (a commit message may hold any character)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from baepo.api.text import RefuseNul


async def echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(len(await request.body())))


CLIENT = TestClient(RefuseNul(Starlette(routes=[Route("/{path:path}", echo, methods=["POST"])])))
BODY = b'{"head_commit": {"message": "fix\\u0000it"}}'
JSON = {"Content-Type": "application/json"}


def test_a_json_body_with_a_nul_is_refused_with_its_place() -> None:
    answer = CLIENT.post("/api/v1/services", content=BODY, headers=JSON)
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "INVALID_REQUEST"
    assert "head_commit.message" in answer.text


def test_a_webhooks_payload_goes_on_whole() -> None:
    answer = CLIENT.post("/api/v1/hooks/github/app", content=BODY, headers=JSON)
    assert answer.status_code == 200
    assert answer.text == str(len(BODY))
