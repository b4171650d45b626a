# TEMPORARY stand-in on branch pipe-runs: a snapshot of helper D's work in progress, so that
# the runner type-checks and its tests run. Dropped at merge (D's file replaces it).
"""Reading the YAML files a repository carries (`baepo.yaml`, `apprunner.yaml`) into plain data,
with errors that name the field: `steps[1].timeout: not a duration`.

YAML is read with the safe loader and nothing else: no tags that build objects, and the whole
text bounded (`MAX_DOCUMENT_BYTES`) before it is parsed. A `Reader` checks one field at a time
and raises its file's error (`PipelineSpecError`, `AppRunnerConfigError`); every value it
returns has the type asked for, so the parsers that use it never see YAML's surprises (a
`yes` that is a bool, a `1.0` that is a float, a date, a key that is a number).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import NoReturn

import yaml

from baepo.pipelines.errors import PipelineError

MAX_DOCUMENT_BYTES = 256 * 1024


class Reader:
    def __init__(self, filename: str, error: type[PipelineError]) -> None:
        self.filename = filename
        self.error = error

    def fail(self, where: str, message: str) -> NoReturn:
        raise self.error(f"{where}: {message}" if where else f"{self.filename}: {message}")

    def load(self, text: str) -> object:
        """The document's value (None for an empty file)."""
        if len(text.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES:
            self.fail("", f"larger than {MAX_DOCUMENT_BYTES // 1024} KiB")
        try:
            return yaml.safe_load(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            at = f"line {mark.line + 1}: " if mark is not None else ""
            self.fail("", f"{at}{exc.problem or exc.context or 'not YAML'}")
        except (yaml.YAMLError, ValueError, TypeError) as exc:
            # The loader's constructors raise ValueError/TypeError on odd scalars
            # (`!!int`-tagged text, an unhashable key); its reader YAMLError on control characters.
            self.fail("", f"not YAML: {_first_line(exc)}")
        except RecursionError:
            self.fail("", "not YAML: nested too deeply")

    def mapping(self, value: object, where: str, known: Collection[str]) -> dict[str, object]:
        """A mapping whose keys are all in `known` (unknown keys are errors, named)."""
        if not isinstance(value, Mapping):
            self.fail(where, f"must be a mapping, not {kind(value)}")
        for key in value:
            if not isinstance(key, str):
                self.fail(where, f"a key must be text, not {kind(key)} ({key!r})")
            if key not in known:
                self.fail(join(where, key), f"unknown key (known: {', '.join(sorted(known))})")
        return dict(value)

    def text(self, value: object, where: str) -> str:
        """A non-empty string (YAML scalars that are not text are refused, not converted)."""
        if not isinstance(value, str):
            self.fail(where, f"must be text, not {kind(value)}")
        if not value.strip():
            self.fail(where, "must not be empty")
        return value

    def texts(self, value: object, where: str) -> tuple[str, ...]:
        """A list of non-empty strings; one string alone is a list of one."""
        if isinstance(value, str):
            return (self.text(value, where),)
        if not isinstance(value, list):
            self.fail(where, f"must be a list of text, not {kind(value)}")
        return tuple(self.text(item, f"{where}[{i}]") for i, item in enumerate(value))

    def switch(self, value: object, where: str) -> bool:
        if not isinstance(value, bool):
            self.fail(where, f"must be true or false, not {kind(value)}")
        return value


def join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def kind(value: object) -> str:
    """How YAML would name a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
