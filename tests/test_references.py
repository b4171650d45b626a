"""The one image-reference grammar, table by table.

Most cases are distribution's own (reference_test.go, normalize_test.go, regexp_test.go of
github.com/distribution/reference), read as Docker reads them (`ParseNormalizedNamed`): the
first component is a host only when it looks like one, so `foo/bar` has no domain.
"""

from __future__ import annotations

import pytest

from baepo.references import (
    REFERENCE,
    Digest,
    InvalidReference,
    Reference,
    validate_digest,
    validate_domain,
    validate_name,
    validate_tag,
)

F64 = "f" * 64
SHA = f"sha256:{F64}"
HEX_ID = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a"
SONG = "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev"  # 64, not hex
ZEROS = f"sha256:{'0' * 64}"


@pytest.mark.parametrize(
    ("text", "domain", "path", "tag", "digest"),
    [
        ("test_com", None, "test_com", None, None),
        ("test.com:tag", None, "test.com", "tag", None),
        ("test.com:5000", None, "test.com", "5000", None),
        ("test.com/repo:tag", "test.com", "repo", "tag", None),
        ("test:5000/repo", "test:5000", "repo", None, None),
        (f"test:5000/repo@{SHA}", "test:5000", "repo", None, SHA),
        (f"test:5000/repo:tag@{SHA}", "test:5000", "repo", "tag", SHA),
        ("lowercase:Uppercase", None, "lowercase", "Uppercase", None),
        ("example.com/" + "a" * 255 + ":tag", "example.com", "a" * 255, "tag", None),
        (
            "a/" * 127 + "a:tag-puts-this-over-max",
            None,
            "a/" * 127 + "a",
            "tag-puts-this-over-max",
            None,
        ),
        (
            "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
            "sub-dom1.foo.com",
            "bar/baz/quux",
            "some-long-tag",
            None,
        ),
        (
            "b.gcr.io/test.example.com/my-app:test.example.com",
            "b.gcr.io",
            "test.example.com/my-app",
            "test.example.com",
            None,
        ),
        ("xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage", "xn--n3h.com", None),
        (
            f"xn--7o8h.com/myimage:xn--7o8h.com@{SHA}",
            "xn--7o8h.com",
            "myimage",
            "xn--7o8h.com",
            SHA,
        ),
        ("foo_bar.com:8080", None, "foo_bar.com", "8080", None),
        ("foo/foo_bar.com:8080", None, "foo/foo_bar.com", "8080", None),
        ("192.168.1.1", None, "192.168.1.1", None, None),
        ("192.168.1.1:5000", None, "192.168.1.1", "5000", None),
        ("192.168.1.1/repo", "192.168.1.1", "repo", None, None),
        ("192.168.1.1:5000/repo:5050", "192.168.1.1:5000", "repo", "5050", None),
        ("[2001:db8::1]/repo", "[2001:db8::1]", "repo", None, None),
        ("[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]", "repo", "tag", None),
        (f"[2001:db8::1]:5000/repo:tag@{SHA}", "[2001:db8::1]:5000", "repo", "tag", SHA),
        ("[2001:db8::]:5000/repo", "[2001:db8::]:5000", "repo", None, None),
        ("[::1]:5000/x", "[::1]:5000", "x", None, None),
        (f"localhost:5000/a/b:tag@{ZEROS}", "localhost:5000", "a/b", "tag", ZEROS),
        ("localhost/app", "localhost", "app", None, None),
        ("LOCALDOMAIN/debian", "LOCALDOMAIN", "debian", None, None),
        ("Docker/docker", "Docker", "docker", None, None),
        ("team/app", None, "team/app", None, None),
        ("a__b", None, "a__b", None, None),
        ("a---b", None, "a---b", None, None),
        ("a.b_c__d-e---f", None, "a.b_c__d-e---f", None, None),
        ("dock__er/docker", None, "dock__er/docker", None, None),
        ("d/docker", None, "d/docker", None, None),
        ("jess/t", None, "jess/t", None, None),
        (f"docker.io/{HEX_ID}", "docker.io", HEX_ID, None, None),
        (SONG, None, SONG, None, None),
        ("app:_private", None, "app", "_private", None),
        ("app:" + "A" * 128, None, "app", "A" * 128, None),
        ("app@sha384:" + "b" * 96, None, "app", None, "sha384:" + "b" * 96),
        ("app@sha512:" + "c" * 128, None, "app", None, "sha512:" + "c" * 128),
        ("a" * 247, None, "a" * 247, None, None),  # library/ + 247 = 255
    ],
)
def test_valid_references(
    text: str, domain: str | None, path: str, tag: str | None, digest: str | None
) -> None:
    reference = Reference.parse(text)
    assert (reference.domain, reference.path, reference.tag, reference.digest) == (
        domain,
        path,
        tag,
        digest,
    )
    assert str(reference) == text
    assert REFERENCE.fullmatch(text), "the parse must not accept what the grammar refuses"


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("", "reference"),
        (":justtag", "name"),
        (f"@{SHA}", "name"),
        ("repo@sha256:" + "f" * 34, "digest"),  # too short for sha256
        (f"validname@invaliddigest:{F64}", "digest"),  # not an algorithm go-digest knows
        ("app@md5:" + "a" * 32, "digest"),
        ("app@sha256:" + "A" * 64, "digest"),  # hex digits are lower-case
        ("app@sha256:" + "g" * 64, "digest"),
        ("app@sha256:../../etc", "digest"),
        ("app@", "digest"),
        ("Uppercase:tag", "name"),
        ("test:5000/Uppercase/lowercase:tag", "name"),
        ("docker/Docker", "name"),
        ("docker.io/docker/Docker", "name"),
        ("domain/" + "a" * 256 + ":tag", "name"),
        ("a" * 248, "name"),  # library/ + 248 = 256
        ("aa/asdf$$^/aa", "name"),
        ("[2001:db8::1]", "name"),
        ("[2001:db8::1]:5000", "name"),
        ("[2001:db8::1]:tag", "name"),
        ("[fe80::1%eth0]:5000/repo", "domain"),
        ("[fe80::1%@invalidzone]:5000/repo", "name"),
        ("[2001:db8:3:4::192.0.2.33]:5000/debian", "domain"),
        ("fc00::1:5000/debian", "domain"),
        ("[fc00::1]", "name"),
        ("[fc00::1]:5000", "name"),
        ("https://github.com/docker/docker", "domain"),
        ("test.com:http/repo", "domain"),
        ("-docker", "name"),
        ("-docker/docker", "name"),
        ("-docker.io/docker/docker", "domain"),
        ("docker-/docker", "name"),
        ("-docker-/docker", "name"),
        ("docker///docker", "name"),
        ("docker.io/docker///docker", "name"),
        ("docker/", "name"),
        ("____/____", "name"),
        ("_docker/_docker", "name"),
        ("dock..er/docker", "domain"),
        ("dock_.er/docker", "domain"),
        ("dock-.er/docker", "domain"),
        ("a_-b", "name"),
        ("a___b", "name"),
        ("a_b.com/app", "domain"),  # looks like a host, is not one: refused, not Docker Hub
        ("x" * 256 + "/docker", "name"),
        (HEX_ID, "name"),  # an image id, not a repository name
        ("app:vé1", "tag"),  # Python's \w takes é; distribution's (Go's) does not
        ("app:v\u0661", "tag"),  # an Arabic-Indic digit
        ("\uff41pp:1", "name"),  # a fullwidth letter
        ("vé1", "name"),
        ("app:.hidden", "tag"),
        ("app:-dash", "tag"),
        ("app:" + "A" * 129, "tag"),
        ("app:", "tag"),
        ("app:a:b", "tag"),
        ("app:1\n", "reference"),
        ("app\n", "reference"),
        ("app :1", "reference"),
        ("app:1 ", "reference"),
    ],
)
def test_invalid_references(text: str, part: str) -> None:
    with pytest.raises(InvalidReference) as caught:
        Reference.parse(text)
    assert caught.value.part == part
    assert caught.value.reason == str(caught.value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("app:vé1", "'vé1' is not a valid tag"),
        ("Team/App:1", "'App' is not a repository name: it must be lowercase"),
        ("a_-b", "'a_-b' is not a repository name: lowercase letters and digits"),
        ("a" * 256, "a repository name has at most 255 characters"),
        ("app@md5:" + "a" * 32, "unsupported digest algorithm 'md5'"),
        ("app@sha256:" + "a" * 63, "a sha256 digest has 64 hexadecimal digits, not 63"),
        ("bad_host.com/app", "'bad_host.com' is not a registry host"),
    ],
)
def test_reasons_say_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(InvalidReference, match=None) as caught:
        Reference.parse(text)
    assert str(caught.value).startswith(reason)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("busybox", "docker.io/library/busybox:1", True),
        ("busybox", "docker.io/busybox", True),
        ("team/app", "docker.io/team/app", True),
        ("index.docker.io/library/busybox", "busybox", True),
        ("localhost:5000/app", "localhost:5000/app:2", True),
        (f"localhost:5000/app@{SHA}", "localhost:5000/app:2", True),
        ("localhost:5000/app", "localhost:5001/app", False),
        ("localhost/app", "app", False),
        ("registry.example.com/app", "docker.io/app", False),
        ("docker.io/library/a/b", "a/b", False),
        ("busybox", "not a reference", False),
    ],
)
def test_same_repository(a: str, b: str, same: bool) -> None:
    assert Reference.parse(a).same_repository(b) is same
    if b != "not a reference":
        assert Reference.parse(a).same_repository(Reference.parse(b)) is same


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("ubuntu", "docker.io/library/ubuntu"),
        ("ubuntu:22.04", "docker.io/library/ubuntu:22.04"),
        ("fooo/bar", "docker.io/fooo/bar"),
        ("index.docker.io/debian", "docker.io/library/debian"),
        ("docker.io/library/a/b", "docker.io/library/a/b"),
        ("localhost/fooo", "localhost/fooo"),
        (f"127.0.0.1:5000/team/app@{SHA}", f"127.0.0.1:5000/team/app@{SHA}"),
    ],
)
def test_canonical_form(text: str, canonical: str) -> None:
    assert str(Reference.parse(text).canonical) == canonical


