"""Asking a registry for a tag's digest, and what a registry answers must not turn Baepo into a
probe of its own network.

Hermetic tests speak to a stub registry on 127.0.0.1 (a `http.server` that answers what each
test scripts); the integration tests ask the real registries the pulls use (CNCF distribution
with htpasswd auth, Baepo's own with bearer tokens) and check against skopeo's answer.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from baepo.runtime import ImageNotFound, PullFailed
from baepo.runtime.distribution import (
    MANIFEST_TYPES,
    MAX_BODY_BYTES,
    Unreachable,
    _authorization,
    _Client,
    _internal,
    resolve,
)
from tests.clients import skopeo
from tests.components import missing
from tests.runtime import test_engine_api as engine_tests
from tests.runtime.registries import Registry

# The real registries of the pull tests, and an image pushed to each by the docker CLI.
distribution = engine_tests.distribution
registry = engine_tests.registry
pushed = engine_tests.pushed

DIGEST = "sha256:" + "ab" * 32
MANIFEST = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'
ROBOT = ("robot", "s3cret")
ROBOT_BASIC = "Basic " + base64.b64encode(b"robot:s3cret").decode()


@dataclass(frozen=True)
class Asked:
    method: str
    path: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


Script = Callable[[Asked], Reply]


@dataclass
class Stub:
    host: str
    asked: list[Asked]


@contextmanager
def stub_registry(script: Script) -> Iterator[Stub]:
    """A registry on loopback that answers `script`'s replies (HTTP/1.0: one request a
    connection, a body without a length ends at the close)."""
    asked: list[Asked] = []

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self._answer()

        def do_GET(self) -> None:
            self._answer()

        def _answer(self) -> None:
            request = Asked(self.command, self.path, dict(self.headers.items()))
            asked.append(request)
            reply = script(request)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command == "GET":
                with suppress(OSError):  # a client that stopped reading at its bound
                    self.wfile.write(reply.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # A short poll: shutdown() waits for the serving loop to look.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield Stub(f"127.0.0.1:{server.server_address[1]}", asked)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def digest_of(_: Asked) -> Reply:
    return Reply(200, {"Docker-Content-Digest": DIGEST})


# -- which addresses are inside -----------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "inside"),
    [
        ("127.0.0.1:5000", True),
        ("localhost:5000", True),
        ("registry.localhost", True),
        ("10.1.2.3", True),
        ("169.254.169.254", True),
        ("[::1]:5000", True),
        ("::1", True),
        ("8.8.8.8", False),
        ("[2001:4860:4860::8888]:443", False),
    ],
)
def test_which_hosts_are_inside(host: str, inside: bool) -> None:
    assert _internal(host) is inside


# -- what a registry answers ----------------------------------------------------------------


def test_a_tag_resolves_to_the_digest_the_registry_answers_a_head_with() -> None:
    with stub_registry(digest_of) as stub:
        assert resolve(f"{stub.host}/team/app:1", None) == DIGEST
        assert resolve(f"{stub.host}/team/app", None) == DIGEST
    assert [(a.method, a.path) for a in stub.asked] == [
        ("HEAD", "/v2/team/app/manifests/1"),
        ("HEAD", "/v2/team/app/manifests/latest"),
    ]
    headers = stub.asked[0].headers
    assert headers["Accept"] == MANIFEST_TYPES
    assert headers["User-Agent"] == "baepo"
    assert headers["Host"] == stub.host
    assert "Authorization" not in headers


def test_a_reference_by_digest_asks_nobody() -> None:
    with stub_registry(digest_of) as stub:
        assert resolve(f"{stub.host}/team/app@{DIGEST}", None) == DIGEST
    assert stub.asked == []


@pytest.mark.parametrize("header", [{}, {"Docker-Content-Digest": "sha256:not-a-digest"}])
def test_without_a_digest_header_the_manifest_is_fetched_and_hashed(
    header: dict[str, str],
) -> None:
    def script(request: Asked) -> Reply:
        return Reply(200, header, MANIFEST)

    with stub_registry(script) as stub:
        digest = resolve(f"{stub.host}/team/app:1", None)
    assert digest == "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
    assert [a.method for a in stub.asked] == ["HEAD", "GET"]
    assert stub.asked[1].headers["Accept"] == MANIFEST_TYPES


def test_a_manifest_past_the_bound_is_not_read_to_its_end() -> None:
    huge = b"{" + b" " * MAX_BODY_BYTES + b"}"

    def undeclared(request: Asked) -> Reply:
        return Reply(200, {}, huge)  # no length: the body ends when the connection closes

    def declared(request: Asked) -> Reply:
        return Reply(200, {"Content-Length": str(len(huge))}, huge)

    for script in (undeclared, declared):
        with stub_registry(script) as stub, pytest.raises(Unreachable, match="more than 4 MiB"):
            resolve(f"{stub.host}/team/app:1", None)


def test_a_manifest_cut_short_is_not_hashed() -> None:
    def script(request: Asked) -> Reply:
        return Reply(200, {"Content-Length": str(len(MANIFEST) + 10)}, MANIFEST)

    with stub_registry(script) as stub, pytest.raises(Unreachable):
        resolve(f"{stub.host}/team/app:1", None)


@pytest.mark.parametrize(
    ("status", "error", "match"),
    [
        (404, ImageNotFound, "manifest unknown"),
        (403, PullFailed, "refused the credentials"),
        (500, Unreachable, "HTTP 500"),
        (429, Unreachable, "HTTP 429"),
    ],
)
def test_a_failed_head_says_why(status: int, error: type[Exception], match: str) -> None:
    with stub_registry(lambda _: Reply(status)) as stub, pytest.raises(error, match=match):
        resolve(f"{stub.host}/team/app:1", None)


def test_a_redirect_is_not_followed() -> None:
    with stub_registry(digest_of) as elsewhere:
        moved = Reply(307, {"Location": f"http://{elsewhere.host}/v2/team/app/manifests/1"})
        with stub_registry(lambda _: moved) as stub, pytest.raises(Unreachable, match="307"):
            resolve(f"{stub.host}/team/app:1", None)
    assert elsewhere.asked == []


# -- the 401 challenge ----------------------------------------------------------------------


def basic_registry(request: Asked) -> Reply:
    if request.headers.get("Authorization") != ROBOT_BASIC:
        return Reply(401, {"WWW-Authenticate": 'Basic realm="registry"'})
    return digest_of(request)


def test_a_basic_challenge_is_answered_with_the_credentials() -> None:
    with stub_registry(basic_registry) as stub:
        assert resolve(f"{stub.host}/team/app:1", ROBOT) == DIGEST
        with pytest.raises(PullFailed, match="authentication required"):
            resolve(f"{stub.host}/team/app:1", None)
        with pytest.raises(PullFailed, match="refused the credentials"):
            resolve(f"{stub.host}/team/app:1", ("robot", "wrong"))
    assert stub.asked[1].headers["Authorization"] == ROBOT_BASIC


@contextmanager
def bearer_registry(
    token_reply: Callable[[Asked], Reply], challenge: str = 'service="stub"'
) -> Iterator[Stub]:
    """A registry whose token realm is its own `/token` (as Baepo's is); `token_reply`
    answers the token requests."""
    host = ""

    def script(request: Asked) -> Reply:
        if request.path.startswith("/token"):
            return token_reply(request)
        if request.headers.get("Authorization") != "Bearer t0k":
            realm = f'Bearer realm="http://{host}/token",{challenge}'
            return Reply(401, {"WWW-Authenticate": realm})
        return digest_of(request)

    with stub_registry(script) as stub:
        host = stub.host
        yield stub


def robot_token(request: Asked) -> Reply:
    if request.headers.get("Authorization") not in (None, ROBOT_BASIC):
        return Reply(401)
    return Reply(200, {"Content-Type": "application/json"}, b'{"token": "t0k"}')


def test_a_bearer_challenge_gets_a_token_from_the_realm() -> None:
    challenge = 'service="stub",scope="repository:team/app:pull"'
    with bearer_registry(robot_token, challenge) as stub:
        assert resolve(f"{stub.host}/team/app:1", ROBOT) == DIGEST
    _, token, again = stub.asked
    assert (token.method, token.path) == (
        "GET",
        "/token?service=stub&scope=repository%3Ateam%2Fapp%3Apull",
    )
    assert token.headers["Authorization"] == ROBOT_BASIC
    assert again.headers["Authorization"] == "Bearer t0k"


def test_an_anonymous_token_is_asked_for_the_pull_scope() -> None:
    def access_token(request: Asked) -> Reply:
        return Reply(200, {}, b'{"access_token": "t0k", "expires_in": 60}')

    with bearer_registry(access_token) as stub:
        assert resolve(f"{stub.host}/team/app:1", None) == DIGEST
    token = stub.asked[1]
    assert token.path == "/token?service=stub&scope=repository%3Ateam%2Fapp%3Apull"
    assert "Authorization" not in token.headers


@pytest.mark.parametrize(
    ("reply", "error", "match"),
    [
        (Reply(401), PullFailed, "refused the credentials"),
        (Reply(403), PullFailed, "refused the credentials"),
        (Reply(302, {"Location": "/token2"}), Unreachable, "token realm answered HTTP 302"),
        (Reply(200, {}, b"<html>"), Unreachable, "not JSON"),
        (Reply(200, {}, b'["not", "an", "object"]'), Unreachable, "not an object"),
        (Reply(200, {}, b'{"token": ""}'), Unreachable, "no token"),
        (Reply(200, {}, b'{"token": "a\\r\\nX-Injected: 1"}'), Unreachable, "cannot ask"),
    ],
)
def test_a_realm_that_refuses_or_answers_nonsense(
    reply: Reply, error: type[Exception], match: str
) -> None:
    with bearer_registry(lambda _: reply) as stub, pytest.raises(error, match=match):
        resolve(f"{stub.host}/team/app:1", ROBOT)


def test_a_token_the_registry_refuses_is_refused_credentials() -> None:
    def wrong_token(request: Asked) -> Reply:
        return Reply(200, {}, b'{"token": "stale"}')

    with bearer_registry(wrong_token) as stub, pytest.raises(PullFailed, match="refused"):
        resolve(f"{stub.host}/team/app:1", ROBOT)


@pytest.mark.parametrize(
    ("challenge", "match"),
    [
        ('Negotiate realm="x"', "Negotiate auth, which is not spoken"),
        ("", "no auth"),
        ('Bearer service="x"', "names no realm"),
        ('Bearer realm="file:///etc/passwd"', "not an http"),
        ('Bearer realm="http:///token"', "not an http"),
    ],
)
def test_a_challenge_that_cannot_be_answered(challenge: str, match: str) -> None:
    with pytest.raises(Unreachable, match=match):
        _authorization(_Client(5), challenge, "x", ROBOT, "r", inside=True)


def test_a_public_registrys_realm_may_not_point_inside() -> None:
    def token(request: Asked) -> Reply:
        return Reply(200, {}, b'{"token": "t"}')

    with stub_registry(token) as stub:
        for realm in (f"http://{stub.host}/token", "http://169.254.169.254/latest"):
            challenge = f'Bearer realm="{realm}",service="x",scope="y"'
            with pytest.raises(Unreachable, match="inside"):
                _authorization(_Client(5), challenge, "x", None, "8.8.8.8/x:1", inside=False)
        assert stub.asked == []
        # Baepo's own registry on loopback names a loopback realm: asked.
        challenge = f'Bearer realm="http://{stub.host}/token",service="x",scope="y"'
        header = _authorization(_Client(5), challenge, "x", None, "r", inside=True)
    assert header == "Bearer t"
    assert [a.path for a in stub.asked] == ["/token?service=x&scope=y"]


# -- a registry that does not speak HTTP, or not at all -------------------------------------


@contextmanager
def raw_server(answer: bytes | None) -> Iterator[str]:
    """A TCP server on loopback that writes `answer` to each connection and closes it, or
    (None) never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)  # to see `done` between accepts
    done = threading.Event()

    def serve() -> None:
        held: list[socket.socket] = []
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            if answer is None:
                held.append(connection)
                continue
            with connection:
                connection.recv(65536)
                connection.sendall(answer)
        for connection in held:
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        done.set()
        thread.join(timeout=5)
        listener.close()


