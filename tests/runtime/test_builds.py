"""Builds and pushes: `Engine.build` and `Engine.push` against MemoryEngine, dockerd and Podman
(the `engine` fixture), and how `builds.py` reads the engines' messages (hermetic).

Every build's Dockerfile carries a marker unique to the test, so nothing an earlier run left
in the engine's layer cache can answer for it; the images a test tags are removed after it.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import secrets
import socket
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from baepo.runtime import (
    BuildCancelled,
    BuildFailed,
    BuildSpec,
    ContainerSpec,
    DockerEngine,
    Engine,
    PushFailed,
)
from baepo.runtime.builds import BuildOutput, PushOutput
from baepo.runtime.engine_http import EngineClient, ResponseError, TransportError, endpoint
from tests.clients import registry_digest
from tests.conftest import BaepoProcess
from tests.fakes.engine import MemoryEngine
from tests.fakes.socket_engine import (
    Request,
    SocketEngine,
    end_chunks,
    send_chunk,
    send_chunked_head,
    send_json,
)
from tests.runtime.waiting import eventually

integration = pytest.mark.integration

Spec = Callable[..., ContainerSpec]


# -- the engines' messages, read ------------------------------------------------------------


def test_build_lines_are_whole_lines_however_the_stream_cuts_them() -> None:
    lines: list[str] = []
    output = BuildOutput(lines.append)
    for message in [
        {"stream": "Step 1/2 : FROM baepo-test/busybox:1\n ---> 1a2b"},
        {"stream": "3c\nStep 2/2 : RUN echo hi\r\n"},
        {"status": "Pulling fs layer", "id": "abc", "progress": "[=>   ]"},
        {"status": "Pull complete", "id": "abc"},
        {"aux": {"ID": "sha256:feed"}},
        {"stream": "Successfully built feed"},
        "not a message",
    ]:
        output.feed(message)
    output.end()

    assert lines == [
        "Step 1/2 : FROM baepo-test/busybox:1",
        " ---> 1a2b3c",
        "Step 2/2 : RUN echo hi",
        "abc: Pull complete",
        "Successfully built feed",
    ]
    assert (output.image_id, output.error) == ("sha256:feed", None)


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"error": "boom", "errorDetail": {"message": "boom"}}, "boom"),
        ({"errorDetail": {"message": "only the detail"}}, "only the detail"),
        ({"error": "  spaced\n"}, "spaced"),
    ],
)
def test_a_build_error_is_the_builders_message(message: dict[str, object], error: str) -> None:
    output = BuildOutput(lambda line: None)
    output.feed(message)
    assert output.error == error


def test_push_progress_is_quiet_and_the_digest_comes_from_aux_or_status() -> None:
    digest = "sha256:" + "a" * 64
    lines: list[str] = []
    output = PushOutput(lines.append)
    for message in [
        {"status": "The push refers to repository [127.0.0.1:5000/team/app]"},
        {"status": "Preparing", "id": "l1", "progressDetail": {}},
        {"status": "Pushing", "id": "l1", "progress": "[==> ]"},
        {"status": "Pushed", "id": "l1"},
        {"status": f"1: digest: {digest} size: 528"},
        {"progressDetail": {}, "aux": {"Tag": "1", "Digest": digest, "Size": 528}},
    ]:
        output.feed(message)

    assert lines == [
        "The push refers to repository [127.0.0.1:5000/team/app]",
        "l1: Pushed",
        f"1: digest: {digest} size: 528",
    ]
    assert output.digest == digest
    only_status = PushOutput(lambda line: None)
    only_status.feed({"status": f"latest: digest: {digest} size: 1"})
    assert only_status.digest == digest
    failed = PushOutput(lambda line: None)
    failed.feed({"error": "unauthorized: authentication required"})
    assert failed.error == "unauthorized: authentication required"


# -- the requests, at the wire ----------------------------------------------------------------


def streamed(*messages: object) -> Callable[[Request, socket.socket], None]:
    """An engine that answers with a chunked stream of these JSON messages."""

    def answer(request: Request, connection: socket.socket) -> None:
        send_chunked_head(connection)
        for message in messages:
            send_chunk(connection, json.dumps(message).encode() + b"\r\n")
        end_chunks(connection)

    return answer


def test_a_build_sends_the_context_as_a_streamed_tar_with_the_clis_query(tmp_path: Path) -> None:
    root = context(tmp_path / "ctx", {"Dockerfile": "FROM x\n", "app.txt": "hi\n"})
    spec = BuildSpec(
        context=root,
        tag="127.0.0.1:5000/team/app:1",
        labels={"baepo.pipeline.repository": "team/app"},
        build_args={"VERSION": "1"},
        cpu=0.5,
        memory_mb=256,
        registry_auth={"127.0.0.1:5000": ("token", "s3cret")},
    )
    answer = streamed({"stream": "Step 1/1 : FROM x\n"}, {"aux": {"ID": "sha256:abc"}})
    lines = Lines()

    with SocketEngine(tmp_path / "engine.sock", answer) as wire:
        image_id = DockerEngine(wire.url).build(spec, lines)

    assert (image_id, lines.lines) == ("sha256:abc", ["Step 1/1 : FROM x"])
    build = wire.requests[-1]
    assert (build.method, build.path) == ("POST", "/v1.41/build")
    assert build.query == {
        "t": "127.0.0.1:5000/team/app:1",
        "dockerfile": "Dockerfile",
        "rm": "1",
        "forcerm": "1",
        "q": "0",
        "nocache": "0",
        "pull": "0",
        "labels": '{"baepo.pipeline.repository": "team/app"}',
        "buildargs": '{"VERSION": "1"}',
        "memory": str(256 << 20),
        "memswap": str(256 << 20),
        "cpuperiod": "100000",
        "cpuquota": "50000",
    }
    assert build.headers["content-type"] == "application/x-tar"
    assert build.headers["transfer-encoding"] == "chunked"
    assert json.loads(base64.urlsafe_b64decode(build.headers["x-registry-config"])) == {
        "127.0.0.1:5000": {"username": "token", "password": "s3cret"}
    }
    with tarfile.open(fileobj=io.BytesIO(build.body)) as tar:
        assert sorted(tar.getnames()) == ["Dockerfile", "app.txt"]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            streamed({"stream": "Step 1/2 : RUN x\n"}, {"error": "x: not found"}),
            "x: not found",
        ),
        (
            lambda request, connection: send_json(
                connection, 500, {"message": "Cannot locate specified Dockerfile: Dockerfile"}
            ),
            "Cannot locate specified Dockerfile",
        ),
    ],
)
def test_a_builders_error_in_the_stream_or_as_a_status_is_a_build_failure(
    tmp_path: Path, answer: Callable[[Request, socket.socket], None], message: str
) -> None:
    root = context(tmp_path / "ctx", {"Dockerfile": "FROM x\n"})

    with (
        SocketEngine(tmp_path / "engine.sock", answer) as wire,
        pytest.raises(BuildFailed, match=message),
    ):
        DockerEngine(wire.url).build(BuildSpec(context=root, tag="app:1"), Lines())


def test_a_push_sends_its_credentials_and_returns_the_reported_digest(tmp_path: Path) -> None:
    digest = "sha256:" + "b" * 64
    answer = streamed(
        {"status": "The push refers to repository [127.0.0.1:5000/team/app]"},
        {"status": f"1: digest: {digest} size: 528"},
        {"progressDetail": {}, "aux": {"Tag": "1", "Digest": digest, "Size": 528}},
    )

    with SocketEngine(tmp_path / "engine.sock", answer) as wire:
        pushed = DockerEngine(wire.url).push("127.0.0.1:5000/team/app:1", ("u", "p"), Lines())

    assert pushed == digest
    push = wire.requests[-1]
    assert (push.method, push.path) == ("POST", "/v1.41/images/127.0.0.1:5000/team/app/push")
    assert push.query == {"tag": "1"}
    assert json.loads(base64.urlsafe_b64decode(push.headers["x-registry-auth"])) == {
        "username": "u",
        "password": "p",
    }


def test_a_push_refused_inside_the_stream_is_a_push_failure(tmp_path: Path) -> None:
    answer = streamed({"errorDetail": {"message": "denied: requested access is denied"}})

    with (
        SocketEngine(tmp_path / "engine.sock", answer) as wire,
        pytest.raises(PushFailed, match="denied"),
    ):
        DockerEngine(wire.url).push("127.0.0.1:5000/team/app:1", None, Lines())


# -- builds against every engine -------------------------------------------------------------


@pytest.fixture
def tags(engine: Engine) -> Iterator[Callable[[str], str]]:
    """`tag(name)`: a tag unique to the test; what it names is removed afterwards."""
    made: list[str] = []
    suffix = secrets.token_hex(4)

    def tag(name: str) -> str:
        made.append(f"{name}-{suffix}:1" if ":" not in name else name)
        return made[-1]

    yield tag
    if isinstance(engine, DockerEngine):
        client = EngineClient(engine.base_url, timeout_s=60)
        for ref in made:
            with contextlib.suppress(ResponseError, TransportError):
                client.request("DELETE", endpoint("/images/{}", ref), query={"force": 1})


class Lines:
    """What a build or a push reported, collected from whichever thread it runs in."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def count(self, words: str) -> int:
        return self.text().count(words)


