"""The one list of a service's fields (App Runner's service model), as plain data.

Everything that names a service's fields is derived from `FIELDS` (and `HEALTH_CHECK_FIELDS`
for the nested health check): the control room's `ServiceSpec`, its validation and its stored
document (`baepo.control.spec`), the API's request models (`baepo.api.services`) and the options
of `baepo services create|update` (`baepo.cli.services`). Adding a field is one row here plus its
attribute on `ServiceSpec` (the control room refuses to import if they disagree).

It imports nothing of Baepo's: the CLI talks to Baepo over HTTP only, and reading this table
must not load the control room (seconds of imports for a command that prints one line).

A field's `name` is its name on the wire (API JSON) and in the stored document; `attribute` is
the `ServiceSpec` attribute when it differs (`memory` → `memory_mb`). `kind` says how a value is
spelled, parsed and stored (see `Kind`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MAX_INSTANCES = 25
MAX_CONCURRENCY = 200
MAX_CUSTOM_DOMAINS = 5
HEALTH_CHECK_MAX = 20
"""App Runner's upper bound for a health check's interval, timeout and thresholds."""

# Bounds on what a spec may carry (docs/services.md#limits). A 100 KB command hangs runc and
# every engine call on its container; these leave room for any real app.
MAX_COMMAND_BYTES = 8192
"""The start command, all its words together."""
MAX_COMMAND_WORDS = 256
MAX_VARIABLES = 256
"""Variables in `env`, and again in `secrets`."""
MAX_VALUE_BYTES = 32768
"""One variable's value."""
MAX_VARIABLES_BYTES = 131072
"""All of `env`'s names and values together (and again `secrets`')."""
MAX_PATH_BYTES = 1024
"""The health check's path."""
CPU_MEMORY: dict[float, tuple[int, ...]] = {
    0.25: (512, 1024),
    0.5: (1024,),
    1.0: (2048, 3072, 4096),
    2.0: (4096, 6144),
    4.0: (8192, 10240, 12288),
}
"""vCPU → the memory sizes (MB) App Runner allows with it."""
BOUND_FIELDS = ("min_instances", "max_instances", "max_concurrency")
"""What an autoscaling configuration sets for the services that use it."""


class Kind(StrEnum):
    NAME = "name"
    """The service's name: a DNS label (its host is `<name>.<domain>`)."""
    IMAGE = "image"
    """An image reference (`baepo.references`' grammar)."""
    INTEGER = "integer"
    """A whole number from `low` to `high` (a digit string is accepted)."""
    COMMAND = "command"
    """A string split like a shell would, or a list of words; none means the image's own."""
    VARIABLES = "variables"
    """NAME → value (`--env NAME=VALUE` on the command line)."""
    CPU = "cpu"
    """vCPUs: 1, 0.25, "1 vCPU", or CPU units (256 … 4096)."""
    MEMORY = "memory"
    """MB: 2048, "2 GB", "512 MB", or GB below 64."""
    HEALTH_CHECK = "health_check"
    """The nested object of `HEALTH_CHECK_FIELDS`."""
    PROTOCOL = "protocol"
    """tcp or http."""
    PATH = "path"
    """An HTTP path starting with '/'."""
    SWITCH = "switch"
    """true or false (`--name/--no-name`)."""
    HOSTS = "hosts"
    """A list of host names (a repeatable option)."""
    AUTOSCALING = "autoscaling"
    """A shared autoscaling configuration, `NAME` or `NAME:REVISION`; "" for none."""


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    help: str
    default: object = None
    """None when the field has no default (name, image) or its default depends on others
    (`auto_deploy`: on for images in Baepo's registry)."""
    attribute: str = ""
    low: int = 0
    high: int = 0
    flag: str = ""
    """The CLI option (`--port`); "" when the command line has none."""
    short: str = ""
    secret: bool = False
    """Values are sealed at rest and masked when shown."""
    revision: bool = False
    """Changing it needs new instances, hence a new revision."""
    example: object = None

    @property
    def key(self) -> str:
        """The `ServiceSpec` (or `HealthCheck`) attribute."""
        return self.attribute or self.name


