"""ECR's names and rights over Baepo's registry: repository names, ARNs and URIs, and who may
do what, by the registry's own rights (the auth room's `allowed`), said as ECR says it.

A repository the caller may not pull answers as if it did not exist (RepositoryNotFound), as
the REST API does; one it may see but not change is AccessDenied, naming the action
(`ecr:DeleteRepository`) and the resource, in IAM's words.
"""

from __future__ import annotations

from baepo.auth import repository
from baepo.auth.rights import allowed
from baepo.aws import AccessDenied, Call, Params
from baepo.aws.ecr.errors import RepositoryNotFound
from baepo.registry import NameUnknown, Registry, RepositoryInfo

REPOSITORY_NAME = r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*"
"""ECR's own pattern for a repository name (botocore's model): Baepo's `user/repo` names
are such names."""
REGISTRY_ID = r"[0-9]{12}"


def repository_name(params: Params) -> str:
    """The request's `repositoryName`, checked as ECR checks it. A `registryId` is read and
    checked too, and otherwise ignored: Baepo is one registry, whatever id a client names."""
    params.text("registryId", pattern=REGISTRY_ID)
    return params.required_text(
        "repositoryName", pattern=REPOSITORY_NAME, min_length=2, max_length=256
    )


def repository_arn(call: Call, name: str) -> str:
    return call.arn("ecr", f"repository/{name}")


def not_found(call: Call, name: str) -> RepositoryNotFound:
    return RepositoryNotFound(
        f"The repository with name '{name}' does not exist in the registry with id '{call.account}'"
    )


def may(call: Call, name: str, action: str, public: bool = False) -> bool:
    return bool(allowed(call.caller, repository(name, action), public))


def visible(call: Call, registry: Registry, name: str) -> RepositoryInfo:
    """The repository, if it exists and the caller may pull it; RepositoryNotFound otherwise."""
    try:
        info = registry.repository(name)
    except NameUnknown as exc:
        raise not_found(call, name) from exc
    if not may(call, name, "pull", info.public):
        raise not_found(call, name)
    return info


def require(call: Call, registry: Registry, name: str, action: str) -> RepositoryInfo:
    """The repository, if the caller may see it and do `action` (push, delete) to it."""
    info = visible(call, registry, name)
    if not may(call, name, action, info.public):
        raise denied(call, name)
    return info


def denied(call: Call, name: str) -> AccessDenied:
    user = f"arn:baepo:iam::{call.account}:user/{call.caller.name}"
    return AccessDenied(
        f"User: {user} is not authorized to perform: ecr:{call.operation} on resource: "
        f"{repository_arn(call, name)} because no identity-based policy allows the "
        f"ecr:{call.operation} action"
    )
