"""SigV4 checks against botocore's own signer (never a re-implementation): a request it signs
verifies; a wrong secret, a changed request, a skewed clock, a wrong scope or a missing or
malformed signature are refused in AWS's words."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth  # type: ignore[import-untyped]  # untyped
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]  # no type information
from botocore.credentials import Credentials  # type: ignore[import-untyped]  # no types

from baepo.aws import IncompleteSignature, InvalidSignature, MissingAuthenticationToken, sigv4

KEY, SECRET = "BKIAEXAMPLEEXAMPLE00", "s" * 40
BODY = b'{"repositoryName": "team/app"}'


def botocore_signed(
    url: str = "http://127.0.0.1:5000/",
    body: bytes = BODY,
    headers: dict[str, str] | None = None,
    *,
    secret: str = SECRET,
    service: str = "ecr",
    query_auth: bool = False,
) -> Any:
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers=headers
        or {
            "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    credentials = Credentials(KEY, secret)
    signer = (SigV4QueryAuth if query_auth else SigV4Auth)(credentials, service, "us-east-1")
    signer.add_auth(request)
    return request.prepare()


def received(prepared: Any, body: bytes | None = None) -> sigv4.Received:
    """The request as Baepo's endpoint receives it (urllib3 adds the Host header)."""
    url = urlsplit(prepared.url)
    headers = [("host", url.netloc)] + [(k.lower(), v) for k, v in prepared.headers.items()]
    sent = prepared.body if body is None else body
    data = sent.encode() if isinstance(sent, str) else sent or b""
    return sigv4.Received(
        prepared.method, url.path, url.query, headers, hashlib.sha256(data).hexdigest()
    )


def check(request: sigv4.Received, secret: str = SECRET, now: datetime | None = None) -> None:
    signature = sigv4.parse(request)
    sigv4.check_scope(signature, "ecr")
    sigv4.check_time(signature, now or datetime.now(UTC))
    sigv4.verify(request, signature, secret)


def test_a_request_botocore_signs_verifies() -> None:
    request = received(botocore_signed())
    check(request)
    assert sigv4.parse(request).credential.key_id == KEY


def test_paths_and_queries_are_canonical_as_botocore_makes_them() -> None:
    url = "http://127.0.0.1:5000/a%20b/./c//d/../e?b=2&a=1&x=%2F%20&a=0&empty="
    check(received(botocore_signed(url)))


def test_a_date_header_instead_of_x_amz_date() -> None:
    headers = {"X-Amz-Target": "T.Op", "Date": "Thu, 01 Jan 2026 00:00:00 GMT"}
    request = received(botocore_signed(headers=headers))
    assert "x-amz-date" not in dict(request.headers)
    check(request)


def test_a_wrong_secret_does_not_match() -> None:
    with pytest.raises(InvalidSignature, match="The request signature we calculated does not"):
        check(received(botocore_signed(secret="x" * 40)))


@pytest.mark.parametrize(
    "change",
    ["body", "target", "host"],
)
def test_a_changed_request_does_not_match(change: str) -> None:
    request = received(botocore_signed())
    if change == "body":
        request = received(botocore_signed(), body=b'{"repositoryName": "team/other"}')
    else:
        name = "x-amz-target" if change == "target" else "host"
        headers = [(n, "Other.DeleteRepository" if n == name else v) for n, v in request.headers]
        request = sigv4.Received(
            request.method, request.path, request.query, headers, request.body_sha256
        )
    with pytest.raises(InvalidSignature, match="does not match"):
        check(request)


def test_a_clock_skew_beyond_15_minutes_is_refused_in_aws_words() -> None:
    request = received(botocore_signed())
    stamp = sigv4.parse(request).timestamp
    signed = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    check(request, now=signed + timedelta(minutes=14))
    check(request, now=signed - timedelta(minutes=14))
    late = signed + timedelta(minutes=16)
    with pytest.raises(InvalidSignature) as expired:
        check(request, now=late)
    earliest = (late - timedelta(minutes=15)).strftime("%Y%m%dT%H%M%SZ")
    assert expired.value.message == (
        f"Signature expired: {stamp} is now earlier than {earliest} "
        f"({late.strftime('%Y%m%dT%H%M%SZ')} - 15 min.)"
    )
    with pytest.raises(InvalidSignature, match=r"Signature not yet current: .* \+ 15 min"):
        check(request, now=signed - timedelta(minutes=16))


def test_the_scope_names_the_service() -> None:
    with pytest.raises(InvalidSignature, match="scoped to correct service: 'ecr'"):
        check(received(botocore_signed(service="apprunner")))


def test_a_missing_or_malformed_signature() -> None:
    plain = received(botocore_signed())
    bare = [(n, v) for n, v in plain.headers if n != "authorization"]
    with pytest.raises(MissingAuthenticationToken, match="Missing Authentication Token"):
        sigv4.parse(sigv4.Received("POST", "/", "", bare, plain.body_sha256))
    for authorization, message in [
        ("Basic YTpi", "requires the algorithm"),
        ("AWS4-HMAC-SHA256 Credential=K/20260101/us-east-1/ecr/aws4_request", "'Signature'"),
        ("AWS4-HMAC-SHA256 Credential=K/x, SignedHeaders=host, Signature=ab", "5 slash"),
        (
            "AWS4-HMAC-SHA256 Credential=K/20260101/us-east-1/ecr/aws4_request, "
            "SignedHeaders=x-amz-date, Signature=ab",
            "'Host' must be a 'SignedHeader'",
        ),
    ]:
        headers = [*bare, ("authorization", authorization)]
        with pytest.raises(IncompleteSignature, match=message):
            sigv4.parse(sigv4.Received("POST", "/", "", headers, plain.body_sha256))
    no_date = [(n, v) for n, v in plain.headers if n != "x-amz-date"]
    with pytest.raises(IncompleteSignature, match="'X-Amz-Date' or a 'Date'"):
        sigv4.parse(sigv4.Received("POST", "/", "", no_date, plain.body_sha256))


def test_a_declared_payload_hash_must_be_the_bodys() -> None:
    headers = {"X-Amz-Target": "T.Op", "X-Amz-Content-SHA256": "0" * 64}
    with pytest.raises(InvalidSignature, match="x-amz-content-sha256"):
        check(received(botocore_signed(headers=headers)))


def test_a_presigned_request_verifies_until_it_expires() -> None:
    prepared = botocore_signed(body=b"", query_auth=True)
    request = received(prepared, body=b"")
    assert "X-Amz-Signature=" in request.query
    signature = sigv4.parse(request)
    assert signature.presigned and signature.expires_s == 3600
    signed = datetime.strptime(signature.timestamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    check(request, now=signed + timedelta(minutes=59))
    with pytest.raises(InvalidSignature, match="X-Amz-Expires"):
        check(request, now=signed + timedelta(minutes=61))
    with pytest.raises(InvalidSignature, match="does not match"):
        check(request, secret="x" * 40)
