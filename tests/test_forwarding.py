"""Passing requests on to the leader (`baepo.forwarding`): which paths, to whom, streamed both
ways, and a clear 503 when there is no leader to pass them to."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from baepo.clock import SystemClock
from baepo.forwarding import Leader, LeaderForwarding, holder_for, leaders
from baepo.store import Database
from baepo.store.leases import Lease


class LeaderServer:
    """A stand-in for the leader's API: answers what it was asked, in three chunks."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(201)
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("X-Seen-Auth", self.headers.get("Authorization", ""))
                self.end_headers()
                for part in (f"{self.command} {self.path} ", body.decode(), " done"):
                    data = part.encode()
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def leader_server() -> Iterator[LeaderServer]:
    server = LeaderServer()
    yield server
    server.close()


def local_app() -> Starlette:
    async def here(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"here {request.url.path}")

    return Starlette(routes=[Route("/{path:path}", here, methods=["GET", "POST"])])


def front(db: Database, holder: str | None, leading: bool = False) -> TestClient:
    clock = SystemClock()
    if holder is not None:
        assert Lease(db, "control", holder, clock).claim() is not None
    lease = Lease(db, "control", "this/1/x", clock)
    forwarding = LeaderForwarding(local_app(), Leader(lease, lambda: leading, clock), 30)
    return TestClient(forwarding)


def test_only_the_leaders_paths_are_passed_on() -> None:
    assert leaders("/git/app.git/info/refs")
    assert leaders("/api/v1/hooks/github/app")
    assert leaders("/api/v1/pipelines/runs/abc/logs")
    assert leaders("/api/v1/services/app/logs")
    assert not leaders("/api/v1/services/app")
    assert not leaders("/api/v1/services/app/logs/more")
    assert not leaders("/v2/team/app/manifests/1")
    assert not leaders("/api/v1/services")


def test_a_follower_passes_the_request_on_and_streams_the_answer_back(
    state_db: Database, leader_server: LeaderServer
) -> None:
    client = front(state_db, holder_for(leader_server.address, 42, "t"))
    answer = client.post(
        "/git/app.git/git-receive-pack?service=x",
        content=b"pushed bytes",
        headers={"Authorization": "Bearer secret"},
    )
    assert answer.status_code == 201
    assert answer.text == "POST /git/app.git/git-receive-pack?service=x pushed bytes done"
    assert answer.headers["x-seen-auth"] == "Bearer secret"
    assert client.get("/api/v1/services").text == "here /api/v1/services"  # not the leader's


def test_the_leader_answers_its_paths_itself(state_db: Database) -> None:
    client = front(state_db, None, leading=True)
    assert client.post("/git/app.git/git-receive-pack").text == "here /git/app.git/git-receive-pack"


def test_with_no_leader_or_one_that_does_not_answer_the_answer_is_503(
    state_db: Database, leader_server: LeaderServer
) -> None:
    answer = front(state_db, None).post("/api/v1/hooks/github/app")
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "NO_LEADER"
    assert answer.headers["retry-after"] == "2"
    gone = leader_server.address
    leader_server.close()
    answer = front(state_db, holder_for(gone, 42, "t")).post("/api/v1/hooks/github/app")
    assert answer.status_code == 503
    assert gone in answer.json()["error"]["message"]
