"""Image references: splitting them, and telling when two name the same repository."""

from __future__ import annotations

import pytest

from baepo.runtime.references import Reference

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("ref", "repository", "tag", "digest"),
    [
        ("busybox", "busybox", None, None),
        ("busybox:1.36", "busybox", "1.36", None),
        ("localhost:5000/team/app", "localhost:5000/team/app", None, None),
        ("localhost:5000/team/app:1", "localhost:5000/team/app", "1", None),
        (f"localhost:5000/team/app@{DIGEST}", "localhost:5000/team/app", None, DIGEST),
        (f"localhost:5000/team/app:1@{DIGEST}", "localhost:5000/team/app", "1", DIGEST),
    ],
)
def test_parse(ref: str, repository: str, tag: str | None, digest: str | None) -> None:
    assert Reference.parse(ref) == Reference(repository, tag, digest)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("busybox", "docker.io/library/busybox:1", True),
        ("team/app", "docker.io/team/app", True),
        ("index.docker.io/library/busybox", "busybox", True),
        ("localhost:5000/app", "localhost:5000/app:2", True),
        ("localhost:5000/app", "localhost:5001/app", False),
        ("localhost/app", "app", False),
        ("registry.example.com/app", "docker.io/app", False),
    ],
)
def test_same_repository(a: str, b: str, same: bool) -> None:
    assert Reference.parse(a).same_repository(Reference.parse(b)) is same


def test_the_reference_looked_up_after_a_pull() -> None:
    assert Reference.parse("busybox").with_default_tag() == "busybox:latest"
    assert Reference.parse(f"app:1@{DIGEST}").with_default_tag() == f"app@{DIGEST}"
