"""Builds and pushes over the Engine API, for `DockerEngine.build` and `DockerEngine.push`.

Build: `POST /build` with the context as a tar made while it is sent (`contexts.context_tar`),
the classic builder (no BuildKit session), so the engine keeps its layer cache between builds:

    query            t (the tag), dockerfile (its path in the context), labels and buildargs
                     (JSON), memory/memswap and cpuperiod/cpuquota (the RUN steps' limits),
                     rm and forcerm (no intermediate containers left behind, failed or not)
    X-Registry-Config   base64url JSON {host: {username, password}} for FROM images that need
                     a login
    answer           a stream of JSON messages: {"stream": text} (lines, possibly cut
                     anywhere), {"status", "id", "progress"} (a FROM image being pulled),
                     {"aux": {"ID": image id}}, {"error", "errorDetail"} (the build failed,
                     inside a 200 answer)

Push: `POST /images/{repository}/push?tag=…` with X-Registry-Auth; its answer's messages are
{"status", "id", "progress"} per layer, then "<tag>: digest: sha256:… size: N" and
{"aux": {"Tag", "Digest", "Size"}}, or {"error"}. The digest is the one the engine reports
(the registry's answer to its manifest upload); an engine that reports none (an older
Podman) is asked nothing more: the registry is (`distribution.resolve`).

`BuildOutput` and `PushOutput` read those messages (pure: table-tested); `build` and `push`
make the exchange.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from baepo.runtime import distribution
from baepo.runtime.boundary import boundary
from baepo.runtime.contexts import context_tar
from baepo.runtime.engine import BuildSpec, Credentials, LineSink, image_reference
from baepo.runtime.engine_http import (
    EngineClient,
    MessageStream,
    Upload,
    endpoint,
    registry_auth,
)
from baepo.runtime.errors import (
    BuildCancelled,
    BuildFailed,
    EngineError,
    EngineUnavailable,
    PushFailed,
)

_CPU_PERIOD = 100_000
_PUSHED_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")
# Push statuses that say nothing a person reading a log wants: progress, queueing.
_QUIET = {"Preparing", "Waiting", "Pushing"}


@dataclass
class BuildOutput:
    """The messages of a build's answer, fed one at a time: lines go to `on_line` as they
    complete; `image_id` and `error` hold what the builder said last about them."""

    on_line: LineSink
    image_id: str | None = None
    error: str | None = None
    _partial: str = field(default="", repr=False)

    def feed(self, message: object) -> None:
        if not isinstance(message, dict):
            return
        error = _error_in(message)
        if error is not None:
            self.error = error
        stream = message.get("stream")
        if isinstance(stream, str):
            text = self._partial + stream
            *whole, self._partial = text.split("\n")
            for line in whole:
                self.on_line(line.rstrip("\r"))
        status = message.get("status")
        if isinstance(status, str) and status and not message.get("progress"):
            ident = message.get("id")
            self.on_line(f"{ident}: {status}" if ident else status)
        aux = message.get("aux")
        if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
            self.image_id = aux["ID"]

    def end(self) -> None:
        """The answer ended: a last line without its line break is still a line."""
        if self._partial:
            self.on_line(self._partial.rstrip("\r"))
            self._partial = ""


@dataclass
class PushOutput:
    """The messages of a push's answer: progress lines to `on_line`, the digest, the error."""

    on_line: LineSink
    digest: str | None = None
    error: str | None = None

    def feed(self, message: object) -> None:
        if not isinstance(message, dict):
            return
        error = _error_in(message)
        if error is not None:
            self.error = error
            return
        aux = message.get("aux")
        if isinstance(aux, dict) and isinstance(aux.get("Digest"), str):
            self.digest = aux["Digest"]
        status = message.get("status")
        if not isinstance(status, str) or not status or status in _QUIET:
            return
        found = _PUSHED_DIGEST.search(status)
        if found and self.digest is None:
            self.digest = found.group(1)
        ident = message.get("id")
        self.on_line(f"{ident}: {status}" if ident else status)


def _error_in(message: Mapping[str, Any]) -> str | None:
    """The error a build's or a push's message reports ("error", else its "errorDetail")."""
    if not message.get("error") and not message.get("errorDetail"):
        return None
    detail = message.get("errorDetail")
    text = message.get("error") or (detail.get("message") if isinstance(detail, dict) else "")
    return str(text or "the engine reported an error without saying which").strip()


