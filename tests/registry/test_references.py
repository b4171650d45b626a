"""The registry's reading of names, tags and digests: Baepo's one grammar (tests/test_references.py
has its tables), mapped to the OCI error codes, with digests narrowed to what is stored."""

from __future__ import annotations

import pytest

from baepo.registry.errors import DigestInvalid, ManifestUnknown, NameInvalid, TagInvalid
from baepo.registry.references import (
    Digest,
    check_name,
    is_name,
    is_tag,
    parse_digest,
    parse_reference,
)

HEX64 = "a" * 64


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("team/app", True),
        ("a__b", True),
        ("a---b", True),
        ("x" * 255, True),
        ("blobs", True),
        ("x" * 256, False),
        ("App", False),
        ("a_-b", False),
        ("team/../app", False),
        ("localhost:5000/app", False),
    ],
)
def test_repository_names(name: str, ok: bool) -> None:
    assert is_name(name) is ok
    if not ok:
        with pytest.raises(NameInvalid):
            check_name(name)


@pytest.mark.parametrize(("tag", "ok"), [("v1.2.3-rc_1", True), ("vé1", False), (".x", False)])
def test_tags(tag: str, ok: bool) -> None:
    assert is_tag(tag) is ok


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"sha256:{HEX64}", Digest("sha256", HEX64)),
        ("sha512:" + "b" * 128, Digest("sha512", "b" * 128)),
    ],
)
def test_stored_digests(text: str, expected: Digest) -> None:
    assert parse_digest(text) == expected
    assert str(parse_digest(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 63,
        "sha512:" + "a" * 64,
        "sha384:" + "a" * 96,  # a digest go-digest knows, but not one this registry stores
        "md5:" + "a" * 32,
        "sha256:../../etc",
        "",
    ],
)
def test_digests_the_registry_refuses(text: str) -> None:
    with pytest.raises(DigestInvalid):
        parse_digest(text)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("latest", str),
        (f"sha256:{HEX64}", Digest),
        ("vé1", TagInvalid),
        ("bad tag", TagInvalid),
        ("sha256:nothex", DigestInvalid),
    ],
)
def test_manifest_references(text: str, kind: type) -> None:
    if issubclass(kind, Exception):
        with pytest.raises(kind):
            parse_reference(text)
    else:
        assert isinstance(parse_reference(text), kind)


def test_reading_a_tag_that_cannot_exist() -> None:
    with pytest.raises(ManifestUnknown):
        parse_reference(".INVALID_MANIFEST_NAME", reading=True)
