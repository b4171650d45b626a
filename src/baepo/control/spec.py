"""The service spec (App Runner's service model) and its validation, as pure functions.

`validate_spec(raw)` turns what a person sent (API JSON, CLI flags) into a `ServiceSpec`, or
raises one `InvalidServiceSpec` naming every bad field; `apply_changes(spec, changes)` validates
a partial update against the current spec. Nothing here does I/O: secrets are plain text in a
`ServiceSpec` and sealed only when stored (`to_document` / `from_document` take the sealing
functions).

Fields and defaults (App Runner's):

    name              3 to 40 chars: a lowercase letter, then [a-z0-9-], not ending in '-'
                      (App Runner wants 4 or more; Baepo allows `app`, its own example)
    image             an image reference (Baepo's registry or any the engine can pull from)
    port              8080
    command           none (the image's own); a string is split like a shell would
    env, secrets      NAME → value; secrets are encrypted at rest and shown masked
    cpu, memory       1 vCPU / 2 GB; App Runner's pairs only (CPU_MEMORY below)
    health_check      tcp (or http + path), interval 5 s, timeout 2 s, healthy 1, unhealthy 5
    min/max_instances 1 / 25;  max_concurrency 100 requests per instance
    auto_deploy       on for images in Baepo's registry, off otherwise
    custom_domains    up to 5 host names
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from baepo.control.errors import InvalidServiceSpec
from baepo.control.images import BadReference, ImageName, RegistryLink, validate_image
from baepo.router.errors import InvalidRoute
from baepo.router.table import normalize_hostname

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
"""A DNS label (the service's host name is `<name>.<domain>`) of 3 to 40 characters."""
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MASK = "********"
"""What a secret's value reads as everywhere outside the container."""

CPU_MEMORY: dict[float, tuple[int, ...]] = {
    0.25: (512, 1024),
    0.5: (1024,),
    1.0: (2048, 3072, 4096),
    2.0: (4096, 6144),
    4.0: (8192, 10240, 12288),
}
"""vCPU → the memory sizes (MB) App Runner allows with it."""

MAX_CUSTOM_DOMAINS = 5
MAX_INSTANCES = 25
MAX_CONCURRENCY = 200
FIELDS = (
    "name",
    "image",
    "port",
    "command",
    "env",
    "secrets",
    "cpu",
    "memory",
    "health_check",
    "min_instances",
    "max_instances",
    "max_concurrency",
    "auto_deploy",
    "custom_domains",
)
REVISION_ATTRIBUTES = (
    "image",
    "port",
    "command",
    "env",
    "secrets",
    "cpu",
    "memory_mb",
    "health_check",
)
"""Changing one of these needs new instances, hence a new revision."""


class Protocol(StrEnum):
    TCP = "tcp"
    HTTP = "http"


@dataclass(frozen=True)
class HealthCheck:
    protocol: Protocol = Protocol.TCP
    path: str = "/"
    interval_s: int = 5
    timeout_s: int = 2
    healthy_threshold: int = 1
    unhealthy_threshold: int = 5

    def describe(self) -> str:
        if self.protocol is Protocol.HTTP:
            return f"HTTP GET {self.path}"
        return "TCP connect"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    image: str
    port: int = 8080
    command: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    cpu: float = 1.0
    memory_mb: int = 2048
    health_check: HealthCheck = field(default_factory=HealthCheck)
    min_instances: int = 1
    max_instances: int = MAX_INSTANCES
    max_concurrency: int = 100
    auto_deploy: bool = False
    custom_domains: tuple[str, ...] = ()

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
        """JSON-ready data, each secret value passed through `seal`."""
        hc = self.health_check
        return {
            "name": self.name,
            "image": self.image,
            "port": self.port,
            "command": list(self.command) if self.command is not None else None,
            "env": dict(self.env),
            "secrets": {k: seal(v) for k, v in self.secrets.items()},
            "cpu": self.cpu,
            "memory": self.memory_mb,
            "health_check": {
                "protocol": hc.protocol.value,
                "path": hc.path,
                "interval": hc.interval_s,
                "timeout": hc.timeout_s,
                "healthy_threshold": hc.healthy_threshold,
                "unhealthy_threshold": hc.unhealthy_threshold,
            },
            "min_instances": self.min_instances,
            "max_instances": self.max_instances,
            "max_concurrency": self.max_concurrency,
            "auto_deploy": self.auto_deploy,
            "custom_domains": list(self.custom_domains),
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], unseal: Callable[[str], str]) -> ServiceSpec:
        """The inverse of `to_document` (the document was valid when stored)."""
        hc = doc["health_check"]
        command = doc.get("command")
        return cls(
            name=doc["name"],
            image=doc["image"],
            port=int(doc["port"]),
            command=tuple(command) if command is not None else None,
            env=dict(doc.get("env") or {}),
            secrets={k: unseal(v) for k, v in (doc.get("secrets") or {}).items()},
            cpu=float(doc["cpu"]),
            memory_mb=int(doc["memory"]),
            health_check=HealthCheck(
                protocol=Protocol(hc["protocol"]),
                path=hc["path"],
                interval_s=int(hc["interval"]),
                timeout_s=int(hc["timeout"]),
                healthy_threshold=int(hc["healthy_threshold"]),
                unhealthy_threshold=int(hc["unhealthy_threshold"]),
            ),
            min_instances=int(doc["min_instances"]),
            max_instances=int(doc["max_instances"]),
            max_concurrency=int(doc["max_concurrency"]),
            auto_deploy=bool(doc["auto_deploy"]),
            custom_domains=tuple(doc.get("custom_domains") or ()),
        )


