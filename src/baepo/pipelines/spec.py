"""The pipeline file, `baepo.yaml`: what runs before a commit is built and deployed. Pure.

```yaml
steps:
  - name: test                       # [a-z0-9][a-z0-9-]{0,39}, unique
    image: baepo/runtime-python:3    # an image the engine has or can pull from Baepo's registry
    commands: ["python3 -m unittest -v"]   # in order, with /bin/sh -e, in /workspace
    environment: {CI: "true"}
    secrets: [DB_PASSWORD]           # the service's secrets by name, as variables, masked in logs
    when: {branch: [main, "release/*"]}    # fnmatch patterns; absent: every branch
    depends_on: [lint]               # other steps; absent: none
    cpu: 1                           # vCPUs (default 1)
    memory: 1024                     # MiB, or "512 MiB", "2 GiB" (default 1024)
    timeout: 600                     # seconds, or "90s", "10m", "1h30m" (default 600)
build:                               # optional; the defaults shown
  dockerfile: Dockerfile
  context: .
  timeout: 30m                       # then the build is stopped and the run fails
deploy: true                         # false: run the steps, build nothing, deploy nothing
```

Steps run one at a time, in dependency order and otherwise in file order (`PipelineSpec.order`).
Unknown keys are errors, as are a `depends_on` naming no step and a dependency cycle; a step whose
dependency does not run on the branch being run is an error when the pipeline runs on it. Every
error names its field (`steps[1].timeout: not a duration: "ten"`), counting steps from 0.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import PurePosixPath
from types import MappingProxyType

from baepo.pipelines.documents import Reader, join, kind
from baepo.pipelines.errors import PipelineSpecError
from baepo.references import InvalidReference, Reference

FILENAME = "baepo.yaml"
STEP_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_STEPS = 50
CPU_RANGE = (0.1, 64.0)
MEMORY_RANGE_MB = (64, 256 * 1024)
TIMEOUT_RANGE_S = (1.0, 24 * 3600.0)
STEP_TIMEOUT_S = 600.0
BUILD_TIMEOUT_S = 1800.0
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*(mib|mb|m|gib|gb|g)?", re.IGNORECASE)

_TOP_KEYS = frozenset({"steps", "build", "deploy"})
_STEP_KEYS = frozenset(
    {"name", "image", "commands", "environment", "secrets", "when", "depends_on"}
    | {"cpu", "memory", "timeout"}
)
_WHEN_KEYS = frozenset({"branch"})
_BUILD_PATHS = frozenset({"dockerfile", "context"})
_BUILD_KEYS = _BUILD_PATHS | {"timeout"}


@dataclass(frozen=True)
class Step:
    name: str
    image: str
    commands: tuple[str, ...]
    environment: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    secrets: tuple[str, ...] = ()
    branches: tuple[str, ...] = ()
    """fnmatch patterns of the branches it runs on; empty: every branch."""
    depends_on: tuple[str, ...] = ()
    cpu: float = 1.0
    memory_mb: int = 1024
    timeout_s: float = STEP_TIMEOUT_S

    def script(self) -> str:
        """The script `/bin/sh -e` runs: each command echoed as `$ <command>`, then run. Each
        runs through `eval`, so that one with unbalanced quotes fails by itself instead of
        swallowing the commands after it, while `cd` and `export` carry on to the next."""
        lines = []
        for command in self.commands:
            quoted = shlex.quote(command)
            lines.append(f"printf '$ %s\\n' {quoted}")
            lines.append(f"eval {quoted}")
        return "\n".join(lines) + "\n"

    def runs_on(self, branch: str) -> bool:
        return not self.branches or any(fnmatchcase(branch, p) for p in self.branches)


@dataclass(frozen=True)
class BuildSection:
    dockerfile: str = "Dockerfile"
    """Relative to the repository's root."""
    context: str = "."
    """Relative to the repository's root."""
    timeout_s: float = BUILD_TIMEOUT_S
    """The build is stopped past it (the push after it is not counted)."""


