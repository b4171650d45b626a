"""`baepo login` and `baepo logout`: a token kept per server, revoked when replaced or given up."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from tests.cli.command import baepo
from tests.conftest import BaepoProcess

pytestmark = pytest.mark.integration


class Recorder(BaseHTTPRequestHandler):
    """Another server: says 401 to everything and keeps the Authorization headers it got."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Recorder.seen.append(self.headers.get("Authorization") or "")
        body = json.dumps({"error": {"code": "UNAUTHENTICATED", "message": "who are you?"}})
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def other_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def stored(path: Path) -> dict[str, object]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def works(server: BaepoProcess, token: str) -> bool:
    answer = httpx.get(f"{server.url}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    return answer.status_code == 200


def token_of(path: Path, url: str) -> str:
    servers = stored(path)["servers"]
    assert isinstance(servers, dict)
    return str(servers[url]["token"])


def login(server: BaepoProcess, env: dict[str, str]) -> None:
    done = baepo("login", "--password-stdin", env=env, stdin=server.password + "\n")
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_login_goes_only_to_its_own_server(
    baepo_server: BaepoProcess, other_server: str, tmp_path: Path
) -> None:
    env = {"BAEPO_CONFIG": str(tmp_path / "cli.json"), "BAEPO_URL": baepo_server.url}
    login(baepo_server, env)
    Recorder.seen.clear()
    elsewhere = baepo("services", "ls", env={**env, "BAEPO_URL": other_server})
    assert elsewhere.returncode == 1 and "who are you?" in elsewhere.stderr
    assert Recorder.seen == [""]  # asked, without the token of another server
    assert baepo("services", "ls", env=env).returncode == 0
    by_default = {"BAEPO_CONFIG": env["BAEPO_CONFIG"]}  # the server last signed in to
    assert baepo("services", "ls", env=by_default).returncode == 0


def test_login_revokes_the_token_it_replaces_and_logout_revokes_its_own(
    baepo_server: BaepoProcess, tmp_path: Path
) -> None:
    path = tmp_path / "cli.json"
    env = {"BAEPO_CONFIG": str(path), "BAEPO_URL": baepo_server.url}
    login(baepo_server, env)
    first = token_of(path, baepo_server.url)
    login(baepo_server, env)
    second = token_of(path, baepo_server.url)
    assert not works(baepo_server, first) and works(baepo_server, second)

    out = baepo("logout", env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"Signed out of {baepo_server.url}"
    assert not works(baepo_server, second)
    assert baepo_server.url not in json.dumps(stored(path)["servers"])
    again = baepo("logout", env=env)
    assert again.returncode == 0 and f"not signed in to {baepo_server.url}" in again.stdout


def test_a_settings_file_of_the_single_token_format_is_read_and_moved_on(
    baepo_server: BaepoProcess, tmp_path: Path
) -> None:
    with baepo_server.api() as api:
        old = api.post(
            "/api/v1/login", json={"username": "admin", "password": baepo_server.password}
        ).json()["token"]
    path = tmp_path / "cli.json"
    path.write_text(json.dumps({"url": baepo_server.url, "token": old, "username": "admin"}))
    env = {"BAEPO_CONFIG": str(path)}
    assert baepo("services", "ls", env=env).returncode == 0
    login(baepo_server, env)
    assert not works(baepo_server, old)
    assert stored(path)["url"] == baepo_server.url
    assert works(baepo_server, token_of(path, baepo_server.url))
