"""Fakes for the control room's unit tests: a prober that is told, and a push log.

The data plane's fake, `MemoryRouter`, is shared with other rooms' tests (`tests/fakes`).
`MemoryPushLog` stands in for the registry's durable push log that auto-deploy follows.
`FakeProber` answers health checks from the engine's view of the instance: an instance is
healthy unless its image or its id was marked sick.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from baepo.control import HealthCheck, ProbeResult
from baepo.runtime import Instance
from tests.fakes.engine import MemoryEngine


class FakeProber:
    def __init__(self, engine: MemoryEngine) -> None:
        self.engine = engine
        self.sick_images: set[str] = set()
        self.sick_instances: set[str] = set()
        self.probes = 0
        self.healthy: Callable[[Instance], bool] = self._default

    def _default(self, instance: Instance) -> bool:
        if instance.id in self.sick_instances:
            return False
        return not any(marker in instance.image for marker in self.sick_images)

    async def probe(self, address: str, check: HealthCheck) -> ProbeResult:
        self.probes += 1
        for instance in self.engine.list({}):
            if instance.running and instance.address == address:
                if self.healthy(instance):
                    return ProbeResult(True, f"{check.describe()}: HTTP 200")
                return ProbeResult(False, f"{check.describe()}: connection refused")
        return ProbeResult(False, "connection refused")


@dataclass(frozen=True)
class Push:
    id: int
    repository: str
    tag: str | None
    digest: str
    actor: str


class MemoryPushLog:
    """The registry's push log, in memory: `record` is a push the registry committed."""

    def __init__(self) -> None:
        self.pushes: list[Push] = []

    def record(self, repository: str, tag: str | None, digest: str, actor: str = "alice") -> Push:
        push = Push(len(self.pushes) + 1, repository, tag, digest, actor)
        self.pushes.append(push)
        return push

    def pushes_after(self, position: int, limit: int = 100) -> list[Push]:
        return [p for p in self.pushes if p.id > position][:limit]

    def last_push(self) -> int:
        return len(self.pushes)
