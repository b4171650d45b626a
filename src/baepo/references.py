"""Image references, repository names, tags and digests: one grammar for every room.

The grammar is distribution's (github.com/distribution/reference, `regexp.go`), with Docker's
reading of it (`normalize.go`), so Baepo accepts exactly what `docker pull` accepts:

    reference         := name [":" tag] ["@" digest]
    name              := [domain "/"] path
    domain            := host [":" port]
    host              := domain-name | IPv4 address | "[" IPv6 address "]"
    domain-name       := domain-component ("." domain-component)*
    domain-component  := /[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]/
    port              := /[0-9]+/
    path              := path-component ("/" path-component)*        at most 255 characters
    path-component    := /[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*/
    tag               := /[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}/
    digest            := algorithm ":" hex
    algorithm         := /[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*/
    hex               := /[0-9a-fA-F]{32,}/

Every character class is ASCII: Go's `\\w` is `[0-9A-Za-z_]`, Python's would take `é`.

Docker's reading, on top of the grammar:

- The first component is the registry host when there is a `/` after it and it is `localhost`,
  holds a `.` or a `:`, or has an upper-case letter; otherwise the reference names a repository
  on Docker Hub (`team/app`, `busybox`), and `domain` is None.
- A digest must be one that go-digest verifies: a known algorithm (sha256, sha384, sha512) and
  exactly its number of lower-case hexadecimal digits.
- 64 hexadecimal digits alone are an image id, not a repository name.
- The 255 characters are counted on the canonical path (`busybox` is `library/busybox`).
- Comparing repositories uses the canonical form: no domain and `index.docker.io` are
  `docker.io`, and a one-component path there is under `library/`
  (`busybox` = `docker.io/library/busybox`).

One deliberate difference: distribution silently reads `a_b.com/app` (a first component that
looks like a host but is not one) as a Docker Hub path; here it is refused, since no registry
could be meant by it.

Each room maps `InvalidReference` to its own error at its edge: the registry to the OCI codes
NAME_INVALID / TAG_INVALID / DIGEST_INVALID, the control room to `InvalidServiceSpec`, the
runtime to `PullFailed`. This module imports nothing of Baepo's.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from typing import Any, Literal

MAX_PATH_LENGTH = 255
DOCKER_HUB = "docker.io"
_LEGACY_DOCKER_HUB = "index.docker.io"
_OFFICIAL_PREFIX = "library/"

DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
"""The algorithms go-digest knows, and how many hexadecimal digits each digest has."""

_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALPHANUMERIC}(?:{_SEPARATOR}{_ALPHANUMERIC})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6_ADDRESS = r"\[(?:[a-fA-F0-9:]+)\]"

PATH = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*", re.ASCII)
DOMAIN = re.compile(rf"(?:{_DOMAIN_NAME}|{_IPV6_ADDRESS})(?::[0-9]+)?", re.ASCII)
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", re.ASCII)
DIGEST = re.compile(
    r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}", re.ASCII
)
REFERENCE = re.compile(
    rf"(?:(?P<domain>{DOMAIN.pattern})/)?(?P<path>{PATH.pattern})"
    rf"(?::(?P<tag>{TAG.pattern}))?(?:@(?P<digest>{DIGEST.pattern}))?",
    re.ASCII,
)
"""distribution's `ReferenceRegexp`, unanchored: use `fullmatch`. It splits the domain off
greedily (`team/app` → domain `team`); `Reference.parse` splits it as Docker does."""
_IDENTIFIER = re.compile(r"[a-f0-9]{64}", re.ASCII)
_LOWER_HEX = re.compile(r"[a-f0-9]+", re.ASCII)

Part = Literal["reference", "domain", "name", "tag", "digest"]

_NAME_RULE = "lowercase letters and digits, separated by '.', '_', '__', '-' or '/'"
_TAG_RULE = "up to 128 ASCII letters, digits, '_', '.' or '-', not starting with '.' or '-'"


class InvalidReference(ValueError):
    """Text that is not a reference, repository name, tag or digest.

    `reason` says why, for a person; `part` names the part at fault, so an edge can pick its
    error code (the registry answers TAG_INVALID for a bad tag, NAME_INVALID for a bad name).
    """

    def __init__(self, reason: str, part: Part = "reference") -> None:
        super().__init__(reason)
        self.reason = reason
        self.part: Part = part


def validate_name(text: str) -> str:
    """`text` if it is a repository path as a registry names it (`team/app`: no host, no tag)."""
    if len(text) > MAX_PATH_LENGTH:
        raise InvalidReference(
            f"a repository name has at most {MAX_PATH_LENGTH} characters", "name"
        )
    if not PATH.fullmatch(text):
        raise InvalidReference(_bad_path(text), "name")
    return text


def validate_tag(text: str) -> str:
    """`text` if it is a tag."""
    if not TAG.fullmatch(text):
        raise InvalidReference(f"{text[:200]!r} is not a valid tag: {_TAG_RULE}", "tag")
    return text


def validate_domain(text: str) -> str:
    """`text` if it is a registry host, with an optional port (`localhost:5000`, `[::1]:5000`)."""
    if not DOMAIN.fullmatch(text):
        raise InvalidReference(f"{text[:200]!r} is not a registry host", "domain")
    return text


def validate_digest(text: str) -> str:
    """`text` if it is a digest go-digest verifies (see `Digest.parse`)."""
    Digest.parse(text)
    return text


@dataclass(frozen=True, order=True)
class Digest:
    """A content digest go-digest verifies: `sha256:<64 lower-case hex digits>`."""

    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        if not DIGEST.fullmatch(text):
            raise InvalidReference(f"{text[:200]!r} is not a digest (algorithm:hex)", "digest")
        algorithm, _, encoded = text.partition(":")
        length = DIGEST_HEX_LENGTHS.get(algorithm)
        if length is None:
            raise InvalidReference(f"unsupported digest algorithm {algorithm[:50]!r}", "digest")
        if len(encoded) != length:
            raise InvalidReference(
                f"a {algorithm} digest has {length} hexadecimal digits, not {len(encoded)}",
                "digest",
            )
        if not _LOWER_HEX.fullmatch(encoded):
            raise InvalidReference("a digest's hexadecimal digits are lower-case", "digest")
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def hasher(self) -> Any:
        """A fresh `hashlib` object of this digest's algorithm."""
        return hashlib.new(self.algorithm)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


