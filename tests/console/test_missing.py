"""A browser asking for a page nobody serves gets "Not found" as a page; the API, the registry
and the metrics answer an unknown path with their JSON 404 as before, whoever asks."""

from __future__ import annotations

import pytest

from tests.api.rights_world import RightsWorld
from tests.console.visitor import Visitor, text

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def test_a_browser_gets_a_page_signed_in_or_not(world: RightsWorld, alice: Visitor) -> None:
    page = alice.client.get("/no/such/page", headers=BROWSER)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Not found There is no page at this address." in text(page)
    assert "alice Sign out" in text(page)  # the header as on every page
    assert "Content-Security-Policy" in page.headers

    stranger = Visitor(world.client.app).client.get("/no/such/page", headers=BROWSER)
    assert stranger.status_code == 404 and "There is no page at this address." in text(stranger)


@pytest.mark.parametrize(
    "path", ["/api/v1/nothing", "/v2/nothing/x", "/metrics/nothing", "/auth/nothing"]
)
def test_machine_paths_keep_their_json_404(world: RightsWorld, path: str) -> None:
    answer = world.client.get(path, headers=BROWSER)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "NOT_FOUND"


def test_a_client_that_does_not_ask_for_html_gets_json(world: RightsWorld) -> None:
    answer = world.client.get("/no/such/page", headers={"Accept": "application/json"})
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "NOT_FOUND"
    assert world.client.post("/no/such/page", headers=BROWSER).status_code == 404


def test_an_address_with_markup_stays_text(world: RightsWorld, alice: Visitor) -> None:
    page = alice.client.get("/<script>alert(1)</script>", headers=BROWSER)
    assert page.status_code == 404 and "<script>alert" not in page.text
