"""The registry's pages over HTTP: repositories, tags, images with their layers and referrers,
deleting (after asking), garbage collection; what the API refuses a person.

The world (tests/console/conftest.py) has alice/app:1 and :2; a test that deletes pushes a
repository of its own first.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from baepo.console.pages import size as human_size
from baepo.registry import TagMutability, create_app
from tests.api.rights_world import RightsWorld
from tests.console.conftest import signed_in
from tests.console.visitor import Visitor, text
from tests.registry.conftest import AllowAll
from tests.registry.content import OCI_LAYER, Image, push_image


@pytest.fixture
def admin(world: RightsWorld) -> Visitor:
    return signed_in(world, "admin")


def push(world: RightsWorld, repository: str, tag: str | None, **extra: Any) -> Image:
    with TestClient(create_app(world.registry, AllowAll())) as registry:
        return push_image(registry, repository, tag, **extra)


def test_the_registry_lists_the_repositories_one_may_pull(
    world: RightsWorld, alice: Visitor, bob: Visitor
) -> None:
    push(world, "team/open", "1")
    world.registry.set_public("team/open", True)
    page = alice.get("/registry")
    assert page.status_code == 200
    assert re.search(r"alice/app 2 private yes", text(page))
    assert re.search(r"team/open 1 public yes", text(page))
    assert 'href="/registry/alice/app"' in page.text
    assert 'aria-current="page">Registry' in page.text
    assert "docker push localhost:5000/NAME:TAG" in text(page)
    assert "Garbage collection" not in text(page)  # an admin's

    seen = text(bob.get("/registry"))
    assert "team/open" in seen and "alice/app" not in seen
    assert bob.get("/registry/alice/app").status_code == 404


def test_a_repository_shows_its_tags_images_and_pushes(world: RightsWorld, alice: Visitor) -> None:
    first = push(world, "alice/shown", "1")
    push(world, "alice/shown", "latest")
    page = alice.get("/registry/alice/shown")
    assert page.status_code == 200
    shown = text(page)
    short = first.manifest.digest[:19]
    size = human_size(len(first.config.data) + len(first.layers[0].data))
    assert f"Delete 1 {short}… {size} 2026-01-01 00:00:00 UTC by tester Delete tag 1" in shown
    assert "latest" in shown and "Tags may move yes" in shown
    assert f"{short}… 1 image {size}" in shown  # the images, with their tags
    link = first.manifest.digest.replace(":", "%3A")
    assert f'href="/registry/alice/shown/-/images/{link}"' in page.text
    assert re.search(rf"pushed 1 {short}…", shown)  # the push history
    world.registry.set_tag_mutability("alice/shown", TagMutability(True, ("latest",)))
    assert "Tags may move no (immutable), except latest" in text(alice.get("/registry/alice/shown"))


def test_an_image_shows_its_layers_and_referrers(world: RightsWorld, alice: Visitor) -> None:
    image = push(world, "alice/signed", "1")
    signature = push(world, "alice/signed", None, subject=image.manifest.descriptor())
    page = alice.get(f"/registry/alice/signed/-/images/{image.manifest.digest}")
    assert page.status_code == 200
    shown = text(page)
    layer = image.layers[0]
    assert f"{layer.digest} {human_size(len(layer.data))} {OCI_LAYER}" in shown
    assert image.config.digest in shown and "Tags 1" in shown
    assert "Referrers" in shown and signature.manifest.digest in shown

    of_signature = text(alice.get(f"/registry/alice/signed/-/images/{signature.manifest.digest}"))
    assert f"Refers to {image.manifest.digest}" in of_signature and "untagged" in of_signature


def test_delete_a_tag_an_image_and_the_repository_after_asking(
    world: RightsWorld, alice: Visitor
) -> None:
    kept = push(world, "alice/gone", "1")
    push(world, "alice/gone", "2")
    confirm = alice.get("/registry/alice/gone/-/tags/2/delete")
    assert "Delete tag 2 of alice/gone?" in text(confirm)
    assert "Pulls of alice/gone:2 fail from now on" in text(confirm)
    answer = alice.submit("/registry/alice/gone/-/tags/2/delete")
    assert answer.status_code == 303 and answer.headers["location"] == "/registry/alice/gone"
    assert world.registry.tags("alice/gone") == ["1"]

    digest = kept.manifest.digest
    confirm = alice.get(f"/registry/alice/gone/-/images/{digest}/delete")
    assert "every tag that points to it" in text(confirm)
    assert alice.submit(f"/registry/alice/gone/-/images/{digest}/delete").status_code == 303
    assert world.registry.tags("alice/gone") == []

    assert "Delete repository alice/gone?" in text(alice.get("/registry/alice/gone/-/delete"))
    answer = alice.submit("/registry/alice/gone/-/delete")
    assert answer.status_code == 303 and answer.headers["location"] == "/registry"
    assert "alice/gone" not in alice.get("/registry").text
    assert alice.get("/registry/alice/gone/-/delete").status_code == 404


def test_what_one_may_not_delete_stays(world: RightsWorld, alice: Visitor, bob: Visitor) -> None:
    push(world, "alice/kept", "1")
    assert bob.get("/registry/alice/kept/-/tags/1/delete").status_code == 404
    bob.get("/registry")
    for path in ("/registry/alice/kept/-/tags/1/delete", "/registry/alice/kept/-/delete"):
        assert bob.submit(path).status_code in (403, 404)
    alice.get("/registry/alice/kept/-/tags/1/delete")
    for csrf in ("", "forged"):
        answer = alice.client.post("/registry/alice/kept/-/delete", data={"csrf": csrf})
        assert answer.status_code == 403
    assert world.registry.tags("alice/kept") == ["1"]


def test_an_admin_collects_garbage_and_sees_what_was_freed(
    world: RightsWorld, admin: Visitor, alice: Visitor
) -> None:
    assert "Garbage collection" in text(admin.get("/registry"))
    form = admin.get("/registry/-/gc")
    assert "Collect garbage" in text(form)
    page = admin.submit("/registry/-/gc", dry_run="yes")
    assert page.status_code == 200 and "What it would free" in text(page)
    page = admin.submit("/registry/-/gc")
    assert page.status_code == 200 and re.search(r"Freed \d", text(page))

    assert "Only an admin may run it" in text(alice.get("/registry/-/gc"))
    refused = alice.submit("/registry/-/gc")
    assert refused.status_code == 403 and "That did not work" in text(refused)


def test_nothing_in_an_address_becomes_markup(world: RightsWorld, alice: Visitor) -> None:
    script = "<script>alert(1)</script>"
    page = alice.get(f"/registry/alice/app/-/images/{script}")
    assert page.status_code == 404
    assert script not in page.text and "&lt;script&gt;" in page.text
    page = alice.get(f"/registry/alice/app/-/tags/{script}/delete")
    assert page.status_code in (400, 404) and script not in page.text


def test_the_owner_makes_it_public_and_its_tags_immutable(
    world: RightsWorld, alice: Visitor, bob: Visitor
) -> None:
    push(world, "alice/open", "1")
    alice.get("/registry/alice/open")
    answer = alice.submit("/registry/alice/open/-/public", public="yes")
    assert answer.status_code == 303 and answer.headers["location"] == "/registry/alice/open"
    assert world.registry.is_public("alice/open")
    assert "Visibility public: anyone may pull" in text(bob.get("/registry/alice/open"))

    refused = bob.submit("/registry/alice/open/-/public", public="no")
    assert refused.status_code == 403 and "you may not push 'alice/open'" in text(refused)
    assert world.registry.is_public("alice/open")

    alice.get("/registry/alice/open")
    answer = alice.submit(
        "/registry/alice/open/-/tag-mutability", immutable="yes", exceptions="latest dev-*"
    )
    assert answer.status_code == 303
    mutability = world.registry.repository("alice/open").mutability
    assert mutability.immutable and mutability.exceptions == ("latest", "dev-*")
    assert 'value="latest dev-*"' in alice.get("/registry/alice/open").text


def test_a_bad_tag_filter_shows_beside_its_field(world: RightsWorld, alice: Visitor) -> None:
    push(world, "alice/filtered", "1")
    alice.get("/registry/alice/filtered")
    page = alice.submit(
        "/registry/alice/filtered/-/tag-mutability", immutable="yes", exceptions="<b>x</b>"
    )
    assert page.status_code == 400
    assert re.search(r'<p class="error" id="exceptions-error">[^<]*is not a tag filter', page.text)
    assert "<b>x</b>" not in page.text and 'value="&lt;b&gt;x&lt;/b&gt;"' in page.text
    page = alice.submit(
        "/registry/alice/filtered/-/tag-mutability", immutable="yes", exceptions="a b c d e f"
    )
    assert page.status_code == 422 and 'id="exceptions-error"' in page.text
    assert not world.registry.repository("alice/filtered").mutability.immutable