@dataclass(frozen=True)
class PipelineSpec:
    steps: tuple[Step, ...]
    build: BuildSection
    deploy: bool

    def order(self, branch: str) -> list[Step]:
        """The steps that run on `branch`, each after its dependencies, otherwise in file
        order. A step whose dependency does not run on `branch` is an error."""
        running = [s for s in self.steps if s.runs_on(branch)]
        names = {s.name for s in running}
        for index, step in enumerate(self.steps):
            if step.name not in names:
                continue
            for dependency in step.depends_on:
                if dependency not in names:
                    raise PipelineSpecError(
                        f"steps[{index}].depends_on: {dependency!r} does not run on branch "
                        f"{branch!r}"
                    )
        done: list[Step] = []
        finished: set[str] = set()
        while running:
            # Cycles were refused by the parser, so one step is always ready.
            ready = next(s for s in running if finished.issuperset(s.depends_on))
            running.remove(ready)
            done.append(ready)
            finished.add(ready.name)
        return done


DEFAULT_PIPELINE = PipelineSpec(steps=(), build=BuildSection(), deploy=True)
"""What a repository without `baepo.yaml` runs: no steps; build and deploy."""


def parse_pipeline(text: str) -> PipelineSpec:
    """`baepo.yaml`'s text as a `PipelineSpec`; `PipelineSpecError` naming the field otherwise.
    An empty file is the default pipeline."""
    read = Reader(FILENAME, PipelineSpecError)
    document = read.load(text)
    if document is None:
        return DEFAULT_PIPELINE
    top = read.mapping(document, "", _TOP_KEYS)
    raw_steps = top.get("steps")
    if raw_steps is None:
        raw_steps = []
    if not isinstance(raw_steps, list):
        read.fail("steps", f"must be a list of steps, not {kind(raw_steps)}")
    if len(raw_steps) > MAX_STEPS:
        read.fail("steps", f"at most {MAX_STEPS} steps")
    steps = tuple(_step(read, raw, f"steps[{i}]") for i, raw in enumerate(raw_steps))
    _check_names(read, steps)
    build = _build(read, top.get("build"))
    deploy = True if top.get("deploy") is None else read.switch(top["deploy"], "deploy")
    return PipelineSpec(steps=steps, build=build, deploy=deploy)


def _step(read: Reader, raw: object, where: str) -> Step:
    fields = read.mapping(raw, where, _STEP_KEYS)
    for required in ("name", "image", "commands"):
        if fields.get(required) is None:
            read.fail(join(where, required), "missing")
    name = read.text(fields["name"], join(where, "name"))
    if not STEP_NAME.fullmatch(name):
        read.fail(join(where, "name"), f"{name!r} is not [a-z0-9][a-z0-9-]{{0,39}}")
    image = read.text(fields["image"], join(where, "image"))
    try:
        Reference.parse(image)
    except InvalidReference as exc:
        read.fail(join(where, "image"), f"{image!r} is not an image reference: {exc}")
    environment = _environment(read, fields.get("environment"), join(where, "environment"))
    secrets = _variables(read, fields.get("secrets"), join(where, "secrets"))
    for secret in secrets:
        if secret in environment:
            read.fail(join(where, "secrets"), f"{secret} is also in environment")
    return Step(
        name=name,
        image=image,
        commands=read.texts(fields["commands"], join(where, "commands")),
        environment=MappingProxyType(environment),
        secrets=secrets,
        branches=_when(read, fields.get("when"), join(where, "when")),
        depends_on=_optional_texts(read, fields.get("depends_on"), join(where, "depends_on")),
        cpu=_cpu(read, fields.get("cpu"), join(where, "cpu")),
        memory_mb=_memory(read, fields.get("memory"), join(where, "memory")),
        timeout_s=_timeout(read, fields.get("timeout"), join(where, "timeout"), STEP_TIMEOUT_S),
    )


