"""Table tests of service spec validation: defaults, accepted spellings, one error per bad field."""

from __future__ import annotations

from typing import Any

import pytest

from baepo.control import (
    MASK,
    HealthCheck,
    InvalidServiceSpec,
    RegistryLink,
    SpecChange,
    apply_changes,
    validate_spec,
)
from baepo.control.images import ImageName
from baepo.control.spec import Protocol

REGISTRY = RegistryLink.of(["localhost:5000", "127.0.0.1:5000"])
BASE = {"name": "app", "image": "localhost:5000/team/app:1"}


def test_defaults_are_app_runners() -> None:
    spec = validate_spec({"name": "web-app", "image": "localhost:5000/team/app:1"}, REGISTRY)
    assert spec.port == 8080
    assert (spec.cpu, spec.memory_mb) == (1.0, 2048)
    assert spec.health_check == HealthCheck(Protocol.TCP, "/", 5, 2, 1, 5)
    assert (spec.min_instances, spec.max_instances, spec.max_concurrency) == (1, 25, 100)
    assert spec.command is None and spec.env == {} and spec.custom_domains == ()


@pytest.mark.parametrize(
    ("image", "auto_deploy"),
    [
        ("localhost:5000/team/app:1", True),
        ("127.0.0.1:5000/team/app", True),
        ("LOCALHOST:5000/team/app:1", True),
        ("registry.example.com/team/app:1", False),
        ("busybox", False),
        ("localhost:5001/team/app:1", False),
    ],
)
def test_auto_deploy_defaults_to_on_for_images_in_baepos_registry(
    image: str, auto_deploy: bool
) -> None:
    assert validate_spec({"name": "app1", "image": image}, REGISTRY).auto_deploy is auto_deploy


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"cpu": 0.25, "memory": 512}, (0.25, 512)),
        ({"cpu": "0.25 vCPU", "memory": "1 GB"}, (0.25, 1024)),
        ({"cpu": 512, "memory": "1024"}, (0.5, 1024)),
        ({"cpu": "2", "memory": 6}, (2.0, 6144)),
        ({"cpu": 4, "memory": "12 GB"}, (4.0, 12288)),
        ({"cpu": 1, "memory": "3072 MB"}, (1.0, 3072)),
    ],
)
def test_cpu_and_memory_spellings(fields: dict[str, Any], expected: tuple[float, int]) -> None:
    spec = validate_spec({**BASE, "name": "sized", **fields})
    assert (spec.cpu, spec.memory_mb) == expected


