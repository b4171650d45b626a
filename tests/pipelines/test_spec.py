"""`baepo.yaml`: what parses into which steps, what is refused with which field named, and the
order the steps of a branch run in."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from baepo.pipelines.errors import PipelineSpecError
from baepo.pipelines.spec import (
    DEFAULT_PIPELINE,
    BuildSection,
    PipelineSpec,
    Step,
    parse_pipeline,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

FULL = """
steps:
  - name: lint
    image: baepo/runtime-python:3
    commands: python3 -m compileall -q .
  - name: test
    image: localhost:5000/team/python:3
    commands: ["python3 -m unittest -v", "echo done"]
    environment: {CI: true, LEVEL: 3, NAME: x}
    secrets: [DB_PASSWORD]
    when: {branch: [main, "release/*"]}
    depends_on: [lint]
    cpu: 0.5
    memory: 2 GiB
    timeout: 1m30s
build:
  dockerfile: docker/Dockerfile.prod
  context: ./app/
  timeout: 45m
deploy: false
"""


def test_every_field_of_a_full_file() -> None:
    spec = parse_pipeline(FULL)
    lint, test = spec.steps
    assert lint == Step(
        name="lint", image="baepo/runtime-python:3", commands=("python3 -m compileall -q .",)
    )
    assert test.commands == ("python3 -m unittest -v", "echo done")
    assert dict(test.environment) == {"CI": "true", "LEVEL": "3", "NAME": "x"}
    assert test.secrets == ("DB_PASSWORD",)
    assert test.branches == ("main", "release/*")
    assert test.depends_on == ("lint",)
    assert (test.cpu, test.memory_mb, test.timeout_s) == (0.5, 2048, 90.0)
    assert spec.build == BuildSection(
        dockerfile="docker/Dockerfile.prod", context="app", timeout_s=2700.0
    )
    assert spec.deploy is False


def test_a_build_has_thirty_minutes_unless_it_says() -> None:
    assert DEFAULT_PIPELINE.build.timeout_s == 1800.0
    assert parse_pipeline("build: {context: app}").build.timeout_s == 1800.0
    assert parse_pipeline("build: {timeout: 90}").build.timeout_s == 90.0


@pytest.mark.parametrize("text", ["", "# only a comment\n", "steps: []\n", "steps:\n"])
def test_an_empty_file_is_the_default_pipeline(text: str) -> None:
    assert parse_pipeline(text) == DEFAULT_PIPELINE


def test_the_examples_parse() -> None:
    spec = parse_pipeline((EXAMPLES / "pipeline-python" / "baepo.yaml").read_text())
    assert [s.name for s in spec.order("main")] == ["test"]
    assert spec.steps[0].timeout_s == 120


@pytest.mark.parametrize(
    ("timeout", "seconds"),
    [
        ("600", 600),
        ("90s", 90),
        ("10m", 600),
        ("1h", 3600),
        ("1h30m", 5400),
        ("2.5", 2.5),
        ("1m30s", 90),
        ("45", 45),
    ],
)
def test_timeouts(timeout: str, seconds: float) -> None:
    text = f"steps: [{{name: a, image: x, commands: [echo], timeout: {timeout}}}]"
    assert parse_pipeline(text).steps[0].timeout_s == seconds


@pytest.mark.parametrize(
    ("memory", "megabytes"),
    [("512", 512), ("'512 MiB'", 512), ("'1 GiB'", 1024), ("2G", 2048), ("'768mb'", 768)],
)
def test_memory_sizes(memory: str, megabytes: int) -> None:
    text = f"steps: [{{name: a, image: x, commands: [echo], memory: {memory}}}]"
    assert parse_pipeline(text).steps[0].memory_mb == megabytes


def step(**fields: str) -> str:
    """A one-step file with `fields` over a valid step's."""
    base = {"name": "a", "image": "busybox", "commands": "[echo]", **fields}
    inner = "\n".join(f"    {k}: {v}" for k, v in base.items() if v != "")
    return f"steps:\n  -\n{inner}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "baepo.yaml: must be a mapping"),
        ("stages: []", "stages: unknown key"),
        ("steps: {a: 1}", "steps: must be a list of steps"),
        ("steps: [1]", "steps[0]: must be a mapping, not a number"),
        (step(name=""), "steps[0].name: missing"),
        (step(name="Test"), "steps[0].name: 'Test' is not"),
        (step(name="a" * 41), "steps[0].name:"),
        (step(image=""), "steps[0].image: missing"),
        (step(image="'UPPER/Case'"), "steps[0].image: 'UPPER/Case' is not an image reference"),
        (step(commands=""), "steps[0].commands: missing"),
        (step(commands="[1]"), "steps[0].commands[0]: must be text, not a number"),
        (step(commands="{a: b}"), "steps[0].commands: must be a list of text"),
        (step(commands="['  ']"), "steps[0].commands[0]: must not be empty"),
        (step(commands='["a\\0b"]'), "steps[0].commands[0]: must not hold a NUL"),
        (step(environment="[A]"), "steps[0].environment: must be a mapping"),
        (step(environment="{'1A': x}"), "steps[0].environment: '1A' is not a variable name"),
        (step(environment="{A: [1]}"), "steps[0].environment.A: must be text or a number"),
        (step(secrets="[a-b]"), "steps[0].secrets: 'a-b' is not a variable name"),
        (step(secrets="[A, A]"), "steps[0].secrets: lists a name twice"),
        (step(secrets="[A]", environment="{A: x}"), "steps[0].secrets: A is also in environment"),
        (step(when="{branches: [main]}"), "steps[0].when.branches: unknown key"),
        (step(when="{}"), "steps[0].when.branch: missing"),
        (step(when="main"), "steps[0].when: must be a mapping"),
        (step(depends_on="[b]"), "steps[0].depends_on: no step is named 'b'"),
        (step(depends_on="[a]"), "steps[0].depends_on: a step cannot depend on itself"),
        (step(cpu="0"), "steps[0].cpu: must be between 0.1 and 64"),
        (step(cpu="true"), "steps[0].cpu: must be a number of vCPUs, not a boolean"),
        (step(cpu="lots"), "steps[0].cpu: not a number of vCPUs: 'lots'"),
        (step(cpu=".nan"), "steps[0].cpu: not a number of vCPUs"),
        (step(memory="10"), "steps[0].memory: must be between 64 and"),
        (step(memory="'1 TB'"), "steps[0].memory: not a size: '1 TB'"),
        (step(timeout="ten"), "steps[0].timeout: not a duration: 'ten'"),
        (step(timeout="0"), "steps[0].timeout: must be between 1 and 86400"),
        (step(timeout="2d"), "steps[0].timeout: not a duration"),
        (step(timeout="[1]"), "steps[0].timeout: must be a number of seconds, not a list"),
        (step(image="x\n    image: y"), "line "),
        ("build: {dockerfile: /etc/passwd}", "build.dockerfile: '/etc/passwd' must be a path"),
        ("build: {context: ../up}", "build.context: '../up' must be a path inside"),
        ("build: {target: x}", "build.target: unknown key"),
        ("build: {timeout: 2d}", "build.timeout: not a duration"),
        ("build: {timeout: 0}", "build.timeout: must be between 1 and 86400"),
        ("deploy: yes please", "deploy: must be true or false, not text"),
        ("steps: [", "baepo.yaml: line "),
        ("a: !!python/object:os.system x", "baepo.yaml: line 1:"),
        ("{1: 2}", "baepo.yaml: a key must be text, not a number"),
    ],
)
def test_a_bad_file_names_its_field(text: str, message: str) -> None:
    with pytest.raises(PipelineSpecError) as caught:
        parse_pipeline(text)
    assert message in str(caught.value)


