"""Repository names, tags and digests: the grammar of the distribution spec, as pure functions.

    name      [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*
              at most 255 characters
    tag       [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
    digest    algorithm ":" encoded; this registry stores sha256 (64 lower-case hex) and
              sha512 (128 lower-case hex)

A reference (the last part of a manifest URL) is a digest when it contains ":", else a tag.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from baepo.registry.errors import DigestInvalid, ManifestInvalid, ManifestUnknown, NameInvalid

MAX_NAME_LENGTH = 255

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
_DIGEST_GRAMMAR = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
HEX_LENGTHS = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"[a-f0-9]+")


def is_name(text: str) -> bool:
    return len(text) <= MAX_NAME_LENGTH and _NAME.fullmatch(text) is not None


def check_name(text: str) -> str:
    if not is_name(text):
        raise NameInvalid("invalid repository name", {"name": text[:300]})
    return text


def is_tag(text: str) -> bool:
    return _TAG.fullmatch(text) is not None


@dataclass(frozen=True, order=True)
class Digest:
    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    def hasher(self) -> Any:
        return hashlib.new(self.algorithm)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())


def parse_digest(text: str) -> Digest:
    """A supported digest, or DigestInvalid (malformed, or an algorithm we do not store)."""
    if not _DIGEST_GRAMMAR.fullmatch(text):
        raise DigestInvalid("invalid digest", {"digest": text[:200]})
    algorithm, _, encoded = text.partition(":")
    length = HEX_LENGTHS.get(algorithm)
    if length is None:
        raise DigestInvalid(f"unsupported digest algorithm {algorithm!r}", {"digest": text[:200]})
    if len(encoded) != length or not _HEX.fullmatch(encoded):
        raise DigestInvalid("invalid digest", {"digest": text[:200]})
    return Digest(algorithm, encoded)


def parse_reference(text: str, *, reading: bool = False) -> str | Digest:
    """A manifest reference: a Digest, or a tag (str). DigestInvalid for a malformed digest;
    for a malformed tag ManifestInvalid, or ManifestUnknown when `reading` (no manifest can
    have that tag: the distribution conformance suite expects a 404)."""
    if ":" in text:
        return parse_digest(text)
    if not is_tag(text):
        if reading:
            raise ManifestUnknown("manifest unknown", {"tag": text[:200]})
        raise ManifestInvalid("invalid tag", {"tag": text[:200]})
    return text
