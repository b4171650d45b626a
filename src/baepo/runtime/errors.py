"""Errors of the runtime room.

    EngineError                  anything the container engine refused or failed to do
    ├── EngineUnavailable        the engine socket does not answer (not running, no permission,
    │                            timed out); a loop retries later, nothing is wrong with the request
    ├── ImageNotFound            the image is not present locally (run), or its registry has no
    │                            such repository or tag (pull)
    ├── PullFailed               a pull failed for another reason: registry unreachable, credentials
    │                            refused, a malformed reference
    ├── ContainerNotFound        no container with that id or name
    ├── ContainerConflict        the engine's state forbids it: the name is taken, a removal is
    │                            already in progress
    ├── StartFailed              the engine refused to create or start the container: an invalid
    │                            spec, an entrypoint missing from the image, a port unavailable
    │                            (a container that starts and then exits is *not* an error: it is
    │                            an `Instance` in state "exited" with its exit code)
    ├── BuildFailed              a build did not produce its image: the context is unreadable, the
    │                            Dockerfile is wrong, a RUN step exited non-zero, the FROM image
    │                            is absent; the message is the builder's own
    ├── BuildCancelled           the build was cancelled by its caller (and stopped by the engine)
    └── PushFailed               a push did not store the image: no such local image, credentials
                                 refused, the registry unreachable or refusing it

Foreign exceptions (the Engine API client's `ResponseError` and `TransportError`, OS errors)
are translated once, in `engine_api.py`, with `raise ... from exc`; nothing outside this room
sees them.
"""

from __future__ import annotations


class EngineError(Exception):
    pass


class EngineUnavailable(EngineError):
    pass


class ImageNotFound(EngineError):
    pass


class PullFailed(EngineError):
    pass


class ContainerNotFound(EngineError):
    pass


class ContainerConflict(EngineError):
    pass


class StartFailed(EngineError):
    pass


class BuildFailed(EngineError):
    pass


class BuildCancelled(EngineError):
    pass


class PushFailed(EngineError):
    pass
