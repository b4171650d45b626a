"""The runtime room: container engines behind one `Engine` interface.

`DockerEngine` speaks the Docker Engine API (dockerd, or Podman's compatible socket);
`MemoryEngine` is the fake for other rooms' unit tests. The labels contract and the interface
are in `baepo.runtime.engine`, the error tree in `baepo.runtime.errors`.
"""

from baepo.runtime.engine import (
    DEFAULT_CAPABILITIES,
    DEFAULT_PIDS_LIMIT,
    LABEL_INSTANCE,
    LABEL_MANAGED,
    LABEL_PORT,
    LABEL_REVISION,
    LABEL_SERVICE,
    ContainerSpec,
    Credentials,
    Engine,
    EngineEvent,
    EventStream,
    Image,
    Instance,
    InstanceState,
    Limits,
    Network,
)
from baepo.runtime.engine_api import DockerEngine
from baepo.runtime.errors import (
    ContainerConflict,
    ContainerNotFound,
    EngineError,
    EngineUnavailable,
    ImageNotFound,
    PullFailed,
    StartFailed,
)
from baepo.runtime.memory import FakeImage, MemoryEngine, baepo_test_images

__all__ = [
    "DEFAULT_CAPABILITIES",
    "DEFAULT_PIDS_LIMIT",
    "LABEL_INSTANCE",
    "LABEL_MANAGED",
    "LABEL_PORT",
    "LABEL_REVISION",
    "LABEL_SERVICE",
    "ContainerConflict",
    "ContainerNotFound",
    "ContainerSpec",
    "Credentials",
    "DockerEngine",
    "Engine",
    "EngineError",
    "EngineEvent",
    "EngineUnavailable",
    "EventStream",
    "FakeImage",
    "Image",
    "ImageNotFound",
    "Instance",
    "InstanceState",
    "Limits",
    "MemoryEngine",
    "Network",
    "PullFailed",
    "StartFailed",
    "baepo_test_images",
]
