"""The smart-HTTP gateway: git's own `git http-backend`, run as a CGI program per request.

Baepo authenticates the caller and decides what they may do (api/git.py); this module only
runs the backend for a request it was given, streaming both ways:

    client ── request body ──► http-backend's stdin          (bounded: `max_request_bytes`)
    client ◄── CGI headers ─── http-backend's stdout          (Status:, Content-Type:, …)
    client ◄── pkt-lines ───── …its body, as it comes         (`remote:` lines while a hook runs)

The response starts once the whole request is in (git's stateless RPC: the client sends all,
then reads), so a request over the bound still gets a plain `413`. The backend runs in its own
process group: receive-pack, the hook and anything they started end with it — when the client
goes away, when `timeout_s` passes, when Baepo stops.

A backend that dies or runs out of time after its answer began cannot change the status any
more; the gateway forwards only whole pkt-lines, so that it can end the answer with one more:
a side-band error packet (band 3), which git prints to the pusher as `remote: error: …` (or
`fatal: remote error: …`) instead of a bare "the remote end hung up unexpectedly".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from starlette.types import Message, Receive, Scope, Send

from baepo.pipelines.git_remote import git_environment

log = logging.getLogger(__name__)

HEADER_MAX = 64 * 1024
CHUNK = 64 * 1024
STDERR_TAIL = 2048
STDERR_WAIT_S = 2.0
FINISH_S = 10.0


@dataclass(frozen=True)
class BackendLimits:
    max_request_bytes: int = 1 << 30
    """A request body (a pushed pack) larger than this is refused with 413."""
    timeout_s: float = 3600.0
    """One request, from start to end (a push's includes its pipeline run)."""
    max_running: int = 16
    """Backends running at once; more requests answer 503."""


@dataclass(frozen=True)
class CgiCall:
    """What the backend is asked: a repository's path and who asks."""

    path_info: str
    """`/<service>.git/<info/refs | git-upload-pack | git-receive-pack>`"""
    remote_user: str
    environment: Mapping[str, str]
    """More variables for git and its hooks (the push endpoint's URL and secret)."""


class RequestTooLarge(Exception):
    pass


class ClientGone(Exception):
    pass


class PktLines:
    """Cuts a byte stream into whole pkt-lines (`0000`-`0002` or a 4-hex-digit length with its
    data), so that what is forwarded always ends at a packet's end. A stream that is not
    pkt-lines is passed on as it comes."""

    def __init__(self) -> None:
        self._held = bytearray()
        self._raw = False

    def feed(self, data: bytes) -> bytes:
        if self._raw:
            return data
        self._held += data
        end = 0
        while len(self._held) - end >= 4:
            try:
                size = int(self._held[end : end + 4], 16)
            except ValueError:
                return self._give_up()
            if size < 4:
                if size == 3:
                    return self._give_up()
                end += 4
                continue
            if len(self._held) - end < size:
                break
            end += size
        whole = bytes(self._held[:end])
        del self._held[:end]
        return whole

    @property
    def whole(self) -> bool:
        """Whether everything fed so far was forwarded in whole packets."""
        return not self._raw and not self._held

    def _give_up(self) -> bytes:
        self._raw = True
        rest = bytes(self._held)
        self._held.clear()
        return rest


def error_packet(message: str) -> bytes:
    """A side-band error packet (band 3): git shows it to the user and stops."""
    payload = b"\x03" + f"baepo: {message}\n".encode()
    return f"{len(payload) + 4:04x}".encode() + payload


def parse_cgi_head(head: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    """A CGI program's status (from `Status:`, 200 when absent) and its other headers."""
    status = 200
    headers: list[tuple[bytes, bytes]] = []
    for line in head.replace(b"\r\n", b"\n").split(b"\n"):
        if not line:
            continue
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip()
        if name == b"status":
            status = int(value.split()[0])
        elif name and name not in (b"connection", b"transfer-encoding"):
            headers.append((name, value))
    return status, headers


class GitHttpBackend:
    """Runs `git http-backend` over the repositories under `project_root`."""

    def __init__(
        self, project_root: Path, limits: BackendLimits = BackendLimits(), *, git: str = "git"
    ) -> None:
        self.project_root = project_root
        self.limits = limits
        self._git = git
        self._running: dict[int, asyncio.subprocess.Process] = {}

    @property
    def running(self) -> list[int]:
        """The process ids of the backends running now (their process groups' ids too)."""
        return list(self._running)

    async def serve(self, call: CgiCall, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the request in `scope` with the backend's answer (or a plain error)."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        length = headers.get("content-length")
        if length is not None and (
            not length.isdigit() or int(length) > self.limits.max_request_bytes
        ):
            await _plain(send, 413, f"the request is larger than {self._limit()}")
            return
        if len(self._running) >= self.limits.max_running:
            await _plain(send, 503, "too many git requests at once: try again shortly")
            return
        environment = self._environment(call, scope, headers)
        try:
            process = await asyncio.create_subprocess_exec(
                self._git,
                "http-backend",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=environment,
                start_new_session=True,
            )
        except OSError as exc:
            log.error("cannot run git http-backend: %s", exc)
            await _plain(send, 500, f"cannot run git http-backend: {exc}")
            return
        self._running[process.pid] = process
        try:
            await _Exchange(process, self.limits, receive, send).run()
        finally:
            try:
                await _finish(process)
            finally:
                del self._running[process.pid]

    def _limit(self) -> str:
        return f"{self.limits.max_request_bytes // (1024 * 1024)} MiB"

    def _environment(
        self, call: CgiCall, scope: Scope, headers: Mapping[str, str]
    ) -> dict[str, str]:
        env = git_environment()
        env.update(call.environment)
        client = scope.get("client")
        env.update(
            GIT_PROJECT_ROOT=str(self.project_root),
            GIT_HTTP_EXPORT_ALL="1",
            GATEWAY_INTERFACE="CGI/1.1",
            REQUEST_METHOD=scope["method"],
            PATH_INFO=call.path_info,
            QUERY_STRING=scope.get("query_string", b"").decode("latin-1"),
            REMOTE_USER=call.remote_user,
            REMOTE_ADDR=client[0] if client else "",
        )
        for header, variable in (
            ("content-type", "CONTENT_TYPE"),
            ("content-length", "CONTENT_LENGTH"),
            ("content-encoding", "HTTP_CONTENT_ENCODING"),
            ("git-protocol", "HTTP_GIT_PROTOCOL"),
        ):
            if header in headers:
                env[variable] = headers[header]
        return env


class _Exchange:
    """One request's conversation with its backend process."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        limits: BackendLimits,
        receive: Receive,
        send: Send,
    ) -> None:
        self.process = process
        self.limits = limits
        self.receive = receive
        self.send = send
        self.started = False
        self.packets: PktLines | None = None
        self.stderr_tail = b""

    async def run(self) -> None:
        try:
            async with asyncio.timeout(self.limits.timeout_s):
                await self._converse()
        except TimeoutError:
            await self._fail(504, f"git took longer than {self.limits.timeout_s:g} s: stopped")
        except RequestTooLarge:
            limit = self.limits.max_request_bytes // (1024 * 1024)
            await self._fail(413, f"the request is larger than {limit} MiB")
        except ClientGone:
            pass

    async def _converse(self) -> None:
        draining = asyncio.ensure_future(self._drain())
        helpers = [asyncio.ensure_future(self._reap()), draining]
        try:
            await self._answer(draining)
        finally:
            for helper in helpers:
                helper.cancel()

    async def _reap(self) -> None:
        """When the backend ends, end what it started too: a receive-pack or hook left
        running (the backend was killed) would hold its output open, and the answer with it."""
        await _exited(self.process)
        _end(self.process)

    async def _drain(self) -> None:
        """Read the backend's stderr as it comes, keeping its end: a client without side-band
        gets the hook's output there, which would otherwise fill the pipe and stop the hook."""
        stderr = self.process.stderr
        assert stderr is not None
        while data := await stderr.read(CHUNK):
            self.stderr_tail = (self.stderr_tail + data)[-STDERR_TAIL:]

    async def _answer(self, draining: asyncio.Future[None]) -> None:
        feeding = asyncio.ensure_future(self._feed())
        heading = asyncio.ensure_future(self._head())
        try:
            await asyncio.gather(feeding, heading)
        finally:
            for task in (feeding, heading):
                task.cancel()
        head = heading.result()
        if head is None:
            await self._backend_failed(draining)
            return
        status, headers = head
        if any(n == b"content-type" and v.startswith(b"application/x-git-") for n, v in headers):
            self.packets = PktLines()
        await self.send({"type": "http.response.start", "status": status, "headers": headers})
        self.started = True
        watching = asyncio.ensure_future(self._watch_client())
        copying = asyncio.ensure_future(self._copy())
        try:
            done, _ = await asyncio.wait({watching, copying}, return_when=asyncio.FIRST_COMPLETED)
            if watching in done:
                watching.result()
            copying.result()
        finally:
            watching.cancel()
            copying.cancel()

    async def _feed(self) -> None:
        """The request body into the backend's stdin; the backend may stop reading early
        (it refused the request): the rest is read and dropped."""
        stdin = self.process.stdin
        assert stdin is not None
        received = 0
        writing = True
        while True:
            message: Message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            data: bytes = message.get("body", b"")
            received += len(data)
            if received > self.limits.max_request_bytes:
                raise RequestTooLarge()
            if data and writing:
                try:
                    stdin.write(data)
                    await stdin.drain()
                except (BrokenPipeError, ConnectionResetError):
                    writing = False
            if not message.get("more_body", False):
                break
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            stdin.close()
            await stdin.wait_closed()

    async def _head(self) -> tuple[int, list[tuple[bytes, bytes]]] | None:
        stdout = self.process.stdout
        assert stdout is not None
        head = b""
        while True:
            line = await stdout.readline()
            if not line:
                return None  # ended before its headers
            if line in (b"\r\n", b"\n"):
                return parse_cgi_head(head)
            head += line
            if len(head) > HEADER_MAX:
                return None

    async def _copy(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        while data := await stdout.read(CHUNK):
            if self.packets is not None:
                data = self.packets.feed(data)
            if data:
                await self.send({"type": "http.response.body", "body": data, "more_body": True})
        code = await self.process.wait()
        if code < 0:
            await self._fail(502, f"git http-backend was ended by signal {-code}")
            return
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _watch_client(self) -> None:
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()

    async def _backend_failed(self, draining: asyncio.Future[None]) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        if not stdout.at_eof():  # a head past HEADER_MAX: not a CGI answer
            _end(self.process)
            await _discard(stdout)
        code = await self.process.wait()
        with contextlib.suppress(TimeoutError):  # what it said last, once its pipe is closed
            await asyncio.wait_for(asyncio.shield(draining), STDERR_WAIT_S)
        said = self.stderr_tail.decode(errors="replace").strip()
        log.warning("git http-backend ended (%s) without an answer: %s", code, said)
        await self._fail(502, f"git http-backend ended ({code}) without an answer: {said}")

    async def _fail(self, status: int, message: str) -> None:
        """Tell the client, as well as the state of the answer allows."""
        _end(self.process)
        if not self.started:
            await _plain(self.send, status, message)
            return
        with contextlib.suppress(OSError, RuntimeError):
            if self.packets is not None and self.packets.whole:
                packet = error_packet(message)
                await self.send({"type": "http.response.body", "body": packet, "more_body": True})
            await self.send({"type": "http.response.body", "body": b"", "more_body": False})


async def _exited(process: asyncio.subprocess.Process) -> None:
    """When the process has ended. (`Process.wait()` waits for its pipes to close too, which
    whatever it started may hold open.) A pidfd becomes readable when its process ends."""
    try:
        pidfd = os.pidfd_open(process.pid)
    except ProcessLookupError:
        return  # ended already, and reaped
    except OSError:  # no pidfd here: the pipes' end is the next best sign
        await process.wait()
        return
    loop = asyncio.get_running_loop()
    readable: asyncio.Future[None] = loop.create_future()

    def ended() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(pidfd, ended)
    try:
        if process.returncode is None:
            await readable
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)


async def _finish(process: asyncio.subprocess.Process) -> None:
    """End the backend's process group and release its pipes: `Process.wait()` returns only
    once every pipe is closed, and a pipe that nobody reads to its end never is."""
    _end(process)
    if process.stdin is not None:
        process.stdin.close()
    try:
        async with asyncio.timeout(FINISH_S):
            await asyncio.gather(_discard(process.stdout), _discard(process.stderr))
            await process.wait()
    except TimeoutError:
        log.error("git http-backend %d did not end within %g s of its kill", process.pid, FINISH_S)


async def _discard(reader: asyncio.StreamReader | None) -> None:
    if reader is not None:
        with contextlib.suppress(OSError):
            while await reader.read(CHUNK):
                pass


def _end(process: asyncio.subprocess.Process) -> None:
    """Kill the backend's process group: the backend, receive-pack, the hook, whichever still
    run (none, after a backend that ended by itself)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


async def _plain(send: Send, status: int, message: str) -> None:
    body = (message + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
