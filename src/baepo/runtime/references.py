"""Image references: `[domain[:port]/]path[:tag][@digest]`, as the distribution spec names them.

Only what the runtime needs: split a reference to pull it, and tell whether two references name
the same repository (`busybox` and `docker.io/library/busybox` do) to pick the right entry of an
image's `RepoDigests`.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_DOMAIN = "docker.io"


@dataclass(frozen=True)
class Reference:
    repository: str
    """As written, without tag or digest: `localhost:5000/team/app`, `busybox`."""
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, ref: str) -> Reference:
        name, _, digest = ref.partition("@")
        tag: str | None = None
        slash = name.rfind("/")
        colon = name.rfind(":")
        if colon > slash:
            name, tag = name[:colon], name[colon + 1 :]
        return cls(repository=name, tag=tag or None, digest=digest or None)

    def with_default_tag(self) -> str:
        """The reference to look the image up by after a pull: by digest, else tag or latest."""
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag or 'latest'}"

    @property
    def canonical_repository(self) -> str:
        """`busybox` → `docker.io/library/busybox`; `localhost:5000/app` stays as it is."""
        first, slash, rest = self.repository.partition("/")
        has_domain = bool(slash) and ("." in first or ":" in first or first == "localhost")
        if has_domain:
            domain, path = first, rest
        else:
            domain, path = DEFAULT_DOMAIN, self.repository
        if domain in ("docker.io", "index.docker.io", "registry-1.docker.io"):
            domain = DEFAULT_DOMAIN
            if "/" not in path:
                path = f"library/{path}"
        return f"{domain}/{path}"

    def same_repository(self, other: Reference) -> bool:
        return self.canonical_repository == other.canonical_repository
