"""The engine's one-shot stats read as `Usage`: Docker's and Podman's answers alike, a stopped
container as no figures, a malformed answer as an engine error."""

from __future__ import annotations

import json

import pytest

from baepo.runtime import EngineError, Usage
from baepo.runtime.usage import usage_of

DOCKER_V1 = {
    "read": "2026-12-02T14:51:47.985256012Z",
    "cpu_stats": {"cpu_usage": {"total_usage": 29048221}, "system_cpu_usage": 1217190000000},
    "memory_stats": {
        "usage": 679936,
        "stats": {"cache": 0, "total_inactive_file": 40960, "inactive_file": 1},
        "limit": 67108864,
    },
}
PODMAN = {
    "read": "2026-12-02T14:51:59.284162879Z",
    "cpu_stats": {"cpu_usage": {"total_usage": 34532723}},
    "memory_stats": {"usage": 856064, "limit": 67108864},
}
DOCKER_STOPPED = {
    "read": "0001-01-01T00:00:00Z",
    "cpu_stats": {"cpu_usage": {"total_usage": 0}},
    "memory_stats": {},
}


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (DOCKER_V1, Usage(29048221, 679936 - 40960, 67108864)),
        (PODMAN, Usage(34532723, 856064, 67108864)),
        (  # cgroup v2: inactive_file
            {**PODMAN, "memory_stats": {"usage": 1000, "stats": {"inactive_file": 400}}},
            Usage(34532723, 600, None),
        ),
        (  # an unlimited container on a cgroup v1 Docker
            {**PODMAN, "memory_stats": {"usage": 10, "limit": 9223372036854771712}},
            Usage(34532723, 10, None),
        ),
        (DOCKER_STOPPED, None),
    ],
)
def test_stats_answers_read_as_usage(answer: object, expected: Usage | None) -> None:
    assert usage_of(json.dumps(answer).encode()) == expected


def test_podmans_empty_answer_for_a_stopped_container_is_no_figures() -> None:
    assert usage_of(b"") is None
    assert usage_of(b"\n") is None


@pytest.mark.parametrize("answer", [b"<html>", b"[1, 2]"])
def test_an_answer_that_is_no_stats_object_is_an_engine_error(answer: bytes) -> None:
    with pytest.raises(EngineError, match="stats are no"):
        usage_of(answer)
