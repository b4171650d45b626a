"""The service spec (App Runner's service model) and its validation, as pure functions.

The fields, their defaults, bounds and help are declared once, in `baepo.service_fields`;
`ServiceSpec` has one attribute per field, and validation and the stored document are driven
by that table.

`SpecChange` is what a person sent (API JSON, CLI flags): the fields they named, as they spelled
them. `SpecChange.new_spec` (`validate_spec`) turns it into a `ServiceSpec`, or raises one
`InvalidServiceSpec` naming every bad field; `SpecChange.applied_to` (`apply_changes`) validates
a partial update against the current spec. Nothing here does I/O: secrets are plain text in a
`ServiceSpec` and sealed only when stored (`to_document` / `from_document`, the one conversion
between a spec and its stored form, take the sealing functions).

Fields and defaults (App Runner's):

    name              3 to 40 chars: a lowercase letter, then [a-z0-9-], not ending in '-'
                      (App Runner wants 4 or more; Baepo allows `app`, its own example)
    image             an image reference (Baepo's registry or any the engine can pull from)
    port              8080
    command           none (the image's own); a string is split like a shell would
    env, secrets      NAME → value; secrets are encrypted at rest and shown masked
    cpu, memory       1 vCPU / 2 GB; App Runner's pairs only (CPU_MEMORY below); a memory
                      not given follows the CPU (the smallest size allowed with it)
    health_check      tcp (or http + path), interval 5 s, timeout 2 s, healthy 1, unhealthy 5
    min/max_instances 1 / 25;  max_concurrency 100 requests per instance
    autoscaling_configuration
                      none; `NAME[:REVISION]` of a shared configuration, whose min/max size
                      and max concurrency become the three fields above (`Services` pins the
                      revision and copies the values); naming it and one of them in one
                      change is an error: the configuration is where they come from
    auto_deploy       on for images in Baepo's registry, off otherwise
    custom_domains    up to 5 host names
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from baepo.control.configuration_refs import ConfigurationRef
from baepo.control.errors import InvalidServiceSpec
from baepo.control.images import BadReference, ImageName, RegistryLink, validate_image
from baepo.router.errors import InvalidRoute
from baepo.router.table import normalize_hostname
from baepo.service_fields import (
    BOUND_FIELDS,
    CPU_MEMORY,
    FIELD_NAMES,
    FIELDS,
    HEALTH_CHECK_FIELDS,
    MAX_COMMAND_BYTES,
    MAX_COMMAND_WORDS,
    MAX_CONCURRENCY,
    MAX_CUSTOM_DOMAINS,
    MAX_INSTANCES,
    MAX_PATH_BYTES,
    MAX_VALUE_BYTES,
    MAX_VARIABLES,
    MAX_VARIABLES_BYTES,
    Field,
    Kind,
    field_named,
)

__all__ = [
    "CPU_MEMORY",
    "FIELD_NAMES",
    "MASK",
    "MAX_CONCURRENCY",
    "MAX_CUSTOM_DOMAINS",
    "MAX_INSTANCES",
    "REVISION_ATTRIBUTES",
    "HealthCheck",
    "Protocol",
    "ServiceSpec",
    "SpecChange",
    "apply_changes",
    "validate_spec",
]

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
"""A DNS label (the service's host name is `<name>.<domain>`) of 3 to 40 characters."""
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MASK = "********"
"""What a secret's value reads as everywhere outside the container."""

REVISION_ATTRIBUTES = tuple(f.key for f in FIELDS if f.revision)
"""Changing one of these needs new instances, hence a new revision."""


def _default(name: str, fields: tuple[Field, ...] = FIELDS) -> Any:
    """The table's default (typed by the attribute it initializes)."""
    return field_named(name, fields).default


class Protocol(StrEnum):
    TCP = "tcp"
    HTTP = "http"


_PROTOCOL = Protocol(_default("protocol", HEALTH_CHECK_FIELDS))


@dataclass(frozen=True)
class HealthCheck:
    protocol: Protocol = _PROTOCOL
    path: str = _default("path", HEALTH_CHECK_FIELDS)
    interval_s: int = _default("interval", HEALTH_CHECK_FIELDS)
    timeout_s: int = _default("timeout", HEALTH_CHECK_FIELDS)
    healthy_threshold: int = _default("healthy_threshold", HEALTH_CHECK_FIELDS)
    unhealthy_threshold: int = _default("unhealthy_threshold", HEALTH_CHECK_FIELDS)

    def describe(self) -> str:
        if self.protocol is Protocol.HTTP:
            return f"HTTP GET {self.path}"
        return "TCP connect"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    image: str
    port: int = _default("port")
    command: tuple[str, ...] | None = _default("command")
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    cpu: float = _default("cpu")
    memory_mb: int = _default("memory")
    health_check: HealthCheck = field(default_factory=HealthCheck)
    min_instances: int = _default("min_instances")
    max_instances: int = _default("max_instances")
    max_concurrency: int = _default("max_concurrency")
    autoscaling_configuration: str | None = None
    """`NAME:REVISION` once pinned by `Services` (`NAME` only as a person asked for it)."""
    auto_deploy: bool = False
    custom_domains: tuple[str, ...] = _default("custom_domains")

    @property
    def image_name(self) -> ImageName:
        return ImageName.parse(self.image)

    def same_revision(self, other: ServiceSpec) -> bool:
        """Whether `other` runs exactly like this one (no new revision needed)."""
        return all(getattr(self, f) == getattr(other, f) for f in REVISION_ATTRIBUTES)

    def masked(self) -> dict[str, Any]:
        """The spec as plain data for people: every secret value reads as `MASK`."""
        return self.to_document(lambda _: MASK)

    def to_document(self, seal: Callable[[str], str]) -> dict[str, Any]:
        """JSON-ready data (the API's field names), each secret value passed through `seal`."""
        return _encode(self, FIELDS, seal)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], unseal: Callable[[str], str]) -> ServiceSpec:
        """The inverse of `to_document` (the document was valid when stored)."""
        return cls(**_decode(doc, FIELDS, unseal))


