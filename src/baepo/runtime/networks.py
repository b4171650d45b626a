"""Engine networks Baepo makes, for both engines: `DockerEngine`'s bridges and `SwarmEngine`'s
attachable overlays. Made idempotently (one made meanwhile by someone else is the same
network), listed by labels, removed (a no-op when absent; `ContainerConflict` while a running
container is attached: Docker answers 403 "has active endpoints", Podman 500 "… is being
used")."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from baepo.runtime.boundary import boundary
from baepo.runtime.engine import LABEL_MANAGED, Network
from baepo.runtime.engine_http import EngineClient, endpoint
from baepo.runtime.errors import ContainerConflict, EngineError


def create(
    client: EngineClient,
    name: str,
    labels: Mapping[str, str],
    *,
    driver: str,
    options: Mapping[str, str] | None = None,
    attachable: bool = False,
) -> None:
    body: dict[str, Any] = {
        "Name": name,
        "Driver": driver,
        "Options": dict(options or {}),
        "CheckDuplicate": True,
        "Labels": {**labels, LABEL_MANAGED: "true"},
    }
    if attachable:
        body["Attachable"] = True
    try:
        with boundary(f"create network {name}"):
            client.json("POST", "/networks/create", body=body)
    except ContainerConflict:
        pass  # made meanwhile by someone else: fine, it is the same network


def listed(
    client: EngineClient, labels: Mapping[str, str], *, driver: str | None = None
) -> list[Network]:
    """The managed networks carrying all of `labels` (of `driver`, if given)."""
    wanted = {**labels, LABEL_MANAGED: "true"}
    filters = {"label": [f"{key}={value}" for key, value in wanted.items()]}
    if driver is not None:
        filters["driver"] = [driver]
    with boundary("list networks"):
        found = client.json("GET", "/networks", query={"filters": json.dumps(filters)})
    networks = [network_of(attrs) for attrs in found or []]
    return [n for n in networks if all(n.labels.get(k) == v for k, v in wanted.items())]


def remove(client: EngineClient, name: str) -> None:
    try:
        with boundary(f"remove network {name}", not_found=_NoNetwork):
            client.request("DELETE", endpoint("/networks/{}", name))
    except _NoNetwork:
        return
    except EngineError as exc:
        text = str(exc).lower()
        if "active endpoints" in text or "in use" in text or "being used" in text:
            raise ContainerConflict(str(exc)) from exc
        if "not found" in text:  # a swarm's 500 for one removed a moment ago
            return
        raise


def network_of(attrs: Mapping[str, Any]) -> Network:
    return Network(
        name=str(attrs.get("Name") or ""),
        id=str(attrs.get("Id") or attrs.get("ID") or ""),
        labels={str(k): str(v) for k, v in (attrs.get("Labels") or {}).items()},
    )


class _NoNetwork(EngineError):
    """A network that does not exist (never leaves this module)."""
