"""The pre-receive hook program: run directly against a fake push endpoint, and run by git
(a local push into a repository made by `GitRepositories`)."""

from __future__ import annotations

import io
import tarfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from baepo.pipelines import hook
from baepo.pipelines.git_remote import GitRepositories
from baepo.pipelines.hook import Result
from tests.pipelines.git_world import DEADLINE_S, GitClient, Watched, free_port

ZERO = "0" * 40
SECRET = "push-secret"


@dataclass
class Answer:
    lines: Sequence[str | threading.Event] = ()
    status: int = 200


@dataclass
class Posted:
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    body: bytes


@dataclass
class FakeEndpoint:
    """Answers each POST with the next `Answer` (its lines flushed one by one)."""

    answers: list[Answer] = field(default_factory=list)
    posted: list[Posted] = field(default_factory=list)

    def __post_init__(self) -> None:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                parts = urlsplit(self.path)
                endpoint.posted.append(
                    Posted(
                        parts.path,
                        parse_qs(parts.query),
                        self.headers.get("Authorization"),
                        self.rfile.read(length),
                    )
                )
                answer = endpoint.answers.pop(0)
                self.send_response(answer.status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                for line in answer.lines:
                    if isinstance(line, threading.Event):
                        line.wait(DEADLINE_S)
                        continue
                    self.wfile.write(line.encode() + b"\n")
                    self.wfile.flush()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/internal/pipelines/pushes/p1"

    def env(self) -> dict[str, str]:
        return {hook.URL_VARIABLE: self.url, hook.SECRET_VARIABLE: SECRET}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[FakeEndpoint]:
    fake = FakeEndpoint()
    yield fake
    fake.close()


@pytest.fixture
def git(tmp_path: Path) -> GitClient:
    return GitClient(tmp_path / "home")


@pytest.fixture
def work(tmp_path: Path, git: GitClient, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository the hook's `git archive` reads (as git points a real hook at its own)."""
    path = tmp_path / "work"
    git.work_tree(path, {"app.py": "v1\n"})
    monkeypatch.setenv("GIT_DIR", str(path / ".git"))
    for name, value in git.env.items():
        monkeypatch.setenv(name, value)
    return path


def succeeded(number: int) -> str:
    return Result(ok=True, status="SUCCEEDED", run=f"r{number}", number=number).line()


def head(git: GitClient, work: Path) -> str:
    return git.run("rev-parse", "HEAD", cwd=work).stdout.strip()


def run_hook(lines: list[str], env: dict[str, str]) -> tuple[int, str]:
    out = io.BytesIO()
    code = hook.main(lines, out, env)
    return code, out.getvalue().decode()


def test_each_pushed_branch_is_posted_and_its_answer_printed(
    endpoint: FakeEndpoint, git: GitClient, work: Path
) -> None:
    first = head(git, work)
    second = git.commit(work, {"app.py": "v2\n"})
    endpoint.answers = [
        Answer(["-----> testing", "ok", succeeded(1)]),
        Answer(["-----> testing again", succeeded(2)]),
    ]
    code, printed = run_hook(
        [
            f"{ZERO} {first} refs/heads/main\n",
            f"{ZERO} {first} refs/tags/v1\n",  # a tag: nothing runs
            f"{first} {ZERO} refs/heads/old\n",  # a deletion: nothing runs
            f"{first} {second} refs/heads/feature/x\n",
        ],
        endpoint.env(),
    )
    assert code == 0
    assert printed.splitlines() == [
        "-----> testing",
        "ok",
        "-----> run #1 SUCCEEDED",
        "-----> testing again",
        "-----> run #2 SUCCEEDED",
    ]
    assert [(p.query["branch"], p.query["commit"]) for p in endpoint.posted] == [
        (["main"], [first]),
        (["feature/x"], [second]),
    ]
    assert {p.authorization for p in endpoint.posted} == {f"Bearer {SECRET}"}
    assert {p.path for p in endpoint.posted} == {"/internal/pipelines/pushes/p1"}
    with tarfile.open(fileobj=io.BytesIO(endpoint.posted[1].body)) as tar:
        extracted = tar.extractfile("app.py")
        assert extracted is not None and extracted.read() == b"v2\n"


def test_a_failed_run_fails_the_hook_and_stops_it(
    endpoint: FakeEndpoint, git: GitClient, work: Path
) -> None:
    commit = head(git, work)
    failed = Result(
        ok=False, status="FAILED", message="step test failed (exit 1)", run="r", number=4
    )
    endpoint.answers = [Answer(["boom", failed.line()])]
    code, printed = run_hook(
        [f"{ZERO} {commit} refs/heads/main\n", f"{ZERO} {commit} refs/heads/second\n"],
        endpoint.env(),
    )
    assert code == 1
    assert printed.splitlines() == ["boom", "-----> run #4 FAILED: step test failed (exit 1)"]
    assert len(endpoint.posted) == 1  # the second branch is not run


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (
            Answer(["this push is over"], status=401),
            "baepo: the pipeline did not take main (401): this push is over",
        ),
        (Answer(["a line"]), "baepo: the pipeline's answer ended before its result"),
        (Answer(["\x1e{not json", "more"]), "baepo: the pipeline's answer ended before its result"),
    ],
)
def test_an_answer_without_a_success_fails_the_hook(
    endpoint: FakeEndpoint, git: GitClient, work: Path, answer: Answer, said: str
) -> None:
    endpoint.answers = [answer]
    code, printed = run_hook([f"{ZERO} {head(git, work)} refs/heads/main\n"], endpoint.env())
    assert code == 1
    assert printed.splitlines()[-1] == said


