"""`apprunner.yaml`: App Runner's file read as App Runner reads it, and the Dockerfile Baepo
builds such an app with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from baepo.pipelines.apprunner import (
    DEFAULT_BASE_IMAGES,
    AppRunnerConfig,
    dockerfile_for,
    parse_apprunner,
)
from baepo.pipelines.errors import AppRunnerConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

FULL = """
version: 1.0
runtime: python311
build:
  commands:
    post-build: [python3 -m compileall -q .]
    pre-build:
      - pip install -r requirements.txt
    build: echo build
  env:
    - name: PIP_NO_CACHE_DIR
      value: 1
run:
  runtime-version: 3.11.4
  pre-run: [echo pre-run]
  command: python3 app.py --port "$APP_PORT"
  network:
    port: "8000"
    env: APP_PORT
  env:
    - {name: GREETING, value: "say \\"hi\\" to $USER"}
    - {name: EMPTY}
"""


def test_every_field_of_a_full_file() -> None:
    config = parse_apprunner(FULL)
    assert config.runtime == "python311"
    # App Runner's phases in their order, whatever order the file writes them in.
    assert config.build_commands == (
        "pip install -r requirements.txt",
        "echo build",
        "python3 -m compileall -q .",
    )
    assert config.pre_run == ("echo pre-run",)
    assert config.run_command == 'python3 app.py --port "$APP_PORT"'
    assert (config.port, config.port_variable) == (8000, "APP_PORT")
    assert dict(config.env) == {"GREETING": 'say "hi" to $USER', "EMPTY": ""}
    assert dict(config.build_env) == {"PIP_NO_CACHE_DIR": "1"}


def test_the_dockerfile_of_a_full_file() -> None:
    text = dockerfile_for(parse_apprunner(FULL), {"python311": "img/python:3"})
    assert text.splitlines() == [
        "FROM img/python:3",
        "WORKDIR /app",
        "COPY . /app",
        'ARG PIP_NO_CACHE_DIR="1"',
        'RUN ["/bin/sh", "-c", "pip install -r requirements.txt"]',
        'RUN ["/bin/sh", "-c", "echo build"]',
        'RUN ["/bin/sh", "-c", "python3 -m compileall -q ."]',
        'RUN ["/bin/sh", "-c", "echo pre-run"]',
        'ENV PORT="8000"',
        'ENV APP_PORT="8000"',
        'ENV GREETING="say \\"hi\\" to \\$USER"',
        'ENV EMPTY=""',
        "EXPOSE 8000",
        'CMD ["/bin/sh", "-c", "python3 app.py --port \\"$APP_PORT\\""]',
    ]


@pytest.mark.parametrize(
    ("example", "runtime", "image"),
    [
        ("apprunner-python", "python3", "baepo/runtime-python:3"),
        ("apprunner-node", "nodejs18", "baepo/runtime-node:18"),
    ],
)
def test_the_examples(example: str, runtime: str, image: str) -> None:
    config = parse_apprunner((EXAMPLES / example / "apprunner.yaml").read_text())
    assert config.runtime == runtime and config.port == 8080
    dockerfile = dockerfile_for(config, DEFAULT_BASE_IMAGES)
    assert dockerfile.startswith(f"FROM {image}\n")
    cmd = next(line for line in dockerfile.splitlines() if line.startswith("CMD "))
    assert json.loads(cmd.removeprefix("CMD "))[-1] == config.run_command


def test_a_runtime_without_a_base_image_names_the_flag() -> None:
    config = AppRunnerConfig(runtime="ruby31", run_command="ruby app.rb")
    with pytest.raises(AppRunnerConfigError, match="--runtime-image ruby31=IMAGE"):
        dockerfile_for(config, DEFAULT_BASE_IMAGES)
    assert dockerfile_for(config, {"ruby31": "ruby:3"}).startswith("FROM ruby:3\n")


def test_a_user_variable_named_port_wins() -> None:
    config = AppRunnerConfig(runtime="python3", run_command="x", env={"PORT": "9000"})
    lines = dockerfile_for(config, DEFAULT_BASE_IMAGES).splitlines()
    assert 'ENV PORT="9000"' in lines and 'ENV PORT="8080"' not in lines


MINIMAL = "version: 1.0\nruntime: python3\nrun: {command: python3 app.py}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "apprunner.yaml: empty"),
        ("[]", "apprunner.yaml: must be a mapping"),
        ("runtime: python3\nrun: {command: x}", "version: missing"),
        ("version: 2.0\nruntime: python3\nrun: {command: x}", "version: Baepo reads version 1.0"),
        ("version: 1.0\nrun: {command: x}", "runtime: missing"),
        ("version: 1.0\nruntime: Python 3\nrun: {command: x}", "runtime: 'Python 3' is not"),
        ("version: 1.0\nruntime: python3", "run: missing"),
        ("version: 1.0\nruntime: python3\nrun: {}", "run.command: missing"),
        (MINIMAL + "extra: 1", "extra: unknown key"),
        (MINIMAL.replace("{command", "{cmd: 1, command"), "run.cmd: unknown key"),
        (MINIMAL + "build: {commands: {install: [x]}}", "build.commands.install: unknown key"),
        (MINIMAL + "build: {commands: {build: [1]}}", "build.commands.build[0]: must be text"),
        (MINIMAL + "build: {env: {A: b}}", "build.env: must be a list of {name, value}"),
        (MINIMAL + "build: {env: [{value: b}]}", "build.env[0].name: missing"),
        (MINIMAL + "build: {env: [{name: 'A B'}]}", "build.env[0].name: 'A B' is not a variable"),
        (MINIMAL + "build: {env: [{name: A, value: [1]}]}", "build.env[0].value: must be text"),
        (
            MINIMAL + 'build: {env: [{name: A, value: "a\\nb"}]}',
            "build.env[0].value: must be one line",
        ),
        (MINIMAL.replace("}", ", network: {port: 0}}"), "run.network.port: must be between 1"),
        (MINIMAL.replace("}", ", network: {port: http}}"), "run.network.port: must be a port"),
        (MINIMAL.replace("}", ", network: {env: 'A-B'}}"), "run.network.env: 'A-B' is not"),
        (MINIMAL.replace("}", ", secrets: [{name: A, value-from: arn}]}"), "run.secrets: Baepo"),
    ],
)
def test_a_bad_file_names_its_field(text: str, message: str) -> None:
    with pytest.raises(AppRunnerConfigError) as caught:
        parse_apprunner(text)
    assert message in str(caught.value)


@pytest.mark.parametrize("version", ["1.0", "'1.0'", "1"])
def test_version_one_in_any_spelling(version: str) -> None:
    assert parse_apprunner(MINIMAL.replace("1.0", version)).runtime == "python3"


@pytest.mark.integration
def test_the_dockerfile_builds_with_the_engine_and_keeps_values_as_written(
    docker_host: str, tmp_path: Path
) -> None:
    """The classic builder reads the generated file as meant: build commands run with their
    build variables (not kept in the image), values with `$`, quotes and backslashes stay text,
    and the run command starts through the shell with the port variables set."""
    from tests.clients import Docker

    docker = Docker(docker_host, tmp_path / "docker")
    context = tmp_path / "app"
    context.mkdir()
    (context / "hello.txt").write_text("from the source\n")
    config = parse_apprunner(
        "version: 1.0\nruntime: busybox\n"
        "build:\n  commands:\n    build: ['echo \"$STAGE\" > /app/stage']\n"
        "  env: [{name: STAGE, value: built}]\n"
        "run:\n  command: cat /app/hello.txt /app/stage; env | sort\n"
        "  network: {port: 9000, env: APP_PORT}\n"
        "  env: [{name: ODD, value: 'a $HOME \"q\" \\\\n `x` ${Y}'}]\n"
    )
    (context / "Dockerfile").write_text(dockerfile_for(config, {"busybox": "baepo-test/busybox:1"}))
    tag = f"baepo-test/apprunner-dockerfile:{tmp_path.name[-12:].lower()}"
    docker("build", "-q", "-t", tag, str(context))
    try:
        out = docker("run", "--rm", tag).stdout.splitlines()
    finally:
        docker("rmi", "-f", tag, check=False)
    assert out[:2] == ["from the source", "built"]
    assert 'ODD=a $HOME "q" \\\\n `x` ${Y}' in out
    assert {"PORT=9000", "APP_PORT=9000"} <= set(out)
    assert not any(line.startswith("STAGE=") for line in out)