def _environment(read: Reader, raw: object, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        read.fail(where, f"must be a mapping of NAME: value, not {kind(raw)}")
    environment: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not VARIABLE_NAME.fullmatch(key):
            read.fail(where, f"{key!r} is not a variable name")
        environment[key] = read.variable(value, join(where, key))
    return environment


def _variables(read: Reader, raw: object, where: str) -> tuple[str, ...]:
    names = _optional_texts(read, raw, where)
    for name in names:
        if not VARIABLE_NAME.fullmatch(name):
            read.fail(where, f"{name!r} is not a variable name")
    return names


def _optional_texts(read: Reader, raw: object, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    values = read.texts(raw, where)
    if len(set(values)) != len(values):
        read.fail(where, "lists a name twice")
    return values


def _when(read: Reader, raw: object, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    fields = read.mapping(raw, where, _WHEN_KEYS)
    if fields.get("branch") is None:
        read.fail(join(where, "branch"), "missing")
    return read.texts(fields["branch"], join(where, "branch"))


def _number(read: Reader, raw: object, where: str, what: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        read.fail(where, f"must be {what}, not {kind(raw)}")
    try:
        number = float(raw)
    except ValueError:
        read.fail(where, f"not {what}: {raw!r}")
    if number != number or number in (float("inf"), float("-inf")):
        read.fail(where, f"not {what}: {raw!r}")
    return number


def _within(read: Reader, value: float, where: str, bounds: tuple[float, float]) -> None:
    low, high = bounds
    if not low <= value <= high:
        read.fail(where, f"must be between {low:g} and {high:g}")


def _cpu(read: Reader, raw: object, where: str) -> float:
    if raw is None:
        return 1.0
    cpu = _number(read, raw, where, "a number of vCPUs")
    _within(read, cpu, where, CPU_RANGE)
    return cpu


def _memory(read: Reader, raw: object, where: str) -> int:
    if raw is None:
        return 1024
    if isinstance(raw, str):
        match = _MEMORY.fullmatch(raw.strip())
        if not match:
            read.fail(where, f'not a size: {raw!r} (e.g. 512, "512 MiB", "2 GiB")')
        unit = (match.group(2) or "m").lower()
        megabytes = float(match.group(1)) * (1024 if unit.startswith("g") else 1)
    else:
        megabytes = _number(read, raw, where, "a number of MiB")
    _within(read, megabytes, where, MEMORY_RANGE_MB)
    return int(megabytes)


def _timeout(read: Reader, raw: object, where: str, default: float) -> float:
    if raw is None:
        return default
    if isinstance(raw, str) and not _is_number(raw):
        match = _DURATION.fullmatch(raw.strip())
        if not raw.strip() or not match:
            read.fail(where, f'not a duration: {raw!r} (e.g. 600, "90s", "10m", "1h30m")')
        hours, minutes, seconds = (float(part or 0) for part in match.groups())
        timeout = hours * 3600 + minutes * 60 + seconds
    else:
        timeout = _number(read, raw, where, "a number of seconds")
    _within(read, timeout, where, TIMEOUT_RANGE_S)
    return timeout


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _build(read: Reader, raw: object) -> BuildSection:
    if raw is None:
        return BuildSection()
    fields = read.mapping(raw, "build", _BUILD_KEYS)
    paths = {}
    for key in _BUILD_PATHS:
        if fields.get(key) is not None:
            paths[key] = _relative_path(read, fields[key], f"build.{key}")
    timeout = _timeout(read, fields.get("timeout"), "build.timeout", BUILD_TIMEOUT_S)
    return BuildSection(**paths, timeout_s=timeout)


def _relative_path(read: Reader, raw: object, where: str) -> str:
    """A path inside the repository: relative, no `..`, normalised (`./app/` is `app`)."""
    text = read.text(raw, where)
    path = PurePosixPath(text)
    if path.is_absolute() or ".." in path.parts or "\\" in text or "\x00" in text:
        read.fail(where, f"{text!r} must be a path inside the repository")
    return str(path)


def _check_names(read: Reader, steps: tuple[Step, ...]) -> None:
    """Names unique, dependencies naming steps, no cycle."""
    index: dict[str, int] = {}
    for i, step in enumerate(steps):
        if step.name in index:
            read.fail(f"steps[{i}].name", f"{step.name!r} is also steps[{index[step.name]}]")
        index[step.name] = i
    for i, step in enumerate(steps):
        for dependency in step.depends_on:
            if dependency not in index:
                read.fail(f"steps[{i}].depends_on", f"no step is named {dependency!r}")
            if dependency == step.name:
                read.fail(f"steps[{i}].depends_on", "a step cannot depend on itself")
    # Depth-first search for a cycle: white (unseen), grey (on the path), black (done).
    state: dict[str, int] = {}
    by_name = {s.name: s for s in steps}

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for dependency in by_name[name].depends_on:
            if state.get(dependency) == 1:
                cycle = [*path[path.index(dependency) :], dependency]
                read.fail(f"steps[{index[name]}].depends_on", f"a cycle: {' -> '.join(cycle)}")
            if state.get(dependency) is None:
                visit(dependency, [*path, dependency])
        state[name] = 2

    for step in steps:
        if state.get(step.name) is None:
            visit(step.name, [step.name])
