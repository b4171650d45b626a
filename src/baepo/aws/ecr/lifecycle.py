"""ECR's lifecycle policy operations over the registry's own (registry/lifecycle.py and
expiry.py): PutLifecyclePolicy, GetLifecyclePolicy, DeleteLifecyclePolicy,
StartLifecyclePolicyPreview and GetLifecyclePolicyPreview.

A preview is COMPLETE at once: starting one keeps its policy in the repository's row (the
latest per repository), and reading it computes what the policy expires then (it is quick: one
repository's rows), so any process sharing the database answers it. It shows what would really
expire: images a service still runs are kept, as when the policy is applied (every hour, or
with `baepo registry policy expire`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from baepo.aws import Call, Params
from baepo.aws.ecr.access import denied, repository_name, require, visible
from baepo.aws.ecr.errors import LifecyclePolicyNotFound, LifecyclePolicyPreviewNotFound
from baepo.aws.paging import Paging
from baepo.registry import Expiry, LifecyclePolicies, Registry

PAGING = Paging(default=100, maximum=100)
POLICY = "lifecyclePolicyText"


class Lifecycle:
    def __init__(self, registry: Registry, policies: LifecyclePolicies) -> None:
        self._registry = registry
        self._policies = policies

    def put(self, call: Call, params: Params) -> Mapping[str, Any]:
        name = repository_name(params)
        text = params.required_text(POLICY, min_length=100, max_length=30720)
        self._owned(call, name)
        self._registry.set_lifecycle_policy(name, text)
        return {"registryId": call.account, "repositoryName": name, "lifecyclePolicyText": text}

    def get(self, call: Call, params: Params) -> Mapping[str, Any]:
        name = repository_name(params)
        info = visible(call, self._registry, name)
        if info.lifecycle_policy is None:
            raise _no_policy(call, name)
        found: dict[str, Any] = {
            "registryId": call.account,
            "repositoryName": name,
            "lifecyclePolicyText": info.lifecycle_policy,
        }
        if info.lifecycle_evaluated_at is not None:
            found["lastEvaluatedAt"] = info.lifecycle_evaluated_at
        return found

    def delete(self, call: Call, params: Params) -> Mapping[str, Any]:
        found = self.get(call, params)
        name = found["repositoryName"]
        self._owned(call, name)
        self._registry.set_lifecycle_policy(name, None)
        return found

    def start_preview(self, call: Call, params: Params) -> Mapping[str, Any]:
        name = repository_name(params)
        given = params.text(POLICY, min_length=100, max_length=30720)
        info = visible(call, self._registry, name)
        text = given or info.lifecycle_policy
        if text is None:
            raise _no_policy(call, name)
        self._policies.preview(name, text)  # a policy that cannot be applied fails here
        self._registry.set_lifecycle_preview(name, text)
        return {
            "registryId": call.account,
            "repositoryName": name,
            "lifecyclePolicyText": text,
            "status": "COMPLETE",
        }

    def get_preview(self, call: Call, params: Params) -> Mapping[str, Any]:
        name = repository_name(params)
        wanted = params.structures("imageIds", min_items=1, max_items=100)
        status = _tag_status(params)
        text = visible(call, self._registry, name).lifecycle_preview
        if text is None:
            raise LifecyclePolicyPreviewNotFound(
                f"There is no preview for the repository with name '{name}' in the registry "
                f"with id '{call.account}': start one with StartLifecyclePolicyPreview"
            )
        expiring = self._policies.preview(name, text)
        chosen = [e for e in expiring if _tagged(e, status) and _named(e, wanted)]
        page, more = PAGING.page(params, chosen, _digest)
        return {
            "registryId": call.account,
            "repositoryName": name,
            "lifecyclePolicyText": text,
            "status": "COMPLETE",
            "previewResults": [_result(e) for e in page],
            "summary": {"expiringImageTotalCount": len(expiring)},
            **more,
        }

    def _owned(self, call: Call, name: str) -> None:
        """A policy expires images: the owner's decision (push and delete, unlimited)."""
        require(call, self._registry, name, "push")
        require(call, self._registry, name, "delete")
        if call.caller.limited:
            raise denied(call, name)


def _no_policy(call: Call, name: str) -> LifecyclePolicyNotFound:
    return LifecyclePolicyNotFound(
        f"Lifecycle policy does not exist for the repository with name '{name}' in the "
        f"registry with id '{call.account}'"
    )


def _tag_status(params: Params) -> str | None:
    found = params.structure("filter")
    return None if found is None else found.choice("tagStatus", ("TAGGED", "UNTAGGED", "ANY"))


def _tagged(expiry: Expiry, status: str | None) -> bool:
    return status in (None, "ANY") or (status == "TAGGED") == bool(expiry.tags)


def _named(expiry: Expiry, wanted: list[Params] | None) -> bool:
    if wanted is None:
        return True
    return any(
        i.text("imageDigest") == expiry.digest or i.text("imageTag") in expiry.tags for i in wanted
    )


def _digest(expiry: Expiry) -> str:
    return expiry.digest


def _result(expiry: Expiry) -> dict[str, Any]:
    result: dict[str, Any] = {
        "imageDigest": expiry.digest,
        "imagePushedAt": expiry.pushed_at,
        "action": {"type": "EXPIRE"},
        "appliedRulePriority": expiry.rule,
    }
    if expiry.tags:
        result["imageTags"] = list(expiry.tags)
    return result