def test_the_second_step_is_steps_1() -> None:
    text = "steps:\n  - {name: a, image: x, commands: [echo]}\n  - {name: b, image: x}\n"
    with pytest.raises(PipelineSpecError, match=r"^steps\[1\]\.commands: missing$"):
        parse_pipeline(text)


def test_two_steps_of_one_name() -> None:
    text = (
        "steps:\n  - {name: a, image: x, commands: [echo]}\n  - {name: a, image: x, commands: [1a]}"
    )
    with pytest.raises(PipelineSpecError, match=r"steps\[1\]\.name: 'a' is also steps\[0\]"):
        parse_pipeline(text)


def steps(*specs: tuple[str, list[str], list[str]]) -> PipelineSpec:
    """A pipeline of (name, depends_on, branches) steps, through the parser."""
    lines = ["steps:"]
    for name, needs, branches in specs:
        lines.append(f"  - name: {name}\n    image: x\n    commands: [echo]")
        if needs:
            lines.append(f"    depends_on: [{', '.join(needs)}]")
        if branches:
            lines.append(f"    when: {{branch: [{', '.join(repr(b) for b in branches)}]}}")
    return parse_pipeline("\n".join(lines))


def test_a_cycle_is_refused_and_shown() -> None:
    with pytest.raises(PipelineSpecError, match=r"steps\[\d\]\.depends_on: a cycle: .* -> "):
        steps(("a", ["c"], []), ("b", ["a"], []), ("c", ["b"], []))


