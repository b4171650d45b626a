"""Image references as a service names them, and whether they live in Baepo's own registry.

`ImageName` is Baepo's one reference type (`baepo.references.Reference`: distribution's
grammar, Docker's reading of it), under the name the control room has always used:
`ImageName.parse(text)` gives `.domain`, `.path`, `.tag`, `.digest`, `.repository`,
`.effective_tag` and `.pinned(digest)`, or raises `BadReference` with the reason. A service
tracks a *tag*; a revision pins the *digest* the tag pointed to when it was deployed.
`validate_image` is the one check of an `image` field that create, update and deploy share: it
turns a `BadReference` into the room's `InvalidServiceSpec`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from baepo.control.errors import InvalidServiceSpec
from baepo.references import InvalidReference, Reference
from baepo.runtime import Credentials

ImageName = Reference
BadReference = InvalidReference


def validate_image(value: object) -> ImageName:
    """`value` parsed as an image reference, or `InvalidServiceSpec` for the field `image`
    with the reason (the same for `services create`, `update --image` and `deploy --image`)."""
    if not isinstance(value, str) or not value:
        raise InvalidServiceSpec(
            [("image", "is required: an image reference such as localhost:5000/team/app:1")]
        )
    try:
        return ImageName.parse(value)
    except BadReference as exc:
        reason = f"{value[:300]!r} is not an image reference: {exc}"
        raise InvalidServiceSpec([("image", reason)]) from exc


def _no_credentials() -> Credentials | None:
    return None


@dataclass(frozen=True)
class RegistryLink:
    """How the control room knows Baepo's own registry.

    `hosts` are the names images in it carry (`127.0.0.1:5000`, `localhost:5000`, a public
    host name); `credentials` returns what the engine pulls from it with (a robot or admin
    credential), called at each pull: the composition root reads it from the secrets
    directory each time, so a rotated credential is picked up. `pull_host`, when
    set, is where the engine on this machine reaches the registry (its loopback address):
    an image named `registry.example.org/team/app` is pulled and run from there, so the
    engine needs neither a DNS name nor trust in Baepo's CA for Baepo's own images.
    """

    hosts: tuple[str, ...] = ()
    credentials: Callable[[], Credentials | None] = field(default=_no_credentials)
    pull_host: str | None = None

    @classmethod
    def of(
        cls,
        hosts: Iterable[str],
        credentials: Callable[[], Credentials | None] = _no_credentials,
        pull_host: str | None = None,
    ) -> RegistryLink:
        return cls(tuple(h.lower() for h in hosts), credentials, pull_host)

    def runnable(self, image: str, digest: str | None) -> str:
        """What the engine pulls and runs for `image`: `repository@digest` when pinned (the
        reference as configured otherwise), from `pull_host` when the image is Baepo's."""
        name = ImageName.parse(image)
        repository = name.repository
        if self.pull_host and self.owns(name):
            repository = f"{self.pull_host}/{name.path}"
        if digest:
            return f"{repository}@{digest}"
        return (
            repository
            + (f":{name.tag}" if name.tag else "")
            + (f"@{name.digest}" if name.digest else "")
        )

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