def test_everything_set() -> None:
    spec = validate_spec(
        {
            **BASE,
            "port": "3000",
            "command": "serve --port 3000 'a b'",
            "env": {"MODE": "prod"},
            "secrets": {"DB_PASSWORD": "hunter2"},
            "health_check": {"protocol": "HTTP", "path": "/healthz", "interval": 10},
            "min_instances": 2,
            "max_instances": 4,
            "max_concurrency": 50,
            "auto_deploy": False,
            "custom_domains": ["WWW.Example.com.", "www.example.com", "api.example.com"],
        }
    )
    assert spec.port == 3000
    assert spec.command == ("serve", "--port", "3000", "a b")
    assert spec.health_check.protocol is Protocol.HTTP
    assert spec.health_check.path == "/healthz"
    assert spec.health_check.interval_s == 10 and spec.health_check.timeout_s == 2
    assert spec.custom_domains == ("www.example.com", "api.example.com")
    assert spec.auto_deploy is False


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"name": "ab"}, "name", "3 to 40"),
        ({"name": "App"}, "name", "lowercase"),
        ({"name": "1app"}, "name", "lowercase letter first"),
        ({"name": "app-"}, "name", "not ending"),
        ({"name": "a" * 41}, "name", "3 to 40"),
        ({"image": ""}, "image", "required"),
        ({"image": "Team/App"}, "image", "not a repository name"),
        ({"image": "app:bad tag"}, "image", "spaces"),
        ({"image": "app@sha256:xyz"}, "image", "digest"),
        ({"image": "app:vé1"}, "image", "'vé1' is not a valid tag"),
        ({"port": 0}, "port", "1 to 65535"),
        ({"port": "http"}, "port", "whole number"),
        ({"command": "serve 'unclosed"}, "command", "split"),
        ({"command": 5}, "command", "string or a list"),
        ({"env": {"1BAD": "x"}}, "env", "not a variable name"),
        ({"env": {"N": 1}}, "env", "must be a string"),
        ({"env": ["A=1"]}, "env", "object"),
        ({"secrets": {"TOKEN": ""}}, "secrets", "must not be empty"),
        ({"env": {"TOKEN": "a"}, "secrets": {"TOKEN": "b"}}, "secrets", "also set in env"),
        ({"cpu": 3}, "cpu", "0.25, 0.5, 1, 2, 4"),
        ({"cpu": 0.25, "memory": 2048}, "memory", "0.5 GB, 1 GB"),
        ({"memory": "lots"}, "memory", "'lots' is not a memory size"),
        ({"health_check": {"protocol": "udp"}}, "health_check.protocol", "tcp or http"),
        ({"health_check": {"path": "healthz"}}, "health_check.path", "starting with '/'"),
        ({"health_check": {"interval": 21}}, "health_check.interval", "1 to 20"),
        ({"health_check": {"interval": 2, "timeout": 5}}, "health_check.timeout", "interval"),
        ({"health_check": {"retries": 3}}, "health_check.retries", "unknown"),
        ({"min_instances": -1}, "min_instances", "0 to 25"),
        ({"max_instances": 26}, "max_instances", "1 to 25"),
        ({"min_instances": 5, "max_instances": 2}, "min_instances", "must not exceed"),
        ({"max_concurrency": 201}, "max_concurrency", "1 to 200"),
        ({"auto_deploy": "yes"}, "auto_deploy", "true or false"),
        (
            {"custom_domains": ["a.example.com"] * 1 + [f"d{i}.example.com" for i in range(5)]},
            "custom_domains",
            "at most 5",
        ),
        ({"custom_domains": ["-bad-.example.com"]}, "custom_domains", "not a host name"),
        ({"custom_domains": "example.com"}, "custom_domains", "list"),
        ({"replicas": 3}, "replicas", "unknown field"),
        # Hostile sizes and bytes (issue 8): each once hung runc or the engine, or was stored.
        ({"port": True}, "port", "whole number"),
        ({"command": "x" * 100_000}, "command", "at most 8192 bytes"),
        ({"command": ["x" * 5000, "y" * 5000]}, "command", "at most 8192 bytes"),
        ({"command": ["a"] * 257}, "command", "at most 256 words"),
        ({"command": ["serve", "a\0b"]}, "command", "NUL"),
        ({"env": {"A": "x\0y"}}, "env", "NUL"),
        ({"secrets": {"A": "x\0y"}}, "secrets", "NUL"),
        ({"env": {"BIG": "x" * 1_000_000}}, "env", "at most 32768 bytes"),
        ({"env": {f"V{i}": "x" for i in range(10_000)}}, "env", "at most 256 variables"),
        ({"env": {f"V{i}": "x" * 30_000 for i in range(5)}}, "env", "131072 bytes in all"),
        ({"env": {"A" * 300: "x"}}, "env", "not a variable name"),
        ({"health_check": {"path": "/" + "a" * 2000}}, "health_check.path", "1024 bytes"),
        ({"health_check": {"path": "/a\rb"}}, "health_check.path", "printable"),
        ({"health_check": {"path": "/a\0b"}}, "health_check.path", "printable"),
    ],
)
def test_a_bad_field_is_named_with_its_reason(
    fields: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(InvalidServiceSpec) as caught:
        validate_spec({**BASE, **fields})
    assert caught.value.field == field
    assert says in str(caught.value)


def test_every_bad_field_is_reported_at_once() -> None:
    with pytest.raises(InvalidServiceSpec) as caught:
        validate_spec({"name": "X", "image": "", "port": -1, "cpu": 3})
    assert [f for f, _ in caught.value.problems] == ["name", "image", "port", "cpu"]


def test_a_spec_that_is_not_an_object() -> None:
    with pytest.raises(InvalidServiceSpec) as caught:
        validate_spec(["app"])  # type: ignore[arg-type]
    assert caught.value.field == "spec"


def test_secrets_are_masked_for_people() -> None:
    spec = validate_spec({**BASE, "secrets": {"DB_PASSWORD": "hunter2"}})
    masked = spec.masked()
    assert masked["secrets"] == {"DB_PASSWORD": MASK}
    assert "hunter2" not in repr(masked)


def test_a_document_round_trips_with_sealed_secrets() -> None:
    spec = validate_spec({**BASE, "secrets": {"K": "v"}, "command": ["a", "b"]})
    sealed = spec.to_document(lambda v: v[::-1] + "!")
    assert sealed["secrets"] == {"K": "v!"}
    assert type(spec).from_document(sealed, lambda v: v[:-1][::-1]) == spec


def test_changes_merge_into_the_spec() -> None:
    spec = validate_spec(
        {**BASE, "secrets": {"A": "1", "B": "2"}, "health_check": {"protocol": "http"}}
    )
    changed = apply_changes(
        spec,
        {"port": 9000, "secrets": {"A": MASK, "C": "3"}, "health_check": {"path": "/hz"}},
    )
    assert changed.port == 9000
    assert changed.secrets == {"A": "1", "C": "3"}  # masked kept, B removed, C added
    assert changed.health_check.protocol is Protocol.HTTP and changed.health_check.path == "/hz"
    assert not changed.same_revision(spec)
    assert apply_changes(spec, {"max_concurrency": 5}).same_revision(spec)


def test_a_service_cannot_be_renamed() -> None:
    spec = validate_spec(BASE)
    with pytest.raises(InvalidServiceSpec) as caught:
        apply_changes(spec, {"name": "other"})
    assert caught.value.field == "name"


def test_auto_deploy_follows_a_new_image_unless_set() -> None:
    spec = validate_spec(BASE, REGISTRY)
    assert spec.auto_deploy
    assert not apply_changes(spec, {"image": "nginx:1"}, REGISTRY).auto_deploy
    assert apply_changes(spec, {"image": "nginx:1", "auto_deploy": True}, REGISTRY).auto_deploy


def test_a_push_moves_the_tag_a_service_tracks() -> None:
    image = ImageName.parse("localhost:5000/team/app:1")
    assert REGISTRY.tracks(image, "team/app", "1")
    assert not REGISTRY.tracks(image, "team/app", "2")
    assert not REGISTRY.tracks(image, "team/other", "1")
    assert not REGISTRY.tracks(image, "team/app", None)
    assert REGISTRY.tracks(ImageName.parse("localhost:5000/team/app"), "team/app", "latest")
    assert not REGISTRY.tracks(ImageName.parse("example.com/team/app:1"), "team/app", "1")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "app\n"),
        ("env", {"A\n": "x"}),
        ("custom_domains", ["x\n.example.com"]),
        ("image", "team/app:1\n"),
    ],
)
def test_a_trailing_newline_is_never_valid(field: str, value: object) -> None:
    raw = {"name": "app", "image": "team/app:1", field: value}
    with pytest.raises(InvalidServiceSpec):
        validate_spec(raw)


