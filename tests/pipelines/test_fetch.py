"""Fetching a pushed commit from a git URL with the real git client, from a real git server on
loopback (smart HTTP through `git http-backend`, and dumb HTTP), and the fence around it: no
file:// or ssh, no private addresses unless allowed, no redirects, bounded in time and size,
credentials never shown."""

from __future__ import annotations

import socket
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from baepo.pipelines.errors import FetchFailed
from baepo.pipelines.fetch import fetch_commit, redacted
from tests.pipelines.git_server import git, make_repository, serving

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str]]]:
    root = tmp_path_factory.mktemp("git")
    commits = make_repository(
        root,
        "app",
        [
            {"app.py": "print(1)\n", "Dockerfile": "FROM scratch\n"},
            {"app.py": "print(2)\n", "lib/util.py": "x = 2\n"},
            {"app.py": "print(3)\n", "big.bin": "z" * 200_000},
        ],
    )
    with serving(root) as url:
        yield url, commits


def files(tar: Path) -> dict[str, str]:
    with tarfile.open(tar) as archive:
        return {
            m.name: archive.extractfile(m).read().decode()  # type: ignore[union-attr]  # files only
            for m in archive.getmembers()
            if m.isfile()
        }


@pytest.mark.parametrize("transport", ["smart", "dumb"])
def test_an_older_commit_is_fetched_as_its_tree(
    server: tuple[str, list[str]], tmp_path: Path, transport: str
) -> None:
    url, commits = server
    tar = tmp_path / "source.tar"
    fetch_commit(
        f"{url}/{transport}/app.git",
        commits[1],
        tar,
        work=tmp_path / "work",
        timeout_s=60,
        allow_private=True,
    )
    assert files(tar) == {
        "app.py": "print(2)\n",
        "Dockerfile": "FROM scratch\n",
        "lib/util.py": "x = 2\n",
    }
    assert not (tmp_path / "work" / "fetch.git").exists()


def test_an_unknown_commit(server: tuple[str, list[str]], tmp_path: Path) -> None:
    url, _ = server
    tar = tmp_path / "source.tar"
    with pytest.raises(FetchFailed):
        fetch_commit(
            f"{url}/smart/app.git",
            "ab" * 20,
            tar,
            work=tmp_path,
            timeout_s=60,
            branch="main",
            allow_private=True,
        )
    assert not tar.exists()


def test_loopback_is_refused_unless_allowed(server: tuple[str, list[str]], tmp_path: Path) -> None:
    url, commits = server
    for address in (
        url,
        url.replace("127.0.0.1", "localhost"),
        url.replace("127.0.0.1", "2130706433"),
    ):
        with pytest.raises(FetchFailed, match=r"refused: .* is this machine or a private network"):
            fetch_commit(
                f"{address}/smart/app.git",
                commits[0],
                tmp_path / "t.tar",
                work=tmp_path,
                timeout_s=30,
            )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/app.git", "only http and https"),
        ("ssh://git@example.com/app.git", "only http and https"),
        ("ext::sh -c touch% /tmp/pwned", "spaces or control characters"),
        ("git@example.com:app.git", "only http and https"),
        ("https:///app.git", "names no host"),
        ("https://[::1/app.git", "not a URL"),
        ("https://10.1.2.3/app.git", "refused"),
        ("http://169.254.169.254/latest", "refused"),
        ("http://[::ffff:127.0.0.1]/x", "refused"),
        ("https://no-such-host.invalid/app.git", "cannot resolve"),
    ],
)
def test_urls_that_are_never_fetched(url: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(FetchFailed, match=message):
        fetch_commit(url, "a" * 40, tmp_path / "t.tar", work=tmp_path, timeout_s=30)


def test_a_resolver_that_does_not_answer_cannot_hold_the_fetch(tmp_path: Path) -> None:
    asked: list[tuple[str, int]] = []
    release = threading.Event()

    def slow(host: str, port: int) -> list[str]:
        asked.append((host, port))
        release.wait(60)  # a resolver that answers long after the fetch's deadline
        return ["93.184.216.34"]

    try:
        with pytest.raises(FetchFailed, match=r"cannot resolve git\.example\.com: no answer"):
            fetch_commit(
                "https://git.example.com/app.git",
                "a" * 40,
                tmp_path / "t.tar",
                work=tmp_path,
                timeout_s=0.5,
                resolver=slow,
            )
    finally:
        release.set()
    assert asked == [("git.example.com", 443)]
    assert not (tmp_path / "t.tar").exists()


def test_the_resolvers_answer_is_what_the_fence_checks(tmp_path: Path) -> None:
    with pytest.raises(FetchFailed, match=r"refused: git\.example\.com is this machine"):
        fetch_commit(
            "http://git.example.com:8080/app.git",
            "a" * 40,
            tmp_path / "t.tar",
            work=tmp_path,
            timeout_s=30,
            resolver=lambda host, port: ["93.184.216.34", "10.0.0.7"],
        )


def test_a_redirect_is_not_followed(server: tuple[str, list[str]], tmp_path: Path) -> None:
    url, commits = server
    work = tmp_path / "plain"
    git("init", "-q", "--bare", str(work))  # git left to itself follows this one
    git("--git-dir", str(work), "fetch", "-q", f"{url}/moved/app.git", commits[0])
    with pytest.raises(FetchFailed, match="302"):
        fetch_commit(
            f"{url}/moved/app.git",
            commits[0],
            tmp_path / "t.tar",
            work=tmp_path,
            timeout_s=30,
            allow_private=True,
        )


def test_a_commit_bigger_than_allowed(server: tuple[str, list[str]], tmp_path: Path) -> None:
    url, commits = server
    with pytest.raises(FetchFailed, match="larger than 100000 bytes"):
        fetch_commit(
            f"{url}/smart/app.git",
            commits[2],
            tmp_path / "t.tar",
            work=tmp_path,
            timeout_s=60,
            max_bytes=100_000,
            allow_private=True,
        )
    assert not (tmp_path / "t.tar").exists()


def test_a_server_that_never_answers_times_out(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        accepted: list[socket.socket] = []
        stop = threading.Event()

        def accept() -> None:  # takes connections and says nothing
            listener.settimeout(0.2)
            while not stop.is_set():
                try:
                    accepted.append(listener.accept()[0])
                except OSError:
                    continue

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        port = listener.getsockname()[1]
        try:
            with pytest.raises(FetchFailed, match="timed out"):
                fetch_commit(
                    f"http://127.0.0.1:{port}/app.git",
                    "a" * 40,
                    tmp_path / "t.tar",
                    work=tmp_path,
                    timeout_s=1.5,
                    allow_private=True,
                )
        finally:
            stop.set()
            thread.join(timeout=5)
            for connection in accepted:
                connection.close()


def test_credentials_in_the_url_are_never_shown(
    server: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, commits = server
    secret_url = url.replace("http://", "http://robot:hunter2-token@") + "/smart/missing.git"
    with pytest.raises(FetchFailed) as caught:
        fetch_commit(
            secret_url,
            commits[0],
            tmp_path / "t.tar",
            work=tmp_path,
            timeout_s=30,
            allow_private=True,
        )
    assert "hunter2" not in str(caught.value)
    assert redacted(secret_url).startswith("http://***@127.0.0.1:")
