"""`Services.images_in_use`: what a registry's clean-up must keep — every revision of every
live service (the active one and those kept for a rollback) and the image each is configured
with; nothing of a deleted service."""

from __future__ import annotations

import pytest

from baepo.control import SpecChange
from tests.control.conftest import World

pytestmark = pytest.mark.anyio

APP_1 = "localhost:5000/team/app:1"
APP_2 = "localhost:5000/team/app:2"


async def test_revisions_kept_for_a_rollback_are_in_use_until_the_service_goes(
    world: World,
) -> None:
    _, made = world.services.create(SpecChange({"name": "app", "image": APP_1}))
    await world.settle(world.done(made.id))
    deployed = world.services.deploy("app", APP_2)
    await world.settle(world.done(deployed.id))
    assert world.status(deployed.id) == "SUCCEEDED"
    pinned = {r.image: r.digest for r in world.services.revisions("app")}
    assert set(pinned) == {APP_1, APP_2} and all(pinned.values())

    in_use = world.services.images_in_use()
    assert (APP_1, pinned[APP_1]) in in_use  # kept for a rollback
    assert (APP_2, pinned[APP_2]) in in_use  # active
    configured = {image for image, digest in in_use if digest is None}
    assert configured == {APP_2}

    gone = world.services.delete("app")
    await world.settle(world.done(gone.id))
    assert world.services.images_in_use() == []


async def test_an_image_a_deploy_in_flight_will_run_is_in_use_before_its_revision_exists(
    world: World,
) -> None:
    _, made = world.services.create(SpecChange({"name": "app", "image": APP_1}))
    await world.settle(world.done(made.id))
    world.services.pause("app")  # holds the deploy below in the queue, not yet a revision
    world.services.deploy("app", APP_2)
    assert APP_2 not in {r.image for r in world.services.revisions("app")}
    assert (APP_2, None) in world.services.images_in_use()
