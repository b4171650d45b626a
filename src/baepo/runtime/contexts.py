"""Build contexts: a directory as the tar stream an engine's builder reads, made while it is sent.

What the docker CLI sends for `docker build DIR`, and how:

    entries          every directory, regular file and symlink under DIR, in sorted order, named
                     relative to DIR ("app/main.py"), owned by 0:0 (the CLI's ChownOpts), with
                     their modes and modification times; other kinds (sockets, fifos, devices)
                     are left out. Hard links go as separate files.
    .dockerignore    its patterns exclude paths (see `IgnoreRules`); the Dockerfile and
                     `.dockerignore` are sent even when a pattern excludes them
    Dockerfile       a generated one (`dockerfile_text`) is sent under the Dockerfile's name,
                     in place of any file of that name in DIR
    format           ustar headers (PAX for long names), each file's bytes, padding to 512-byte
                     blocks, two zero blocks at the end: the tar is never held whole in memory

The builder's layer cache hashes what is copied by content and header (not by modification
time), so the same files sent twice hit the cache.
"""

from __future__ import annotations

import os
import re
import stat
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from baepo.runtime.errors import BuildFailed

BLOCK = 512
_READ = 256 * 1024


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    exclude: bool  # False for a "!pattern" that brings paths back


class IgnoreRules:
    """The patterns of a `.dockerignore`, as moby's patternmatcher reads them.

    One pattern a line; `#` starts a comment line; a leading `!` re-includes what earlier
    patterns excluded; the last pattern that matches a path decides. Patterns are Go's
    `filepath.Match` (`*`, `?`, `[…]`, `\\` escapes, none of which crosses a `/`) plus `**`,
    any number of directories. A leading `/` means nothing (paths are relative to the
    context). A pattern that matches a directory excludes everything under it.
    """

    def __init__(self, lines: Sequence[str]) -> None:
        rules: list[_Rule] = []
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exclude = not line.startswith("!")
            if not exclude:
                line = line[1:].strip()
            cleaned = os.path.normpath(line.strip("/") or ".").lstrip("/")
            if cleaned == ".":
                continue
            rules.append(_Rule(re.compile(_regex(cleaned)), exclude))
        self._rules = tuple(rules)
        self.has_exceptions = any(not rule.exclude for rule in rules)

    @classmethod
    def read(cls, context: Path) -> IgnoreRules:
        try:
            text = (context / ".dockerignore").read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return cls(())
        except OSError as exc:
            raise BuildFailed(f"cannot read .dockerignore: {exc}") from exc
        return cls(text.splitlines())

    def excludes(self, path: str) -> bool:
        """Whether `path` ("dir/file", relative to the context) stays out of the context."""
        parents = path.split("/")
        candidates = ["/".join(parents[: n + 1]) for n in range(len(parents))]
        excluded = False
        for rule in self._rules:
            if any(rule.pattern.fullmatch(candidate) for candidate in candidates):
                excluded = rule.exclude
        return excluded


def _regex(pattern: str) -> str:
    """A `.dockerignore` pattern as a regular expression over a whole slash-separated path."""
    out: list[str] = []
    at = 0
    while at < len(pattern):
        char = pattern[at]
        if pattern.startswith("**", at):
            at += 2
            if pattern.startswith("/", at):  # "**/": zero or more whole directories
                at += 1
                out.append("(?:.*/)?")
            else:
                out.append(".*")
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\" and at + 1 < len(pattern):
            at += 1
            out.append(re.escape(pattern[at]))
        elif char == "[":
            end = pattern.find("]", at + 2)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[at + 1 : end]
                if body.startswith("^"):
                    body = "!" + body[1:]
                negate = body.startswith("!")
                body = body[1:] if negate else body
                escaped = body.replace("\\", "\\\\").replace("[", "\\[")
                out.append(f"[{'^/' if negate else ''}{escaped}]")
                at = end
        else:
            out.append(re.escape(char))
        at += 1
    return "".join(out)


