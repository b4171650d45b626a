"""Image references as a service names them, and whether they live in Baepo's own registry.

`[domain[:port]/]path[:tag][@digest]`, with the grammar of the distribution project's
`reference` package. The first path component is a domain when it holds a `.` or a `:` or is
`localhost`, as Docker decides. A service tracks a *tag*; a revision pins the *digest* the tag
pointed to when it was deployed (`pinned`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from baepo.runtime import Credentials

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"^{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?$")
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")
MAX_REFERENCE_LENGTH = 255


class BadReference(ValueError):
    pass


@dataclass(frozen=True)
class ImageName:
    domain: str | None
    path: str
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, ref: str) -> ImageName:
        """Split `ref`; raise `BadReference` with the reason when it is not a reference."""
        if not ref or len(ref) > MAX_REFERENCE_LENGTH:
            raise BadReference(f"must be 1 to {MAX_REFERENCE_LENGTH} characters")
        if any(c.isspace() for c in ref):
            raise BadReference("must not contain spaces")
        name, at, digest = ref.partition("@")
        if at and not _DIGEST.fullmatch(digest):
            raise BadReference(f"{digest!r} is not a digest (algorithm:hex)")
        tag: str | None = None
        slash, colon = name.rfind("/"), name.rfind(":")
        if colon > slash:
            name, tag = name[:colon], name[colon + 1 :]
            if not _TAG.fullmatch(tag):
                raise BadReference(f"{tag!r} is not a valid tag")
        first, sep, rest = name.partition("/")
        domain: str | None = None
        if sep and ("." in first or ":" in first or first == "localhost"):
            if not _DOMAIN.fullmatch(first):
                raise BadReference(f"{first!r} is not a valid registry host")
            domain, name = first, rest
        components = name.split("/")
        if not all(_PATH_COMPONENT.fullmatch(c) for c in components):
            raise BadReference(
                f"{name!r} is not a repository name (lowercase letters, digits, '.', '_', '-')"
            )
        return cls(domain=domain, path=name, tag=tag, digest=digest or None)

    @property
    def repository(self) -> str:
        """The reference without tag or digest, as written: `localhost:5000/team/app`."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def effective_tag(self) -> str:
        return self.tag or "latest"

    def pinned(self, digest: str) -> str:
        """`repository@digest`: the exact image, whatever the tag points to later."""
        return f"{self.repository}@{digest}"

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def _no_credentials() -> Credentials | None:
    return None


@dataclass(frozen=True)
class RegistryLink:
    """How the control room knows Baepo's own registry.

    `hosts` are the names images in it carry (`127.0.0.1:5000`, `localhost:5000`, a public
    host name); `credentials` returns what the engine pulls from it with (a robot or admin
    credential), called at each pull so a rotated credential is picked up.
    """

    hosts: tuple[str, ...] = ()
    credentials: Callable[[], Credentials | None] = field(default=_no_credentials)

    @classmethod
    def of(
        cls,
        hosts: Iterable[str],
        credentials: Callable[[], Credentials | None] = _no_credentials,
    ) -> RegistryLink:
        return cls(tuple(h.lower() for h in hosts), credentials)

    def owns(self, image: ImageName) -> bool:
        return image.domain is not None and image.domain.lower() in self.hosts

    def tracks(self, image: ImageName, repository: str, tag: str | None) -> bool:
        """Whether a push of `repository:tag` to Baepo's registry moves `image`'s tag."""
        return (
            self.owns(image)
            and image.digest is None
            and tag is not None
            and image.path == repository
            and image.effective_tag == tag
        )

    def auth_for(self, image: ImageName) -> Credentials | None:
        return self.credentials() if self.owns(image) else None