def test_the_stored_document_names_every_field_of_the_table() -> None:
    """The table in baepo.service_fields is the one list: the document follows it."""
    from baepo.service_fields import FIELD_NAMES, HEALTH_CHECK_FIELDS

    document = validate_spec(BASE).to_document(lambda v: v)
    assert tuple(document) == FIELD_NAMES
    assert tuple(document["health_check"]) == tuple(f.name for f in HEALTH_CHECK_FIELDS)


def test_a_change_names_only_what_was_asked() -> None:
    spec = validate_spec({**BASE, "port": 9000})
    assert SpecChange({"env": {"A": "1"}}).applied_to(spec).port == 9000
    assert SpecChange({**BASE, "cpu": "0.5 vCPU", "memory": "1 GB"}).new_spec().memory_mb == 1024
    assert not SpecChange() and SpecChange({"image": "x"}).image == "x"


def test_a_memory_not_given_follows_the_cpu() -> None:
    assert validate_spec({**BASE, "cpu": 0.25}).memory_mb == 512
    assert validate_spec({**BASE, "cpu": 4}).memory_mb == 8192
    small = validate_spec({**BASE, "cpu": 0.25, "memory": 1024})
    assert apply_changes(small, {"cpu": 0.5}).memory_mb == 1024  # still allowed: kept
    assert apply_changes(small, {"cpu": 2}).memory_mb == 4096
    with pytest.raises(InvalidServiceSpec, match="allowed: 4 GB, 6 GB"):
        apply_changes(small, {"cpu": 2, "memory": 1024})


def test_min_instances_zero_is_scale_to_zero() -> None:
    spec = validate_spec(
        {"name": "web-app", "image": "localhost:5000/team/app:1", "min_instances": 0}, REGISTRY
    )
    assert spec.min_instances == 0
