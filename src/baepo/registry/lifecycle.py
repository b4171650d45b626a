"""Lifecycle policies in ECR's JSON format: which images of a repository expire. Pure: a
policy parsed and checked as ECR checks it, and the plan of what it expires.

    {"rules": [{"rulePriority": 1,
                "description": "keep the 3 newest releases",
                "selection": {"tagStatus": "tagged", "tagPatternList": ["release-*"],
                              "countType": "imageCountMoreThan", "countNumber": 3},
                "action": {"type": "expire"}}]}

A rule selects images by their tags (`tagStatus`: `tagged` with every one of `tagPrefixList`'s
prefixes, or every one of `tagPatternList`'s wildcard patterns, matched by some tag; `untagged`;
`any`) and expires those beyond `countNumber` newest (`imageCountMoreThan`) or pushed more than
`countNumber` days ago (`sinceImagePushed`, `countUnit: days`). Rules run by `rulePriority`,
lowest first, and an image matched by one rule is never expired by a later one (ECR's rule:
"an image that matches the tagging requirements of a rule cannot be expired by a rule with a
lower priority"); a later rule still counts it. The newest come first, so the oldest expire.

Never expired, whatever the rules: an image in `keep` (one a service still runs, or may roll
back to), and an image another one of the repository needs (a child of an index, the referrers
of a subject), which goes once what needs it has gone. Baepo only expires: ECR's archive
transitions and `sinceImagePulled` are refused as not supported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from baepo.registry.errors import LifecyclePolicyInvalid

COUNT_TYPES = ("imageCountMoreThan", "sinceImagePushed")
TAG_STATUSES = ("tagged", "untagged", "any")
MAX_WILDCARDS = 4
MAX_RULES = 50
_PATTERN = re.compile(r"[a-zA-Z0-9._*-]{1,128}")
_PREFIX = re.compile(r"[a-zA-Z0-9._-]{1,128}")


@dataclass(frozen=True)
class Rule:
    priority: int
    tag_status: str
    prefixes: tuple[str, ...]
    patterns: tuple[str, ...]
    count_type: str
    count: int
    description: str = ""

    def selects(self, tags: Collection[str]) -> bool:
        if self.tag_status == "any":
            return True
        if self.tag_status == "untagged":
            return not tags
        if self.prefixes:
            return all(any(tag.startswith(p) for tag in tags) for p in self.prefixes)
        return all(any(_matches(p, tag) for tag in tags) for p in self.patterns)


def _matches(pattern: str, tag: str) -> bool:
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, tag) is not None


@dataclass(frozen=True)
class LifecyclePolicy:
    rules: tuple[Rule, ...]
    """By priority, lowest first."""


@dataclass(frozen=True)
class Candidate:
    """An image as the plan sees it."""

    digest: str
    tags: tuple[str, ...]
    pushed_at: datetime


@dataclass(frozen=True)
class Expiry:
    """An image a policy expires, and the rule that does."""

    digest: str
    tags: tuple[str, ...]
    pushed_at: datetime
    rule: int


def plan(
    policy: LifecyclePolicy,
    images: Sequence[Candidate],
    now: datetime,
    keep: Collection[str] = (),
) -> list[Expiry]:
    """What `policy` expires of `images` at `now`, never one in `keep`; oldest first."""
    newest_first = sorted(images, key=lambda i: (i.pushed_at, i.digest), reverse=True)
    claimed: set[str] = set()
    expired: list[Expiry] = []
    for rule in policy.rules:
        matching = [image for image in newest_first if rule.selects(image.tags)]
        if rule.count_type == "imageCountMoreThan":
            beyond = matching[rule.count :]
        else:
            cutoff = now - timedelta(days=rule.count)
            beyond = [image for image in matching if image.pushed_at < cutoff]
        expired += [
            Expiry(image.digest, image.tags, image.pushed_at, rule.priority)
            for image in beyond
            if image.digest not in claimed and image.digest not in keep
        ]
        claimed |= {image.digest for image in matching}
    return sorted(expired, key=lambda e: (e.pushed_at, e.digest))


def parse_policy(text: str) -> LifecyclePolicy:
    """The policy `text` states, checked as ECR checks it; LifecyclePolicyInvalid (naming the
    field and what is wrong) otherwise."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise _invalid(f"the policy is not JSON: {exc}") from exc
    root = _object(document, "policy")
    _known(root, "policy", {"rules"})
    items = root.get("rules")
    if not isinstance(items, list) or not items:
        raise _invalid("'rules' must be a non-empty list")
    if len(items) > MAX_RULES:
        raise _invalid(f"at most {MAX_RULES} rules")
    rules = sorted(
        (_rule(item, f"rules[{i}]") for i, item in enumerate(items)), key=lambda r: r.priority
    )
    _check_together(rules)
    return LifecyclePolicy(tuple(rules))


