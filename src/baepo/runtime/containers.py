"""What a `ContainerSpec` becomes in the Engine API: the body of `POST /containers/create`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from baepo.runtime.engine import LABEL_MANAGED, LABEL_PORT, ContainerSpec


def create_body(
    spec: ContainerSpec, capabilities: tuple[str, ...], ulimits: Mapping[str, tuple[int, int]]
) -> dict[str, Any]:
    """The body of POST /containers/create for `spec`: what docker-py 7.1's
    `containers.create(detach=True, …)` sent, key for key (tests/runtime/test_engine_api.py
    holds its answers), so engines read our containers exactly as before.

    The SDK's oddities are kept: `NetworkMode` "default" without a network, `NetworkingConfig`
    as `{network: null}` (engines ignore it; `NetworkMode` joins the network), and `Env`,
    `CapAdd`, `Ulimits`, `PidsLimit` and `NanoCpus` left out when empty or zero. Not kept: the
    SDK added proxy variables from the ambient ~/.docker/config.json to `Env`.
    """
    host: dict[str, Any] = {}
    if spec.memory_mb is not None:
        memory = spec.memory_mb * 1024 * 1024
        host["Memory"] = memory
        host["MemorySwap"] = memory  # memory + swap = memory: no swap
    host["NetworkMode"] = spec.network or "default"
    host["RestartPolicy"] = {"Name": "no"}
    if capabilities:
        host["CapAdd"] = list(capabilities)
    host["CapDrop"] = ["ALL"]
    host["SecurityOpt"] = ["no-new-privileges"]
    if ulimits:
        host["Ulimits"] = [
            {"Name": name, "Soft": soft, "Hard": hard} for name, (soft, hard) in ulimits.items()
        ]
    if spec.pids_limit:
        host["PidsLimit"] = spec.pids_limit
    if spec.mounts:
        host["Mounts"] = [
            {"Type": "bind", "Source": m.source, "Target": m.target, "ReadOnly": m.read_only}
            for m in spec.mounts
        ]
    nano_cpus = round(spec.cpu * 1e9) if spec.cpu is not None else 0
    if nano_cpus:
        host["NanoCpus"] = nano_cpus
    body: dict[str, Any] = {
        "Tty": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
    }
    if spec.env:
        body["Env"] = [f"{key}={value}" for key, value in spec.env.items()]
    if spec.command is not None:
        body["Cmd"] = list(spec.command)
    if spec.workdir is not None:
        body["WorkingDir"] = spec.workdir
    body["Image"] = spec.image
    body["NetworkDisabled"] = False
    body["HostConfig"] = host
    if spec.network:
        body["NetworkingConfig"] = {spec.network: None}
    body["Labels"] = {
        **spec.labels,
        LABEL_MANAGED: "true",
        **({LABEL_PORT: str(spec.port)} if spec.port is not None else {}),
    }
    return body