def context(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def dockerfile(*lines: str) -> str:
    """A Dockerfile on busybox whose first step is unique to this call (never cached before)."""
    marker = secrets.token_hex(8)
    return "\n".join(["FROM baepo-test/busybox:1", f"RUN echo {marker} > /marker", *lines]) + "\n"


def test_a_build_tags_its_image_and_reports_its_steps(
    engine: Engine, tags: Callable[[str], str], tmp_path: Path
) -> None:
    tag = tags("baepo-test/built")
    root = context(
        tmp_path, {"Dockerfile": dockerfile("COPY app.txt /app.txt"), "app.txt": "hello\n"}
    )
    lines = Lines()

    image_id = engine.build(BuildSpec(context=root, tag=tag), lines)

    assert image_id.startswith("sha256:")
    assert engine.image_present(tag)
    assert "step 1/3" in lines.text().lower()
    assert "Using cache" not in lines.text()


def test_a_second_build_of_the_same_context_uses_the_cache(
    engine: Engine, tags: Callable[[str], str], tmp_path: Path
) -> None:
    tag = tags("baepo-test/cached")
    root = context(
        tmp_path, {"Dockerfile": dockerfile("COPY app.txt /app.txt"), "app.txt": "hello\n"}
    )
    first = engine.build(BuildSpec(context=root, tag=tag), Lines())
    again = Lines()

    second = engine.build(BuildSpec(context=root, tag=tag), again)

    assert again.count("Using cache") == 2  # the RUN and the COPY
    assert second == first


def test_a_changed_last_file_rebuilds_only_the_last_step(
    engine: Engine, tags: Callable[[str], str], tmp_path: Path
) -> None:
    tag = tags("baepo-test/layers")
    text = dockerfile("COPY base.txt /base.txt", "COPY last.txt /last.txt")
    root = context(tmp_path, {"Dockerfile": text, "base.txt": "stable\n", "last.txt": "v1\n"})
    first = engine.build(BuildSpec(context=root, tag=tag), Lines())
    (root / "last.txt").write_text("v2\n")
    rebuilt = Lines()

    second = engine.build(BuildSpec(context=root, tag=tag), rebuilt)

    assert rebuilt.count("Using cache") == 2  # the RUN and the first COPY; not the last
    assert second != first


def test_dockerignore_keeps_files_out_of_the_context(
    engine: Engine, tags: Callable[[str], str], tmp_path: Path
) -> None:
    if isinstance(engine, MemoryEngine):
        pytest.skip("the fake builder does not copy files (contexts are tested in test_contexts)")
    root = context(
        tmp_path,
        {
            "Dockerfile": dockerfile("COPY secret.txt /secret.txt"),
            "secret.txt": "never sent\n",
            ".dockerignore": "secret.txt\n",
        },
    )

    with pytest.raises(BuildFailed, match=r"secret\.txt"):
        engine.build(BuildSpec(context=root, tag=tags("baepo-test/ignored")), Lines())


def test_a_generated_dockerfile_replaces_the_contexts(
    engine: Engine, tags: Callable[[str], str], tmp_path: Path
) -> None:
    tag = tags("baepo-test/generated")
    root = context(tmp_path, {"Dockerfile": "FROBNICATE everything\n", "app.txt": "hello\n"})
    lines = Lines()

    engine.build(
        BuildSpec(context=root, tag=tag, dockerfile_text=dockerfile("COPY app.txt /")), lines
    )

    assert engine.image_present(tag)
    assert "FROBNICATE" not in lines.text()


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (("FROBNICATE everything",), r'(?i)unknown instruction: "?FROBNICATE'),
        (("RUN exit 3",), r"non-zero code: 3|exit status 3"),
    ],
)
def test_a_failing_build_raises_the_builders_message(
    engine: Engine,
    tags: Callable[[str], str],
    tmp_path: Path,
    lines: tuple[str, ...],
    message: str,
) -> None:
    root = context(tmp_path, {"Dockerfile": dockerfile(*lines)})

    with pytest.raises(BuildFailed, match=message):
        engine.build(BuildSpec(context=root, tag=tags("baepo-test/failing")), Lines())