@pytest.mark.parametrize(
    "answer", [b"SSH-2.0-OpenSSH_9.2\r\n", b"", b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000]
)
def test_a_registry_that_does_not_speak_http_is_unreachable(answer: bytes) -> None:
    with raw_server(answer) as host, pytest.raises(Unreachable, match=f"cannot ask {host}"):
        resolve(f"{host}/team/app:1", None, timeout_s=5)


def test_a_registry_that_never_answers_times_out() -> None:
    with raw_server(None) as host, pytest.raises(Unreachable, match="timed out"):
        resolve(f"{host}/team/app:1", None, timeout_s=0.5)


def test_an_unreachable_registry_is_unreachable() -> None:
    with pytest.raises(Unreachable):
        resolve("127.0.0.1:9/nothing:1", None, timeout_s=2)


def test_resolving_needs_no_http_library() -> None:
    code = "import sys, baepo.runtime.distribution; print('httpx' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"


# -- real registries ------------------------------------------------------------------------


@pytest.mark.integration
def test_real_registries_answer_the_digest_skopeo_sees(pushed: str, registry: Registry) -> None:
    if shutil.which("skopeo") is None:
        missing("skopeo is not installed (apt install skopeo)")
    user, password = registry.credentials
    inspected = skopeo(
        "inspect", "--tls-verify=false", f"--creds={user}:{password}", f"docker://{pushed}"
    )
    expected = json.loads(inspected.stdout)["Digest"]

    assert resolve(pushed, registry.credentials) == expected
    with pytest.raises(PullFailed):
        resolve(pushed, None)
    with pytest.raises(PullFailed):
        resolve(pushed, (user, "wrong"))
    with pytest.raises(ImageNotFound):
        resolve(pushed.rsplit(":", 1)[0] + ":absent", registry.credentials)
