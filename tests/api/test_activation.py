"""The activator's internal endpoint: only the router's secret opens it; a notice is cheap."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.testclient import TestClient

from baepo.api.activation import activation_routes
from baepo.router import ACTIVATE_PATH

SECRET = "the-activator-secret"


def client(activated: list[str]) -> TestClient:
    return TestClient(Starlette(routes=activation_routes(SECRET, activated.append)))


def test_a_notice_with_the_secret_activates_the_service() -> None:
    activated: list[str] = []
    response = client(activated).post(
        f"{ACTIVATE_PATH}?service=app", headers={"Authorization": f"Bearer {SECRET}"}
    )
    assert response.status_code == 204
    assert activated == ["app"]


def test_without_the_secret_nothing_happens() -> None:
    activated: list[str] = []
    c = client(activated)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": SECRET}):
        response = c.post(f"{ACTIVATE_PATH}?service=app", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "UNAUTHORIZED"
    assert activated == []


def test_a_notice_names_a_service() -> None:
    activated: list[str] = []
    auth = {"Authorization": f"Bearer {SECRET}"}
    c = client(activated)
    assert c.post(ACTIVATE_PATH, headers=auth).status_code == 400
    assert c.post(f"{ACTIVATE_PATH}?service={'x' * 101}", headers=auth).status_code == 400
    assert c.get(f"{ACTIVATE_PATH}?service=app", headers=auth).status_code == 405
    assert activated == []