def test_tags_digests_and_pins() -> None:
    tagged = Reference.parse("localhost:5000/team/app:1")
    assert tagged.repository == "localhost:5000/team/app"
    assert tagged.effective_tag == "1"
    assert tagged.pinned(SHA) == f"localhost:5000/team/app@{SHA}"
    assert tagged.with_default_tag() == "localhost:5000/team/app:1"
    assert Reference.parse("busybox").effective_tag == "latest"
    assert Reference.parse("busybox").with_default_tag() == "busybox:latest"
    assert Reference.parse(f"app:1@{SHA}").with_default_tag() == f"app@{SHA}"


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("app", True),
        ("team/app/api", True),
        ("0/1/2", True),
        ("x" * 255, True),
        ("x" * 256, False),
        ("App", False),
        ("localhost:5000/app", False),  # a registry names its repositories without a host
        ("team//app", False),
        ("/app", False),
        ("app/", False),
        ("../etc", False),
        ("team/./app", False),
        ("", False),
        ("app\n", False),
    ],
)
def test_repository_names(name: str, ok: bool) -> None:
    if ok:
        assert validate_name(name) == name
    else:
        with pytest.raises(InvalidReference) as caught:
            validate_name(name)
        assert caught.value.part == "name"


@pytest.mark.parametrize(
    ("tag", "ok"),
    [
        ("latest", True),
        ("v1.2.3-rc_1", True),
        ("_", True),
        ("vé1", False),
        (".hidden", False),
        ("with/slash", False),
        ("", False),
    ],
)
def test_tags(tag: str, ok: bool) -> None:
    if ok:
        assert validate_tag(tag) == tag
    else:
        with pytest.raises(InvalidReference) as caught:
            validate_tag(tag)
        assert caught.value.part == "tag"