def _check_table(cls: type, fields: tuple[Field, ...]) -> None:
    """The table and the dataclass name the same fields (checked once, at import)."""
    declared = {f.name for f in dataclasses.fields(cls)}
    listed = {f.key for f in fields}
    if declared != listed:
        raise TypeError(f"{cls.__name__} and baepo.service_fields disagree: {declared ^ listed}")


_check_table(ServiceSpec, FIELDS)
_check_table(HealthCheck, HEALTH_CHECK_FIELDS)


def _encode(value: object, fields: tuple[Field, ...], seal: Callable[[str], str]) -> dict[str, Any]:
    """A spec (or its health check) as a document, field by field by kind."""
    document: dict[str, Any] = {}
    for f in fields:
        item = getattr(value, f.key)
        if f.kind is Kind.HEALTH_CHECK:
            item = _encode(item, HEALTH_CHECK_FIELDS, seal)
        elif f.kind is Kind.PROTOCOL:
            item = item.value
        elif f.kind is Kind.VARIABLES:
            item = {k: seal(v) if f.secret else v for k, v in item.items()}
        elif f.kind in (Kind.COMMAND, Kind.HOSTS):
            item = list(item) if item is not None else None
        document[f.name] = item
    return document


def _decode(
    document: Mapping[str, Any], fields: tuple[Field, ...], unseal: Callable[[str], str]
) -> dict[str, Any]:
    """The attributes of a spec (or its health check) from a stored document."""
    values: dict[str, Any] = {}
    for f in fields:
        item: Any = document.get(f.name)
        if f.kind is Kind.HEALTH_CHECK:
            item = HealthCheck(**_decode(item, HEALTH_CHECK_FIELDS, unseal))
        elif f.kind is Kind.PROTOCOL:
            item = Protocol(item)
        elif f.kind is Kind.VARIABLES:
            item = {k: unseal(v) if f.secret else v for k, v in (item or {}).items()}
        elif f.kind is Kind.COMMAND:
            item = tuple(item) if item is not None else None
        elif f.kind is Kind.HOSTS:
            item = tuple(item or ())
        elif f.kind in (Kind.INTEGER, Kind.MEMORY):
            item = int(item)
        elif f.kind is Kind.CPU:
            item = float(item)
        elif f.kind is Kind.SWITCH:
            item = bool(item)
        values[f.key] = item
    return values


@dataclass(frozen=True)
class SpecChange:
    """What a person asked for (the API's request body, the CLI's flags): the fields they
    named, by their names in `baepo.service_fields`, values as they spelled them (`"2 GB"`).

    Fields absent keep their value (or take their default, for a new service). The control room
    makes it a valid `ServiceSpec` with `new_spec` or `applied_to`, which name every bad field
    at once; that is where a value is checked, because some checks need the others (memory
    goes with the CPU) or the current spec (a masked secret keeps its value).
    """

    values: Mapping[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.values)

    @property
    def image(self) -> str | None:
        """The image asked for, if any (for the API's check of who may run it)."""
        image = self.values.get("image")
        return image if isinstance(image, str) else None

    def new_spec(self, registry: RegistryLink | None = None) -> ServiceSpec:
        """A new service's spec: absent fields take their defaults."""
        return validate_spec(self.values, registry)

    def applied_to(self, spec: ServiceSpec, registry: RegistryLink | None = None) -> ServiceSpec:
        """`spec` changed (see `apply_changes`)."""
        return apply_changes(spec, self.values, registry)


