"""`baepo services create|update` options: made from the field table, sent as the API's fields."""

from __future__ import annotations

import inspect

import pytest

from baepo.cli.client import CliError
from baepo.cli.services import _body, create, operation_named, update
from baepo.service_fields import FIELD_NAMES


def test_options_become_the_apis_fields() -> None:
    body = _body(
        {
            "image": "localhost:5000/team/app:1",
            "env": ["A=1", "B=x=y"],
            "secret": ["TOKEN=t"],
            "health_check_path": "/healthz",
            "domain": ["www.example.com"],
            "auto_deploy": False,
            "port": None,
        }
    )
    assert body == {
        "image": "localhost:5000/team/app:1",
        "env": {"A": "1", "B": "x=y"},
        "secrets": {"TOKEN": "t"},
        "health_check": {"protocol": "http", "path": "/healthz"},
        "auto_deploy": False,
        "custom_domains": ["www.example.com"],
    }
    assert set(body) <= set(FIELD_NAMES)


def test_create_and_update_have_the_same_field_options() -> None:
    def options(command: object) -> list[str]:
        names = list(inspect.signature(command).parameters)  # type: ignore[arg-type]
        return [n for n in names if n not in ("name", "owner", "wait", "as_json")]

    assert options(create) == options(update)
    assert options(create)[:3] == ["image", "port", "command"]
    assert {"env", "secret", "health_check", "health_check_path", "domain"} <= set(options(create))


def test_an_id_prefix_names_one_operation() -> None:
    ids = ["3f2a01", "3f2b02", "9c0d03"]
    assert operation_named("9", ids, "app") == "9c0d03"
    assert operation_named("3f2a01", ids, "app") == "3f2a01"
    with pytest.raises(CliError) as ambiguous:
        operation_named("3f", ids, "app")
    assert str(ambiguous.value) == "'3f' names 2 operations of app: 3f2a01, 3f2b02"
    with pytest.raises(CliError, match="no operation of app starts with '7'"):
        operation_named("7", ids, "app")
