"""The services' bare repositories: made whole on first use, with the hook, once."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from baepo.pipelines import hook
from baepo.pipelines.git_remote import GitRepositories, RepositoryError, git_environment, hook_text


def config(repository: Path, key: str) -> str:
    done = subprocess.run(
        ["git", "--git-dir", str(repository), "config", key],
        env=git_environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_a_repository_is_made_bare_with_its_hook(tmp_path: Path) -> None:
    repositories = GitRepositories(tmp_path / "git", python="/opt/py/bin/python3")
    assert not repositories.exists("app", "alice 1")
    path = repositories.ensure("app", "alice 1")
    assert path == tmp_path / "git" / "app.git" and repositories.exists("app", "alice 1")
    assert config(path, "core.bare") == "true"
    assert config(path, "http.receivepack") == "true"
    pre_receive = path / "hooks" / "pre-receive"
    assert pre_receive.stat().st_mode & 0o111
    assert pre_receive.read_text() == hook_text("/opt/py/bin/python3")
    assert f"exec /opt/py/bin/python3 -I {Path(hook.__file__).resolve()}" in pre_receive.read_text()
    assert list((path / "hooks").iterdir()) == [pre_receive]  # no samples
    assert (path / "baepo-service").read_text() == "alice 1"
    assert [p.name for p in (tmp_path / "git").iterdir()] == ["app.git"]


def test_a_service_made_again_gets_a_new_repository(tmp_path: Path) -> None:
    repositories = GitRepositories(tmp_path)
    path = repositories.ensure("app", "alice 1")
    (path / "refs" / "heads" / "main").write_text("1" * 40 + "\n")  # something was pushed
    assert repositories.exists("app", "alice 1")
    assert not repositories.exists("app", "bob 2")  # nothing was pushed to bob's app
    assert repositories.ensure("app", "bob 2") == path
    assert not (path / "refs" / "heads" / "main").exists()
    assert (path / "baepo-service").read_text() == "bob 2"
    assert not repositories.exists("app", "alice 1")
    assert [p.name for p in tmp_path.iterdir()] == ["app.git"]  # the old one is gone


def test_a_hook_that_differs_is_written_again(tmp_path: Path) -> None:
    GitRepositories(tmp_path, python="/old/python").ensure("app", "alice 1")
    path = GitRepositories(tmp_path, python="/new/python").ensure("app", "alice 1")
    assert "/new/python" in (path / "hooks" / "pre-receive").read_text()


def test_first_pushes_at_once_make_one_repository(tmp_path: Path) -> None:
    repositories = GitRepositories(tmp_path)
    barrier = threading.Barrier(4)
    made: list[Path] = []

    def first_push() -> None:
        barrier.wait()
        made.append(repositories.ensure("app", "alice 1"))

    threads = [threading.Thread(target=first_push) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert made == [tmp_path / "app.git"] * 4
    assert [p.name for p in tmp_path.iterdir()] == ["app.git"]


@pytest.mark.parametrize("name", ["../etc", "App", "", "a/b", ".hidden", "-x", "a" * 64])
def test_only_service_names_name_repositories(tmp_path: Path, name: str) -> None:
    with pytest.raises(RepositoryError):
        GitRepositories(tmp_path).ensure(name, "alice 1")
    assert list(tmp_path.iterdir()) == []


def test_a_repository_that_cannot_be_made_says_why(tmp_path: Path) -> None:
    (tmp_path / "git").write_text("a file where the directory goes")
    with pytest.raises(RepositoryError, match="cannot make the repository of app"):
        GitRepositories(tmp_path / "git").ensure("app", "alice 1")
    with pytest.raises(RepositoryError, match="git init failed"):
        GitRepositories(tmp_path / "other", git="/nonexistent/git").ensure("app", "alice 1")
