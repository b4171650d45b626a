"""Which images a caller's service may run: the auth room's rights applied to a reference.

Checked on create, update and deploy, before anything is stored, so a refused image never
becomes an operation (whose log would otherwise tell what the engine found there):

- an image in Baepo's own registry: the caller may pull it (`rights.may_run_from_registry`);
  the engine pulls with Baepo's own credentials, so this is the only check there is;
- from another registry: the reference names its registry (a short name may make the engine
  fall back to any image it holds, by name or by id), and that host is neither this machine nor
  a private network (`rights.may_reach_host`), so nobody probes ports through the engine.
  Names are resolved here; one that does not resolve is refused too. A name whose DNS answer
  changes between this check and the engine's pull is not caught (see docs/services.md).

An unlimited admin may run any image.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from baepo.api.errors import ApiError
from baepo.auth.rights import (
    Caller,
    literal_addresses,
    may_reach_host,
    may_run_anything,
    may_run_from_registry,
)
from baepo.control import RegistryLink
from baepo.control.images import BadReference, ImageName

Resolver = Callable[[str], tuple[str, ...]]
"""A host name → its addresses; raises OSError when it has none."""

IMAGE_FORBIDDEN = "IMAGE_FORBIDDEN"


def resolve(host: str) -> tuple[str, ...]:
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return tuple(sorted({str(info[4][0]) for info in infos}))


class ImageCheck:
    def __init__(
        self, link: RegistryLink, is_public: Callable[[str], bool], resolver: Resolver = resolve
    ) -> None:
        self._link = link
        self._is_public = is_public
        self._resolve = resolver

    def refusal(self, caller: Caller, ref: str) -> str | None:
        """Why the caller may not run `ref`, or None when it may (for the AWS endpoint, which
        answers in its own errors). Blocks, as `check` does."""
        try:
            self.check(caller, ref)
        except ApiError as exc:
            return exc.message
        return None

    def check(self, caller: Caller, ref: str) -> None:
        """Raise `ApiError(403, IMAGE_FORBIDDEN)` unless the caller may run `ref`. Blocks
        (a database read, maybe DNS): call it in a thread."""
        try:
            image = ImageName.parse(ref)
        except BadReference:
            return  # not a reference: the control room says why, with the other fields
        if self._link.owns(image):
            if not may_run_from_registry(caller, image.path, self._is_public(image.path)):
                raise ApiError(
                    403,
                    IMAGE_FORBIDDEN,
                    f"you may not run {ref}: you may not pull {image.path} "
                    "(it is neither in your namespace nor public)",
                )
            return
        if may_run_anything(caller):
            return
        if image.domain is None:
            raise ApiError(
                403,
                IMAGE_FORBIDDEN,
                f"you may not run {ref}: name its registry (docker.io/library/{image.path} or "
                "an image of this Baepo's registry); the engine would also take a local image",
            )
        host = image.domain.rsplit(":", 1)[0] if ":" in image.domain else image.domain
        addresses = literal_addresses(host)
        if addresses is None:
            try:
                addresses = self._resolve(host)
            except OSError as exc:
                raise ApiError(
                    403, IMAGE_FORBIDDEN, f"you may not run {ref}: {host} does not resolve ({exc})"
                ) from exc
        if not addresses or not may_reach_host(caller, addresses):
            raise ApiError(
                403,
                IMAGE_FORBIDDEN,
                f"you may not run {ref}: {host} is on this machine or a private network",
            )