@dataclass(frozen=True)
class Reference:
    """`[domain/]path[:tag][@digest]`, parsed (build one with `parse`).

    `domain` and `path` are as written (`busybox` has no domain); `canonical` is the form to
    compare repositories by. A service tracks a tag; a revision pins the digest the tag pointed
    to when it was deployed (`pinned`).
    """

    domain: str | None
    path: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        """The reference `text` is, or `InvalidReference` with the reason."""
        if not text:
            raise InvalidReference("an image reference must not be empty")
        if any(c.isspace() for c in text):
            raise InvalidReference("an image reference must not contain spaces")
        if _IDENTIFIER.fullmatch(text):
            raise InvalidReference(
                "64 hexadecimal digits are an image id, not a repository name", "name"
            )
        rest, at, digest = text.partition("@")
        first, slash, remainder = rest.partition("/")
        domain: str | None = None
        if slash and (
            first == "localhost" or "." in first or ":" in first or first.lower() != first
        ):
            domain, rest = validate_domain(first), remainder
        # What is left has no ":" but the one before a tag: a path never holds one.
        path, colon, tag = rest.partition(":")
        if not PATH.fullmatch(path):
            raise InvalidReference(_bad_path(path), "name")
        if colon:
            validate_tag(tag)
        if at:
            Digest.parse(digest)
        reference = cls(domain, path, tag if colon else None, digest if at else None)
        if len(reference.canonical.path) > MAX_PATH_LENGTH:
            raise InvalidReference(
                f"a repository name has at most {MAX_PATH_LENGTH} characters", "name"
            )
        return reference

    @property
    def repository(self) -> str:
        """The reference without tag or digest, as written: `localhost:5000/team/app`."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def effective_tag(self) -> str:
        return self.tag or "latest"

    def pinned(self, digest: str) -> str:
        """`repository@digest`: the exact image, whatever the tag points to later."""
        return f"{self.repository}@{digest}"

    def with_default_tag(self) -> str:
        """What to look the image up by after pulling it: the digest, else the tag or latest."""
        if self.digest:
            return self.pinned(self.digest)
        return f"{self.repository}:{self.effective_tag}"

    @property
    def canonical(self) -> Reference:
        """Docker's full form: `busybox` → `docker.io/library/busybox`; others unchanged."""
        domain, path = self.domain, self.path
        if domain is None or domain == _LEGACY_DOCKER_HUB:
            domain = DOCKER_HUB
        if domain == DOCKER_HUB and "/" not in path:
            path = _OFFICIAL_PREFIX + path
        return replace(self, domain=domain, path=path)

    def same_repository(self, other: Reference | str) -> bool:
        """Whether `other` names the same repository (`busybox`, `docker.io/library/busybox`);
        text that is not a reference names none."""
        if isinstance(other, str):
            try:
                other = Reference.parse(other)
            except InvalidReference:
                return False
        return self.canonical.repository == other.canonical.repository

    def __str__(self) -> str:
        text = self.repository
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def _bad_path(path: str) -> str:
    shown = repr(path[:200])
    if path and PATH.fullmatch(path.lower()):
        return f"{shown} is not a repository name: it must be lowercase"
    return f"{shown} is not a repository name: {_NAME_RULE}"