def validate_spec(
    raw: Mapping[str, Any],
    registry: RegistryLink | None = None,
    *,
    named: frozenset[str] | None = None,
) -> ServiceSpec:
    """A valid `ServiceSpec` from `raw`, or `InvalidServiceSpec` listing every bad field.

    `registry` tells which images live in Baepo's registry (for `auto_deploy`'s default);
    `named` are the fields the person gave (default: all of `raw`'s), of which the bounds may
    not be given for a service that uses an autoscaling configuration.
    """
    given = frozenset(raw) if named is None else named
    return _Validator(raw, registry or RegistryLink(), given).spec()


def apply_changes(
    spec: ServiceSpec, changes: Mapping[str, Any], registry: RegistryLink | None = None
) -> ServiceSpec:
    """`spec` with `changes` applied and validated; the name cannot change.

    Fields absent from `changes` keep their value; `env` and `secrets` given are the whole new
    map, except that a secret whose value is `MASK` keeps its current value (so a client can
    send back what `describe` showed). `health_check` merges field by field.
    """
    if "name" in changes and changes["name"] != spec.name:
        raise InvalidServiceSpec([("name", "a service cannot be renamed")])
    current = spec.to_document(lambda value: value)
    merged: dict[str, Any] = {**current, **changes}
    if isinstance(changes.get("health_check"), Mapping):
        merged["health_check"] = {**current["health_check"], **changes["health_check"]}
    if isinstance(changes.get("secrets"), Mapping):
        merged["secrets"] = {
            k: spec.secrets.get(k, v) if v == MASK else v for k, v in changes["secrets"].items()
        }
    if "image" in changes and "auto_deploy" not in changes:
        merged["auto_deploy"] = None  # the default follows the new image
    return validate_spec(merged, registry, named=frozenset(changes))


