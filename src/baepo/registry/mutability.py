"""Tag immutability, per repository (ECR's rule): whether a tag, once pushed, may be moved to
another manifest.

    TagMutability()                                  every tag may move (the default)
    TagMutability(immutable=True)                    no tag may move
    TagMutability(True, exceptions=("latest",))      none may, but `latest`
    TagMutability(False, exceptions=("release-*",))  all may, but the `release-*` ones

Exceptions are wildcard filters (`*` matches any run of characters). A push of a fixed tag that
already names another manifest is refused with TAG_INVALID, which the docker CLI prints as
`tag invalid: The image tag 'v1' already exists in the 'team/app' repository and cannot be
overwritten because the repository is immutable.` (ECR's words). Pushing the same manifest
under it again is no change, and is accepted; deleting a fixed tag is allowed (as in ECR).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from baepo.registry.errors import TagInvalid

FILTER = re.compile(r"[0-9a-zA-Z._*-]{1,128}")
MAX_EXCEPTIONS = 5


@dataclass(frozen=True)
class TagMutability:
    immutable: bool = False
    exceptions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.exceptions) > MAX_EXCEPTIONS:
            raise TagInvalid(f"at most {MAX_EXCEPTIONS} exceptions to tag immutability")
        for pattern in self.exceptions:
            if FILTER.fullmatch(pattern) is None:
                raise TagInvalid(
                    f"{pattern[:200]!r} is not a tag filter: letters, digits, '.', '_', '-' "
                    "and the wildcard '*', at most 128"
                )

    def fixed(self, tag: str) -> bool:
        """Whether `tag` may not be moved once it names a manifest."""
        excepted = any(fnmatchcase(tag, pattern) for pattern in self.exceptions)
        return self.immutable != excepted

    def refusal(self, repository: str, tag: str) -> TagInvalid:
        why = "the repository is immutable" if self.immutable else "the tag is immutable"
        return TagInvalid(
            f"The image tag '{tag}' already exists in the '{repository}' repository and cannot "
            f"be overwritten because {why}.",
            {"tag": tag},
        )
