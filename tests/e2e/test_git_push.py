"""Issue 10's checks with the real git client: `git push baepo main` tests the commit, builds
its image (Dockerfile, or apprunner.yaml), pushes it to Baepo's registry and deploys it; the
pipeline's output arrives in the pusher's terminal as `remote:` lines; a failing test or an
unhealthy image never replaces the healthy revision."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Stack, open_stack

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SEED = "baepo-test/hello:1"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("git-push")
    # The defaults a user gets: the runtimes' base images by their default names.
    with open_stack(root, "--deploy-timeout", "20") as stack:
        yield stack


class Repo:
    """A working copy of an example app, with a `baepo` remote signed in with a token."""

    def __init__(self, path: Path, home: Path) -> None:
        self.path = path
        self.env = {
            **os.environ,
            "HOME": str(home),
            "GIT_CONFIG_GLOBAL": str(home / "gitconfig"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": "Test",
            "GIT_AUTHOR_EMAIL": "test@localhost",
            "GIT_COMMITTER_NAME": "Test",
            "GIT_COMMITTER_EMAIL": "test@localhost",
        }

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["git", *args],
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"git {' '.join(args)}:\n{done.stdout}{done.stderr}")
        return done

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD").stdout.strip()

    def push(self, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.git("push", "baepo", "main", check=check)

    def edit(self, name: str, old: str, new: str) -> None:
        path = self.path / name
        text = path.read_text()
        assert old in text, f"{old!r} not in {name}"
        path.write_text(text.replace(old, new))


def service_with_remote(stack: Stack, tmp: Path, name: str, example: str) -> Repo:
    """A service `name` (running the seed image) and a working copy of `example` whose
    `baepo` remote is the service's git remote, signed in with a token limited to it."""
    image = stack.push(SEED, f"admin/{name}:seed")
    stack.cli("services", "create", name, "--image", image, "--port", "8080")
    stack.wait_idle(name)
    token = stack.cli("tokens", "create", f"git-{name}", "--service", name).stdout.strip()
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    work = tmp / name
    shutil.copytree(EXAMPLES / example, work)
    repo = Repo(work, home)
    repo.git("init", "-q", "-b", "main")
    repo.commit("first version")
    url = f"http://admin:{token}@{stack.baepo.host}/git/{name}.git"
    repo.git("remote", "add", "baepo", url)
    return repo


def config(stack: Stack, name: str) -> dict[str, object]:
    return stack.describe(name)["config"]  # type: ignore[return-value]


def runs(stack: Stack, name: str) -> list[dict[str, object]]:
    return json.loads(stack.cli("pipelines", "list", name, "--json").stdout)  # type: ignore[no-any-return]


def test_a_push_is_tested_built_pushed_and_deployed(stack: Stack, tmp_path: Path) -> None:
    repo = service_with_remote(stack, tmp_path, "web", "pipeline-python")
    pushed = repo.push()
    output = pushed.stderr
    # The steps' and the build's output reach the pusher as `remote:` lines.
    assert "remote: test_greeting_names_the_version" in output, output
    assert "remote: Step 1/" in output, output
    stack.wait_for("web.localhost", "pipeline app v1")
    [run] = runs(stack, "web")
    assert run["status"] == "SUCCEEDED", run
    commit = repo.git("rev-parse", "HEAD").stdout.strip()
    assert run["commit"] == commit
    assert str(run["image"]).endswith(f"admin/web:{commit}")
    assert config(stack, "web")["image"] == run["image"]

    # A change to the code alone: the dependency layer comes from the cache.
    repo.edit("app.py", 'VERSION = "1"', 'VERSION = "2"')
    repo.commit("second version")
    pushed = repo.push()
    assert "Using cache" in pushed.stderr, pushed.stderr
    stack.wait_for("web.localhost", "pipeline app v2")

    # Failing tests: the push is refused, the ref does not move, nothing is deployed.
    before = repo.git("ls-remote", "baepo", "refs/heads/main").stdout.split()[0]
    repo.edit("test_app.py", '"pipeline app v7\\n"', '"pipeline app v8\\n"')
    repo.commit("a test that fails")
    refused = repo.push(check=False)
    assert refused.returncode != 0
    assert "pre-receive hook declined" in refused.stderr, refused.stderr
    assert "FAILED" in refused.stderr
    assert repo.git("ls-remote", "baepo", "refs/heads/main").stdout.split()[0] == before
    assert "pipeline app v2" in stack.https("web.localhost").text
    assert runs(stack, "web")[0]["status"] == "FAILED"

    # An image that never gets healthy: rolled back, the old version keeps answering.
    repo.edit("test_app.py", '"pipeline app v8\\n"', '"pipeline app v7\\n"')
    repo.edit(
        "Dockerfile",
        'CMD ["python3", "app.py"]',
        'CMD ["sh", "-c", "PORT=9999 exec python3 app.py"]',
    )
    repo.commit("listens on the wrong port")
    refused = repo.push(check=False)
    assert refused.returncode != 0, refused.stderr
    assert "pipeline app v2" in stack.https("web.localhost").text
    assert config(stack, "web")["image"] == runs(stack, "web")[2]["image"]


@pytest.mark.parametrize(
    ("example", "answer"),
    [
        ("apprunner-python", "apprunner app v1 from apprunner.yaml"),
        ("apprunner-node", "node app v1"),
    ],
)
def test_an_apprunner_yaml_app_deploys(
    stack: Stack, tmp_path: Path, example: str, answer: str
) -> None:
    name = example.replace("apprunner-", "ar-")
    repo = service_with_remote(stack, tmp_path, name, example)
    pushed = repo.push()
    assert "remote:" in pushed.stderr
    stack.wait_for(f"{name}.localhost", answer)


def test_a_user_who_is_not_an_admin_deploys_by_push(stack: Stack, tmp_path: Path) -> None:
    """Alice's service, Alice's token: the image goes to her namespace; another user's token
    does not reach her remote."""
    api = httpx.Client(base_url=stack.baepo.url, timeout=60)
    for user in ("alice", "bob"):
        made = api.post(
            "/api/v1/users",
            json={"name": user, "password": f"{user}-password-1"},
            auth=stack.baepo.admin,
        )
        assert made.status_code == 201, made.text
    alice = httpx.BasicAuth("alice", "alice-password-1")
    seed = stack.push(SEED, "alice/site:seed")
    created = api.post(
        "/api/v1/services", json={"name": "site", "image": seed, "port": 8080}, auth=alice
    )
    assert created.status_code in (201, 202), created.text
    stack.wait_idle("site")
    token = api.post(
        "/api/v1/tokens", json={"name": "git-site", "services": ["site"]}, auth=alice
    ).json()["token"]
    bobs = api.post("/api/v1/tokens", json={"name": "git"}, auth=("bob", "bob-password-1"))
    home = tmp_path / "home"
    home.mkdir()
    repo = Repo(tmp_path / "site", home)
    shutil.copytree(EXAMPLES / "pipeline-python", repo.path)
    repo.git("init", "-q", "-b", "main")
    commit = repo.commit("first version")
    host = stack.baepo.host
    repo.git("remote", "add", "bob", f"http://bob:{bobs.json()['token']}@{host}/git/site.git")
    assert repo.git("push", "bob", "main", check=False).returncode != 0
    repo.git("remote", "add", "baepo", f"http://alice:{token}@{host}/git/site.git")
    repo.push()
    stack.wait_for("site.localhost", "pipeline app v1")
    assert str(config(stack, "site")["image"]).endswith(f"/alice/site:{commit}")