def build(
    client: EngineClient, spec: BuildSpec, on_line: LineSink, cancel: threading.Event | None
) -> str:
    """Build `spec` (see `Engine.build`); the image id."""
    cancel = cancel or threading.Event()
    if cancel.is_set():
        raise BuildCancelled(f"the build of {spec.tag} was cancelled")
    tar = context_tar(
        spec.context, dockerfile=spec.dockerfile, dockerfile_text=spec.dockerfile_text
    )
    output = BuildOutput(on_line)
    what = f"build {spec.tag}"
    try:
        with boundary(what, not_found=BuildFailed, other=BuildFailed):
            stream = MessageStream(
                client.chunks(
                    "POST",
                    "/build",
                    query=_build_query(spec),
                    headers={"X-Registry-Config": _registry_config(spec.registry_auth)},
                    upload=Upload("application/x-tar", tar),
                    idle_timeout_s=None,  # a RUN step may be quiet for long: `cancel` bounds it
                    cancel=cancel,
                )
            )
            with stream:
                for message in stream:
                    output.feed(message)
                    if output.error is not None:
                        break
            output.end()
    except EngineUnavailable:
        if cancel.is_set():
            raise BuildCancelled(f"the build of {spec.tag} was cancelled") from None
        raise
    if cancel.is_set() and output.error is None:
        raise BuildCancelled(f"the build of {spec.tag} was cancelled")
    if output.error is not None:
        raise BuildFailed(output.error)
    if output.image_id is not None:
        return output.image_id
    # An engine that does not say the id (no "aux"): the tag now names the image.
    with boundary(f"inspect the image built as {spec.tag}", not_found=BuildFailed):
        attrs = client.json("GET", endpoint("/images/{}/json", spec.tag))
    if not isinstance(attrs, dict) or not attrs.get("Id"):
        raise BuildFailed(f"the build of {spec.tag} ended without an image")
    return str(attrs["Id"])


def push(
    client: EngineClient,
    ref: str,
    auth: Credentials | None,
    on_line: LineSink,
    *,
    idle_timeout_s: float,
) -> str:
    """Push `ref` (see `Engine.push`); the manifest digest."""
    try:
        reference = image_reference(ref)
    except EngineError as exc:
        raise PushFailed(str(exc).replace("cannot pull", "cannot push")) from exc
    if reference.digest is not None:
        raise PushFailed(f"cannot push {ref}: push a tag, not a digest")
    tag = reference.tag or "latest"
    credentials = {} if auth is None else {"username": auth[0], "password": auth[1]}
    output = PushOutput(on_line)
    with boundary(f"push {ref}", not_found=PushFailed, other=PushFailed):
        # Each read waits at most idle_timeout_s: engines report a push's progress as it goes.
        stream = MessageStream(
            client.chunks(
                "POST",
                endpoint("/images/{}/push", reference.repository),
                query={"tag": tag},
                headers={"X-Registry-Auth": registry_auth(credentials)},
                idle_timeout_s=idle_timeout_s,
            )
        )
        with stream:
            for message in stream:
                output.feed(message)
    if output.error is not None:
        raise PushFailed(f"cannot push {ref}: {output.error}")
    if output.digest is not None:
        return output.digest
    try:
        return distribution.resolve(f"{reference.repository}:{tag}", auth)
    except (distribution.Unreachable, EngineError) as exc:
        raise PushFailed(f"pushed {ref}, but its registry does not say its digest: {exc}") from exc


def _build_query(spec: BuildSpec) -> dict[str, str | int | bool | None]:
    query: dict[str, str | int | bool | None] = {
        "t": spec.tag,
        "dockerfile": spec.dockerfile,
        "rm": 1,
        "forcerm": 1,
        "q": 0,
        "nocache": 0,
        "pull": 0,
    }
    if spec.labels:
        query["labels"] = json.dumps(dict(spec.labels))
    if spec.build_args:
        query["buildargs"] = json.dumps(dict(spec.build_args))
    if spec.memory_mb is not None:
        query["memory"] = spec.memory_mb * 1024 * 1024
        query["memswap"] = spec.memory_mb * 1024 * 1024  # no swap, as for containers
    if spec.cpu is not None:
        query["cpuperiod"] = _CPU_PERIOD
        query["cpuquota"] = max(1000, round(spec.cpu * _CPU_PERIOD))
    return query


def _registry_config(auth: Mapping[str, Credentials]) -> str:
    config: dict[str, Any] = {
        host: {"username": user, "password": password} for host, (user, password) in auth.items()
    }
    return base64.urlsafe_b64encode(json.dumps(config).encode()).decode("ascii")
