"""The git remote with the real git client against a live server: pushes that run a (fake)
pipeline with its log in the terminal while it runs, rights, bounds and failures."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pipelines.git_world import FakeRuns, GitClient, LiveGit, Script, Watched

pytestmark = pytest.mark.integration


@pytest.fixture
def runs() -> FakeRuns:
    return FakeRuns()


@pytest.fixture
def live(tmp_path: Path, runs: FakeRuns) -> Iterator[LiveGit]:
    with LiveGit(tmp_path / "server", runs) as server:
        yield server


@pytest.fixture
def git(tmp_path: Path) -> GitClient:
    return GitClient(tmp_path / "client-home")


def test_a_push_streams_the_run_while_it_runs(live: LiveGit, runs: FakeRuns, git: GitClient, tmp_path: Path) -> None:
    token = live.token("alice", "push", services=("app",))
    go_on = threading.Event()
    runs.scripts["main"] = Script(["-----> testing", "first line", go_on, "second line"])
    work = tmp_path / "work"
    commit = git.work_tree(work, {"app.py": "print('hi')\n"})
    push = Watched(git.start("push", live.url("app", "alice", token), "main", cwd=work))
    push.wait_for_line("remote: first line")
    assert not runs.runs[0].done
    go_on.set()
    code, output = push.finish()
    assert code == 0, output
    assert "remote: second line" in output
    assert "remote: -----> run #1 SUCCEEDED" in output
    heads = git.run("ls-remote", live.url("app", "alice", token)).stdout
    assert f"{commit}\trefs/heads/main" in heads

