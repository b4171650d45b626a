"""How a shared autoscaling configuration is named: App Runner's grammar, as pure functions.

A configuration has a name (`[A-Za-z0-9][A-Za-z0-9-_]{3,31}`, App Runner's
AutoScalingConfigurationName) and revisions 1, 2, …: creating one with a name that exists
adds a revision, and the newest is the latest. A service names one as `NAME` (the latest
revision when the service is created or updated: it is pinned then) or `NAME:REVISION`.

`DefaultConfiguration` (revision 1: min 1, max 25, max concurrency 100) is built in, as in App
Runner: every user may use it; nobody may add a revision to it or delete it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from baepo.control.autoscaling import InvalidAutoScalingConfiguration

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-_]{3,31}$")
DEFAULT_NAME = "DefaultConfiguration"
MAX_REVISION = 1_000_000


@dataclass(frozen=True)
class ConfigurationRef:
    """`NAME` or `NAME:REVISION`; `revision` None means the latest one."""

    name: str
    revision: int | None = None

    @classmethod
    def parse(cls, text: object, field: str = "autoscaling_configuration") -> ConfigurationRef:
        if not isinstance(text, str):
            problem = f"must be NAME[:REVISION], not {text!r}"
            raise InvalidAutoScalingConfiguration([(field, problem)])
        name, sep, number = text.partition(":")
        check_name(name, field)
        if not sep:
            return cls(name)
        return cls(name, parse_revision(number, field))

    def __str__(self) -> str:
        return self.name if self.revision is None else f"{self.name}:{self.revision}"


def check_name(name: object, field: str = "name") -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        shown = f"{name[:40]!r}…" if isinstance(name, str) and len(name) > 40 else repr(name)
        raise InvalidAutoScalingConfiguration(
            [
                (
                    field,
                    f"{shown} is not a configuration name: 4 to 32 characters, letters, digits,"
                    " '-' or '_', a letter or digit first",
                )
            ]
        )
    return name


def parse_revision(number: object, field: str = "revision") -> int:
    text = number.strip() if isinstance(number, str) else ""
    if not text.isdigit() or not 1 <= int(text) <= MAX_REVISION:
        raise InvalidAutoScalingConfiguration(
            [(field, f"the revision must be a whole number from 1, not {number!r}")]
        )
    return int(text)
