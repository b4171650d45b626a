"""The engine's local images: `Engine.images`, `remove_image` and `prune_images` against
MemoryEngine, dockerd and Podman (the `engine` fixture).

Each test builds images of its own: a label and names unique to it (on a registry host, where
every engine spells a name the same way), removed after it.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from baepo.runtime import BuildSpec, ContainerConflict, ContainerSpec, DockerEngine, Engine
from baepo.runtime.engine_http import EngineClient, ResponseError, TransportError, endpoint
from tests.runtime.test_builds import Lines, context, dockerfile

LABEL = "baepo.pipeline.repository"


@dataclass
class Built:
    """Images of this test's own: `build(tag)` builds one, `labels` they carry."""

    engine: Engine
    labels: dict[str, str]
    root: Path
    prefix: str

    def name(self, tag: str) -> str:
        return f"{self.prefix}:{tag}"

    def build(self, tag: str, text: str | None = None, labels: dict[str, str] | None = None) -> str:
        """Build `text` (a Dockerfile never built before, by default) as `tag`; its id."""
        root = context(self.root / secrets.token_hex(4), {"Dockerfile": text or dockerfile()})
        spec = BuildSpec(context=root, tag=self.name(tag), labels=labels or self.labels)
        return self.engine.build(spec, Lines())


@pytest.fixture
def built(engine: Engine, tmp_path: Path) -> Iterator[Built]:
    mark = secrets.token_hex(4)
    made = Built(engine, {LABEL: f"test/{mark}"}, tmp_path, f"127.0.0.1:5999/test/images-{mark}")
    yield made
    if isinstance(engine, DockerEngine):
        client = EngineClient(engine.base_url, timeout_s=60)
        for labels in (made.labels, {LABEL: f"test/{mark}-other"}):
            for image in engine.images(labels):
                with contextlib.suppress(ResponseError, TransportError):
                    client.request("DELETE", endpoint("/images/{}", image.id), query={"force": 1})


def test_the_images_of_a_label_newest_first_with_their_tags(built: Built) -> None:
    text = dockerfile()
    first = built.build("1")
    second = built.build("2", text)
    again = built.build("2b", text)  # the same context again: the same image, a second tag
    built.build("other", labels={LABEL: f"{built.labels[LABEL]}-other"})

    found = built.engine.images(built.labels)

    assert again == second
    assert [(image.id, sorted(image.tags)) for image in found] == [
        (second, [built.name("2"), built.name("2b")]),
        (first, [built.name("1")]),
    ]
    assert all(image.labels[LABEL] == built.labels[LABEL] for image in found)
    assert found[0].created > found[1].created


def test_an_image_goes_with_its_last_tag(built: Built) -> None:
    text = dockerfile()
    image = built.build("1", text)
    built.build("1b", text)

    built.engine.remove_image(built.name("1b"))
    assert [i.tags for i in built.engine.images(built.labels)] == [(built.name("1"),)]
    built.engine.remove_image(built.name("1"))

    assert built.engine.images(built.labels) == []
    assert not built.engine.image_present(built.name("1"))
    assert image not in [i.id for i in built.engine.images({})]
    built.engine.remove_image(built.name("1"))  # no such name: nothing to do


def test_the_last_tag_of_an_image_a_container_uses_stays(
    built: Built, spec: Callable[..., ContainerSpec]
) -> None:
    built.build("1")
    container = built.engine.run(spec(built.name("1"), command=["true"]))
    built.engine.wait(container.id, 30)  # exited, still there: it uses its image

    with pytest.raises(ContainerConflict):
        built.engine.remove_image(built.name("1"))

    assert [i.tags for i in built.engine.images(built.labels)] == [(built.name("1"),)]
    built.engine.remove(container.id)
    built.engine.remove_image(built.name("1"))
    assert built.engine.images(built.labels) == []


def test_prune_removes_the_untagged_images_of_its_label_only(built: Built) -> None:
    other = {LABEL: f"{built.labels[LABEL]}-other"}
    replaced = built.build("1")
    kept = built.build("1")  # the tag moves to a new image: the first is untagged
    foreign = built.build("other", labels=other)
    built.build("other", labels=other)  # the same for an image of another label

    assert [(i.id, i.tags) for i in built.engine.images(built.labels)] == [
        (kept, (built.name("1"),)),
        (replaced, ()),
    ]
    built.engine.prune_images(built.labels)

    assert [i.id for i in built.engine.images(built.labels)] == [kept]
    assert foreign in [i.id for i in built.engine.images(other)]  # untagged, not pruned
    with pytest.raises(ValueError, match="by label"):
        built.engine.prune_images({})  # never every untagged image of the engine