def test_an_endpoint_that_does_not_answer_fails_the_hook(git: GitClient, work: Path) -> None:
    env = {hook.URL_VARIABLE: f"http://127.0.0.1:{free_port()}/x", hook.SECRET_VARIABLE: "s"}
    code, printed = run_hook([f"{ZERO} {head(git, work)} refs/heads/main\n"], env)
    assert code == 1
    assert printed.startswith("baepo: cannot reach Baepo's pipelines at 127.0.0.1:")


def test_a_commit_git_cannot_archive_fails_the_hook(endpoint: FakeEndpoint, work: Path) -> None:
    code, printed = run_hook([f"{ZERO} {'1' * 40} refs/heads/main\n"], endpoint.env())
    assert code == 1
    assert printed.startswith(f"baepo: git archive {'1' * 40} failed")
    assert endpoint.posted == []


def test_without_its_endpoint_the_hook_refuses_every_push() -> None:
    code, printed = run_hook([f"{ZERO} {'1' * 40} refs/heads/main\n"], {})
    assert code == 1
    assert "through Baepo's git remote only" in printed


@pytest.mark.parametrize(
    ("line", "result"),
    [
        (
            '\x1e{"ok": true, "status": "SUCCEEDED", "run": "a", "number": 2, "message": ""}',
            Result(True, "SUCCEEDED", "", "a", 2),
        ),
        (
            '\x1e{"ok": true, "status": "SKIPPED", "run": null, "number": null, "message": "m"}',
            Result(True, "SKIPPED", "m"),
        ),
        ('\x1e{"ok": "true", "status": "SUCCEEDED"}', Result(False, "SUCCEEDED")),
        ('\x1e{"status": "SUCCEEDED"}', None),
        ('\x1e{"ok": true, "status": "X", "number": "two"}', None),
        ("\x1e[1, 2]", None),
        ('{"ok": true, "status": "SUCCEEDED"}', None),
    ],
)
def test_result_lines(line: str, result: Result | None) -> None:
    assert Result.parse(line) == result


@pytest.mark.parametrize(
    ("result", "summary"),
    [
        (Result(True, "SUCCEEDED", "", "a", 2), "run #2 SUCCEEDED"),
        (Result(False, "FAILED", "step x failed", "a", 2), "run #2 FAILED: step x failed"),
        (Result(True, "SKIPPED", "no pipeline for branch b"), "no pipeline for branch b"),
        (Result(False, "ERROR"), "ERROR"),
    ],
)
def test_result_summaries(result: Result, summary: str) -> None:
    assert result.summary() == summary
    assert Result.parse(result.line()) == result


def test_run_by_git_its_lines_reach_the_pusher_as_they_come(
    endpoint: FakeEndpoint, git: GitClient, tmp_path: Path
) -> None:
    remote = GitRepositories(tmp_path / "repositories").ensure("app", "alice 1")
    work = tmp_path / "work"
    commit = git.work_tree(work, {"app.py": "v1\n"})
    go_on = threading.Event()
    endpoint.answers = [Answer(["first", go_on, "second", succeeded(1)])]
    git.env.update(endpoint.env())
    push = Watched(git.start("push", str(remote), "main", cwd=work))
    push.wait_for_line("remote: first")
    assert push.process.poll() is None
    go_on.set()
    code, output = push.finish()
    assert code == 0, output
    assert "remote: second" in output and "remote: -----> run #1 SUCCEEDED" in output
    assert git.run("ls-remote", "--heads", str(remote)).stdout == f"{commit}\trefs/heads/main\n"


def test_run_by_git_a_failure_rejects_the_push(
    endpoint: FakeEndpoint, git: GitClient, tmp_path: Path
) -> None:
    remote = GitRepositories(tmp_path / "repositories").ensure("app", "alice 1")
    work = tmp_path / "work"
    git.work_tree(work, {"app.py": "v1\n"})
    endpoint.answers = [Answer([Result(False, "FAILED", "no", "r", 1).line()])]
    git.env.update(endpoint.env())
    refused = git.run("push", str(remote), "main", cwd=work, check=False)
    assert refused.returncode != 0
    assert "remote: -----> run #1 FAILED: no" in refused.stderr
    assert "(pre-receive hook declined)" in refused.stderr
    assert git.run("ls-remote", "--heads", str(remote)).stdout == ""