def validate_spec(raw: Mapping[str, Any], registry: RegistryLink | None = None) -> ServiceSpec:
    """A valid `ServiceSpec` from `raw`, or `InvalidServiceSpec` listing every bad field.

    `registry` tells which images live in Baepo's registry (for `auto_deploy`'s default).
    """
    return _Validator(raw, registry or RegistryLink()).spec()


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
    return validate_spec(merged, registry)


class _Validator:
    """Collects one problem per bad field instead of stopping at the first."""

    def __init__(self, raw: Mapping[str, Any], registry: RegistryLink) -> None:
        self.raw = raw
        self.registry = registry
        self.problems: list[tuple[str, str]] = []

    def bad(self, name: str, reason: str) -> None:
        self.problems.append((name, reason))

    def spec(self) -> ServiceSpec:
        if not isinstance(self.raw, Mapping):
            raise InvalidServiceSpec([("spec", "must be an object of fields")])
        for unknown in sorted(set(self.raw) - set(FIELDS)):
            self.bad(unknown, f"unknown field (known: {', '.join(FIELDS)})")
        defaults = ServiceSpec(name="", image="")
        name = self.name()
        image = self.image()
        port = self.integer("port", defaults.port, 1, 65535)
        command = self.command()
        env = self.variables("env")
        secrets = self.variables("secrets")
        for clash in sorted(set(env) & set(secrets)):
            self.bad("secrets", f"{clash} is also set in env; a name can be in one only")
        cpu, memory = self.size()
        health = self.health_check()
        low = self.integer("min_instances", defaults.min_instances, 1, MAX_INSTANCES)
        high = self.integer("max_instances", defaults.max_instances, 1, MAX_INSTANCES)
        if low > high:
            self.bad("min_instances", f"must not exceed max_instances ({low} > {high})")
        concurrency = self.integer("max_concurrency", 100, 1, MAX_CONCURRENCY)
        auto_deploy = self.auto_deploy(image)
        domains = self.custom_domains()
        if self.problems:
            raise InvalidServiceSpec(self.problems)
        return ServiceSpec(
            name=name,
            image=image,
            port=port,
            command=command,
            env=env,
            secrets=secrets,
            cpu=cpu,
            memory_mb=memory,
            health_check=health,
            min_instances=low,
            max_instances=high,
            max_concurrency=concurrency,
            auto_deploy=auto_deploy,
            custom_domains=domains,
        )

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

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.raw.get(name)
        if value is None:
            return default
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            self.bad(name, f"must be a whole number from {low} to {high}, not {value!r}")
            return default
        return value

    def command(self) -> tuple[str, ...] | None:
        value = self.raw.get("command")
        if value is None or value == "" or value == []:
            return None
        if isinstance(value, str):
            try:
                return tuple(shlex.split(value))
            except ValueError as exc:
                self.bad("command", f"cannot be split into words: {exc}")
                return None
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
        self.bad("command", "must be a string or a list of strings")
        return None

    def variables(self, name: str) -> dict[str, str]:
        value = self.raw.get(name)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.bad(name, "must be an object of NAME: value")
            return {}
        result: dict[str, str] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not ENV_NAME.fullmatch(key):
                self.bad(name, f"{key!r} is not a variable name (letters, digits, '_')")
            elif not isinstance(item, str):
                self.bad(name, f"the value of {key} must be a string")
            elif name == "secrets" and not item:
                self.bad(name, f"the value of {key} must not be empty")
            else:
                result[key] = item
        return result

    def size(self) -> tuple[float, int]:
        defaults = ServiceSpec(name="", image="")
        cpu = _parse_cpu(self.raw.get("cpu", defaults.cpu))
        if cpu is None or cpu not in CPU_MEMORY:
            allowed = ", ".join(f"{c:g}" for c in CPU_MEMORY)
            self.bad("cpu", f"{self.raw.get('cpu')!r} is not a CPU size; vCPUs: {allowed}")
            return defaults.cpu, defaults.memory_mb
        memory = _parse_memory(self.raw.get("memory", defaults.memory_mb))
        if memory is None or memory not in CPU_MEMORY[cpu]:
            allowed = ", ".join(f"{m / 1024:g} GB" for m in CPU_MEMORY[cpu])
            self.bad("memory", f"{self.raw.get('memory')!r} with {cpu:g} vCPU; allowed: {allowed}")
            return cpu, CPU_MEMORY[cpu][0]
        return cpu, memory

    def health_check(self) -> HealthCheck:
        value = self.raw.get("health_check")
        if value is None:
            return HealthCheck()
        if not isinstance(value, Mapping):
            self.bad("health_check", "must be an object (protocol, path, interval, ...)")
            return HealthCheck()
        known = {"protocol", "path", "interval", "timeout", "healthy_threshold"}
        known |= {"unhealthy_threshold"}
        for unknown in sorted(set(value) - known):
            self.bad(f"health_check.{unknown}", "unknown field")
        protocol = str(value.get("protocol", "tcp")).lower()
        if protocol not in ("tcp", "http"):
            self.bad("health_check.protocol", f"must be tcp or http, not {protocol!r}")
            protocol = "tcp"
        path = value.get("path", "/")
        if not isinstance(path, str) or not path.startswith("/") or " " in path:
            self.bad("health_check.path", f"must be a path starting with '/', not {path!r}")
            path = "/"
        nested = _Validator(value, self.registry)
        check = HealthCheck(
            protocol=Protocol(protocol),
            path=path,
            interval_s=nested.integer("interval", 5, 1, 20),
            timeout_s=nested.integer("timeout", 2, 1, 20),
            healthy_threshold=nested.integer("healthy_threshold", 1, 1, 20),
            unhealthy_threshold=nested.integer("unhealthy_threshold", 5, 1, 20),
        )
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
