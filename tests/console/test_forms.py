"""The console's forms as the API takes them, and the API's refusals by form field (pure)."""

from __future__ import annotations

import pytest

from baepo.console.errors import ApiRefused
from baepo.console.forms import (
    DEFAULT_SIZE,
    SERVICE_FORM_FIELDS,
    SIZES,
    refused_fields,
    service_request,
    variables,
)
from baepo.console.sessions import Forgery, Session
from baepo.console.signing import local_path

FORM = {
    "name": " app ",
    "image": "localhost:5000/alice/app:1",
    "port": "8080",
    "size": "0.25/512",
    "min_instances": "0",
    "max_instances": "3",
    "env": "A=1\r\n\r\nB = two=2\n",
    "secrets": "TOKEN=s3cret",
    "health_check_protocol": "http",
    "health_check_path": "/healthz",
}


def test_the_create_form_is_the_apis_create_body_as_typed() -> None:
    body, problems = service_request(FORM)
    assert not problems
    assert body == {
        "name": "app",
        "image": "localhost:5000/alice/app:1",
        "port": "8080",  # the API reads the spelling and says what is wrong with it
        "cpu": 0.25,
        "memory": 512,
        "min_instances": "0",
        "max_instances": "3",
        "env": {"A": "1", "B": " two=2"},
        "secrets": {"TOKEN": "s3cret"},
        "health_check": {"protocol": "http", "path": "/healthz"},
    }


def test_what_the_form_itself_cannot_read_is_named_by_field() -> None:
    _, problems = service_request({**FORM, "env": "A=1\nno equals sign", "size": "3/5"})
    assert problems.by_field == {
        "env": "line 2 is not NAME=VALUE",
        "size": "choose one of the sizes",
    }
    assert problems.general == []


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("", {}),
        ("A=", {"A": ""}),
        ("PATH=/bin:/usr/bin\nX=a=b", {"PATH": "/bin:/usr/bin", "X": "a=b"}),
        ("  N =v", {"N": "v"}),
    ],
)
def test_variables_are_one_name_value_a_line(typed: str, read: dict[str, str]) -> None:
    assert variables(typed) == read


@pytest.mark.parametrize("typed", ["novalue", "=value", " =x"])
def test_a_line_without_a_name_is_refused(typed: str) -> None:
    with pytest.raises(ValueError, match="line 1"):
        variables(typed)


def test_the_sizes_are_app_runners_pairs_with_the_apis_default() -> None:
    assert [s.label for s in SIZES][:3] == [
        "0.25 vCPU · 0.5 GB",
        "0.25 vCPU · 1 GB",
        "0.5 vCPU · 1 GB",
    ]
    assert DEFAULT_SIZE in SIZES and DEFAULT_SIZE.value == "1/2048"


@pytest.mark.parametrize(
    ("refused", "by_field", "general"),
    [
        (
            ApiRefused(
                400,
                "INVALID_SERVICE_SPEC",
                "…",
                [("port", "must be a whole number"), ("memory", "not with 1 vCPU")],
            ),
            {"port": "must be a whole number", "size": "not with 1 vCPU"},
            [],
        ),
        (
            ApiRefused(422, "INVALID_REQUEST", "…", [("health_check.path", "a string")]),
            {"health_check": "a string"},
            [],
        ),
        (
            ApiRefused(400, "INVALID_SERVICE_SPEC", "…", [("owner", "not yours")]),
            {},
            ["owner: not yours"],
        ),
        (ApiRefused(409, "SERVICE_EXISTS", "app exists"), {"name": "app exists"}, []),
        (ApiRefused(403, "IMAGE_FORBIDDEN", "not yours"), {"image": "not yours"}, []),
        (ApiRefused(403, "QUOTA_EXCEEDED", "too many"), {}, ["too many"]),
    ],
)
def test_a_refusal_goes_beside_the_field_it_names(
    refused: ApiRefused, by_field: dict[str, str], general: list[str]
) -> None:
    problems = refused_fields(refused, SERVICE_FORM_FIELDS)
    assert problems.by_field == by_field and problems.general == general


@pytest.mark.parametrize(
    ("target", "went"),
    [
        ("/services/app", "/services/app"),
        ("/new?x=1", "/new?x=1"),
        ("", "/"),
        (None, "/"),
        ("//evil.test", "/"),
        ("/\\evil.test", "/"),
        ("https://evil.test/", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_after_signing_in_only_a_path_of_this_site(target: str | None, went: str) -> None:
    assert local_path(target) == went


@pytest.mark.parametrize(
    ("value", "session"),
    [
        ("bp_1_x.console-2026", Session("bp_1_x", "console-2026")),
        ("bp_1_x.cli-2026", None),  # not a console token: its name is not the console's
        ("bp_1_x", None),
        (".console-1", None),
        ("", None),
    ],
)
def test_a_session_cookie_is_a_token_and_its_name(value: str, session: Session | None) -> None:
    assert Session.parse(value) == session


def test_a_csrf_token_is_good_for_its_binding_only() -> None:
    forgery = Forgery(b"k" * 32)
    token = forgery.token("session-a")
    assert forgery.valid("session-a", token)
    assert not forgery.valid("session-b", token)
    assert not forgery.valid(None, token)
    assert not forgery.valid("session-a", "")
    assert not Forgery(b"j" * 32).valid("session-a", token)