def context_tar(
    context: Path, *, dockerfile: str = "Dockerfile", dockerfile_text: str | None = None
) -> Iterator[bytes]:
    """The tar stream of `context` (see the module docstring), in chunks of at most 256 KiB.

    `BuildFailed` before the first chunk if the context is not a directory or the Dockerfile
    is missing (and none is given); later if a file cannot be read.
    """
    if not context.is_dir():
        raise BuildFailed(f"the build context {context} is not a directory")
    name = _relative(dockerfile)
    if dockerfile_text is None and not (context / name).is_file():
        raise BuildFailed(f"no {name} in the build context")
    rules = IgnoreRules.read(context)
    return _stream(context, name, dockerfile_text, rules)


def _stream(
    context: Path, dockerfile: str, dockerfile_text: str | None, rules: IgnoreRules
) -> Iterator[bytes]:
    always = {dockerfile, ".dockerignore"}
    for relative, path, info in _walk(context, rules, always):
        if relative == dockerfile and dockerfile_text is not None:
            continue  # the generated one goes at the end
        yield from _entry(relative, path, info)
    if dockerfile_text is not None:
        data = dockerfile_text.encode()
        header = tarfile.TarInfo(dockerfile)
        header.size = len(data)
        header.mode = 0o644
        yield header.tobuf(format=tarfile.PAX_FORMAT) + data + _padding(len(data))
    yield bytes(2 * BLOCK)


def _walk(
    context: Path, rules: IgnoreRules, always: set[str]
) -> Iterator[tuple[str, Path, os.stat_result]]:
    """(relative name, path, lstat) of what goes into the context, sorted, depth first."""
    pending: list[tuple[str, Path]] = [("", context)]
    while pending:
        prefix, directory = pending.pop()
        try:
            names = sorted(os.listdir(directory))
        except OSError as exc:
            raise BuildFailed(f"cannot read {directory}: {exc}") from exc
        below: list[tuple[str, Path]] = []
        for entry in names:
            relative = f"{prefix}{entry}"
            path = directory / entry
            try:
                info = path.lstat()
            except OSError as exc:
                raise BuildFailed(f"cannot read {path}: {exc}") from exc
            is_dir = stat.S_ISDIR(info.st_mode)
            if rules.excludes(relative) and relative not in always:
                # A re-included path may lie below an excluded directory: look inside.
                if is_dir and rules.has_exceptions:
                    below.append((f"{relative}/", path))
                continue
            if not (is_dir or stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
                continue
            yield relative, path, info
            if is_dir:
                below.append((f"{relative}/", path))
        pending.extend(reversed(below))


def _entry(relative: str, path: Path, info: os.stat_result) -> Iterator[bytes]:
    header = tarfile.TarInfo(relative)
    header.mode = stat.S_IMODE(info.st_mode)
    header.mtime = int(info.st_mtime)
    if stat.S_ISDIR(info.st_mode):
        header.type = tarfile.DIRTYPE
        yield header.tobuf(format=tarfile.PAX_FORMAT)
        return
    if stat.S_ISLNK(info.st_mode):
        header.type = tarfile.SYMTYPE
        header.linkname = os.readlink(path)
        yield header.tobuf(format=tarfile.PAX_FORMAT)
        return
    header.size = info.st_size
    yield header.tobuf(format=tarfile.PAX_FORMAT)
    sent = 0
    try:
        with path.open("rb") as file:
            while sent < info.st_size:
                chunk = file.read(min(_READ, info.st_size - sent))
                if not chunk:
                    break
                sent += len(chunk)
                yield chunk
    except OSError as exc:
        raise BuildFailed(f"cannot read {path}: {exc}") from exc
    if sent < info.st_size:  # shrank while being sent: keep the tar well-formed
        raise BuildFailed(f"{path} changed while the build context was being sent")
    yield _padding(info.st_size)


def _padding(size: int) -> bytes:
    return bytes(-size % BLOCK)


def _relative(name: str) -> str:
    cleaned = os.path.normpath(name).lstrip("/")
    if cleaned.startswith("..") or cleaned == ".":
        raise BuildFailed(f"the Dockerfile {name!r} is not inside the build context")
    return cleaned
