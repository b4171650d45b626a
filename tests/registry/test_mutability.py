"""Tag immutability: which tags are fixed, and a push over a fixed tag refused over HTTP with
TAG_INVALID in ECR's words; the same image again, a new tag and a deleted tag are fine."""

from __future__ import annotations

import pytest

from baepo.registry import Registry, TagInvalid, TagMutability

from .conftest import AppClient
from .content import error_codes, push_image, push_manifest


@pytest.mark.parametrize(
    ("mutability", "tag", "fixed"),
    [
        (TagMutability(), "v1", False),
        (TagMutability(True), "v1", True),
        (TagMutability(True, ("latest", "dev-*")), "latest", False),
        (TagMutability(True, ("latest", "dev-*")), "dev-42", False),
        (TagMutability(True, ("latest", "dev-*")), "v1", True),
        (TagMutability(False, ("release-*",)), "release-3", True),
        (TagMutability(False, ("release-*",)), "main", False),
        (TagMutability(False, ("*-stable",)), "1.2-stable", True),
    ],
)
def test_which_tags_are_fixed(mutability: TagMutability, tag: str, fixed: bool) -> None:
    assert mutability.fixed(tag) is fixed


@pytest.mark.parametrize("exceptions", [("has space",), ("a/b",), ("x" * 129,), ("a",) * 6])
def test_exceptions_are_tag_filters(exceptions: tuple[str, ...]) -> None:
    with pytest.raises(TagInvalid):
        TagMutability(True, exceptions)


def test_a_push_over_a_fixed_tag_is_refused(client: AppClient, registry: Registry) -> None:
    first = push_image(client, "team/app", "v1")
    registry.set_tag_mutability("team/app", TagMutability(True, ("latest",)))
    assert registry.repository("team/app").mutability == TagMutability(True, ("latest",))

    second = push_image(client, "team/app", "v2")  # a new tag: fine
    over = push_manifest(client, "team/app", "v1", second.manifest)
    assert over.status_code == 400
    assert error_codes(over) == ["TAG_INVALID"]
    assert over.json()["errors"][0]["message"] == (
        "The image tag 'v1' already exists in the 'team/app' repository and cannot be "
        "overwritten because the repository is immutable."
    )
    assert registry.resolve("team/app", "v1") == first.manifest.digest

    assert push_manifest(client, "team/app", "v1", first.manifest).status_code == 201  # same
    for _ in range(2):  # an excepted tag moves freely
        assert push_manifest(client, "team/app", "latest", first.manifest).status_code == 201
        assert push_manifest(client, "team/app", "latest", second.manifest).status_code == 201
    registry.delete_tag("team/app", "v1")  # deleting a fixed tag is allowed, as in ECR
    assert push_manifest(client, "team/app", "v1", second.manifest).status_code == 201

    registry.set_tag_mutability("team/app", TagMutability())
    assert push_manifest(client, "team/app", "v1", first.manifest).status_code == 201


def test_mutable_with_fixed_exceptions(client: AppClient, registry: Registry) -> None:
    registry.set_tag_mutability("team/rel", TagMutability(False, ("release-*",)))
    one, two = push_image(client, "team/rel", "release-1"), push_image(client, "team/rel", "main")
    assert push_manifest(client, "team/rel", "main", one.manifest).status_code == 201
    over = push_manifest(client, "team/rel", "release-1", two.manifest)
    assert over.status_code == 400
    assert "because the tag is immutable" in over.json()["errors"][0]["message"]
