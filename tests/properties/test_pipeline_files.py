"""The parsers of what a repository or a webhook sends (baepo.yaml, apprunner.yaml, webhook
deliveries) never fail in any way but their own error. Hypothesis feeds them arbitrary text and
text shaped like the real thing, with a fixed seed so a run is repeatable."""

from __future__ import annotations

import contextlib
import json

from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st

from baepo.pipelines.apprunner import DEFAULT_BASE_IMAGES, dockerfile_for, parse_apprunner
from baepo.pipelines.errors import (
    AppRunnerConfigError,
    InvalidWebhookPayload,
    PipelineSpecError,
    WebhookRejected,
)
from baepo.pipelines.spec import parse_pipeline
from baepo.pipelines.webhooks import read_event, verify

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# YAML-ish values: what a baepo.yaml's fields might hold, right or wrong.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["10m", "1h30m", "2 GiB", "main", "release/*", "busybox", "echo hi", ""]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(
                st.sampled_from(
                    [
                        "name",
                        "image",
                        "commands",
                        "environment",
                        "secrets",
                        "when",
                        "branch",
                        "depends_on",
                        "cpu",
                        "memory",
                        "timeout",
                        "dockerfile",
                        "context",
                    ]
                ),
                st.text(max_size=8),
            ),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=20,
)
STEP = st.fixed_dictionaries(
    {"name": st.sampled_from(["a", "b", "test", "Bad Name"]), "image": SCALARS},
    optional={
        "commands": VALUES,
        "depends_on": st.lists(st.sampled_from(["a", "b", "test", "x"]), max_size=3),
        "when": VALUES,
        "timeout": SCALARS,
        "memory": SCALARS,
        "cpu": SCALARS,
        "environment": VALUES,
        "secrets": VALUES,
    },
)
PIPELINE = st.fixed_dictionaries(
    {}, optional={"steps": st.lists(STEP, max_size=4), "build": VALUES, "deploy": SCALARS}
)


@seed(10)
@SETTINGS
@given(st.one_of(st.text(max_size=300), PIPELINE.map(json.dumps), VALUES.map(json.dumps)))
@example("steps: [" * 2000)
@example("a: &a [*a]")
@example("- !!python/object/apply:os.system ['true']")
@example("steps:\n  - {name: a, image: x, commands: [echo], timeout: 1e999}")
@example("\x00")
@example("\ud800")
@example('steps: [{name: a, image: x, commands: [echo], environment: {A: "\\0"}}]')
def test_baepo_yaml_parses_or_says_why(text: str) -> None:
    try:
        spec = parse_pipeline(text)
    except PipelineSpecError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    for branch in ("main", "release/1", "feature"):
        try:
            order = spec.order(branch)
        except PipelineSpecError:
            continue
        assert len({s.name for s in order}) == len(order)
        for position, step in enumerate(order):
            assert set(step.depends_on) <= {s.name for s in order[:position]}
            assert step.script().endswith("\n")
            # What becomes a process's arguments and environment can be given to one.
            assert "\x00" not in step.script() + "".join(step.environment.values())


APPRUNNER = st.fixed_dictionaries(
    {"version": st.sampled_from([1.0, "1.0", 2]), "runtime": SCALARS},
    optional={"build": VALUES, "run": VALUES},
)


@seed(10)
@SETTINGS
@given(st.one_of(st.text(max_size=300), APPRUNNER.map(json.dumps), VALUES.map(json.dumps)))
@example('{"version": 1.0, "runtime": "python3", "run": {"command": "x", "env": [{"name": "A"}]}}')
def test_apprunner_yaml_parses_or_says_why(text: str) -> None:
    try:
        config = parse_apprunner(text)
        dockerfile = dockerfile_for(config, DEFAULT_BASE_IMAGES)
    except AppRunnerConfigError as exc:
        assert str(exc)
        return
    # Every instruction is one line: no value can start an instruction of its own.
    for line in dockerfile.splitlines():
        assert line.split(" ", 1)[0] in {"FROM", "WORKDIR", "COPY", "ARG", "RUN", "ENV"} | {
            "EXPOSE",
            "CMD",
        }


HEADERS = st.dictionaries(
    st.sampled_from(
        [
            "X-GitHub-Event",
            "X-GitHub-Delivery",
            "X-Hub-Signature-256",
            "X-Gitea-Event",
            "X-Gitea-Delivery",
            "X-Gitea-Signature",
            "X-Gitlab-Event",
            "X-Gitlab-Token",
            "Idempotency-Key",
            "X-Gitlab-Event-UUID",
        ]
    ),
    st.one_of(st.text(max_size=40), st.sampled_from(["push", "ping", "Push Hook", "d-1"])),
)
BODIES = st.one_of(
    st.binary(max_size=200),
    st.builds(
        lambda ref, after, extra: json.dumps({"ref": ref, "after": after, **extra}).encode(),
        st.one_of(st.text(max_size=30), st.sampled_from(["refs/heads/main", "refs/tags/v"])),
        st.one_of(st.text(max_size=64), st.just("a" * 40), st.just("0" * 40)),
        st.dictionaries(st.sampled_from(["repository", "project", "deleted"]), VALUES),
    ),
)


@seed(10)
@SETTINGS
@given(st.sampled_from(["github", "gitea", "gitlab", "other"]), HEADERS, BODIES)
def test_a_webhook_delivery_is_read_or_refused_with_the_rooms_error(
    provider: str, headers: dict[str, str], body: bytes
) -> None:
    with contextlib.suppress(WebhookRejected):
        verify(provider, headers, body, "secret")
    try:
        read_event(provider, headers, body)
    except InvalidWebhookPayload as exc:
        assert str(exc)
