"""Lifecycle policies (ECR's JSON): checked as ECR checks them, and what they expire — the
oldest beyond a count or an age, by priority, never an image in use."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from baepo.registry import LifecyclePolicyInvalid
from baepo.registry.lifecycle import Candidate, parse_policy, plan

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def rule(priority: int, **selection: Any) -> dict[str, Any]:
    return {
        "rulePriority": priority,
        "description": f"rule {priority}",
        "selection": selection,
        "action": {"type": "expire"},
    }


def policy(*rules: dict[str, Any]) -> str:
    return json.dumps({"rules": list(rules)})


def keep_newest(count: int, **tags: Any) -> dict[str, Any]:
    return {"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": count, **tags}


def images(*tag_sets: tuple[str, ...]) -> list[Candidate]:
    """One image per tag set, each a day newer than the one before; digest `d<n>`."""
    start = NOW - timedelta(days=len(tag_sets))
    return [Candidate(f"d{n}", tags, start + timedelta(days=n)) for n, tags in enumerate(tag_sets)]


def expired(text: str, found: list[Candidate], keep: tuple[str, ...] = ()) -> list[str]:
    return [e.digest for e in plan(parse_policy(text), found, NOW, keep)]


RELEASES = images(*[(f"release-{n}",) for n in range(6)], ("main",), ())


def test_keep_the_3_newest_releases() -> None:
    text = policy(rule(1, **keep_newest(3, tagPatternList=["release-*"])))
    assert expired(text, RELEASES) == ["d0", "d1", "d2"]


def test_an_image_in_use_is_never_expired_and_still_counts() -> None:
    text = policy(rule(1, **keep_newest(3, tagPatternList=["release-*"])))
    assert expired(text, RELEASES, keep=("d1",)) == ["d0", "d2"]
    assert expired(text, RELEASES, keep=("d4",)) == ["d0", "d1", "d2"]


def test_prefixes_and_patterns_need_every_one_matched() -> None:
    found = images(("v1", "prod"), ("v2",), ("prod-x", "v3"))
    text = policy(rule(1, **keep_newest(1, tagPrefixList=["v", "prod"])))
    assert expired(text, found) == ["d0"]  # d0 and d2 match both prefixes; d2 is newest
    text = policy(rule(1, **keep_newest(1, tagPatternList=["v*", "*-x"])))
    assert expired(text, found) == []  # only d2 matches both patterns


def test_age_untagged_and_priorities() -> None:
    found = images(("a",), (), (), ("b",), ())
    old_untagged = {
        "tagStatus": "untagged",
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 2,
    }
    # pushed 4, 3 and 1 days ago: the first two are more than 2 days old
    assert expired(policy(rule(1, **old_untagged)), found) == ["d1", "d2"]
    anything_beyond_one = {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}
    keep_a = keep_newest(5, tagPrefixList=["a"])
    # The first rule matches d0 (and keeps it): the later rule never expires it.
    text = policy(rule(1, **keep_a), rule(2, **anything_beyond_one))
    assert expired(text, found) == ["d1", "d2", "d3"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        (json.dumps({"rules": []}), "'rules' must be a non-empty list"),
        (json.dumps({"rules": [], "extra": 1}), "unknown field 'extra'"),
        (policy(rule(0, **keep_newest(1, tagPrefixList=["v"]))), "rulePriority"),
        (policy(rule(1, **keep_newest(1))), "needs tagPrefixList or tagPatternList"),
        (
            policy(rule(1, **keep_newest(1, tagPrefixList=["v"], tagPatternList=["v*"]))),
            "(one of them)",
        ),
        (
            policy(
                rule(
                    1,
                    tagStatus="untagged",
                    tagPrefixList=["v"],
                    countType="imageCountMoreThan",
                    countNumber=1,
                )
            ),
            "go only with 'tagged'",
        ),
        (policy(rule(1, **keep_newest(1, tagPatternList=["*a*b*c*d*e"]))), "more than 4 wildcards"),
        (policy(rule(1, **keep_newest(0, tagPrefixList=["v"]))), "countNumber"),
        (
            policy(rule(1, **keep_newest(1, tagPrefixList=["v"]), countUnit="days")),
            "countUnit goes only",
        ),
        (
            policy(rule(1, tagStatus="any", countType="sinceImagePushed", countNumber=1)),
            "countUnit must be 'days'",
        ),
        (
            policy(
                rule(
                    1,
                    tagStatus="any",
                    countType="sinceImagePulled",
                    countUnit="days",
                    countNumber=1,
                )
            ),
            "not supported by Baepo",
        ),
        (
            policy(
                rule(1, **keep_newest(1, tagPrefixList=["v"])),
                rule(1, **keep_newest(2, tagPrefixList=["w"])),
            ),
            "rulePriority of its own",
        ),
        (
            policy(
                rule(1, tagStatus="any", countType="imageCountMoreThan", countNumber=1),
                rule(2, **keep_newest(2, tagPrefixList=["w"])),
            ),
            "highest rulePriority",
        ),
        (
            policy(
                {**rule(1, **keep_newest(1, tagPrefixList=["v"])), "action": {"type": "transition"}}
            ),
            "not supported by Baepo",
        ),
    ],
)
def test_invalid_policies_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(LifecyclePolicyInvalid) as invalid:
        parse_policy(text)
    assert invalid.value.message.startswith("Lifecycle policy validation failure: ")
    assert message in invalid.value.message