class _Validator:
    """Collects one problem per bad field instead of stopping at the first; each field is read
    by its kind (`baepo.service_fields.Kind`)."""

    def __init__(
        self, raw: Mapping[str, Any], registry: RegistryLink, named: frozenset[str] = frozenset()
    ) -> None:
        self.raw = raw
        self.registry = registry
        self.named = named
        self.problems: list[tuple[str, str]] = []
        self.cpu_ok = True

    def bad(self, name: str, reason: str) -> None:
        self.problems.append((name, reason))

    def spec(self) -> ServiceSpec:
        if not isinstance(self.raw, Mapping):
            raise InvalidServiceSpec([("spec", "must be an object of fields")])
        for unknown in sorted(set(self.raw) - set(FIELD_NAMES)):
            self.bad(unknown, f"unknown field (known: {', '.join(FIELD_NAMES)})")
        values: dict[str, Any] = {}
        for f in FIELDS:
            values[f.key] = self.value(f, values)
        for clash in sorted(set(values["env"]) & set(values["secrets"])):
            self.bad("secrets", f"{clash} is also set in env; a name can be in one only")
        low, high = values["min_instances"], values["max_instances"]
        if low > high:
            self.bad("min_instances", f"must not exceed max_instances ({low} > {high})")
        if (shared := values["autoscaling_configuration"]) is not None:
            for bound in (b for b in BOUND_FIELDS if b in self.named):
                self.bad(
                    bound,
                    f"comes from the autoscaling configuration {shared}: change the"
                    " configuration, or give autoscaling_configuration '' to set it here",
                )
        if self.problems:
            raise InvalidServiceSpec(self.problems)
        return ServiceSpec(**values)

    def value(self, f: Field, parsed: Mapping[str, Any]) -> Any:
        """The field's value (its default when absent or bad; a bad one is noted)."""
        match f.kind:
            case Kind.NAME:
                return self.name()
            case Kind.IMAGE:
                return self.image()
            case Kind.INTEGER:
                return self.integer(f)
            case Kind.COMMAND:
                return self.command()
            case Kind.VARIABLES:
                return self.variables(f)
            case Kind.CPU:
                return self.cpu(f)
            case Kind.MEMORY:
                return self.memory(f, parsed["cpu"])
            case Kind.HEALTH_CHECK:
                return self.health_check()
            case Kind.SWITCH:
                return self.auto_deploy(parsed["image"])
            case Kind.HOSTS:
                return self.custom_domains()
            case Kind.AUTOSCALING:
                return self.autoscaling_configuration()
        raise AssertionError(f"no reading for {f.kind}")  # pragma: no cover

    def name(self) -> str:
        value = self.raw.get("name")
        if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
            self.bad(
                "name",
                f"{value!r} is not a service name: 3 to 40 characters, a lowercase letter first, "
                "then lowercase letters, digits or '-', not ending in '-'",
            )
            return ""
        return value

    def image(self) -> str:
        try:
            return str(validate_image(self.raw.get("image")))
        except InvalidServiceSpec as exc:
            self.problems += exc.problems
            return ""

    def integer(self, f: Field) -> int:
        default = f.default
        assert isinstance(default, int)
        value = self.raw.get(f.name)
        if value is None:
            return default
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or not f.low <= value <= f.high:
            self.bad(f.name, f"must be a whole number from {f.low} to {f.high}, not {value!r}")
            return default
        return value

    def command(self) -> tuple[str, ...] | None:
        value = self.raw.get("command")
        if value is None or value == "" or value == []:
            return None
        if isinstance(value, str):
            if len(value.encode()) > MAX_COMMAND_BYTES:
                self.bad("command", f"must be at most {MAX_COMMAND_BYTES} bytes long")
                return None
            try:
                words = tuple(shlex.split(value))
            except ValueError as exc:
                self.bad("command", f"cannot be split into words: {exc}")
                return None
        elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            words = tuple(value)
        else:
            self.bad("command", "must be a string or a list of strings")
            return None
        if any("\0" in word for word in words):
            self.bad("command", "must not contain a NUL character")
        elif len(words) > MAX_COMMAND_WORDS:
            self.bad("command", f"must have at most {MAX_COMMAND_WORDS} words, not {len(words)}")
        elif sum(len(w.encode()) + 1 for w in words) > MAX_COMMAND_BYTES:
            self.bad("command", f"must be at most {MAX_COMMAND_BYTES} bytes long")
        else:
            return words
        return None

    def variables(self, f: Field) -> dict[str, str]:
        name = f.name
        value = self.raw.get(name)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.bad(name, "must be an object of NAME: value")
            return {}
        if len(value) > MAX_VARIABLES:
            self.bad(name, f"at most {MAX_VARIABLES} variables, not {len(value)}")
            return {}
        result: dict[str, str] = {}
        for key, item in value.items():
            if not isinstance(key, str) or len(key) > 256 or not ENV_NAME.fullmatch(key):
                shown = f"{key[:40]!r}…" if isinstance(key, str) and len(key) > 40 else repr(key)
                self.bad(name, f"{shown} is not a variable name (letters, digits, '_')")
            elif not isinstance(item, str):
                self.bad(name, f"the value of {key} must be a string")
            elif f.secret and not item:
                self.bad(name, f"the value of {key} must not be empty")
            elif "\0" in item:
                self.bad(name, f"the value of {key} must not contain a NUL character")
            elif len(item.encode()) > MAX_VALUE_BYTES:
                self.bad(name, f"the value of {key} must be at most {MAX_VALUE_BYTES} bytes")
            else:
                result[key] = item
        total = sum(len(k) + len(v.encode()) for k, v in result.items())
        if total > MAX_VARIABLES_BYTES:
            self.bad(name, f"must be at most {MAX_VARIABLES_BYTES} bytes in all, not {total}")
        return result

    def cpu(self, f: Field) -> float:
        default = float(_default("cpu"))
        cpu = _parse_cpu(self.raw.get(f.name, default))
        if cpu is None or cpu not in CPU_MEMORY:
            allowed = ", ".join(f"{c:g}" for c in CPU_MEMORY)
            self.bad(f.name, f"{self.raw.get(f.name)!r} is not a CPU size; vCPUs: {allowed}")
            self.cpu_ok = False
            return default
        return cpu

    def memory(self, f: Field, cpu: float) -> int:
        """The memory size; one not given follows the CPU, as App Runner's pairs do: the
        smallest size allowed with it (a change of CPU keeps the size if still allowed)."""
        default = f.default
        assert isinstance(default, int)
        if not self.cpu_ok:
            return default  # the sizes allowed depend on the CPU: nothing to check it against
        allowed = CPU_MEMORY[cpu]
        value = self.raw.get(f.name)
        if value is None:
            return allowed[0]
        memory = _parse_memory(value)
        if memory is None:
            self.bad(f.name, f"{value!r} is not a memory size: MB (2048) or '2 GB', '512 MB'")
        elif memory in allowed:
            return memory
        elif f.name in self.named:
            sizes = ", ".join(f"{m / 1024:g} GB" for m in allowed)
            self.bad(f.name, f"{value!r} with {cpu:g} vCPU; allowed: {sizes}")
        return allowed[0]

    def health_check(self) -> HealthCheck:
        value = self.raw.get("health_check")
        if value is None:
            return HealthCheck()
        if not isinstance(value, Mapping):
            self.bad("health_check", "must be an object (protocol, path, interval, ...)")
            return HealthCheck()
        known = {f.name for f in HEALTH_CHECK_FIELDS}
        for unknown in sorted(set(value) - known):
            self.bad(f"health_check.{unknown}", "unknown field")
        protocol = str(value.get("protocol", Protocol.TCP.value)).lower()
        if protocol not in tuple(Protocol):
            self.bad("health_check.protocol", f"must be tcp or http, not {protocol!r}")
            protocol = Protocol.TCP.value
        default_path = HealthCheck().path
        path = value.get("path", default_path)
        if (
            not isinstance(path, str)
            or not path.startswith("/")
            or len(path.encode()) > MAX_PATH_BYTES
            or any(c.isspace() or not c.isprintable() for c in path)
        ):
            shown = f"{path[:40]!r}…" if isinstance(path, str) and len(path) > 40 else repr(path)
            self.bad(
                "health_check.path",
                f"must be a path starting with '/' (printable, no spaces, at most"
                f" {MAX_PATH_BYTES} bytes), not {shown}",
            )
            path = default_path
        nested = _Validator(value, self.registry)
        numbers = {f.key: nested.integer(f) for f in HEALTH_CHECK_FIELDS if f.kind is Kind.INTEGER}
        check = HealthCheck(protocol=Protocol(protocol), path=path, **numbers)
        self.problems += [(f"health_check.{f}", reason) for f, reason in nested.problems]
        if check.timeout_s > check.interval_s and not nested.problems:
            self.bad("health_check.timeout", "must not exceed the interval")
        return check

    def auto_deploy(self, image: str) -> bool:
        value = self.raw.get("auto_deploy")
        if value is None:
            try:
                return self.registry.owns(ImageName.parse(image))
            except BadReference:
                return False
        if not isinstance(value, bool):
            self.bad("auto_deploy", "must be true or false")
            return False
        return value

    def autoscaling_configuration(self) -> str | None:
        value = self.raw.get("autoscaling_configuration")
        if value is None or value == "":
            return None
        try:
            return str(ConfigurationRef.parse(value))
        except InvalidServiceSpec as exc:
            self.problems += exc.problems
            return None

    def custom_domains(self) -> tuple[str, ...]:
        value = self.raw.get("custom_domains")
        if value is None:
            return ()
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            self.bad("custom_domains", "must be a list of host names")
            return ()
        domains: list[str] = []
        for domain in value:
            try:
                host = normalize_hostname(domain)
            except InvalidRoute:
                self.bad("custom_domains", f"{domain!r} is not a host name")
                continue
            if host not in domains:
                domains.append(host)
        if len(domains) > MAX_CUSTOM_DOMAINS:
            self.bad("custom_domains", f"at most {MAX_CUSTOM_DOMAINS}, not {len(domains)}")
        return tuple(domains)


def _parse_cpu(value: Any) -> float | None:
    """1, 0.25, "1 vCPU", "0.25 vcpu", or CPU units (256 … 4096, "1024")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip().lower().removesuffix("vcpu").strip()
        try:
            value = float(text)
        except ValueError:
            return None
    if not isinstance(value, int | float):
        return None
    number = float(value)
    return number / 1024 if number >= 256 else number


def _parse_memory(value: Any) -> int | None:
    """2048 (MB), 2 or 0.5 (GB, below 64), "2 GB", "512 MB", "2048"."""
    if isinstance(value, bool):
        return None
    unit: str | None = None
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        for suffix in ("gb", "mb"):
            if text.endswith(suffix):
                unit, text = suffix, text.removesuffix(suffix)
        try:
            value = float(text)
        except ValueError:
            return None
    if not isinstance(value, int | float):
        return None
    number = float(value)
    if unit == "gb" or (unit is None and number < 64):
        number *= 1024
    return int(number) if number.is_integer() else None
