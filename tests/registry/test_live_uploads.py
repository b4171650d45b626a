"""Uploads against a real uvicorn on a loopback port: streaming, concurrency, disconnects,
and sessions that survive a restart."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from baepo.clock import FakeClock
from baepo.events import EventBus
from baepo.registry import Registry, create_app
from baepo.storage import StorageDriver
from baepo.store import Database

from .conftest import AllowAll
from .content import sha256

EVERY_DRIVER = True  # each test that stores blobs runs on the filesystem and on S3

MiB = 1024 * 1024
REPO = "team/live"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    def __init__(self, registry: Registry) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            create_app(registry, AllowAll()),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live(registry: Registry) -> Iterator[httpx.Client]:
    with LiveServer(registry) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def test_streamed_patch_with_chunked_transfer_encoding(live: httpx.Client) -> None:
    data = os.urandom(24 * MiB + 123)
    digest = sha256(data)

    def body() -> Iterator[bytes]:  # no Content-Length: docker's streamed upload
        for i in range(0, len(data), 256 * 1024 + 7):
            yield data[i : i + 256 * 1024 + 7]

    start = live.post(f"/v2/{REPO}/blobs/uploads/")
    r = live.patch(start.headers["location"], content=body())
    assert r.status_code == 202 and r.headers["range"] == f"0-{len(data) - 1}"
    done = live.put(r.headers["location"], params={"digest": digest})
    assert done.status_code == 201, done.text
    got = hashlib.sha256()
    with live.stream("GET", f"/v2/{REPO}/blobs/{digest}") as s:
        assert s.headers["content-length"] == str(len(data))
        for part in s.iter_bytes():
            got.update(part)
    assert "sha256:" + got.hexdigest() == digest


@pytest.mark.parametrize("style", ["monolithic", "chunked"])
def test_two_clients_push_the_same_blob_at_once(live: httpx.Client, style: str) -> None:
    data = os.urandom(4 * MiB)
    digest = sha256(data)
    barrier = threading.Barrier(2)
    results: list[int] = []

    def push() -> None:
        with httpx.Client(base_url=str(live.base_url), timeout=60) as c:
            start = c.post(f"/v2/{REPO}/blobs/uploads/")
            location = start.headers["location"]
            if style == "chunked":
                half = len(data) // 2
                c.patch(location, content=data[:half], headers={"Content-Range": f"0-{half - 1}"})
                barrier.wait()
                r = c.put(
                    location,
                    params={"digest": digest},
                    content=data[half:],
                    headers={"Content-Range": f"{half}-{len(data) - 1}"},
                )
            else:
                barrier.wait()
                r = c.put(location, params={"digest": digest}, content=data)
            results.append(r.status_code)

    threads = [threading.Thread(target=push) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [201, 201]
    assert live.get(f"/v2/{REPO}/blobs/{digest}").content == data


def test_client_gone_mid_chunk_leaves_no_blob_and_can_resume(live: httpx.Client) -> None:
    data = os.urandom(2 * MiB)
    digest = sha256(data)
    start = live.post(f"/v2/{REPO}/blobs/uploads/")
    location = start.headers["location"]
    # Promise the whole blob, send 1 MiB of it, and hang up.
    port = httpx.URL(str(live.base_url)).port
    with socket.create_connection(("127.0.0.1", port)) as raw:
        raw.sendall(
            f"PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n"
            "Content-Type: application/octet-stream\r\n\r\n".encode()
        )
        raw.sendall(data[:MiB])
    assert live.head(f"/v2/{REPO}/blobs/{digest}").status_code == 404
    deadline = time.monotonic() + 10
    while True:  # the server notices the hang-up on its own time
        status = live.get(location)
        if status.status_code == 204 and status.headers["range"] == f"0-{MiB - 1}":
            break
        assert time.monotonic() < deadline, status.headers.get("range")
        time.sleep(0.02)
    r = live.patch(location, content=data[MiB:], headers={"Content-Range": f"{MiB}-{2 * MiB - 1}"})
    assert r.status_code == 202
    assert live.put(location, params={"digest": digest}).status_code == 201
    assert live.get(f"/v2/{REPO}/blobs/{digest}").content == data


def test_upload_session_survives_a_restart(db: Database, driver: StorageDriver) -> None:
    data = os.urandom(3 * MiB + 5)
    digest = sha256(data)
    clock = FakeClock()
    first = Registry(db=db, driver=driver, bus=EventBus(), clock=clock)
    with LiveServer(first) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        start = c.post(f"/v2/{REPO}/blobs/uploads/")
        location = start.headers["location"]
        r = c.patch(location, content=data[:MiB], headers={"Content-Range": f"0-{MiB - 1}"})
        assert r.status_code == 202
    # A new process: nothing in memory, the hash of the first MiB must be rebuilt from disk.
    second = Registry(db=db, driver=driver, bus=EventBus(), clock=clock)
    with LiveServer(second) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        status = c.get(location)
        assert status.status_code == 204 and status.headers["range"] == f"0-{MiB - 1}"
        rest = {"Content-Range": f"{MiB}-{len(data) - 1}"}
        r = c.patch(location, content=data[MiB:], headers=rest)
        assert r.status_code == 202
        done = c.put(location, params={"digest": digest})
        assert done.status_code == 201, done.text
        assert c.get(f"/v2/{REPO}/blobs/{digest}").content == data


def test_an_upload_whose_requests_alternate_between_two_processes(
    db: Database, driver: StorageDriver
) -> None:
    """Two registries on one database and one storage, as two processes behind a balancer:
    each finds the upload as the other left it, though it remembers less; a digest of what one
    saw is checked against what is stored; a cancel on one is seen by the other."""
    clock = FakeClock()
    chunks = [os.urandom(MiB + n) for n in range(3)]
    whole = b"".join(chunks)
    a_registry, b_registry = (
        Registry(db=db, driver=driver, bus=EventBus(), clock=clock, process=name)
        for name in ("a", "b")
    )
    with (
        LiveServer(a_registry) as a_server,
        LiveServer(b_registry) as b_server,
        httpx.Client(base_url=a_server.url, timeout=60) as a,
        httpx.Client(base_url=b_server.url, timeout=60) as b,
    ):
        for wrong in (False, True):
            location = a.post(f"/v2/{REPO}/blobs/uploads/").headers["location"]
            offset = 0
            for client, chunk in zip((a, a, b) if wrong else (b, a, b), chunks, strict=True):
                ranged = {"Content-Range": f"{offset}-{offset + len(chunk) - 1}"}
                assert client.patch(location, content=chunk, headers=ranged).status_code == 202
                offset += len(chunk)
                for either in (a, b):
                    assert either.get(location).headers["range"] == f"0-{offset - 1}"
            if wrong:  # b appended the last chunk: the digest of what a saw is wrong
                seen_by_a = sha256(chunks[0] + chunks[1])
                refused = a.put(location, params={"digest": seen_by_a})
                assert refused.status_code == 400, refused.text
                assert b.get(location).status_code == 404
            else:
                done = a.put(location, params={"digest": sha256(whole)})
                assert done.status_code == 201, done.text
                assert b.get(f"/v2/{REPO}/blobs/{sha256(whole)}").content == whole
        location = a.post(f"/v2/{REPO}/blobs/uploads/").headers["location"]
        assert a.patch(location, content=chunks[0]).status_code == 202
        assert b.delete(location).status_code == 204
        assert a.get(location).status_code == 404
        assert a.patch(location, content=chunks[1]).status_code == 404
