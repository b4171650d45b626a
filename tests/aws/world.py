"""A world for the AWS endpoint's tests: a real Auth and access keys on SQLite, a registry,
the endpoint (with the services a test gives) served by a real uvicorn on a loopback port, and
botocore clients signed with Baepo's access keys, whose every answer is checked against
botocore's model (model.py).

The world's clock is a FakeClock set to the real time: botocore signs with the real time, and
a test moves Baepo's clock to see what a skewed one does.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.session  # type: ignore[import-untyped]  # botocore ships no type information
import httpx
import pytest
import uvicorn
from botocore.auth import SigV4Auth  # type: ignore[import-untyped]  # no type information
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]  # no type information
from botocore.config import Config  # type: ignore[import-untyped]  # no type information
from botocore.credentials import Credentials  # type: ignore[import-untyped]  # no types
from botocore.exceptions import ClientError  # type: ignore[import-untyped]  # no type information
from starlette.responses import PlainTextResponse

from baepo.api.app import Dispatcher
from baepo.auth import AccessKeys, Auth
from baepo.aws import AwsEndpoint, JsonService
from baepo.clock import FakeClock
from baepo.control import SecretBox
from baepo.events import EventBus
from baepo.registry import Registry, create_app
from baepo.schema import schema
from baepo.storage import MemoryDriver
from baepo.store import Database
from tests.aws.model import check_answer
from tests.registry.content import Blob, Image, manifest, random_config, random_layer

ACCOUNT = "123456789012"
REGION = "us-east-1"
PASSWORDS = {"admin": "admin-password", "alice": "alice-password", "bob": "bob-password"}


def code_of(call: Any, **params: Any) -> str:
    """The error code botocore reports for `call(**params)` (which must fail)."""
    with pytest.raises(ClientError) as refused:
        call(**params)
    return str(refused.value.response["Error"]["Code"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def not_aws(scope: Any, receive: Any, send: Any) -> None:
    """What answers beside the AWS endpoint (the API, the console): says so."""
    await PlainTextResponse("not aws", 404)(scope, receive, send)


@dataclass
class AwsWorld:
    db: Database
    clock: FakeClock
    auth: Auth
    keys: AccessKeys
    registry: Registry
    endpoint: AwsEndpoint
    url: str

    def key(self, user: str, token: str = "aws", **limits: tuple[str, ...]) -> tuple[str, str]:
        """An access key (id, secret) of the user's token `token`, made with `limits` if new."""
        if token not in {t.name for t in self.auth.tokens(user)}:
            self.auth.create_token(user, token, **limits)
        made = self.keys.create(user, token)
        assert made.secret is not None
        return made.key_id, made.secret

    def client(self, service: str, key: tuple[str, str] | None, *, signed: bool = True) -> Any:
        """A botocore client for `service` at Baepo, signing with `key` (none: unsigned),
        not retrying, its answers checked against botocore's model."""
        session = botocore.session.get_session()
        config = Config(
            retries={"mode": "standard", "total_max_attempts": 1},
            signature_version="v4" if signed else botocore.UNSIGNED,
        )
        key_id, secret = key or ("unused", "unused")
        client = session.create_client(
            service,
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=config,
        )
        client.meta.events.register("after-call", check_answer)
        return client

    def registry_client(self, user: str) -> httpx.Client:
        """The registry's HTTP API (`/v2`), signed in as `user` with a password."""
        return httpx.Client(base_url=self.url, auth=(user, PASSWORDS[user]), timeout=30)

    def raw(self, key: tuple[str, str], service: str, target: str, body: bytes) -> httpx.Response:
        """A request botocore's own signer signs but botocore would never send (bad JSON,
        input of the wrong type), answered."""
        json_version = "1.0" if service == "apprunner" else "1.1"
        request = AWSRequest(
            method="POST",
            url=self.url + "/",
            data=body,
            headers={
                "X-Amz-Target": target,
                "Content-Type": f"application/x-amz-json-{json_version}",
            },
        )
        SigV4Auth(Credentials(*key), service, REGION).add_auth(request)
        prepared = request.prepare()
        return httpx.post(prepared.url, content=body, headers=dict(prepared.headers))


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """`app` on a real uvicorn at a loopback port, for the block: its URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass(frozen=True)
class Rooms:
    """What a test's AWS services are built over: one database (the whole schema), the
    world's clock, its users (admin, alice, bob) and its registry."""

    db: Database
    clock: FakeClock
    auth: Auth
    registry: Registry


@contextmanager
def aws_world(
    tmp_path: Path, services: Callable[[Rooms], Iterable[JsonService]]
) -> Iterator[AwsWorld]:
    """The world, with the endpoint serving what `services` builds over its rooms."""
    clock = FakeClock(datetime.now(UTC))
    db = Database(f"sqlite:///{tmp_path / 'baepo.db'}")
    db.migrate(schema())
    auth = Auth(db, b"k" * 32, clock)
    auth.ensure_admin(PASSWORDS["admin"])
    auth.create_user("alice", PASSWORDS["alice"])
    auth.create_user("bob", PASSWORDS["bob"])
    keys = AccessKeys(db, SecretBox(SecretBox.generate_key()), clock)
    registry = Registry(db=db, driver=MemoryDriver(), bus=EventBus(), clock=clock)
    endpoint = AwsEndpoint(services(Rooms(db, clock, auth, registry)), keys, clock, ACCOUNT)
    app = Dispatcher(create_app(registry, auth), not_aws, endpoint)
    with serving(app) as url:
        yield AwsWorld(db, clock, auth, keys, registry, endpoint, url)
    db.dispose()


def push(world: AwsWorld, repository: str, *tags: str) -> Image:
    """A new image pushed to `repository` as its owner (the namespace's user), under each of
    `tags` (none: by digest only)."""
    owner = repository.split("/")[0]
    config, layer = random_config(), random_layer()
    doc = manifest(config, [layer])
    with world.registry_client(owner) as client:
        for blob in (config, layer):
            _push_blob(client, repository, blob)
        for reference in tags or (doc.digest,):
            answer = client.put(
                f"/v2/{repository}/manifests/{reference}",
                content=doc.data,
                headers={"Content-Type": doc.media_type},
            )
            assert answer.status_code == 201, answer.text
    return Image(config, [layer], doc)


def _push_blob(client: httpx.Client, repository: str, blob: Blob) -> None:
    answer = client.post(
        f"/v2/{repository}/blobs/uploads/", params={"digest": blob.digest}, content=blob.data
    )
    assert answer.status_code == 201, answer.text
