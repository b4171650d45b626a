"""The services' pages over HTTP: what a person sees and does, and what the API refuses her.

The world is the API over memory fakes (tests/api/rights_world.py): `settle` runs the
reconciler until an operation ends. Each test has services of its own names.
"""

from __future__ import annotations

import re

import httpx
import pytest

from baepo.control import ServiceNotFound
from tests.api.rights_world import REGISTRY, RightsWorld
from tests.console.visitor import Visitor, text

ALICE_APP = f"{REGISTRY}/alice/app"


def create_form(name: str, **fields: str) -> dict[str, str]:
    return {
        "name": name,
        "image": f"{ALICE_APP}:1",
        "port": "8080",
        "size": "0.25/512",
        "min_instances": "1",
        "max_instances": "2",
        "env": "",
        "secrets": "",
        "health_check_protocol": "tcp",
        "health_check_path": "",
        **fields,
    }


def create(world: RightsWorld, visitor: Visitor, name: str, **fields: str) -> None:
    """Create `name` with the form and wait until its operation ended."""
    visitor.get("/new")
    answer = visitor.submit("/new", **create_form(name, **fields))
    assert answer.status_code == 303, text(answer)
    assert answer.headers["location"] == f"/services/{name}"
    settle(world, name)


def settle(world: RightsWorld, name: str) -> None:
    """Run the reconciler until the service's last operation ended."""
    try:
        operation = world.services.operations(name)[0]
    except ServiceNotFound:
        return
    world.settle(operation.id)


def error_of(page: httpx.Response, field: str) -> str:
    """The problem shown beside a form field (its control marked invalid)."""
    found = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page.text)
    assert found, f"no problem beside {field}"
    assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', page.text), field
    return text(httpx.Response(200, text=found.group(1)))


def test_create_from_the_form_and_see_it_running(world: RightsWorld, alice: Visitor) -> None:
    form = alice.get("/new")
    assert 'value="8080"' in form.text  # the port App Runner prefills
    assert 'value="1/2048" selected' in form.text  # the API's default size
    assert f'<option value="{ALICE_APP}:1">' in form.text  # her images in Baepo's registry
    create(world, alice, "made", env="GREETING=hi", max_instances="3")
    page = text(alice.get("/services/made"))
    assert "running" in page and "https://made.localhost" in page
    assert f"{ALICE_APP}:1" in page and "0.25 vCPU · 512 MB" in page
    assert "1 running (min 1, max 3)" in page
    assert "create service succeeded" in page
    assert world.services.describe("made").config["env"] == {"GREETING": "hi"}

    dashboard = text(alice.get("/"))
    row = r"made running https://made\.localhost 1 running \(min 1, max 3\) – succeeded"  # noqa: RUF001 (the page's dash)
    assert re.search(row, dashboard)
    assert "made create service succeeded" in dashboard


def test_the_apis_refusals_show_beside_their_fields(world: RightsWorld, alice: Visitor) -> None:
    alice.get("/new")
    page = alice.submit(
        "/new", **create_form("Bad_Name", port="http", size="4/8192", min_instances="9")
    )
    assert page.status_code == 400
    assert "is not a service name" in error_of(page, "name")
    assert "whole number from 1 to 65535, not 'http'" in error_of(page, "port")
    assert "must not exceed max_instances" in error_of(page, "min_instances")
    assert 'value="http"' in page.text  # what was typed stays, to be corrected
    assert "The service was not created" in text(page)
    assert "Bad_Name" not in [s.name for s in world.services.list()]

    page = alice.submit("/new", **create_form("refused", image=f"{REGISTRY}/bob/app:1"))
    assert page.status_code == 403
    assert "you may not run" in error_of(page, "image")

    page = alice.submit("/new", **create_form("lines", env="A=1\nnot a variable"))
    assert page.status_code == 400
    assert error_of(page, "env") == "line 2 is not NAME=VALUE"
    with pytest.raises(ServiceNotFound):
        world.services.describe("lines")


def test_a_name_taken_shows_beside_the_name(world: RightsWorld, alice: Visitor) -> None:
    create(world, alice, "taken")
    alice.get("/new")
    page = alice.submit("/new", **create_form("taken"))
    assert page.status_code == 409
    assert "taken" in error_of(page, "name")


def test_what_a_user_typed_never_becomes_markup(world: RightsWorld, alice: Visitor) -> None:
    script = "<script>alert(1)</script>"
    alice.get("/new")
    page = alice.submit("/new", **create_form("escaped", image=f'x"{script}'))
    assert page.status_code == 400
    assert script not in page.text and "&lt;script&gt;" in page.text
    create(world, alice, "escaped", env=f"X={script}")
    assert script not in alice.get("/services/escaped").text