def _rule(item: Any, where: str) -> Rule:
    rule = _object(item, where)
    _known(rule, where, {"rulePriority", "description", "selection", "action"})
    priority = _positive(rule.get("rulePriority"), f"{where}.rulePriority")
    description = rule.get("description", "")
    if not isinstance(description, str):
        raise _invalid(f"{where}.description must be a string")
    _action(rule.get("action"), f"{where}.action")
    return _selection(rule.get("selection"), f"{where}.selection", priority, description)


def _action(value: Any, where: str) -> None:
    action = _object(value, where)
    _known(action, where, {"type", "targetStorageClass"})
    kind = action.get("type")
    if kind == "transition":
        raise _invalid(f"{where}.type 'transition' (to an archive) is not supported by Baepo")
    if kind != "expire":
        raise _invalid(f"{where}.type must be 'expire', not {kind!r}")
    if "targetStorageClass" in action:
        raise _invalid(f"{where}.targetStorageClass goes only with a 'transition'")


def _selection(value: Any, where: str, priority: int, description: str) -> Rule:
    selection = _object(value, where)
    known = {"tagStatus", "tagPrefixList", "tagPatternList", "countType", "countUnit"}
    _known(selection, where, known | {"countNumber", "storageClass"})
    if "storageClass" in selection:
        raise _invalid(f"{where}.storageClass (archived images) is not supported by Baepo")
    status = selection.get("tagStatus")
    if status not in TAG_STATUSES:
        raise _invalid(f"{where}.tagStatus must be one of {', '.join(TAG_STATUSES)}")
    prefixes = _strings(selection.get("tagPrefixList"), f"{where}.tagPrefixList", _PREFIX)
    patterns = _strings(selection.get("tagPatternList"), f"{where}.tagPatternList", _PATTERN)
    if status == "tagged" and bool(prefixes) == bool(patterns):
        raise _invalid(
            f"{where}: a 'tagged' rule needs tagPrefixList or tagPatternList (one of them)"
        )
    if status != "tagged" and (prefixes or patterns):
        raise _invalid(f"{where}: tagPrefixList and tagPatternList go only with 'tagged'")
    for pattern in patterns:
        if pattern.count("*") > MAX_WILDCARDS:
            raise _invalid(f"{where}.tagPatternList: {pattern!r} has more than 4 wildcards")
    count_type = selection.get("countType")
    if count_type in ("sinceImagePulled", "sinceImageTransitioned"):
        raise _invalid(f"{where}.countType {count_type!r} is not supported by Baepo")
    if count_type not in COUNT_TYPES:
        raise _invalid(f"{where}.countType must be one of {', '.join(COUNT_TYPES)}")
    count = _positive(selection.get("countNumber"), f"{where}.countNumber")
    unit = selection.get("countUnit")
    if count_type == "sinceImagePushed" and unit != "days":
        raise _invalid(f"{where}.countUnit must be 'days' with sinceImagePushed")
    if count_type == "imageCountMoreThan" and unit is not None:
        raise _invalid(f"{where}.countUnit goes only with sinceImagePushed")
    return Rule(priority, status, prefixes, patterns, count_type, count, description)


def _check_together(rules: Sequence[Rule]) -> None:
    priorities = [rule.priority for rule in rules]
    if len(set(priorities)) != len(priorities):
        raise _invalid("each rule needs a rulePriority of its own")
    if sum(rule.tag_status == "untagged" for rule in rules) > 1:
        raise _invalid("only one rule may select untagged images")
    anys = [rule for rule in rules if rule.tag_status == "any"]
    if len(anys) > 1 or (anys and anys[0] is not rules[-1]):
        raise _invalid(
            "a rule with tagStatus 'any' must be the only one and have the highest rulePriority"
        )


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(f"{where} must be a JSON object")
    return value


def _known(value: Mapping[str, Any], where: str, names: set[str]) -> None:
    unknown = sorted(set(value) - names)
    if unknown:
        raise _invalid(f"{where}: unknown field {unknown[0]!r}")


def _positive(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _invalid(f"{where} must be a whole number of 1 or more")
    return value


def _strings(value: Any, where: str, form: re.Pattern[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        raise _invalid(f"{where} must be a non-empty list of strings")
    for item in value:
        if not isinstance(item, str) or form.fullmatch(item) is None:
            raise _invalid(f"{where}: {item!r} is not a tag prefix or pattern")
    return tuple(value)


def _invalid(reason: str) -> LifecyclePolicyInvalid:
    return LifecyclePolicyInvalid(f"Lifecycle policy validation failure: {reason}")
