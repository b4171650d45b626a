"""Asking a registry for a tag's digest: what a registry answers must not turn Baepo into a
probe of its own network (hermetic: httpx's mock transport stands in for registries)."""

from __future__ import annotations

import httpx
import pytest

from baepo.runtime.distribution import Unreachable, _authorization, _internal, resolve


@pytest.mark.parametrize(
    ("host", "inside"),
    [
        ("127.0.0.1:5000", True),
        ("localhost:5000", True),
        ("registry.localhost", True),
        ("10.1.2.3", True),
        ("169.254.169.254", True),
        ("[::1]:5000", True),
        ("::1", True),
        ("8.8.8.8", False),
        ("[2001:4860:4860::8888]:443", False),
    ],
)
def test_which_hosts_are_inside(host: str, inside: bool) -> None:
    assert _internal(host) is inside


def challenge(realm: str) -> httpx.Response:
    return httpx.Response(
        401,
        headers={"WWW-Authenticate": f'Bearer realm="{realm}",service="x",scope="y"'},
        request=httpx.Request("HEAD", "https://8.8.8.8/v2/x/manifests/1"),
    )


def test_a_public_registrys_realm_may_not_point_inside() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(200, json={"token": "t"})

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        for realm in ("http://127.0.0.1:2375/containers/json", "http://169.254.169.254/latest"):
            with pytest.raises(Unreachable, match="inside"):
                _authorization(client, challenge(realm), "x", None, "8.8.8.8/x:1", inside=False)
        header = _authorization(
            client, challenge("http://127.0.0.1:5000/auth/token"), "x", None, "r", inside=True
        )
    assert header == "Bearer t"  # Baepo's own registry on loopback names a loopback realm
    assert asked == ["http://127.0.0.1:5000/auth/token?service=x&scope=y"]


def test_a_realm_that_answers_no_object_is_no_crash() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=["not", "an", "object"])

    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as client,
        pytest.raises(Unreachable, match="not an object"),
    ):
        _authorization(client, challenge("http://127.0.0.1:1/t"), "x", None, "r", inside=True)


def test_an_unreachable_registry_is_unreachable() -> None:
    with pytest.raises(Unreachable):
        resolve("127.0.0.1:9/nothing:1", None, timeout_s=2)