def test_deploy_a_new_tag_then_roll_back(world: RightsWorld, alice: Visitor) -> None:
    create(world, alice, "deployed")
    page = alice.get("/services/deployed")
    assert f'<option value="{ALICE_APP}:2">' in page.text  # the repository's other tags
    answer = alice.submit("/services/deployed/deploy", image=f"{ALICE_APP}:2")
    assert answer.status_code == 303 and answer.headers["location"] == "/services/deployed"
    settle(world, "deployed")
    assert world.services.describe("deployed").active_revision == 2
    shown = text(alice.get("/services/deployed"))
    assert "start deployment succeeded" in shown and "Roll back to 1" in shown

    assert alice.submit("/services/deployed/rollback", revision="1").status_code == 303
    settle(world, "deployed")
    service = world.services.describe("deployed")
    assert service.config["image"] == f"{ALICE_APP}:1"
    assert "rollback service succeeded" in text(alice.get("/services/deployed"))


def test_a_refused_deploy_says_why_beside_the_image(world: RightsWorld, alice: Visitor) -> None:
    create(world, alice, "kept")
    alice.get("/services/kept")
    page = alice.submit("/services/kept/deploy", image=f"{REGISTRY}/bob/app:1")
    assert page.status_code == 403
    assert "you may not run" in error_of(page, "image")
    assert world.services.describe("kept").config["image"] == f"{ALICE_APP}:1"


def test_pause_and_delete_ask_first_resume_does_not(world: RightsWorld, alice: Visitor) -> None:
    create(world, alice, "paused")
    confirm = alice.get("/services/paused/pause")
    assert "Pause paused?" in text(confirm) and "until you resume it" in text(confirm)
    assert alice.submit("/services/paused/pause").status_code == 303
    settle(world, "paused")
    assert world.services.describe("paused").status == "PAUSED"
    page = alice.get("/services/paused")
    assert 'action="/services/paused/resume"' in page.text  # a button: nothing to confirm

    assert alice.submit("/services/paused/resume").status_code == 303
    settle(world, "paused")
    assert world.services.describe("paused").status == "RUNNING"

    # The API's refusal, on the service's page.
    alice.get("/services/paused")
    refused = alice.submit("/services/paused/resume")
    assert refused.status_code == 409 and "paused" in text(refused)

    confirm = alice.get("/services/paused/delete")
    assert "Delete paused?" in text(confirm) and "for good" in text(confirm)
    answer = alice.submit("/services/paused/delete")
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    settle(world, "paused")
    assert "/services/paused" not in alice.get("/").text


def test_a_change_without_the_sessions_token_is_refused(world: RightsWorld, alice: Visitor) -> None:
    create(world, alice, "guarded")
    for csrf in ("", "forged"):
        answer = alice.client.post("/services/guarded/pause", data={"csrf": csrf})
        assert answer.status_code == 403
    alice.get("/services/guarded")
    answer = alice.client.post(
        "/services/guarded/pause", data={"csrf": alice.csrf}, headers={"Origin": "http://evil.test"}
    )
    assert answer.status_code == 403
    assert world.services.describe("guarded").status == "RUNNING"


def test_another_user_neither_sees_nor_changes_it(
    world: RightsWorld, alice: Visitor, bob: Visitor
) -> None:
    create(world, alice, "private")
    assert "/services/private" not in bob.get("/").text
    assert "alice/app" not in bob.get("/new").text  # nor her images
    page = bob.get("/services/private")
    assert page.status_code == 404 and "Not found" in text(page)
    assert bob.get("/services/private/delete").status_code == 404
    bob.get("/")
    for path, fields in [
        ("/services/private/pause", {}),
        ("/services/private/delete", {}),
        ("/services/private/deploy", {"image": f"{ALICE_APP}:2"}),
        ("/services/private/rollback", {"revision": "1"}),
    ]:
        answer = bob.submit(path, **fields)
        assert answer.status_code in (403, 404), (path, answer.status_code)
    service = world.services.describe("private")
    assert service.status == "RUNNING" and service.active_revision == 1


def test_the_page_polls_itself_while_an_operation_runs(world: RightsWorld, alice: Visitor) -> None:
    alice.get("/new")
    alice.submit("/new", **create_form("watched"))
    polling = alice.get("/services/watched")
    assert 'hx-trigger="every 2s"' in polling.text
    settle(world, "watched")
    assert 'hx-trigger="every 2s"' not in alice.get("/services/watched").text
