"""ECR's operations through botocore's ECR client, over Baepo's registry and its rights: every
answer is checked against botocore's ECR model (world.py hooks model.py into each client)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import boto3  # type: ignore[import-untyped]  # boto3 ships no type information
import httpx
import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped]  # no type information

from baepo.aws import JsonService
from baepo.aws.ecr import ecr_service
from baepo.registry import LifecyclePolicies, TagMutability
from tests.aws.model import check_answer
from tests.aws.world import AwsWorld, Rooms, aws_world, code_of, push


@pytest.fixture
def running() -> set[str]:
    """Digests a service runs (what lifecycle policies must keep): tests add to it."""
    return set()


@pytest.fixture
def world(tmp_path: Path, running: set[str]) -> Iterator[AwsWorld]:
    def services(rooms: Rooms) -> Iterable[JsonService]:
        lifecycle = LifecyclePolicies(rooms.registry, lambda _: running, rooms.clock)
        return [ecr_service(rooms.registry, rooms.auth.key_password, lifecycle)]

    with aws_world(tmp_path, services) as made:
        yield made


def test_repositories_are_the_registrys_with_its_rights(world: AwsWorld) -> None:
    alice = world.client("ecr", world.key("alice"))
    bob = world.client("ecr", world.key("bob"))
    made = alice.create_repository(repositoryName="alice/app")["repository"]
    assert made["repositoryName"] == "alice/app"
    assert made["repositoryUri"] == f"{world.url.removeprefix('http://')}/alice/app"
    assert made["repositoryArn"] == (
        f"arn:baepo:ecr:us-east-1:{world.endpoint.account}:repository/alice/app"
    )
    assert made["registryId"] == world.endpoint.account
    assert world.registry.repository("alice/app").name == "alice/app"

    create = alice.create_repository
    assert code_of(create, repositoryName="alice/app") == "RepositoryAlreadyExistsException"
    assert code_of(create, repositoryName="bob/app") == "AccessDeniedException"
    assert code_of(create, repositoryName="Not A Name") == "InvalidParameterException"
    nul = [{"Key": "team", "Value": "a\x00"}]  # PostgreSQL's text cannot keep it: bad input
    assert code_of(create, repositoryName="alice/n", tags=nul) == "InvalidParameterException"
    kms = {"encryptionType": "KMS"}
    assert code_of(create, repositoryName="alice/k", encryptionConfiguration=kms) == (
        "InvalidParameterException"
    )

    describe = bob.describe_repositories
    assert code_of(describe, repositoryNames=["alice/app"]) == "RepositoryNotFoundException"
    assert describe()["repositories"] == []
    found = alice.describe_repositories(repositoryNames=["alice/app"])["repositories"]
    assert [r["repositoryName"] for r in found] == ["alice/app"]


def test_describe_repositories_pages(world: AwsWorld) -> None:
    admin = world.client("ecr", world.key("admin"))
    names = [f"team/app-{n}" for n in range(5)]
    for name in names:
        admin.create_repository(repositoryName=name)
    first = admin.describe_repositories(maxResults=2)
    assert [r["repositoryName"] for r in first["repositories"]] == names[:2]
    pages = admin.get_paginator("describe_repositories").paginate(PaginationConfig={"PageSize": 2})
    seen = [r["repositoryName"] for page in pages for r in page["repositories"]]
    assert seen == names


def test_a_token_limited_to_a_repository_sees_only_it(world: AwsWorld) -> None:
    alice = world.client("ecr", world.key("alice"))
    for name in ("alice/app", "alice/other"):
        alice.create_repository(repositoryName=name)
    limited = world.client("ecr", world.key("alice", "ci", repositories=("alice/app",)))
    found = limited.describe_repositories()["repositories"]
    assert [r["repositoryName"] for r in found] == ["alice/app"]
    delete = limited.delete_repository
    assert code_of(delete, repositoryName="alice/other") == "RepositoryNotFoundException"


def test_delete_repository_refuses_images_unless_forced(world: AwsWorld) -> None:
    alice = world.client("ecr", world.key("alice"))
    push(world, "alice/app", "1")
    delete = alice.delete_repository
    assert code_of(delete, repositoryName="alice/app") == "RepositoryNotEmptyException"
    bob = world.client("ecr", world.key("bob"))
    assert code_of(bob.delete_repository, repositoryName="alice/app", force=True) == (
        "RepositoryNotFoundException"
    )
    gone = alice.delete_repository(repositoryName="alice/app", force=True)["repository"]
    assert gone["repositoryName"] == "alice/app"
    assert alice.describe_repositories()["repositories"] == []


def test_list_and_describe_images(world: AwsWorld) -> None:
    alice = world.client("ecr", world.key("alice"))
    tagged = push(world, "alice/app", "1", "latest")
    untagged = push(world, "alice/app")
    listed = alice.list_images(repositoryName="alice/app")["imageIds"]
    assert sorted((i["imageDigest"], i.get("imageTag")) for i in listed) == sorted(
        [
            (tagged.manifest.digest, "1"),
            (tagged.manifest.digest, "latest"),
            (untagged.manifest.digest, None),
        ]
    )
    only_untagged = alice.list_images(repositoryName="alice/app", filter={"tagStatus": "UNTAGGED"})
    assert only_untagged["imageIds"] == [{"imageDigest": untagged.manifest.digest}]

    details = alice.describe_images(repositoryName="alice/app", imageIds=[{"imageTag": "1"}])
    (detail,) = details["imageDetails"]
    assert detail["imageDigest"] == tagged.manifest.digest
    assert sorted(detail["imageTags"]) == ["1", "latest"]
    layers = sum(len(blob.data) for blob in (tagged.config, *tagged.layers))
    assert detail["imageSizeInBytes"] == layers
    assert detail["imageManifestMediaType"] == tagged.manifest.media_type
    every = alice.describe_images(repositoryName="alice/app")["imageDetails"]
    assert {d["imageDigest"] for d in every} == {tagged.manifest.digest, untagged.manifest.digest}
    missing = {"repositoryName": "alice/app", "imageIds": [{"imageTag": "nope"}]}
    assert code_of(alice.describe_images, **missing) == "ImageNotFoundException"
    bob = world.client("ecr", world.key("bob"))
    assert code_of(bob.list_images, repositoryName="alice/app") == "RepositoryNotFoundException"


def test_batch_get_image_returns_the_manifest_as_pushed(world: AwsWorld) -> None:
    alice = world.client("ecr", world.key("alice"))
    image = push(world, "alice/app", "1")
    ids = [{"imageTag": "1"}, {"imageTag": "2"}, {"imageDigest": "sha256:" + "0" * 64}]
    answer = alice.batch_get_image(repositoryName="alice/app", imageIds=ids)
    (got,) = answer["images"]
    assert got["imageManifest"].encode() == image.manifest.data
    assert got["imageId"] == {"imageDigest": image.manifest.digest, "imageTag": "1"}
    assert [f["failureCode"] for f in answer["failures"]] == ["ImageNotFound", "ImageNotFound"]
    mismatch = [{"imageTag": "1", "imageDigest": "sha256:" + "1" * 64}]
    odd = alice.batch_get_image(repositoryName="alice/app", imageIds=mismatch)
    assert odd["failures"][0]["failureCode"] == "ImageNotFound"


def test_batch_delete_image_by_tag_and_by_digest(world: AwsWorld) -> None:
    alice = world.client("ecr", world.key("alice"))
    two_tags = push(world, "alice/app", "1", "stable")
    other = push(world, "alice/app", "2")
    delete = alice.batch_delete_image
    answer = delete(repositoryName="alice/app", imageIds=[{"imageTag": "1"}])
    assert answer["imageIds"] == [{"imageDigest": two_tags.manifest.digest, "imageTag": "1"}]
    images = {i.digest: i.tags for i in world.registry.images("alice/app")}
    assert images[two_tags.manifest.digest] == ("stable",)  # one tag of two: the tag only
    delete(repositoryName="alice/app", imageIds=[{"imageTag": "stable"}])
    images = {i.digest: i.tags for i in world.registry.images("alice/app")}
    assert two_tags.manifest.digest not in images  # the last tag: the image with it
    by_digest = delete(
        repositoryName="alice/app",
        imageIds=[{"imageDigest": other.manifest.digest}, {"imageTag": "gone"}, {}],
    )
    assert by_digest["imageIds"] == [{"imageDigest": other.manifest.digest}]
    codes = [f["failureCode"] for f in by_digest["failures"]]
    assert codes == ["ImageNotFound", "MissingDigestAndTag"]
    assert world.registry.images("alice/app") == []
    bob = world.client("ecr", world.key("bob"))
    push(world, "alice/app", "3")
    bob_delete = bob.batch_delete_image
    ids = [{"imageTag": "3"}]
    assert code_of(bob_delete, repositoryName="alice/app", imageIds=ids) == (
        "RepositoryNotFoundException"
    )


def test_the_login_token_signs_in_to_the_registry_as_the_keys_token(world: AwsWorld) -> None:
    push(world, "alice/app", "1")
    key = world.key("alice", "ci", repositories=("alice/*",))
    ecr = world.client("ecr", key)
    (data,) = ecr.get_authorization_token()["authorizationData"]
    assert data["proxyEndpoint"] == world.url
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    assert user == "AWS"
    remaining = data["expiresAt"].timestamp() - world.clock.now().timestamp()
    assert 11.9 * 3600 < remaining <= 12 * 3600

    def pull_status(repository: str) -> int:
        with httpx.Client(base_url=world.url, auth=(user, password)) as client:
            return client.get(f"/v2/{repository}/manifests/1").status_code

    assert pull_status("alice/app") == 200
    push(world, "bob/app", "1")
    assert pull_status("bob/app") in (401, 403)
    world.keys.delete("alice", key[0])
    assert pull_status("alice/app") == 401


def test_tag_mutability_in_ecrs_four_modes(world: AwsWorld) -> None:
    alice = world.client("ecr", world.key("alice"))
    made = alice.create_repository(repositoryName="alice/app", imageTagMutability="IMMUTABLE")
    assert made["repository"]["imageTagMutability"] == "IMMUTABLE"
    assert world.registry.repository("alice/app").mutability == TagMutability(True)

    put = alice.put_image_tag_mutability
    latest = [{"filterType": "WILDCARD", "filter": "latest"}]
    answer = put(
        repositoryName="alice/app",
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=latest,
    )
    assert answer["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert answer["imageTagMutabilityExclusionFilters"] == latest
    assert world.registry.repository("alice/app").mutability == TagMutability(True, ("latest",))
    (described,) = alice.describe_repositories(repositoryNames=["alice/app"])["repositories"]
    assert described["imageTagMutabilityExclusionFilters"] == latest

    put(repositoryName="alice/app", imageTagMutability="MUTABLE")
    assert world.registry.repository("alice/app").mutability == TagMutability()
    no_filters = {"repositoryName": "alice/app", "imageTagMutability": "MUTABLE_WITH_EXCLUSION"}
    assert code_of(put, **no_filters) == "InvalidParameterException"
    bad_filter = [{"filterType": "WILDCARD", "filter": "a b"}]
    assert code_of(put, **no_filters, imageTagMutabilityExclusionFilters=bad_filter) == (
        "InvalidParameterException"
    )


def test_only_the_owners_unlimited_token_changes_mutability(world: AwsWorld) -> None:
    world.client("ecr", world.key("alice")).create_repository(repositoryName="alice/app")
    limited = world.client("ecr", world.key("alice", "ci", repositories=("alice/app",)))
    bob = world.client("ecr", world.key("bob"))
    change = {"repositoryName": "alice/app", "imageTagMutability": "IMMUTABLE"}
    assert code_of(limited.put_image_tag_mutability, **change) == "AccessDeniedException"
    assert code_of(bob.put_image_tag_mutability, **change) == "RepositoryNotFoundException"
    assert world.registry.repository("alice/app").mutability == TagMutability()


KEEP_3_RELEASES = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "description": "keep the three newest releases",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["release-*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": 3,
                },
                "action": {"type": "expire"},
            }
        ]
    }
)


def test_lifecycle_policies_and_their_preview(world: AwsWorld, running: set[str]) -> None:
    alice = world.client("ecr", world.key("alice"))
    pushed = []
    for n in range(5):
        pushed.append(push(world, "alice/app", f"release-{n}"))
        world.clock.advance(60)
    running.add(pushed[0].manifest.digest)
    repo = {"repositoryName": "alice/app"}

    assert code_of(alice.get_lifecycle_policy, **repo) == "LifecyclePolicyNotFoundException"
    assert code_of(alice.get_lifecycle_policy_preview, **repo) == (
        "LifecyclePolicyPreviewNotFoundException"
    )
    invalid = KEEP_3_RELEASES.replace('"countNumber": 3', '"countNumber": 0')
    with pytest.raises(ClientError) as refused:
        alice.put_lifecycle_policy(**repo, lifecyclePolicyText=invalid)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "Lifecycle policy validation failure" in refused.value.response["Error"]["Message"]

    put = alice.put_lifecycle_policy(**repo, lifecyclePolicyText=KEEP_3_RELEASES)
    assert put["lifecyclePolicyText"] == KEEP_3_RELEASES
    assert alice.get_lifecycle_policy(**repo)["lifecyclePolicyText"] == KEEP_3_RELEASES

    started = alice.start_lifecycle_policy_preview(**repo)
    assert started["status"] == "COMPLETE"
    alice.get_waiter("lifecycle_policy_preview_complete").wait(**repo)
    preview = alice.get_lifecycle_policy_preview(**repo)
    assert preview["summary"]["expiringImageTotalCount"] == 1
    (result,) = preview["previewResults"]  # release-0 runs: only release-1 goes
    assert result["imageTags"] == ["release-1"]
    assert result["action"] == {"type": "EXPIRE"} and result["appliedRulePriority"] == 1
    assert len(world.registry.images("alice/app")) == 5  # a preview expires nothing

    other = KEEP_3_RELEASES.replace('"countNumber": 3', '"countNumber": 1')
    alice.start_lifecycle_policy_preview(**repo, lifecyclePolicyText=other)
    tried = alice.get_lifecycle_policy_preview(**repo, filter={"tagStatus": "TAGGED"})
    expiring = sorted(r["imageTags"][0] for r in tried["previewResults"])
    assert expiring == ["release-1", "release-2", "release-3"]  # release-0 runs

    deleted = alice.delete_lifecycle_policy(**repo)
    assert deleted["lifecyclePolicyText"] == KEEP_3_RELEASES
    assert code_of(alice.get_lifecycle_policy, **repo) == "LifecyclePolicyNotFoundException"


def test_only_the_owner_sets_a_lifecycle_policy(world: AwsWorld) -> None:
    push(world, "alice/app", "1")
    limited = world.client("ecr", world.key("alice", "ci", repositories=("alice/app",)))
    bob = world.client("ecr", world.key("bob"))
    policy = {"repositoryName": "alice/app", "lifecyclePolicyText": KEEP_3_RELEASES}
    assert code_of(limited.put_lifecycle_policy, **policy) == "AccessDeniedException"
    assert code_of(bob.put_lifecycle_policy, **policy) == "RepositoryNotFoundException"
    assert limited.start_lifecycle_policy_preview(**policy)["status"] == "COMPLETE"


def test_boto3_is_the_same_client(world: AwsWorld) -> None:
    """boto3 (what scripts use) over the same botocore: a session, a client, a paginator."""
    key_id, secret = world.key("alice")
    session = boto3.session.Session(
        aws_access_key_id=key_id, aws_secret_access_key=secret, region_name="eu-west-1"
    )
    ecr = session.client("ecr", endpoint_url=world.url)
    ecr.meta.events.register("after-call", check_answer)
    made = ecr.create_repository(repositoryName="alice/boto")["repository"]
    assert made["repositoryArn"].startswith("arn:baepo:ecr:eu-west-1:")
    pages = ecr.get_paginator("describe_repositories").paginate()
    assert [r["repositoryName"] for p in pages for r in p["repositories"]] == ["alice/boto"]
