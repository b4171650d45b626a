"""A service's configuration changed from the console (the edit form, custom domains), and
its charts, over HTTP against the API's in-process world. Each test has services of its own
names."""

from __future__ import annotations

import re

from baepo.metrics import Sample
from tests.api.rights_world import RightsWorld
from tests.console.test_service_pages import ALICE_APP, create, error_of, settle
from tests.console.visitor import Visitor, text


def edit_form(visitor: Visitor, name: str) -> dict[str, str]:
    """The edit form's fields as the page fills them in."""
    page = visitor.get(f"/services/{name}/configuration")
    assert page.status_code == 200, text(page)
    found = dict(re.findall(r'<input id="(\w+)" name="\w+" value="([^"]*)"', page.text))
    found |= dict(re.findall(r'<textarea id="(\w+)"[^>]*>([^<]*)</textarea>', page.text))
    found["size"] = re.findall(r'<option value="([^"]+)" selected>', page.text)[0]
    protocol = re.search(r'<option value="(tcp|http)" selected>', page.text)
    assert protocol
    found["health_check_protocol"] = protocol.group(1)
    return {k: v for k, v in found.items() if k not in ("domain",)}


def test_the_form_shows_the_configuration_and_saves_what_changed(
    world: RightsWorld, alice: Visitor
) -> None:
    create(world, alice, "edited", env="GREETING=hi", secrets="TOKEN=s3cret", max_instances="3")
    form = edit_form(alice, "edited")
    assert form["image"] == f"{ALICE_APP}:1" and form["port"] == "8080"
    assert form["size"] == "0.25/512" and form["max_instances"] == "3"
    assert form["env"] == "GREETING=hi\n"
    assert form["secrets"] == "TOKEN=********\n"  # masked: sent back, it keeps its value

    # A browser sends a text area's lines with CRLF: the same variables, no change.
    form |= {"env": "GREETING=hello\r\nPLACE=world\r\n", "min_instances": "2"}
    answer = alice.submit("/services/edited/configuration", **form)
    assert answer.status_code == 303 and answer.headers["location"] == "/services/edited"
    settle(world, "edited")
    service = world.services.describe("edited")
    assert service.config["env"] == {"GREETING": "hello", "PLACE": "world"}
    assert service.config["min_instances"] == 2 and service.config["max_instances"] == 3
    assert world.services.secrets("edited") == {"TOKEN": "s3cret"}
    assert service.active_revision == 2
    assert "update service succeeded" in text(alice.get("/services/edited"))

    # Saved again as shown: nothing to change, no operation.
    operations = len(world.services.operations("edited"))
    assert (
        alice.submit("/services/edited/configuration", **edit_form(alice, "edited")).status_code
        == 303
    )
    assert len(world.services.operations("edited")) == operations


def test_refusals_show_beside_their_fields_and_change_nothing(
    world: RightsWorld, alice: Visitor
) -> None:
    create(world, alice, "strict")
    form = edit_form(alice, "strict")
    page = alice.submit(
        "/services/strict/configuration", **(form | {"port": "http", "min_instances": "30"})
    )
    assert page.status_code == 400
    assert "not 'http'" in error_of(page, "port")
    assert error_of(page, "min_instances")
    assert 'value="http"' in page.text  # what was typed stays, to be corrected
    assert "The configuration was not changed" in text(page)

    page = alice.submit("/services/strict/configuration", **(form | {"secrets": "no equals"}))
    assert page.status_code == 400 and error_of(page, "secrets") == "line 1 is not NAME=VALUE"

    page = alice.submit(
        "/services/strict/configuration", **(form | {"image": "localhost:5000/bob/app:1"})
    )
    assert page.status_code == 403 and "you may not run" in error_of(page, "image")
    assert world.services.describe("strict").active_revision == 1
    assert len(world.services.operations("strict")) == 1