def test_a_build_from_an_absent_image_fails(
    engine: Engine, tags: Callable[[str], str], tmp_path: Path
) -> None:
    root = context(tmp_path, {"Dockerfile": "FROM baepo-test/absent:1\nRUN true\n"})

    # The engine tries to pull it: its words name the image or the registry it asked.
    with pytest.raises(BuildFailed, match=r"baepo-test/absent|registry|docker\.io"):
        engine.build(BuildSpec(context=root, tag=tags("baepo-test/orphan")), Lines())


def test_a_context_without_its_dockerfile_fails_before_the_engine_is_asked(
    engine: Engine, tmp_path: Path
) -> None:
    with pytest.raises(BuildFailed, match="no Dockerfile"):
        engine.build(BuildSpec(context=tmp_path, tag="baepo-test/nothing:1"), Lines())


def test_cancel_stops_a_build_mid_step(
    engine: Engine, tags: Callable[[str], str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if request.node.callspec.params.get("engine") == "podman":
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                reason="Podman 4.3's compatible /build does not stop when its client goes: "
                "buildah runs the step to its end, then drops the build",
            )
        )
    tag = tags("baepo-test/cancelled")
    seconds = 30 + secrets.randbelow(100)  # the step's process, told apart on this host
    root = context(tmp_path, {"Dockerfile": dockerfile(f"RUN echo sleeping && sleep {seconds}")})
    cancel = threading.Event()
    lines = Lines()
    raised: list[BaseException] = []

    def run() -> None:
        try:
            engine.build(BuildSpec(context=root, tag=tag), lines, cancel)
        except BaseException as exc:
            raised.append(exc)

    builder = threading.Thread(target=run, daemon=True)
    builder.start()
    eventually(lambda: True if "sleeping" in lines.text() else None, 60, "the RUN step started")
    if not isinstance(engine, MemoryEngine):
        eventually(lambda: True if sleeping(seconds) else None, 20, "the step's sleep runs")

    cancel.set()

    builder.join(timeout=30)
    assert not builder.is_alive()
    assert len(raised) == 1 and isinstance(raised[0], BuildCancelled), raised
    assert not engine.image_present(tag)
    if not isinstance(engine, MemoryEngine):
        eventually(
            lambda: None if sleeping(seconds) else True, 20, "the engine stops the build's step"
        )


