"""The runtime room: container engines behind one `Engine` interface.

`DockerEngine` speaks the Docker Engine API (dockerd, or Podman's compatible socket);
`SwarmEngine` runs instances on a Docker Swarm through one manager, with the `Edge` that lets
Baepo's machine reach them (docs/swarm.md). The
labels contract and the interface are in `baepo.runtime.engine`, the error tree in
`baepo.runtime.errors`. The fake for other rooms' unit tests, `MemoryEngine`, lives with the
tests (`tests/fakes/engine.py`): the package ships no fake.
"""

from baepo.runtime.engine import (
    DEFAULT_CAPABILITIES,
    DEFAULT_PIDS_LIMIT,
    LABEL_INSTANCE,
    LABEL_MANAGED,
    LABEL_PORT,
    LABEL_REVISION,
    LABEL_SERVICE,
    BuildSpec,
    ContainerSpec,
    Credentials,
    Engine,
    EngineEvent,
    EventAction,
    EventStream,
    Image,
    Instance,
    InstanceState,
    Limits,
    LineSink,
    LocalImage,
    Mount,
    Network,
    OutputLine,
    OutputSource,
    OutputStream,
    Usage,
    image_reference,
)
from baepo.runtime.engine_api import DockerEngine
from baepo.runtime.errors import (
    BuildCancelled,
    BuildFailed,
    ContainerConflict,
    ContainerNotFound,
    EngineError,
    EngineUnavailable,
    ImageNotFound,
    PullFailed,
    PushFailed,
    StartFailed,
)
from baepo.runtime.swarm import SwarmEngine
from baepo.runtime.swarm_edge import Edge

__all__ = [
    "DEFAULT_CAPABILITIES",
    "DEFAULT_PIDS_LIMIT",
    "LABEL_INSTANCE",
    "LABEL_MANAGED",
    "LABEL_PORT",
    "LABEL_REVISION",
    "LABEL_SERVICE",
    "BuildCancelled",
    "BuildFailed",
    "BuildSpec",
    "ContainerConflict",
    "ContainerNotFound",
    "ContainerSpec",
    "Credentials",
    "DockerEngine",
    "Edge",
    "Engine",
    "EngineError",
    "EngineEvent",
    "EngineUnavailable",
    "EventAction",
    "EventStream",
    "Image",
    "ImageNotFound",
    "Instance",
    "InstanceState",
    "Limits",
    "LineSink",
    "LocalImage",
    "Mount",
    "Network",
    "OutputLine",
    "OutputSource",
    "OutputStream",
    "PullFailed",
    "PushFailed",
    "StartFailed",
    "SwarmEngine",
    "Usage",
    "image_reference",
]
