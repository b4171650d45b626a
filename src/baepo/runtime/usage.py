"""Reading the Engine API's one-shot stats (`GET /containers/{id}/stats?stream=false&one-shot=true`)
as a `Usage`.

Docker 20.10 and Podman 4.3 both answer it, differently:

    a running container   cpu_stats.cpu_usage.total_usage (ns), memory_stats.usage and .limit
    its page cache        Docker: memory_stats.stats.total_inactive_file (cgroup v1) or
                          .inactive_file (v2), left out of the usage as `docker stats` does;
                          Podman: no breakdown, its usage is already without it
    a stopped container   Docker: zeros, "read" 0001-01-01 and empty memory_stats;
                          Podman: 200 with an empty body
    an unlimited one      the limit is the host's memory (Docker) or a huge number: kept as
                          the engine says, but a figure past 2^60 bytes is no limit (None)

`usage_of` is pure: the engine's bytes in, `Usage` (or None: not running) out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from baepo.runtime.engine import Usage
from baepo.runtime.errors import EngineError

NO_LIMIT = 1 << 60


def usage_of(answer: bytes) -> Usage | None:
    if not answer.strip():
        return None  # Podman: the container is not running
    try:
        stats = json.loads(answer)
    except ValueError as exc:
        raise EngineError(f"the engine's stats are no JSON: {answer[:200]!r}") from exc
    if not isinstance(stats, dict):
        raise EngineError(f"the engine's stats are no object: {answer[:200]!r}")
    memory = _mapping(stats.get("memory_stats"))
    if not memory or str(stats.get("read", "")).startswith("0001-"):
        return None  # Docker: the container is not running
    cpu = _mapping(_mapping(stats.get("cpu_stats")).get("cpu_usage"))
    usage = _int(memory.get("usage"))
    breakdown = _mapping(memory.get("stats"))
    cache = _int(breakdown.get("total_inactive_file", breakdown.get("inactive_file")))
    limit = _int(memory.get("limit"))
    return Usage(
        cpu_ns=_int(cpu.get("total_usage")),
        memory_bytes=usage - cache if cache < usage else usage,
        memory_limit_bytes=limit if 0 < limit < NO_LIMIT else None,
    )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
