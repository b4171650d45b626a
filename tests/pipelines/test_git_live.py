"""The git remote with the real git client against a live server: pushes that run a (fake)
pipeline with its log in the terminal while it runs, rights, bounds and failures."""

from __future__ import annotations

import io
import os
import signal
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from baepo.pipelines.git_http import BackendLimits
from tests.pipelines.git_world import PASSWORDS, FakeRuns, GitClient, LiveGit, Script, Watched

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


def test_a_push_streams_the_run_while_it_runs(
    live: LiveGit, runs: FakeRuns, git: GitClient, tmp_path: Path
) -> None:
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


def test_a_failed_run_rejects_the_push_and_the_branch_stays(
    live: LiveGit, runs: FakeRuns, git: GitClient, tmp_path: Path
) -> None:
    token = live.token("alice", "push", services=("app",))
    url = live.url("app", "alice", token)
    runs.scripts["main"] = Script(
        ["$ python3 -m unittest", "FAILED (failures=1)"], "FAILED", "step test failed (exit 1)"
    )
    work = tmp_path / "work"
    git.work_tree(work, {"app.py": "broken\n"})
    refused = git.run("push", url, "main", cwd=work, check=False)
    assert refused.returncode != 0
    assert "remote: FAILED (failures=1)" in refused.stderr
    assert "remote: -----> run #1 FAILED: step test failed (exit 1)" in refused.stderr
    assert "[remote rejected] main -> main (pre-receive hook declined)" in refused.stderr
    assert git.run("ls-remote", url).stdout == ""

    runs.scripts["main"] = Script(["all good"])
    fixed = git.commit(work, {"app.py": "fixed\n"})
    git.run("push", url, "main", cwd=work)
    assert git.run("ls-remote", "--heads", url).stdout == f"{fixed}\trefs/heads/main\n"
    assert [run.commit for run in runs.runs] == [runs.runs[0].commit, fixed]


