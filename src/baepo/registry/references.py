"""Repository names, tags and digests as the registry's URLs carry them.

The grammar is Baepo's one (`baepo.references`, distribution's); this module maps its
`InvalidReference` to the OCI error codes, and narrows digests to what this registry stores:
sha256 (64 lower-case hex digits) and sha512 (128).

A reference (the last part of a manifest URL) is a digest when it contains ":", else a tag.
"""

from __future__ import annotations

from baepo.references import Digest, InvalidReference, validate_name, validate_tag
from baepo.registry.errors import (
    DigestInvalid,
    ManifestUnknown,
    NameInvalid,
    TagInvalid,
)

__all__ = [
    "STORED_ALGORITHMS",
    "Digest",
    "check_name",
    "is_name",
    "is_tag",
    "parse_digest",
    "parse_reference",
]

STORED_ALGORITHMS = frozenset({"sha256", "sha512"})


def is_name(text: str) -> bool:
    try:
        validate_name(text)
    except InvalidReference:
        return False
    return True


def check_name(text: str) -> str:
    try:
        return validate_name(text)
    except InvalidReference as exc:
        raise NameInvalid(str(exc), {"name": text[:300]}) from exc


def is_tag(text: str) -> bool:
    try:
        validate_tag(text)
    except InvalidReference:
        return False
    return True


def parse_digest(text: str) -> Digest:
    """A digest this registry stores, or DigestInvalid (malformed, or another algorithm)."""
    try:
        digest = Digest.parse(text)
    except InvalidReference as exc:
        raise DigestInvalid(str(exc), {"digest": text[:200]}) from exc
    if digest.algorithm not in STORED_ALGORITHMS:
        raise DigestInvalid(
            f"unsupported digest algorithm {digest.algorithm!r}", {"digest": text[:200]}
        )
    return digest


def parse_reference(text: str, *, reading: bool = False) -> str | Digest:
    """A manifest reference: a Digest, or a tag (str). DigestInvalid for a malformed digest;
    for a malformed tag TagInvalid, or ManifestUnknown when `reading` (no manifest can have
    that tag: the distribution conformance suite expects a 404)."""
    if ":" in text:
        return parse_digest(text)
    try:
        return validate_tag(text)
    except InvalidReference as exc:
        if reading:
            raise ManifestUnknown("manifest unknown", {"tag": text[:200]}) from exc
        raise TagInvalid(str(exc), {"tag": text[:200]}) from exc