@pytest.mark.parametrize(
    ("domain", "ok"),
    [
        ("test.com", True),
        ("test.com:10304", True),
        ("test.com:http", False),
        ("localhost:8080", True),
        ("a", True),
        ("-ab.com", False),
        ("ab-.com", False),
        ("ab.c-om", True),
        ("ab.-com", False),
        ("Asdf.com", True),
        ("192.168.1.1:75050", True),
        ("[fd00:1:2::3]:75050", True),
        ("[fd00:1:2::3]75050", False),
        ("[fd00:1:2::3]::75050", False),
        ("[fd00:1:2::3%eth0]:75050", False),
        ("fd00:1:2::3:75050", False),
    ],
)
def test_domains(domain: str, ok: bool) -> None:
    if ok:
        assert validate_domain(domain) == domain
    else:
        with pytest.raises(InvalidReference):
            validate_domain(domain)


def test_digests() -> None:
    assert Digest.parse(SHA) == Digest("sha256", F64)
    assert validate_digest(SHA) == SHA
    assert str(Digest.parse(SHA)) == SHA
    assert str(Digest.of(b"")) == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert Digest.of(b"", "sha512").algorithm == "sha512"
    for bad in ("sha256", ":abc", "sha256:", "sha256:" + "a" * 65, ""):
        with pytest.raises(InvalidReference) as caught:
            validate_digest(bad)
        assert caught.value.part == "digest"
