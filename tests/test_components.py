"""What a missing real component means: a skip on a developer's run, a failure where the real
thing is required (tests/components.py)."""

from __future__ import annotations

import pytest

from tests.components import REQUIRE_REAL, check_components, missing, real_required


@pytest.mark.parametrize(
    ("require", "ci", "required"),
    [
        (None, None, False),
        (None, "true", True),
        ("1", None, True),
        ("1", "false", True),
        ("0", "true", False),  # a developer may ask for skips even where CI=true
        ("", None, False),
    ],
)
def test_who_requires_the_real_thing(
    monkeypatch: pytest.MonkeyPatch, require: str | None, ci: str | None, required: bool
) -> None:
    for name, value in ((REQUIRE_REAL, require), ("CI", ci)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert real_required() is required


def test_a_missing_component_skips_a_developers_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_REAL, "0")
    with pytest.raises(pytest.skip.Exception, match="HAProxy is not installed"):
        missing("HAProxy is not installed")


def test_a_missing_component_fails_a_run_that_requires_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(REQUIRE_REAL, "1")
    with pytest.raises(pytest.fail.Exception, match="HAProxy is not installed"):
        missing("HAProxy is not installed")


@pytest.mark.integration  # asks the docker CLI
def test_an_engine_that_does_not_answer_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    problems = check_components()
    assert any(
        p.startswith("no Docker engine at unix:///nonexistent/docker.sock") for p in problems
    )