@pytest.mark.parametrize(
    ("pipeline", "branch", "expected"),
    [
        # No dependencies: file order.
        ([("a", [], []), ("b", [], []), ("c", [], [])], "main", ["a", "b", "c"]),
        # A dependency declared later runs first; the rest keep file order.
        (
            [("test", ["build"], []), ("lint", [], []), ("build", [], [])],
            "main",
            ["lint", "build", "test"],
        ),
        (
            [("d", ["b", "c"], []), ("c", ["a"], []), ("b", ["a"], []), ("a", [], [])],
            "x",
            ["a", "c", "b", "d"],
        ),
        # Branch filters: fnmatch patterns, `*` across slashes too.
        ([("a", [], ["main"]), ("b", [], ["release/*"]), ("c", [], [])], "release/1.2", ["b", "c"]),
        ([("a", [], ["main"]), ("b", [], ["release/*"])], "feature", []),
        ([("a", [], ["feat-?"])], "feat-1", ["a"]),
    ],
)
def test_order(
    pipeline: list[tuple[str, list[str], list[str]]], branch: str, expected: list[str]
) -> None:
    assert [s.name for s in steps(*pipeline).order(branch)] == expected


def test_a_dependency_that_does_not_run_on_the_branch_is_an_error_there_only() -> None:
    spec = steps(("build", [], ["main"]), ("test", ["build"], []))
    assert [s.name for s in spec.order("main")] == ["build", "test"]
    with pytest.raises(PipelineSpecError, match=r"steps\[1\]\.depends_on: 'build' does not run"):
        spec.order("feature")


def run_script(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", "-ec", script], cwd=cwd, capture_output=True, text=True, timeout=30
    )


def test_the_script_echoes_each_command_then_runs_it_and_stops_at_the_first_failure(
    tmp_path: Path,
) -> None:
    weird = "echo 'it''s' \"$HOME\" > out; cd sub"
    step = Step(
        name="a",
        image="x",
        commands=(weird, "pwd", "printf '%s\\n' \"a  b\"", "false", "echo never"),
    )
    (tmp_path / "sub").mkdir()
    done = run_script(step.script(), tmp_path)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"$ {weird}",
        "$ pwd",
        str(tmp_path / "sub"),  # `cd` carries on to the next command, as in a shell
        "$ printf '%s\\n' \"a  b\"",
        "a  b",
        "$ false",
    ]
    assert (tmp_path / "out").read_text().startswith("its ")


def test_a_command_with_unbalanced_quotes_fails_alone(tmp_path: Path) -> None:
    step = Step(name="a", image="x", commands=("echo 'oops", "echo after"))
    done = run_script(step.script(), tmp_path)
    assert done.returncode != 0
    assert "after" not in done.stdout.replace("$ echo after", "")
    assert done.stdout.startswith("$ echo 'oops\n")


def test_a_multi_line_command_runs_whole(tmp_path: Path) -> None:
    text = (
        "steps:\n  - name: a\n    image: x\n    commands:\n"
        "      - |\n        for i in 1 2; do\n          echo n$i\n        done\n"
    )
    done = run_script(parse_pipeline(text).steps[0].script(), tmp_path)
    assert done.returncode == 0
    assert done.stdout.splitlines()[-2:] == ["n1", "n2"]
