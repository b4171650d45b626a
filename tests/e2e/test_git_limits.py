"""The git remote's limits as `baepo up` sets them: a push larger than `--git-max-push-mib` is
refused before anything runs; a push whose run outlasts `--git-timeout` is cut off (the run
goes on, as when a pusher goes away)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack, open_stack
from tests.e2e.test_git_push import runs, service_with_remote

pytestmark = pytest.mark.integration

SLOW_STEP = """steps:
  - name: slow
    image: baepo-test/busybox:1
    commands: ["echo started", "sleep 120"]
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("git-limits")
    with open_stack(root, "--git-max-push-mib", "1", "--git-timeout", "5") as stack:
        yield stack


def test_a_push_larger_than_the_limit_is_refused(stack: Stack, tmp_path: Path) -> None:
    repo = service_with_remote(stack, tmp_path, "large", "pipeline-python")
    (repo.path / "blob.bin").write_bytes(os.urandom(2 * 1024 * 1024))  # incompressible
    repo.commit("a file larger than the limit")

    refused = repo.push(check=False)

    assert refused.returncode != 0
    assert "413" in refused.stderr, refused.stderr
    assert runs(stack, "large") == []


def test_a_push_past_the_time_limit_is_cut_off_and_its_run_goes_on(
    stack: Stack, tmp_path: Path
) -> None:
    repo = service_with_remote(stack, tmp_path, "slow", "pipeline-python")
    (repo.path / "baepo.yaml").write_text(SLOW_STEP)
    repo.commit("a step that takes two minutes")

    cut = repo.push(check=False)

    assert cut.returncode != 0, cut.stderr
    assert "remote: -----> step slow" in cut.stderr, cut.stderr
    [run] = runs(stack, "slow")
    assert run["status"] == "RUNNING", run  # the step sleeps on: the push ended first
    stack.cli("pipelines", "cancel", str(run["id"]))  # its step container goes with it
