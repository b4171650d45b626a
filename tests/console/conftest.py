"""An in-process Baepo (the API over memory fakes, tests/api/rights_world.py) with the console's
routes, and people signed in to it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import pytest
from fastapi.testclient import TestClient

from baepo.console import console_routes
from baepo.registry import create_app
from tests.api.rights_world import PASSWORDS, REGISTRY, RightsWorld, build
from tests.console.visitor import Visitor
from tests.registry.conftest import AllowAll
from tests.registry.content import push_image

KEY = b"console-test-key" * 2


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RightsWorld]:
    """The world, with alice/app:1 and :2 pushed to its registry (the engine has them too)."""
    routes = console_routes(KEY, (REGISTRY, "127.0.0.1:5000"))
    for world in build(tmp_path_factory.mktemp("console"), routes):
        with TestClient(create_app(world.registry, AllowAll())) as registry:
            for tag in ("1", "2"):
                push_image(registry, "alice/app", tag)
        yield world


class Served(Protocol):
    """A world whose app has the console's routes."""

    client: TestClient


def signed_in(world: Served, user: str) -> Visitor:
    visitor = Visitor(world.client.app)
    answer = visitor.sign_in(user, PASSWORDS[user])
    assert answer.status_code == 303, answer.text
    return visitor


@pytest.fixture
def alice(world: RightsWorld) -> Visitor:
    return signed_in(world, "alice")


@pytest.fixture
def bob(world: RightsWorld) -> Visitor:
    return signed_in(world, "bob")
