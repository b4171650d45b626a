"""The Engine API client (`baepo.runtime.engine_http`) at the wire, against scripted sockets:
addresses, the API version, answers and errors, streams, and engines that hang."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from baepo.runtime.engine_http import (
    EngineClient,
    ResponseError,
    TransportError,
    demultiplex,
    endpoint,
    parse_address,
    registry_auth,
)
from tests.fakes.socket_engine import (
    Answer,
    Request,
    SocketEngine,
    end_chunks,
    hang,
    hung,
    send_chunk,
    send_chunked_head,
    send_json,
    send_raw,
)


@pytest.fixture
def sock_path(tmp_path: Path) -> Path:
    return tmp_path / "engine.sock"


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(data)) + data


# -- pure parts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "scheme", "host", "port", "prefix"),
    [
        ("unix:///run/baepo-engine/docker.sock", "unix", "/run/baepo-engine/docker.sock", 0, ""),
        ("unix://", "unix", "/var/run/docker.sock", 0, ""),
        ("", "unix", "/var/run/docker.sock", 0, ""),
        ("http+unix:///var/run/x.sock", "unix", "/var/run/x.sock", 0, ""),
        ("tcp://127.0.0.1:2375", "http", "127.0.0.1", 2375, ""),
        ("tcp://:2375", "http", "127.0.0.1", 2375, ""),
        ("127.0.0.1:2375", "http", "127.0.0.1", 2375, ""),
        ("http://engine.lan:2375/", "http", "engine.lan", 2375, ""),
        ("https://engine.lan:2376/docker", "https", "engine.lan", 2376, "/docker"),
    ],
)
def test_engine_addresses_read_as_docker_host(
    base_url: str, scheme: str, host: str, port: int, prefix: str
) -> None:
    address = parse_address(base_url)

    assert (address.scheme, address.host, address.port, address.prefix) == (
        scheme,
        host,
        port,
        prefix,
    )


@pytest.mark.parametrize(
    "base_url", ["tcp://127.0.0.1", "ssh://me@host", "fd://", "npipe:////./pipe/x", "tcp://h:1?a=b"]
)
def test_addresses_it_cannot_speak_to_are_refused(base_url: str) -> None:
    with pytest.raises(ValueError):
        parse_address(base_url)


def test_path_arguments_are_quoted_as_the_sdk_quoted_them() -> None:
    assert endpoint("/images/{}/json", "localhost:5000/team/app@sha256:ab") == (
        "/images/localhost:5000/team/app%40sha256:ab/json"
    )
    assert endpoint("/containers/{}/json", "a b?c") == "/containers/a%20b%3Fc/json"


def test_registry_auth_is_base64url_json_and_empty_for_anonymous() -> None:
    # What docker-py 7.1 sent for the same credentials.
    assert registry_auth({}) == "e30="
    assert registry_auth({"username": "u", "password": "p"}) == (
        "eyJ1c2VybmFtZSI6ICJ1IiwgInBhc3N3b3JkIjogInAifQ=="
    )


def test_demultiplex_interleaves_stdout_and_stderr_as_written() -> None:
    data = frame(1, b"out 1\n") + frame(2, b"err 1\n") + frame(1, b"") + frame(1, b"out 2\n")

    assert demultiplex(data) == b"out 1\nerr 1\nout 2\n"


def test_demultiplex_keeps_a_truncated_last_frame_and_ignores_a_partial_header() -> None:
    assert demultiplex(frame(1, b"whole\n") + frame(2, b"cut short")[:-5]) == b"whole\ncut "
    assert demultiplex(frame(1, b"x") + b"\x01\x00\x00") == b"x"
    assert demultiplex(b"") == b""


def test_demultiplex_payloads_larger_than_a_read() -> None:
    big = bytes(range(256)) * 1024

    assert demultiplex(frame(1, big) + frame(2, b"tail")) == big + b"tail"


# -- answers ------------------------------------------------------------------------------


def test_the_api_version_is_asked_once_and_prefixes_every_path(sock_path: Path) -> None:
    def answer(request: Request, connection: socket.socket) -> None:
        send_json(connection, 200, {"path": request.path})

    with SocketEngine(sock_path, answer) as engine:
        client = EngineClient(engine.url, timeout_s=5)
        assert client.json("GET", "/containers/json") == {"path": "/v1.41/containers/json"}
        assert client.json("GET", "/libpod/containers/c1/json") == {
            "path": "/v1.41/libpod/containers/c1/json"
        }

        assert engine.paths() == [
            "/version",
            "/v1.41/containers/json",
            "/v1.41/libpod/containers/c1/json",
        ]
        assert all(r.headers["connection"] == "close" for r in engine.requests)


def test_queries_drop_none_and_bodies_are_json(sock_path: Path) -> None:
    def answer(request: Request, connection: socket.socket) -> None:
        send_json(connection, 201, {"Id": "c1"})

    with SocketEngine(sock_path, answer) as engine:
        client = EngineClient(engine.url, timeout_s=5)
        client.json(
            "POST",
            "/containers/create",
            query={"name": None, "force": True, "t": 10},
            body={"Image": "app:1"},
        )

        request = engine.requests[-1]
        assert request.query == {"force": "True", "t": "10"}
        assert request.headers["content-type"] == "application/json"
        assert request.json() == {"Image": "app:1"}


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (404, b'{"message":"No such container: c1"}', "No such container: c1"),
        (409, b'{"message":"Conflict. The container name is in use"}\n', "Conflict."),
        (500, b"plain words from a proxy\n", "plain words from a proxy"),
        (500, b"", "500 Internal Server Error"),
    ],
)
def test_an_error_status_carries_the_engines_message(
    sock_path: Path, status: int, body: bytes, message: str
) -> None:
    def answer(request: Request, connection: socket.socket) -> None:
        send_raw(connection, status, body, reason="Internal Server Error")

    with SocketEngine(sock_path, answer) as engine, pytest.raises(ResponseError) as raised:
        EngineClient(engine.url, timeout_s=5).request("GET", "/containers/c1/json")

    assert raised.value.status == status
    assert raised.value.message.startswith(message)


def test_chunked_and_close_delimited_bodies_are_read_whole(sock_path: Path) -> None:
    def answer(request: Request, connection: socket.socket) -> None:
        if request.path.endswith("/chunked"):
            send_chunked_head(connection)
            send_chunk(connection, b"[1, ")
            send_chunk(connection, b"2]")
            end_chunks(connection)
        else:  # no length: the body ends when the engine hangs up
            connection.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n[3, 4]")

    with SocketEngine(sock_path, answer) as engine:
        client = EngineClient(engine.url, timeout_s=5)
        assert client.json("GET", "/chunked") == [1, 2]
        assert client.json("GET", "/closed") == [3, 4]


def test_an_answer_that_is_not_json_is_a_transport_error(sock_path: Path) -> None:
    def answer(request: Request, connection: socket.socket) -> None:
        send_raw(connection, 200, b"<html>a proxy</html>")

    with SocketEngine(sock_path, answer) as engine, pytest.raises(TransportError, match="JSON"):
        EngineClient(engine.url, timeout_s=5).json("GET", "/info")


def test_an_engine_without_an_api_version_is_a_transport_error(sock_path: Path) -> None:
    def answer(request: Request, connection: socket.socket) -> None:
        send_json(connection, 200, {"Version": "0.1"})

    with (
        SocketEngine(sock_path, answer, versions=False) as engine,
        pytest.raises(TransportError, match="API version"),
    ):
        EngineClient(engine.url, timeout_s=5).request("GET", "/_ping")


def test_nothing_listening_is_a_transport_error_naming_the_address(tmp_path: Path) -> None:
    client = EngineClient(f"unix://{tmp_path}/absent.sock", timeout_s=5)

    with pytest.raises(TransportError, match=r"absent\.sock"):
        client.request("GET", "/_ping")
    with pytest.raises(TransportError, match="not an engine address"):
        EngineClient("ssh://me@host", timeout_s=5).request("GET", "/_ping")


def test_many_threads_call_at_once(sock_path: Path) -> None:
    def answer(request: Request, connection: socket.socket) -> None:
        send_json(connection, 200, {"path": request.path})

    with SocketEngine(sock_path, answer) as engine:
        client = EngineClient(engine.url, timeout_s=5)
        results: list[object] = []
        errors: list[BaseException] = []

        def call(n: int) -> None:
            try:
                results.append(client.json("GET", f"/containers/c{n}/json"))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=call, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)

        assert errors == []
        assert sorted(str(r) for r in results) == sorted(
            str({"path": f"/v1.41/containers/c{n}/json"}) for n in range(16)
        )
        assert engine.paths().count("/version") >= 1


def test_threads_meeting_a_hung_engine_each_wait_their_own_timeout(sock_path: Path) -> None:
    with hung(sock_path) as engine:
        client = EngineClient(engine.url, timeout_s=0.3)
        failures: list[BaseException] = []

        def call() -> None:
            try:
                client.request("GET", "/_ping")
            except TransportError as exc:
                failures.append(exc)

        threads = [threading.Thread(target=call) for _ in range(8)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)

        assert len(failures) == 8
        assert time.monotonic() - started < 2  # not 8 times 0.3 s in a queue


# -- engines that hang --------------------------------------------------------------------


def test_a_hung_engine_is_a_transport_error_within_the_timeout(sock_path: Path) -> None:
    with hung(sock_path) as engine:
        client = EngineClient(engine.url, timeout_s=0.3)
        started = time.monotonic()

        with pytest.raises(TransportError, match=r"did not answer within 0\.3 s"):
            client.request("GET", "/_ping")

        assert time.monotonic() - started < 2


def test_an_engine_that_stops_mid_answer_is_a_transport_error(sock_path: Path) -> None:
    def answer(request: Request, connection: socket.socket) -> None:
        connection.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"Id":')
        hang(connection)

    with SocketEngine(sock_path, answer) as engine:
        started = time.monotonic()
        with pytest.raises(TransportError, match="within"):
            EngineClient(engine.url, timeout_s=0.3).json("GET", "/containers/c1/json")
        assert time.monotonic() - started < 2


def test_an_engine_that_hangs_up_is_a_transport_error(sock_path: Path) -> None:
    def answer(request: Request, connection: socket.socket) -> None:
        connection.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"Id":')

    with SocketEngine(sock_path, answer) as engine, pytest.raises(TransportError):
        EngineClient(engine.url, timeout_s=5).json("GET", "/containers/c1/json")


def test_a_longer_timeout_for_one_call(sock_path: Path) -> None:
    """A stop answers once the container has exited: its call may wait longer."""

    def answer(request: Request, connection: socket.socket) -> None:
        time.sleep(0.5)
        send_raw(connection, 204, b"")

    with SocketEngine(sock_path, answer) as engine:
        client = EngineClient(engine.url, timeout_s=0.2)
        client.version()
        assert client.request("POST", "/containers/c1/stop", timeout_s=3) == b""
        with pytest.raises(TransportError):
            client.request("POST", "/containers/c1/stop")


# -- streams ------------------------------------------------------------------------------


def streaming(*chunks: bytes, end: bool = True) -> Answer:
    def answer(request: Request, connection: socket.socket) -> None:
        send_chunked_head(connection)
        for chunk in chunks:
            send_chunk(connection, chunk)
        if end:
            end_chunks(connection)
        else:
            hang(connection)

    return answer


def test_a_stream_yields_messages_however_they_are_cut(sock_path: Path) -> None:
    chunks = (
        b'{"status":"Pulling"}\r\n{"status":"Dow',
        b'nloading","progressDetail":{"current":1}}\r\n',
        b'{"status":"no newline"}{"status":"caf\xc3',  # a character split across chunks
        b'\xa9"}\n',
    )
    with SocketEngine(sock_path, streaming(*chunks)) as engine:
        client = EngineClient(engine.url, timeout_s=5)
        with client.stream("POST", "/images/create", idle_timeout_s=5) as stream:
            messages = list(stream)

    assert messages == [
        {"status": "Pulling"},
        {"status": "Downloading", "progressDetail": {"current": 1}},
        {"status": "no newline"},
        {"status": "café"},
    ]


def test_a_stream_cut_mid_message_is_a_transport_error(sock_path: Path) -> None:
    with SocketEngine(sock_path, streaming(b'{"status":"Pull')) as engine:
        stream = EngineClient(engine.url, timeout_s=5).stream("GET", "/events", idle_timeout_s=5)
        with pytest.raises(TransportError, match="mid-message"):
            list(stream)


def test_an_error_status_before_the_stream_is_a_response_error(sock_path: Path) -> None:
    def answer(request: Request, connection: socket.socket) -> None:
        send_json(connection, 404, {"message": "pull access denied for nope"})

    with SocketEngine(sock_path, answer) as engine, pytest.raises(ResponseError) as raised:
        EngineClient(engine.url, timeout_s=5).stream("POST", "/images/create", idle_timeout_s=5)

    assert (raised.value.status, raised.value.message) == (404, "pull access denied for nope")


def test_a_silent_stream_times_out_with_an_idle_timeout(sock_path: Path) -> None:
    with SocketEngine(sock_path, streaming(b'{"status":"Pulling"}\n', end=False)) as engine:
        stream = EngineClient(engine.url, timeout_s=5).stream(
            "POST", "/images/create", idle_timeout_s=0.3
        )
        assert next(stream) == {"status": "Pulling"}
        started = time.monotonic()
        with pytest.raises(TransportError, match="within"):
            next(stream)
        assert time.monotonic() - started < 2


def test_a_hung_engine_never_begins_a_stream(sock_path: Path) -> None:
    with hung(sock_path) as engine:
        client = EngineClient(engine.url, timeout_s=0.3)
        client._version = {"ApiVersion": "1.41"}  # past the version: hang on the stream itself
        started = time.monotonic()
        with pytest.raises(TransportError, match="within"):
            client.stream("GET", "/events", idle_timeout_s=None)
        assert time.monotonic() - started < 2


@pytest.fixture
def quiet_events(sock_path: Path) -> Iterator[SocketEngine]:
    """An engine whose event stream begins and then has nothing to say."""
    with SocketEngine(sock_path, streaming(b'{"Action":"start"}\n', end=False)) as engine:
        yield engine


def test_close_from_another_thread_ends_a_quiet_stream(quiet_events: SocketEngine) -> None:
    stream = EngineClient(quiet_events.url, timeout_s=0.2).stream(
        "GET", "/events", idle_timeout_s=None
    )
    received: list[object] = []
    reader = threading.Thread(target=lambda: received.extend(stream), daemon=True)
    reader.start()
    deadline = time.monotonic() + 5
    while not received and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.4)  # longer than timeout_s: a quiet stream is waited on, not timed out
    assert reader.is_alive()

    started = time.monotonic()
    stream.close()
    reader.join(timeout=5)

    assert not reader.is_alive()
    assert time.monotonic() - started < 1
    assert received == [{"Action": "start"}]


def test_close_before_reading_ends_the_stream(quiet_events: SocketEngine) -> None:
    stream = EngineClient(quiet_events.url, timeout_s=5).stream(
        "GET", "/events", idle_timeout_s=None
    )
    stream.close()
    stream.close()  # twice is fine

    assert list(stream) == []
