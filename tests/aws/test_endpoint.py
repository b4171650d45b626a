"""The AWS endpoint through botocore clients on a real uvicorn: a request signed with a Baepo
access key reaches its handler as the key's token; a wrong secret, a skewed clock, no
signature, an unknown key and a revoked token are refused with the codes botocore reports;
bad input, unknown operations and bugs answer in the protocol's shape."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4QueryAuth  # type: ignore[import-untyped]  # no type information
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]  # no type information
from botocore.credentials import Credentials  # type: ignore[import-untyped]  # no types
from botocore.exceptions import ClientError  # type: ignore[import-untyped]  # no type information

from baepo.aws import AwsError, Call, JsonService, Params
from tests.aws.world import AwsWorld, Rooms, aws_world, code_of

ECR_TARGET = "AmazonEC2ContainerRegistry_V20150921"


class InvalidParameter(AwsError):
    code = "InvalidParameterException"


class ServerError(AwsError):
    code, status = "ServerException", 500


class RepositoryNotFound(AwsError):
    code = "RepositoryNotFoundException"


def whoami(call: Call, params: Params) -> Mapping[str, Any]:
    """Answers who called, in GetAuthorizationToken's shape."""
    return {
        "authorizationData": [
            {
                "authorizationToken": f"{call.caller.name}:{call.region}:{call.account}",
                "proxyEndpoint": call.endpoint,
            }
        ]
    }


def describe(call: Call, params: Params) -> Mapping[str, Any]:
    names = params.texts("repositoryNames", min_items=1, max_items=100) or []
    if "broken" in names:
        raise RuntimeError("a bug")
    if "gone" in names:
        raise LookupError("gone")
    if names:
        raise RepositoryNotFound(f"The repository with name '{names[0]}' does not exist")
    return {"repositories": []}


def translate(exc: Exception) -> AwsError | None:
    return RepositoryNotFound("translated") if isinstance(exc, LookupError) else None


def toy_services(rooms: Rooms) -> Iterable[JsonService]:
    operations = {"GetAuthorizationToken": whoami, "DescribeRepositories": describe}
    yield JsonService(
        "ecr", ECR_TARGET, "1.1", operations, InvalidParameter, ServerError, translate
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[AwsWorld]:
    with aws_world(tmp_path, toy_services) as made:
        yield made


def test_a_signed_call_acts_as_the_keys_token(world: AwsWorld) -> None:
    ecr = world.client("ecr", world.key("alice"))
    answer = ecr.get_authorization_token()
    data = answer["authorizationData"][0]
    assert data["authorizationToken"] == f"alice:us-east-1:{world.endpoint.account}"
    assert data["proxyEndpoint"] == world.url
    assert answer["ResponseMetadata"]["HTTPHeaders"]["content-type"] == (
        "application/x-amz-json-1.1"
    )
    assert answer["ResponseMetadata"]["RequestId"]


def test_signatures_that_do_not_hold_are_refused(world: AwsWorld) -> None:
    key_id, secret = world.key("alice")
    wrong = world.client("ecr", (key_id, "x" * 40))
    assert code_of(wrong.get_authorization_token) == "InvalidSignatureException"
    unknown = world.client("ecr", ("BKIANOSUCHKEY0000000", secret))
    assert code_of(unknown.get_authorization_token) == "UnrecognizedClientException"
    unsigned = world.client("ecr", None, signed=False)
    assert code_of(unsigned.get_authorization_token) == "MissingAuthenticationTokenException"


def test_a_skewed_clock_is_refused_with_awss_message(world: AwsWorld) -> None:
    ecr = world.client("ecr", world.key("alice"))
    world.clock.advance(timedelta(minutes=16).total_seconds())
    with pytest.raises(ClientError) as refused:
        ecr.get_authorization_token()
    error = refused.value.response["Error"]
    assert error["Code"] == "InvalidSignatureException"
    assert error["Message"].startswith("Signature expired: ")
    assert error["Message"].endswith(" - 15 min.)")
    world.clock.advance(-timedelta(minutes=16).total_seconds())
    assert ecr.get_authorization_token()["authorizationData"]


def test_revoking_the_token_revokes_its_keys(world: AwsWorld) -> None:
    ecr = world.client("ecr", world.key("bob", "ci"))
    assert ecr.get_authorization_token()["authorizationData"]
    world.auth.delete_token("bob", "ci")
    assert code_of(ecr.get_authorization_token) == "UnrecognizedClientException"


def test_errors_in_the_protocols_shape(world: AwsWorld) -> None:
    ecr = world.client("ecr", world.key("alice"))
    describe = ecr.describe_repositories
    assert code_of(describe, repositoryNames=["team/app"]) == "RepositoryNotFoundException"
    assert code_of(describe, repositoryNames=["gone"]) == "RepositoryNotFoundException"
    with pytest.raises(ClientError) as bug:
        describe(repositoryNames=["broken"])
    assert bug.value.response["Error"]["Code"] == "ServerException"
    assert bug.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert code_of(ecr.list_images, repositoryName="team/app") == "UnknownOperationException"


def test_raw_requests_botocore_would_never_send(world: AwsWorld) -> None:
    """Bad JSON, bad input types, oversized bodies and unknown targets, sent by hand."""
    key = world.key("alice")
    sent: list[tuple[int, str]] = []

    def send(body: bytes, target: str = f"{ECR_TARGET}.DescribeRepositories") -> None:
        answer = world.raw(key, "ecr", target, body)
        sent.append((answer.status_code, answer.json()["__type"]))

    send(b"{not json")
    send(b"[1, 2]")
    send(b'{"repositoryNames": "team/app"}')
    send(b"{}", target="Nope.Op")
    send(b"x" * (1024 * 1024 + 1))
    assert sent == [
        (400, "SerializationException"),
        (400, "SerializationException"),
        (400, "InvalidParameterException"),
        (400, "UnknownOperationException"),
        (413, "RequestEntityTooLargeException"),
    ]


def test_only_aws_calls_reach_the_endpoint(world: AwsWorld) -> None:
    assert httpx.get(world.url + "/").text == "not aws"
    assert httpx.post(world.url + "/", json={}).text == "not aws"
    assert httpx.get(world.url + "/v2/").status_code == 401  # the registry's
    aws = httpx.post(world.url + "/", headers={"X-Amz-Target": f"{ECR_TARGET}.X"})
    assert aws.json()["__type"] == "MissingAuthenticationTokenException"


def test_a_presigned_call_and_one_that_does_not_fix_its_operation(world: AwsWorld) -> None:
    key = world.key("alice")

    def presigned(headers: dict[str, str]) -> httpx.Response:
        request = AWSRequest(method="POST", url=world.url + "/", data=b"", headers=headers)
        SigV4QueryAuth(Credentials(*key), "ecr", "us-east-1", expires=60).add_auth(request)
        prepared = request.prepare()
        return httpx.post(prepared.url, headers={**headers, "Content-Length": "0"})

    target = {"X-Amz-Target": f"{ECR_TARGET}.GetAuthorizationToken"}
    answer = presigned(target)
    assert answer.status_code == 200, answer.text
    assert answer.json()["authorizationData"][0]["authorizationToken"].startswith("alice:")
    unsigned_target = httpx.post(
        presigned({}).request.url, headers={**target, "Content-Length": "0"}
    )
    assert unsigned_target.json()["__type"] == "InvalidSignatureException"
