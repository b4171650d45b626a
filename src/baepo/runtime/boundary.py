"""Where the Engine API client's exceptions become the room's errors: `boundary`, and nowhere
else (`engine_api` for containers, images and networks; `builds` for builds and pushes)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from baepo.runtime.engine_http import ResponseError, TransportError
from baepo.runtime.errors import (
    ContainerConflict,
    ContainerNotFound,
    EngineError,
    EngineUnavailable,
)


@contextmanager
def boundary(
    what: str,
    *,
    not_found: Callable[[str], EngineError] = ContainerNotFound,
    other: Callable[[str], EngineError] = EngineError,
) -> Iterator[None]:
    """Translate what the client raises while doing `what` into the room's errors."""
    try:
        yield
    except EngineError:
        raise
    except ResponseError as exc:
        if exc.status == 404:
            raise not_found(f"cannot {what}: {exc.message}") from exc
        # Podman 4.3 answers a taken name with 500 "… that name is already in use".
        if exc.status == 409 or "already in use" in exc.message:
            raise ContainerConflict(f"cannot {what}: {exc.message}") from exc
        raise other(f"cannot {what}: {exc.message}") from exc
    except (TransportError, OSError) as exc:
        raise EngineUnavailable(f"cannot {what}: {exc}") from exc
