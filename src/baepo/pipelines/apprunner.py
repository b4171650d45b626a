# TEMPORARY stand-in on branch pipe-runs: a snapshot of helper D's work in progress, so that
# the runner type-checks and its tests run. Dropped at merge (D's file replaces it).
"""App Runner's configuration file, `apprunner.yaml` (version 1.0), and the Dockerfile Baepo
builds such an app with. Pure.

```yaml
version: 1.0
runtime: python3  # python3, python311, nodejs16, nodejs18
build:
  commands:
    pre-build: [...]                 # run in this order, each a RUN of the image
    build: [...]
    post-build: [...]
  env: [{name: PIP_NO_CACHE_DIR, value: "1"}]   # for the build commands only
run:
  runtime-version: 3.11              # read and ignored: the base image decides
  pre-run: [...]                     # App Runner's revised build: run after the build commands
  command: python3 app.py            # required
  network:
    port: 8080                       # default 8080
    env: APP_PORT                    # a variable that is given the port (PORT always is)
  env: [{name: GREETING, value: hello}]
```

The app is copied to `/app` on the runtime's base image, its commands run there at build time,
and it starts with `/bin/sh -c <run.command>`. `run.secrets` (AWS ARNs) is refused: a Baepo
service's secrets are set on the service. Base images are configurable per runtime
(`baepo up --runtime-image python3=IMAGE`); a runtime without one is refused when the Dockerfile
is made, naming the flag.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from baepo.pipelines.documents import Reader, join, kind
from baepo.pipelines.errors import AppRunnerConfigError

FILENAME = "apprunner.yaml"
RUNTIME_NAME = re.compile(r"[a-z][a-z0-9.-]{0,31}")
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

DEFAULT_BASE_IMAGES: Mapping[str, str] = MappingProxyType(
    {
        "python3": "baepo/runtime-python:3",
        "python311": "baepo/runtime-python:3",
        "nodejs16": "baepo/runtime-node:18",
        "nodejs18": "baepo/runtime-node:18",
    }
)
"""App Runner's managed runtimes → the image Baepo builds such an app on. Debian bookworm's
Python 3.11 and Node.js 18 (Node 16 apps run on 18); others with `--runtime-image`."""

_TOP_KEYS = frozenset({"version", "runtime", "build", "run"})
_BUILD_KEYS = frozenset({"commands", "env"})
_PHASES = ("pre-build", "build", "post-build")
_RUN_KEYS = frozenset({"runtime-version", "pre-run", "command", "network", "env", "secrets"})
_NETWORK_KEYS = frozenset({"port", "env"})
_VARIABLE_KEYS = frozenset({"name", "value"})


@dataclass(frozen=True)
class AppRunnerConfig:
    runtime: str
    run_command: str
    build_commands: tuple[str, ...] = ()
    """pre-build, build and post-build, in that order."""
    pre_run: tuple[str, ...] = ()
    port: int = 8080
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """The app's variables (`run.env`)."""
    build_env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Variables of the build commands only (`build.env`)."""
    port_variable: str | None = None
    """`run.network.env`: a variable that is given the port besides `PORT`."""


def parse_apprunner(text: str) -> AppRunnerConfig:
    """`apprunner.yaml`'s text; `AppRunnerConfigError` naming the field otherwise."""
    read = Reader(FILENAME, AppRunnerConfigError)
    document = read.load(text)
    if document is None:
        read.fail("", "empty")
    top = read.mapping(document, "", _TOP_KEYS)
    for required in ("version", "runtime", "run"):
        if top.get(required) is None:
            read.fail(required, "missing")
    if top["version"] not in (1, 1.0, "1.0", "1"):
        read.fail("version", f"Baepo reads version 1.0, not {top['version']!r}")
    runtime = read.text(top["runtime"], "runtime")
    if not RUNTIME_NAME.fullmatch(runtime):
        read.fail("runtime", f"{runtime!r} is not a runtime name (python3, nodejs18, …)")
    build_commands: tuple[str, ...] = ()
    build_env: dict[str, str] = {}
    if top.get("build") is not None:
        build = read.mapping(top["build"], "build", _BUILD_KEYS)
        if build.get("commands") is not None:
            commands = read.mapping(build["commands"], "build.commands", _PHASES)
            for phase in _PHASES:
                if commands.get(phase) is not None:
                    build_commands += read.texts(commands[phase], f"build.commands.{phase}")
        build_env = _variables(read, build.get("env"), "build.env")
    run = read.mapping(top["run"], "run", _RUN_KEYS)
    if run.get("secrets") is not None:
        read.fail("run.secrets", "Baepo does not read AWS secrets: set the service's secrets")
    if run.get("command") is None:
        read.fail("run.command", "missing")
    port, port_variable = 8080, None
    if run.get("network") is not None:
        network = read.mapping(run["network"], "run.network", _NETWORK_KEYS)
        if network.get("port") is not None:
            port = _port(read, network["port"], "run.network.port")
        if network.get("env") is not None:
            port_variable = read.text(network["env"], "run.network.env")
            if not VARIABLE_NAME.fullmatch(port_variable):
                read.fail("run.network.env", f"{port_variable!r} is not a variable name")
    return AppRunnerConfig(
        runtime=runtime,
        run_command=_one_line_ok(read, read.text(run["command"], "run.command")),
        build_commands=build_commands,
        pre_run=() if run.get("pre-run") is None else read.texts(run["pre-run"], "run.pre-run"),
        port=port,
        env=MappingProxyType(_variables(read, run.get("env"), "run.env")),
        build_env=MappingProxyType(build_env),
        port_variable=port_variable,
    )