def test_typed_markup_stays_text(world: RightsWorld, alice: Visitor) -> None:
    script = "<script>alert(1)</script>"
    create(world, alice, "inert")
    form = edit_form(alice, "inert")
    page = alice.submit(
        "/services/inert/configuration", **(form | {"image": f'x"{script}', "env": f"X={script}"})
    )
    assert page.status_code == 400
    assert script not in page.text and "&lt;script&gt;" in page.text
    answer = alice.submit("/services/inert/configuration", **(form | {"env": f"X={script}"}))
    assert answer.status_code == 303
    settle(world, "inert")
    assert script not in alice.get("/services/inert/configuration").text
    alice.get("/services/inert")
    page = alice.submit("/services/inert/domains", domain=f'"{script}')
    assert page.status_code == 400 and script not in page.text
    assert f"{script}' is not a host name" in error_of(page, "domain")  # as text, escaped


def test_custom_domains_are_added_and_removed(world: RightsWorld, alice: Visitor) -> None:
    create(world, alice, "domains")
    page = alice.get("/services/domains")
    assert "None: the service answers at its own URL only." in text(page)
    assert "CNAME record) at domains.localhost" in text(page)

    answer = alice.submit("/services/domains/domains", domain="WWW.Example.com ")
    assert answer.status_code == 303
    settle(world, "domains")
    assert world.services.describe("domains").config["custom_domains"] == ["www.example.com"]
    shown = text(alice.get("/services/domains"))
    assert "https://www.example.com active" in shown and "Remove www.example.com" in shown

    page = alice.submit("/services/domains/domains", domain="app.localhost")
    assert page.status_code == 400 and "where service names live" in error_of(page, "domain")
    assert 'value="app.localhost"' in page.text
    page = alice.submit("/services/domains/domains", domain="")
    assert page.status_code == 400 and error_of(page, "domain") == "type a host name"

    alice.get("/services/domains")
    assert (
        alice.submit("/services/domains/domains/remove", domain="www.example.com").status_code
        == 303
    )
    settle(world, "domains")
    assert world.services.describe("domains").config["custom_domains"] == []


def test_another_user_cannot_edit_it(world: RightsWorld, alice: Visitor, bob: Visitor) -> None:
    create(world, alice, "guarded-config")
    assert bob.get("/services/guarded-config/configuration").status_code == 404
    bob.get("/")
    for path, fields in [
        ("/services/guarded-config/configuration", {"port": "9090"}),
        ("/services/guarded-config/domains", {"domain": "bob.example.com"}),
        ("/services/guarded-config/domains/remove", {"domain": "x.example.com"}),
    ]:
        assert bob.submit(path, **fields).status_code == 404, path
    assert world.services.describe("guarded-config").config["port"] == 8080


def test_charts_draw_the_metrics_and_say_them_in_words(world: RightsWorld, alice: Visitor) -> None:
    create(world, alice, "charted")
    for arrived, errors in ((120, 0), (600, 6), (300, 3)):
        world.metrics.record_samples(
            [Sample("charted", 1, 0, arrived, arrived - errors, errors, 0, instances=2)]
        )
        world.clock.advance(60)
    world.metrics.record_samples([Sample("charted", 0, 0, 0, 0, 0, 0, instances=2)])
    page = alice.get("/services/charted")
    charts = re.findall(r'<svg viewBox="0 0 600 160"[^>]*aria-label="([^"]*)"', page.text)
    assert len(charts) == 3  # requests, errors, instances (no latency was measured)
    assert "Requests (per minute). requests: latest 0, highest 600." in charts
    assert "Errors (per minute). 4xx: latest 0, highest 6; 5xx: latest 0, highest 0." in charts
    assert "Latency ms p50 p95 p99 Nothing measured yet." in text(page)
    assert re.search(r'<path class="series series-1" d="M0\.0,[\d.]+ L', page.text)
    assert "Last 6h" in page.text and alice.get("/services/charted?window=6h").status_code == 200
    assert alice.get("/services/charted?window=bogus").status_code == 200

    # The dashboard's requests/s: the last complete minute's 300 requests over 60 s.
    row = re.search(r"charted running \S+ 1 running \(min 1, max 2\) (\S+)", text(alice.get("/")))
    assert row and row.group(1) == "5"
