"""The parsers that read what clients send never fail in any way but their own error: image
references, digests, Range and Content-Range headers, manifests. Hypothesis feeds each one
arbitrary text (and text shaped like the real thing), with a fixed seed so a run is repeatable;
every input that once broke a parser stays here as an example."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st

from baepo.references import Digest, InvalidReference, Reference
from baepo.registry.errors import RegistryError
from baepo.registry.manifests import parse_manifest
from baepo.registry.ranges import parse_content_range, parse_length, parse_range
from baepo.registry.references import parse_digest, parse_reference

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text shaped like references: their alphabet, so that many inputs get deep into the grammar.
REFERENCE_TEXT = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789._-/:@+=", min_size=0, max_size=80
)
HEX = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


@seed(8)
@SETTINGS
@given(st.one_of(st.text(max_size=300), REFERENCE_TEXT))
@example("localhost:5000/team/app:1@sha256:" + "a" * 64)
@example("a" * 300)
@example("@")
@example("x:\n")
def test_a_reference_parses_or_says_why(text: str) -> None:
    try:
        reference = Reference.parse(text)
    except InvalidReference:
        return
    again = Reference.parse(str(reference))
    assert again == reference
    assert reference.same_repository(str(reference))


@seed(8)
@SETTINGS
@given(
    st.one_of(
        st.text(max_size=120),
        st.builds(lambda h: f"sha256:{h}", HEX),
        st.builds(lambda a, h: f"{a}:{h}", st.sampled_from(["sha512", "SHA256", "md5", ""]), HEX),
    )
)
@example("sha256:" + "A" * 64)
@example("sha256:" + "a" * 63 + "\n")
def test_a_digest_parses_or_is_digest_invalid(text: str) -> None:
    try:
        digest = parse_digest(text)
    except RegistryError as exc:
        assert exc.code == "DIGEST_INVALID"
        return
    assert str(digest) == text
    assert Digest.parse(str(digest)) == digest


@seed(8)
@SETTINGS
@given(st.text(max_size=200))
@example("v1\n")
@example("a" * 129)
def test_a_manifest_reference_is_a_tag_a_digest_or_a_registry_error(text: str) -> None:
    for reading in (False, True):
        try:
            parse_reference(text, reading=reading)
        except RegistryError as exc:
            assert exc.status in (400, 404)


RANGE_TEXT = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda a, b: f"bytes={a}-{b}",
        st.one_of(st.just(""), st.integers(0, 10**25).map(str)),
        st.one_of(st.just(""), st.integers(0, 10**25).map(str)),
    ),
)


@seed(8)
@SETTINGS
@given(RANGE_TEXT, st.integers(0, 10**12))
@example("bytes=0-", 0)
@example("bytes=-0", 10)
@example("bytes=" + "9" * 40 + "-", 10)
def test_a_range_is_within_the_blob_or_refused(header: str, size: int) -> None:
    try:
        found = parse_range(header, size)
    except RegistryError as exc:
        assert exc.status == 416
        return
    if found is not None:
        assert 0 <= found.start <= found.end < size
        assert found.length == found.end - found.start + 1


@seed(8)
@SETTINGS
@given(
    st.one_of(
        st.text(max_size=60),
        st.builds(lambda a, b: f"{a}-{b}", st.integers(0, 10**25), st.integers(0, 10**25)),
    )
)
def test_a_content_range_is_ordered_or_refused(header: str) -> None:
    try:
        found = parse_content_range(header)
    except RegistryError as exc:
        assert exc.code == "BLOB_UPLOAD_INVALID"
        return
    if found is not None:
        assert 0 <= found.start <= found.end


@seed(8)
@SETTINGS
@given(st.text(max_size=40))
def test_a_content_length_is_a_plain_number_or_none(header: str) -> None:
    length = parse_length(header)
    assert length is None or ((length >= 0 and str(length) == header.strip().lstrip("0")) or "0")


DIGEST = st.builds(lambda h: f"sha256:{h}", HEX)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)
DESCRIPTOR = st.fixed_dictionaries(
    {"mediaType": st.sampled_from(["application/vnd.oci.image.layer.v1.tar", "x/y", ""])},
    optional={
        "digest": st.one_of(DIGEST, st.text(max_size=20)),
        "size": st.one_of(st.integers(-5, 10**20), st.text(max_size=5), st.booleans()),
        "urls": st.lists(st.text(max_size=10), max_size=2),
        "annotations": st.dictionaries(st.text(max_size=5), JSON_VALUE, max_size=2),
        "artifactType": JSON_VALUE,
    },
)
MANIFEST = st.fixed_dictionaries(
    {},
    optional={
        "schemaVersion": st.one_of(st.just(2), JSON_VALUE),
        "mediaType": st.sampled_from(
            [
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.oci.image.index.v1+json",
                "application/vnd.docker.distribution.manifest.v2+json",
                "application/vnd.docker.distribution.manifest.list.v2+json",
                "text/plain",
            ]
        ),
        "config": st.one_of(DESCRIPTOR, JSON_VALUE),
        "layers": st.one_of(st.lists(DESCRIPTOR, max_size=3), JSON_VALUE),
        "manifests": st.one_of(st.lists(DESCRIPTOR, max_size=3), JSON_VALUE),
        "subject": st.one_of(DESCRIPTOR, JSON_VALUE),
        "annotations": JSON_VALUE,
        "artifactType": JSON_VALUE,
    },
)
CONTENT_TYPES = st.sampled_from(
    [
        None,
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/json; charset=utf-8",
        "text/plain",
    ]
)


@seed(8)
@SETTINGS
@given(
    st.one_of(MANIFEST.map(lambda d: json.dumps(d).encode()), st.binary(max_size=200)),
    CONTENT_TYPES,
)
@example(b"[]", None)
@example(b'{"schemaVersion": 2, "layers": [{"size": 1e400}]}', None)
@example(b"\xff\xfe", None)
def test_a_manifest_parses_or_is_manifest_invalid(data: bytes, content_type: str | None) -> None:
    try:
        manifest = parse_manifest(data, content_type)
    except RegistryError as exc:
        assert exc.status in (400, 415), exc
        return
    for descriptor in (*manifest.layers, *manifest.manifests):
        assert isinstance(descriptor.size, int) and descriptor.size >= 0
        parse_digest(descriptor.digest)
    described: Any = manifest.blob_sizes
    assert all(isinstance(v, int) for v in described.values())
