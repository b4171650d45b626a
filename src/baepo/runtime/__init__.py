"""The runtime room: container engines behind one `Engine` interface.

`DockerEngine` speaks the Docker Engine API (dockerd, or Podman's compatible socket). The
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
    ContainerConflict,
    ContainerNotFound,
    EngineError,
    EngineUnavailable,
    ImageNotFound,
    PullFailed,
    StartFailed,
)

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
    "EventAction",
    "EventStream",
    "Image",
    "ImageNotFound",
    "Instance",
    "InstanceState",
    "Limits",
    "Mount",
    "Network",
    "OutputLine",
    "OutputSource",
    "OutputStream",
    "PullFailed",
    "StartFailed",
    "Usage",
    "image_reference",
]
