"""Build contexts: .dockerignore read as moby reads it, and the tar a build sends (hermetic)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from baepo.runtime import BuildFailed
from baepo.runtime.contexts import IgnoreRules, context_tar


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        (["secret.txt"], "secret.txt", True),
        (["secret.txt"], "app/secret.txt", False),  # patterns are anchored at the context
        (["/secret.txt"], "secret.txt", True),  # a leading slash means nothing
        (["*.pyc"], "a.pyc", True),
        (["*.pyc"], "pkg/a.pyc", False),  # * never crosses a /
        (["**/*.pyc"], "pkg/sub/a.pyc", True),
        (["**/*.pyc"], "a.pyc", True),  # ** is zero directories too
        (["node_modules"], "node_modules/x/index.js", True),  # a directory takes its content
        (["docs/**"], "docs/a/b.md", True),
        (["te?t"], "test", True),
        (["te?t"], "te/t", False),
        (["[a-c].txt"], "b.txt", True),
        (["[!a-c].txt"], "b.txt", False),
        (["[!a-c].txt"], "d.txt", True),
        (["*.md", "!README.md"], "README.md", False),  # an exception brings it back
        (["*.md", "!README.md"], "CHANGES.md", True),
        (["!README.md", "*.md"], "README.md", True),  # the last match decides
        (["# a comment", "", "  tmp  "], "tmp", True),
        (["# a comment"], "# a comment", False),
        (["build/../dist"], "dist", True),  # cleaned as a path
        ([r"\*literal"], "*literal", True),
        ([r"\*literal"], "xliteral", False),
    ],
)
def test_dockerignore_patterns(patterns: list[str], path: str, excluded: bool) -> None:
    assert IgnoreRules(patterns).excludes(path) is excluded


def members(chunks: list[bytes]) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        return {member.name: member for member in tar.getmembers()}


def read(chunks: list[bytes], name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        member = tar.extractfile(name)
        assert member is not None
        return member.read()


def test_the_context_tar_holds_what_is_not_ignored(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    ignored = ["Dockerfile", ".dockerignore", "*.log", "cache", "!cache/keep"]
    (tmp_path / ".dockerignore").write_text("\n".join(ignored) + "\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text("print('hi')\n")
    (tmp_path / "app" / "main.py").chmod(0o755)
    (tmp_path / "debug.log").write_text("noise\n")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "junk").write_text("x")
    (tmp_path / "cache" / "keep").write_text("kept")
    (tmp_path / "link").symlink_to("app/main.py")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "big.bin").write_bytes(os.urandom(600 * 1024))

    chunks = list(context_tar(tmp_path))

    found = members(chunks)
    # The Dockerfile and .dockerignore go even when ignored, as the docker CLI sends them.
    assert set(found) == {
        ".dockerignore",
        "Dockerfile",
        "app",
        "app/main.py",
        "big.bin",
        "cache/keep",
        "link",
    }
    assert found["app"].isdir()
    assert found["link"].issym() and found["link"].linkname == "app/main.py"
    assert found["app/main.py"].mode == 0o755
    assert (found["app/main.py"].uid, found["app/main.py"].gid) == (0, 0)
    assert read(chunks, "big.bin") == (tmp_path / "big.bin").read_bytes()
    assert read(chunks, "cache/keep") == b"kept"
    assert max(len(chunk) for chunk in chunks) <= 256 * 1024  # streamed, not held whole


def test_a_generated_dockerfile_takes_the_place_of_the_contexts(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM the-old-one\n")
    (tmp_path / "app.py").write_text("")

    chunks = list(context_tar(tmp_path, dockerfile_text="FROM generated\n"))

    assert read(chunks, "Dockerfile") == b"FROM generated\n"
    assert sorted(members(chunks)) == ["Dockerfile", "app.py"]


def test_a_dockerfile_elsewhere_in_the_context(tmp_path: Path) -> None:
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "app.Dockerfile").write_text("FROM x\n")

    chunks = list(context_tar(tmp_path, dockerfile="docker/app.Dockerfile"))

    assert "docker/app.Dockerfile" in members(chunks)


@pytest.mark.parametrize(
    ("files", "dockerfile", "message"),
    [
        ({}, "Dockerfile", "no Dockerfile in the build context"),
        ({"Dockerfile": ""}, "../Dockerfile", "not inside the build context"),
    ],
)
def test_a_context_without_its_dockerfile_is_refused_before_anything_is_sent(
    tmp_path: Path, files: dict[str, str], dockerfile: str, message: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)

    with pytest.raises(BuildFailed, match=message):
        context_tar(tmp_path, dockerfile=dockerfile)


def test_a_missing_context_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildFailed, match="not a directory"):
        context_tar(tmp_path / "absent")
