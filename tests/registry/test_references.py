"""Names, tags, digests and references: the spec's grammar, table by table."""

from __future__ import annotations

import pytest

from baepo.registry.errors import DigestInvalid, ManifestInvalid, ManifestUnknown, NameInvalid
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
        ("app", True),
        ("team/app", True),
        ("team/app/api", True),
        ("a.b_c__d-e---f", True),
        ("0/1/2", True),
        ("x" * 255, True),
        ("x" * 256, False),
        ("App", False),
        ("team//app", False),
        ("/app", False),
        ("app/", False),
        ("a..b", False),
        ("a___b", False),
        ("-app", False),
        ("app-", False),
        ("../etc", False),
        ("team/../app", False),
        ("team/./app", False),
        ("a b", False),
        ("", False),
        ("app\n", False),
        ("blobs", True),
    ],
)
def test_repository_names(name: str, ok: bool) -> None:
    assert is_name(name) is ok
    if not ok:
        with pytest.raises(NameInvalid):
            check_name(name)


@pytest.mark.parametrize(
    ("tag", "ok"),
    [
        ("latest", True),
        ("v1.2.3-rc_1", True),
        ("_private", True),
        ("A" * 128, True),
        ("A" * 129, False),
        (".hidden", False),
        ("-dash", False),
        ("with/slash", False),
        ("", False),
        ("tag\n", False),
    ],
)
def test_tags(tag: str, ok: bool) -> None:
    assert is_tag(tag) is ok


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"sha256:{HEX64}", Digest("sha256", HEX64)),
        ("sha512:" + "b" * 128, Digest("sha512", "b" * 128)),
    ],
)
def test_valid_digests(text: str, expected: Digest) -> None:
    assert parse_digest(text) == expected
    assert str(parse_digest(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "sha256:" + "A" * 64,  # upper case hex
        "sha256:" + "a" * 63,
        "sha256:" + "a" * 65,
        "sha512:" + "a" * 64,
        "md5:" + "a" * 32,  # grammatical, but not an algorithm we store
        "sha256",
        ":abc",
        "sha256:",
        "sha256:../../etc",
        "sha256:" + "g" * 64,
        "",
    ],
)
def test_invalid_digests(text: str) -> None:
    with pytest.raises(DigestInvalid):
        parse_digest(text)


def test_digest_of_bytes() -> None:
    assert str(Digest.of(b"")) == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert Digest.of(b"", "sha512").algorithm == "sha512"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("latest", str),
        (f"sha256:{HEX64}", Digest),
        ("bad tag", ManifestInvalid),
        ("sha256:nothex", DigestInvalid),
    ],
)
def test_references(text: str, kind: type) -> None:
    if issubclass(kind, Exception):
        with pytest.raises(kind):
            parse_reference(text)
    else:
        assert isinstance(parse_reference(text), kind)


def test_reading_a_tag_that_cannot_exist() -> None:
    with pytest.raises(ManifestUnknown):
        parse_reference(".INVALID_MANIFEST_NAME", reading=True)