FIELDS: tuple[Field, ...] = (
    Field("name", Kind.NAME, "DNS-safe: https://<name>.<domain>", example="app"),
    Field(
        "image",
        Kind.IMAGE,
        "Image reference to run.",
        flag="--image",
        revision=True,
        example="127.0.0.1:5000/team/app:1",
    ),
    Field(
        "port",
        Kind.INTEGER,
        "Port the app listens on (default 8080).",
        default=8080,
        low=1,
        high=65535,
        flag="--port",
        revision=True,
    ),
    Field(
        "command",
        Kind.COMMAND,
        "Start command (default: the image's).",
        flag="--command",
        revision=True,
    ),
    Field(
        "env",
        Kind.VARIABLES,
        "NAME=VALUE (repeatable).",
        flag="--env",
        short="-e",
        revision=True,
    ),
    Field(
        "secrets",
        Kind.VARIABLES,
        "NAME=VALUE, encrypted at rest (repeatable).",
        flag="--secret",
        secret=True,
        revision=True,
    ),
    Field(
        "cpu",
        Kind.CPU,
        "vCPU per instance: 0.25, 0.5, 1, 2, 4.",
        default=1.0,
        flag="--cpu",
        revision=True,
    ),
    Field(
        "memory",
        Kind.MEMORY,
        "Memory per instance, e.g. 2048 or '2 GB'.",
        default=2048,
        attribute="memory_mb",
        flag="--memory",
        revision=True,
    ),
    Field(
        "health_check",
        Kind.HEALTH_CHECK,
        "How an instance is found healthy (TCP connect by default).",
        revision=True,
    ),
    Field(
        "min_instances",
        Kind.INTEGER,
        "Instances kept running, however idle (0: scale to zero when idle).",
        default=1,
        low=0,
        high=MAX_INSTANCES,
        flag="--min-instances",
    ),
    Field(
        "max_instances",
        Kind.INTEGER,
        "Instances the autoscaler may start.",
        default=MAX_INSTANCES,
        low=1,
        high=MAX_INSTANCES,
        flag="--max-instances",
    ),
    Field(
        "max_concurrency",
        Kind.INTEGER,
        "Requests per instance before queueing.",
        default=100,
        low=1,
        high=MAX_CONCURRENCY,
        flag="--max-concurrency",
    ),
    Field(
        "autoscaling_configuration",
        Kind.AUTOSCALING,
        "A shared autoscaling configuration, NAME[:REVISION]: its min/max size and max"
        " concurrency become the service's ('' for the service's own).",
        flag="--autoscaling",
        example="fast:2",
    ),
    Field(
        "auto_deploy",
        Kind.SWITCH,
        "Redeploy on each push.",
        flag="--auto-deploy",
    ),
    Field(
        "custom_domains",
        Kind.HOSTS,
        f"Custom domain (repeatable, up to {MAX_CUSTOM_DOMAINS}).",
        default=(),
        flag="--domain",
    ),
)

HEALTH_CHECK_FIELDS: tuple[Field, ...] = (
    Field("protocol", Kind.PROTOCOL, "tcp or http.", default="tcp", flag="--health-check"),
    Field(
        "path",
        Kind.PATH,
        "HTTP health check path.",
        default="/",
        flag="--health-check-path",
    ),
    Field(
        "interval",
        Kind.INTEGER,
        "Seconds between checks.",
        default=5,
        attribute="interval_s",
        low=1,
        high=HEALTH_CHECK_MAX,
    ),
    Field(
        "timeout",
        Kind.INTEGER,
        "Seconds a check may take (at most the interval).",
        default=2,
        attribute="timeout_s",
        low=1,
        high=HEALTH_CHECK_MAX,
    ),
    Field(
        "healthy_threshold",
        Kind.INTEGER,
        "Passed checks before an instance is healthy.",
        default=1,
        low=1,
        high=HEALTH_CHECK_MAX,
    ),
    Field(
        "unhealthy_threshold",
        Kind.INTEGER,
        "Failed checks before an instance is unhealthy.",
        default=5,
        low=1,
        high=HEALTH_CHECK_MAX,
    ),
)

FIELD_NAMES = tuple(f.name for f in FIELDS)


def field_named(name: str, fields: tuple[Field, ...] = FIELDS) -> Field:
    for f in fields:
        if f.name == name:
            return f
    raise KeyError(name)
