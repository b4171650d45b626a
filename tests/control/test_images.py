"""`RegistryLink`: which images are Baepo's own, and what the engine pulls and runs for one."""

from __future__ import annotations

import pytest

from baepo.control import RegistryLink

LINK = RegistryLink.of(
    ["127.0.0.1:5000", "localhost:5000", "registry.example.org"], pull_host="127.0.0.1:5000"
)
DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("image", "digest", "runs"),
    [
        # Baepo's own, by any of its names: pulled from where the engine reaches it.
        ("registry.example.org/team/app:1", DIGEST, f"127.0.0.1:5000/team/app@{DIGEST}"),
        ("localhost:5000/team/app:1", DIGEST, f"127.0.0.1:5000/team/app@{DIGEST}"),
        ("registry.example.org/team/app:1", None, "127.0.0.1:5000/team/app:1"),
        # Others: as written, pinned when a digest is known.
        ("ghcr.io/acme/web:2", DIGEST, f"ghcr.io/acme/web@{DIGEST}"),
        ("ghcr.io/acme/web:2", None, "ghcr.io/acme/web:2"),
        ("baepo-test/hello:1", None, "baepo-test/hello:1"),
    ],
)
def test_what_the_engine_runs(image: str, digest: str | None, runs: str) -> None:
    assert LINK.runnable(image, digest) == runs


def test_without_a_pull_host_images_keep_their_names() -> None:
    link = RegistryLink.of(["localhost:5000"])
    assert link.runnable("localhost:5000/team/app:1", DIGEST) == f"localhost:5000/team/app@{DIGEST}"