def dockerfile_for(config: AppRunnerConfig, base_images: Mapping[str, str]) -> str:
    """The Dockerfile that builds the app: its runtime's base image, the source in `/app`, the
    build commands run there, the run command as the image's command."""
    image = base_images.get(config.runtime)
    if image is None:
        known = ", ".join(sorted(base_images)) or "none"
        raise AppRunnerConfigError(
            f"runtime: Baepo has no base image for {config.runtime!r} (known: {known}); "
            f"give one with baepo up --runtime-image {config.runtime}=IMAGE"
        )
    lines = [f"FROM {image}", "WORKDIR /app", "COPY . /app"]
    # ARG, not ENV: a build variable is seen by the RUN commands and not kept in the image.
    lines += [f"ARG {name}={_quoted(value)}" for name, value in config.build_env.items()]
    # The exec form with a JSON string: a command needs no Dockerfile escaping of its own.
    lines += [f"RUN {json.dumps(['/bin/sh', '-c', c])}" for c in config.build_commands]
    lines += [f"RUN {json.dumps(['/bin/sh', '-c', c])}" for c in config.pre_run]
    variables = {"PORT": str(config.port)}
    if config.port_variable:
        variables[config.port_variable] = str(config.port)
    variables.update(config.env)
    lines += [f"ENV {name}={_quoted(value)}" for name, value in variables.items()]
    lines.append(f"EXPOSE {config.port}")
    lines.append(f"CMD {json.dumps(['/bin/sh', '-c', config.run_command])}")
    return "\n".join(lines) + "\n"


def _quoted(value: str) -> str:
    """A Dockerfile word in double quotes: the builder reads `\\"`, `\\$` and `\\\\` as those
    characters, so a value's `$HOME` stays text instead of being substituted."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def _variables(read: Reader, raw: object, where: str) -> dict[str, str]:
    """App Runner's `[{name, value}]` list."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        read.fail(where, f"must be a list of {{name, value}}, not {kind(raw)}")
    variables: dict[str, str] = {}
    for i, item in enumerate(raw):
        here = f"{where}[{i}]"
        fields = read.mapping(item, here, _VARIABLE_KEYS)
        if fields.get("name") is None:
            read.fail(join(here, "name"), "missing")
        name = read.text(fields["name"], join(here, "name"))
        if not VARIABLE_NAME.fullmatch(name):
            read.fail(join(here, "name"), f"{name!r} is not a variable name")
        value = fields.get("value", "")
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int | float):
            value = str(value)
        elif value is None:
            value = ""
        elif not isinstance(value, str):
            read.fail(join(here, "value"), f"must be text, not {kind(value)}")
        variables[name] = _one_line(read, value, join(here, "value"))
    return variables


def _one_line(read: Reader, value: str, where: str) -> str:
    # A Dockerfile instruction is one line: ENV and ARG have no escape for a newline.
    if any(c in value for c in "\n\r\x00"):
        read.fail(where, "must be one line")
    return value


def _one_line_ok(read: Reader, command: str) -> str:
    if "\x00" in command:
        read.fail("run.command", "must not hold a NUL character")
    return command


def _port(read: Reader, raw: object, where: str) -> int:
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw.strip())
    if isinstance(raw, bool) or not isinstance(raw, int):
        read.fail(where, f"must be a port number, not {kind(raw)}")
    if not 1 <= raw <= 65535:
        read.fail(where, "must be between 1 and 65535")
    return raw
