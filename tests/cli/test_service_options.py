"""`baepo services create|update` options: made from the field table, sent as the API's fields."""

from __future__ import annotations

import inspect

from baepo.cli.services import _body, create, update
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