def sleeping(seconds: int) -> bool:
    """Whether a `sleep <seconds>` runs on this host (a build step of an engine here)."""
    wanted = f"sleep\0{seconds}\0".encode()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if cmdline.read_bytes() == wanted:
                return True
    return False


# -- pushes -----------------------------------------------------------------------------------


@pytest.fixture
def registry(engine: Engine, request: pytest.FixtureRequest) -> tuple[str, tuple[str, str]]:
    """A registry that wants a login: a real Baepo's (session), or the fake's."""
    if isinstance(engine, MemoryEngine):
        host, credentials = "127.0.0.1:5999", ("admin", "secret")
        engine.require_login(host, credentials)
        return host, credentials
    baepo: BaepoProcess = request.getfixturevalue("baepo_server")
    return baepo.host, (baepo.username, baepo.password)


def test_a_push_needs_the_registrys_login_and_returns_its_digest(
    engine: Engine,
    tags: Callable[[str], str],
    tmp_path: Path,
    registry: tuple[str, tuple[str, str]],
) -> None:
    host, credentials = registry
    ref = tags(f"{host}/runtime/pushed-{secrets.token_hex(3)}:1")
    root = context(tmp_path, {"Dockerfile": dockerfile()})
    engine.build(BuildSpec(context=root, tag=ref), Lines())
    with pytest.raises(PushFailed, match=r"(?i)unauthorized|denied|authentication|forbidden"):
        engine.push(ref, None, Lines())
    lines = Lines()

    digest = engine.push(ref, credentials, lines)

    assert digest.startswith("sha256:") and len(digest) == 71
    assert digest in lines.text()
    if isinstance(engine, MemoryEngine):
        assert engine.pull(ref, auth=credentials).digest == digest
    else:
        assert registry_digest(ref, credentials) == digest
    assert engine.push(ref, credentials, Lines()) == digest  # the same image, the same digest


def test_pushing_an_absent_image_fails(
    engine: Engine, registry: tuple[str, tuple[str, str]]
) -> None:
    host, credentials = registry
    with pytest.raises(PushFailed):
        engine.push(f"{host}/runtime/absent-{secrets.token_hex(3)}:1", credentials, Lines())