def test_the_run_gets_the_pushed_tree_and_who_pushed(
    live: LiveGit, runs: FakeRuns, git: GitClient, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    commit = git.work_tree(work, {"app.py": "v1\n", "lib/util.py": "x = 1\n"})
    git.run("push", live.url("app", "alice", PASSWORDS["alice"]), "main", cwd=work)
    (run,) = runs.runs
    assert (run.service, run.branch, run.commit, run.caller.name) == (
        "app",
        "main",
        commit,
        "alice",
    )
    with tarfile.open(fileobj=io.BytesIO(run.source)) as tar:
        names = {m.name for m in tar.getmembers() if m.isfile()}
        assert names >= {"app.py", "lib/util.py"}
        extracted = tar.extractfile("app.py")
        assert extracted is not None and extracted.read() == b"v1\n"
    assert not list((live.root / "spool").iterdir())  # the tree went to the run


def test_branches_without_a_pipeline_step_and_tags_are_taken_as_they_are(
    live: LiveGit, runs: FakeRuns, git: GitClient, tmp_path: Path
) -> None:
    url = live.url("app", "alice", live.token("alice", "push"))
    work = tmp_path / "work"
    pipeline = "steps:\n  - name: test\n    when: {branch: ['feature/*']}\n"
    git.work_tree(work, {"app.py": "v1\n", "baepo.yaml": pipeline})
    git.run("checkout", "--quiet", "-b", "wip", cwd=work)
    skipped = git.run("push", url, "wip", cwd=work)
    assert "remote: -----> no pipeline for branch wip: accepted as it is" in skipped.stderr
    git.run("tag", "v1", cwd=work)
    git.run("push", url, "v1", cwd=work)
    assert runs.runs == []

    git.run("checkout", "--quiet", "-b", "feature/x", cwd=work)
    ran = git.run("push", url, "feature/x", cwd=work)
    assert "remote: -----> run #1 SUCCEEDED" in ran.stderr
    assert [run.branch for run in runs.runs] == ["feature/x"]
    heads = git.run("ls-remote", url).stdout
    assert "refs/heads/wip" in heads and "refs/tags/v1" in heads and "refs/heads/feature/x" in heads

    git.run("push", url, ":wip", cwd=work)  # a deletion runs nothing either
    assert "refs/heads/wip" not in git.run("ls-remote", url).stdout
    assert len(runs.runs) == 1


def test_a_run_the_store_refuses_rejects_the_push(
    live: LiveGit, runs: FakeRuns, git: GitClient, tmp_path: Path
) -> None:
    runs.refuse = "service app is paused: resume it first"
    work = tmp_path / "work"
    git.work_tree(work, {"app.py": "v1\n"})
    url = live.url("app", "alice", live.token("alice", "push"))
    refused = git.run("push", url, "main", cwd=work, check=False)
    assert refused.returncode != 0
    assert "remote: -----> service app is paused: resume it first" in refused.stderr
    assert git.run("ls-remote", url).stdout == ""


@pytest.mark.parametrize(
    ("secret", "said"),
    [
        ("wrong-secret", "Authentication failed"),
        (None, "terminal prompts disabled"),
    ],
)
def test_wrong_or_no_credentials_fail_at_once(
    live: LiveGit, git: GitClient, tmp_path: Path, secret: str | None, said: str
) -> None:
    work = tmp_path / "work"
    git.work_tree(work, {"app.py": "v1\n"})
    url = live.url("app", "alice", secret) if secret else live.url("app")
    for args in (("push", url, "main"), ("ls-remote", url)):
        failed = git.run(*args, cwd=work, check=False)  # bounded: a prompt would hang here
        assert failed.returncode != 0
        assert said in failed.stderr
    assert not live.repositories.exists("app", "alice")


@pytest.mark.parametrize(
    ("who", "service", "said"),
    [
        ("other-token", "app", "no service named 'app'"),  # limited to another service
        ("bob", "app", "no service named 'app'"),  # another user's service
        ("repo-token", "app", "error: 403"),  # limited to the registry
        ("alice-token", "nope", "no service named 'nope'"),  # no such service
    ],
)
def test_who_may_not_push_or_fetch_is_refused(
    live: LiveGit, git: GitClient, tmp_path: Path, who: str, service: str, said: str
) -> None:
    secrets = {
        "other-token": ("alice", live.token("alice", "other", services=("other",))),
        "bob": ("bob", PASSWORDS["bob"]),
        "repo-token": ("alice", live.token("alice", "repo", repositories=("alice/app",))),
        "alice-token": ("alice", live.token("alice", "all")),
    }
    user, secret = secrets[who]
    work = tmp_path / "work"
    git.work_tree(work, {"app.py": "v1\n"})
    for args in (
        ("push", live.url(service, user, secret), "main"),
        ("clone", live.url(service, user, secret), str(tmp_path / "clone")),
    ):
        failed = git.run(*args, cwd=work, check=False)
        assert failed.returncode != 0
        assert said in failed.stderr
    assert not (live.root / "git" / f"{service}.git").exists()


def test_clone_and_fetch_read_what_was_pushed(
    live: LiveGit, git: GitClient, tmp_path: Path
) -> None:
    token = live.token("alice", "app", services=("app",))
    url = live.url("app", "alice", token)
    work = tmp_path / "work"
    git.work_tree(work, {"app.py": "v1\n"})
    fresh = git.run("clone", url, str(tmp_path / "early"), check=False)
    assert fresh.returncode != 0 and "nothing was pushed to app yet" in fresh.stderr
    git.run("push", url, "main", cwd=work)
    second = git.commit(work, {"app.py": "v2\n"})
    git.run("push", url, "main", cwd=work)

    git.run("clone", url, str(tmp_path / "clone"))
    assert (tmp_path / "clone" / "app.py").read_text() == "v2\n"
    for version in ("0", "2"):  # the original protocol, and v2 (git's default)
        copy = tmp_path / f"fetch-v{version}"
        git.run("init", "--quiet", str(copy))
        git.run("-c", f"protocol.version={version}", "fetch", url, "main", cwd=copy)
        assert git.run("rev-parse", "FETCH_HEAD", cwd=copy).stdout.strip() == second


def test_a_service_made_again_by_another_owner_does_not_show_the_old_code(
    live: LiveGit, git: GitClient, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    git.work_tree(work, {"secret.py": "alice's code\n"})
    git.run("push", live.url("app", "alice", PASSWORDS["alice"]), "main", cwd=work)
    live.services["app"] = "bob"  # alice deleted app; bob made one of that name
    bobs = live.url("app", "bob", PASSWORDS["bob"])
    fresh = git.run("clone", bobs, str(tmp_path / "bob"), check=False)
    assert fresh.returncode != 0 and "nothing was pushed to app yet" in fresh.stderr
    bob = tmp_path / "bob-work"
    git.work_tree(bob, {"bob.py": "bob's code\n"})
    git.run("push", bobs, "main", cwd=bob)  # alice's history is not there to refuse it
    git.run("clone", bobs, str(tmp_path / "bob-clone"))
    assert sorted(p.name for p in (tmp_path / "bob-clone").iterdir()) == [".git", "bob.py"]
    log = git.run("log", "--format=%s", "--all", cwd=tmp_path / "bob-clone").stdout
    assert log == "change\n"  # one commit: bob's


def test_pushes_to_two_services_run_at_once(
    live: LiveGit, runs: FakeRuns, git: GitClient, tmp_path: Path
) -> None:
    token = live.token("alice", "both", services=("app", "other"))
    go_on = {name: threading.Event() for name in ("app", "other")}
    pushes = {}
    for name in ("app", "other"):
        work = tmp_path / name
        git.work_tree(work, {"name.txt": name})
        runs.scripts[f"{name}/main"] = Script([f"{name} started", go_on[name], f"{name} ended"])
        pushes[name] = Watched(git.start("push", live.url(name, "alice", token), "main", cwd=work))
    for name, push in pushes.items():
        push.wait_for_line(f"remote: {name} started")
    assert not any(run.done for run in runs.runs)  # both are under way at once
    for event in go_on.values():
        event.set()
    for name, push in pushes.items():
        code, output = push.finish()
        assert code == 0, output
        assert f"remote: {name} ended" in output
        other = "other" if name == "app" else "app"
        assert f"{other} started" not in output


def test_a_long_log_reaches_the_pusher_whole(
    live: LiveGit, runs: FakeRuns, git: GitClient, tmp_path: Path
) -> None:
    lines = [f"line {n:05} " + "x" * 100 for n in range(3000)]  # ~330 KB: more than a pipe holds
    runs.scripts["main"] = Script(lines)
    url = live.url("app", "alice", live.token("alice", "push"))
    work = tmp_path / "work"
    git.work_tree(work, {"app.py": "v1\n"})
    shown = git.run("push", url, "main", cwd=work)
    assert [line.rstrip() for line in shown.stderr.splitlines() if "remote: line" in line] == [
        f"remote: {line}" for line in lines
    ]


@pytest.mark.parametrize("size", [512 * 1024, 3 * 1024 * 1024])  # sent with a length; chunked
def test_a_push_larger_than_the_bound_is_refused(
    tmp_path: Path, runs: FakeRuns, git: GitClient, size: int
) -> None:
    with LiveGit(tmp_path / "server", runs, BackendLimits(max_request_bytes=256 * 1024)) as live:
        url = live.url("app", "alice", live.token("alice", "push"))
        work = tmp_path / "work"
        git.work_tree(work, {"blob.bin": os.urandom(size)})
        refused = git.run("push", url, "main", cwd=work, check=False)
        assert refused.returncode != 0
        assert "413" in refused.stderr
        assert git.run("ls-remote", url).stdout == ""
        assert runs.runs == []
        live.wait_until_idle()


def push_under_way(
    live: LiveGit, runs: FakeRuns, git: GitClient, tmp_path: Path, gate: threading.Event
) -> tuple[Watched, str]:
    """A push to `app` whose run said "working" and waits for `gate`; and the remote's URL."""
    runs.scripts["main"] = Script(["working", gate, "done"])
    url = live.url("app", "alice", live.token("alice", "push"))
    work = tmp_path / "work"
    git.work_tree(work, {"app.py": "v1\n"})
    push = Watched(git.start("push", url, "main", cwd=work))
    push.wait_for_line("remote: working")
    return push, url


def test_a_backend_killed_during_a_push_fails_it_clearly(
    live: LiveGit, runs: FakeRuns, git: GitClient, tmp_path: Path
) -> None:
    never = threading.Event()
    push, url = push_under_way(live, runs, git, tmp_path, never)
    (pid,) = live.backend_pids()
    os.kill(pid, signal.SIGKILL)
    code, output = push.finish()
    never.set()
    assert code != 0
    assert "git http-backend was ended by signal 9" in output
    assert git.run("ls-remote", url).stdout == ""


def test_a_pusher_who_goes_away_stops_the_push_but_not_the_run(
    live: LiveGit, runs: FakeRuns, git: GitClient, tmp_path: Path
) -> None:
    go_on = threading.Event()
    push, url = push_under_way(live, runs, git, tmp_path, go_on)
    os.killpg(push.process.pid, signal.SIGKILL)  # Ctrl-C, harder
    push.finish()
    live.wait_until_idle()  # the backend, receive-pack and the hook are gone
    runs.wait_for(lambda: all(f.closed for f in runs.followers), "the push to stop following")
    assert not runs.runs[0].done  # the run was submitted: it goes on, as a webhook's would
    go_on.set()
    runs.wait_for(lambda: runs.runs[0].done, "the run to end")
    assert git.run("ls-remote", "--heads", url).stdout == ""  # the push did not complete


def test_a_push_past_its_time_is_stopped_with_a_clear_error(
    tmp_path: Path, runs: FakeRuns, git: GitClient
) -> None:
    never = threading.Event()
    runs.scripts["main"] = Script(["working", never])
    with LiveGit(tmp_path / "server", runs, BackendLimits(timeout_s=5)) as live:
        url = live.url("app", "alice", live.token("alice", "push"))
        work = tmp_path / "work"
        git.work_tree(work, {"app.py": "v1\n"})
        try:
            stopped = git.run("push", url, "main", cwd=work, check=False)
        finally:
            never.set()
        assert stopped.returncode != 0
        assert "git took longer than 5 s: stopped" in stopped.stderr
        assert git.run("ls-remote", url).stdout == ""
        live.wait_until_idle()


def test_the_push_endpoint_wants_a_live_push_secret(live: LiveGit) -> None:
    url = f"http://127.0.0.1:{live.port}/internal/pipelines/pushes/abc"
    answer = httpx.post(
        url,
        params={"branch": "main", "commit": "0" * 40},
        headers={"Authorization": "Bearer x"},
        content=b"",
    )
    assert answer.status_code == 401
