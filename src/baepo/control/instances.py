"""Instances as containers: how a revision becomes a `ContainerSpec`, and how one is read back.

An instance is one container of one revision, named by its instance id
`<service>-<revision>-<6 hex>` (also its server name in the route). It carries the runtime's
labels (`baepo.service`, `baepo.revision`, `baepo.instance`) plus `baepo.installation`, the
fingerprint of this Baepo's secrets key, so that two Baepos sharing one engine never adopt or
remove each other's containers. Its environment is the revision's env and secrets, plus `PORT`
(as App Runner sets it) unless the service sets its own.

Each service's instances join the service's own engine network (`network_name`), made by the
reconciler before its first instance starts and removed once the service is gone: services
cannot reach each other's containers, and the router and the probes reach an instance at its
address on that network. Nothing is published on host ports.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from baepo.control.planning import ObservedInstance
from baepo.control.spec import ServiceSpec
from baepo.runtime import (
    LABEL_INSTANCE,
    LABEL_REVISION,
    LABEL_SERVICE,
    ContainerSpec,
    Engine,
    EngineError,
    Instance,
)

LABEL_INSTALLATION = "baepo.installation"
"""Which Baepo started the container (`SecretBox.fingerprint`)."""


@dataclass(frozen=True)
class Revision:
    """A revision as the reconciler runs it (immutable, so cached forever)."""

    number: int
    spec: ServiceSpec
    image: str
    digest: str | None
    run_image: str
    """What the engine runs: `repository@digest` when pinned (`RegistryLink.runnable`)."""


def network_name(installation: str, service: str) -> str:
    """`baepo-<installation>-<service>`: one network per service and per Baepo."""
    return f"baepo-{installation[:12]}-{service}"


def network_labels(installation: str, service: str) -> dict[str, str]:
    return {LABEL_INSTALLATION: installation, LABEL_SERVICE: service}


def new_instance_id(service: str, revision: int) -> str:
    return f"{service}-{revision}-{secrets.token_hex(3)}"


def revision_of(service: str, instance: str) -> int | None:
    """The revision an instance id (`new_instance_id`) names, if it is one of `service`'s."""
    number, _, rest = instance.removeprefix(f"{service}-").partition("-")
    return int(number) if instance.startswith(f"{service}-") and number.isdigit() and rest else None


def container_spec(
    revision: Revision, service: str, instance: str, installation: str
) -> ContainerSpec:
    spec = revision.spec
    return ContainerSpec(
        image=revision.run_image,
        name=f"baepo-{instance}",
        port=spec.port,
        command=spec.command,
        env={"PORT": str(spec.port), **spec.env, **spec.secrets},
        labels={
            LABEL_INSTALLATION: installation,
            LABEL_SERVICE: service,
            LABEL_REVISION: str(revision.number),
            LABEL_INSTANCE: instance,
        },
        cpu=spec.cpu,
        memory_mb=spec.memory_mb,
        network=network_name(installation, service),
    )


def labelled(container: Instance) -> bool:
    """Whether the container is a service instance (not, say, a pipeline step)."""
    return all(k in container.labels for k in (LABEL_SERVICE, LABEL_REVISION, LABEL_INSTANCE))


def revision_label(container: Instance) -> int | None:
    try:
        return int(container.labels.get(LABEL_REVISION, ""))
    except ValueError:
        return None


def logs_of(
    engine: Engine,
    instances: Sequence[ObservedInstance],
    tail: int,
    health_detail: Callable[[str], str],
) -> list[str]:
    """Lines for an operation's log: each instance's last health check and last log lines."""
    lines: list[str] = []
    for instance in instances:
        detail = health_detail(instance.id)
        if detail:
            lines.append(f"{instance.name}: last health check: {detail}")
        try:
            text = engine.logs(instance.id, tail=tail)
        except EngineError as exc:
            lines.append(f"{instance.name}: logs unavailable: {exc}")
            continue
        body = text.splitlines()
        if body:
            lines.append(f"{instance.name}: last {len(body)} log lines:")
        else:
            lines.append(f"{instance.name}: wrote no log lines")
        lines += [f"{instance.name} | {line}" for line in body]
    return lines
