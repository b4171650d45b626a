"""A flood of wrong passwords costs the flooder: after a few failures an address (and an
account) gets 429 with Retry-After before any password hashing, on every door that takes a
password (registry Basic auth, the token endpoint, the API's login), while another client
with the right password is served."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, BaepoProcess, running

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def baepo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaepoProcess]:
    with running(tmp_path_factory.mktemp("flood") / "data") as server:
        yield server


def from_address(address: str, base_url: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=base_url, transport=transport, timeout=60)


def test_a_flood_of_wrong_basic_passwords_is_throttled_and_others_are_served(
    baepo: BaepoProcess,
) -> None:
    statuses: Counter[int] = Counter()
    retry_after: set[str] = set()
    with from_address("127.0.0.9", baepo.url) as attacker:

        def guess(n: int) -> None:
            r = attacker.get("/v2/", auth=(f"victim{n % 5}", f"guess-{n}"))
            statuses[r.status_code] += 1
            if r.status_code == 429:
                retry_after.add(r.headers.get("retry-after", ""))
                assert r.json()["errors"][0]["code"] == "TOOMANYREQUESTS"

        with ThreadPoolExecutor(32) as pool:
            list(pool.map(guess, range(500)))
    assert set(statuses) <= {401, 429}
    assert statuses[429] >= 400, statuses  # about ten guesses, then refusals
    assert retry_after and all(v.isdigit() and int(v) >= 1 for v in retry_after)
    with from_address("127.0.0.10", baepo.url) as someone:
        assert someone.get("/v2/", auth=("admin", ADMIN_PASSWORD)).status_code == 200


def test_the_token_endpoint_and_the_login_are_throttled_too(baepo: BaepoProcess) -> None:
    with from_address("127.0.0.11", baepo.url) as attacker:
        basic = "Basic " + base64.b64encode(b"nobody:wrong").decode()
        token = [
            attacker.get(
                "/auth/token", params={"service": "baepo"}, headers={"Authorization": basic}
            )
            for _ in range(15)
        ]
        assert [r.status_code for r in token][:10] == [401] * 10
        assert token[-1].status_code == 429 and int(token[-1].headers["retry-after"]) >= 1
    with from_address("127.0.0.12", baepo.url) as attacker:
        login = [
            attacker.post("/api/v1/login", json={"username": "nobody2", "password": "wrong"})
            for _ in range(15)
        ]
        assert [r.status_code for r in login][:10] == [401] * 10
        assert login[-1].status_code == 429
        assert login[-1].json()["error"]["code"] == "TOO_MANY_ATTEMPTS"
        assert int(login[-1].headers["retry-after"]) >= 1
