"""AWS Signature Version 4, checked: pure functions over the request as received.

A signed request carries its signature in the `Authorization` header

    AWS4-HMAC-SHA256 Credential=<key id>/<yyyymmdd>/<region>/<service>/aws4_request,
                     SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=<hex>

or, presigned, in the query (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
`X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Signature`). The signature is

    HMAC(signing key, "AWS4-HMAC-SHA256\\n" + timestamp + "\\n" + scope + "\\n"
                      + hex(SHA-256(canonical request)))

where the signing key is HMAC-chained from `"AWS4" + secret` over the date, region, service and
`aws4_request`, and the canonical request is the method, the path (normalized, URI-encoded
once more), the sorted query, the signed headers (lower-case, values trimmed), their names, and
the payload's SHA-256 (the `x-amz-content-sha256` header's value when it is sent). Verifying is
computing it again with the key's secret and comparing in constant time.

The request's time must be within 15 minutes of ours (either way), as AWS requires; a
presigned one, also not past its `X-Amz-Expires`. Errors say what AWS says, with its codes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

from baepo.aws.errors import IncompleteSignature, InvalidSignature, MissingAuthenticationToken

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
SKEW = timedelta(minutes=15)
MAX_EXPIRES_S = 7 * 24 * 3600  # a presigned URL lives at most a week, as AWS allows
_TIMESTAMP = "%Y%m%dT%H%M%SZ"
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check "
    "your AWS Secret Access Key and signing method. Consult the service documentation for "
    "details."
)


@dataclass(frozen=True)
class Received:
    """A request as it arrived: what the canonical request is made of."""

    method: str
    path: str
    """As sent, percent-encoded (ASGI's `raw_path`)."""
    query: str
    """As sent, percent-encoded."""
    headers: Sequence[tuple[str, str]]
    """Lower-case names, in the order received; a name may repeat."""
    body_sha256: str

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n == name), None)


@dataclass(frozen=True)
class Credential:
    key_id: str
    date: str
    region: str
    service: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{TERMINATOR}"


@dataclass(frozen=True)
class Signature:
    """A request's signature, parsed (not yet checked)."""

    credential: Credential
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str
    expires_s: int | None = None
    """Set for a presigned request (query auth)."""

    @property
    def presigned(self) -> bool:
        return self.expires_s is not None


def parse(request: Received) -> Signature:
    """The request's signature, from its `Authorization` header or its query.

    Raises MissingAuthenticationToken when there is none, IncompleteSignature when it is
    not well formed."""
    query = _query_pairs(request.query)
    names = {name for name, _ in query}
    if "X-Amz-Algorithm" in names or "X-Amz-Signature" in names:
        return _parse_query({unquote(name): unquote(value) for name, value in query})
    authorization = request.header("authorization")
    if not authorization:
        raise MissingAuthenticationToken("Missing Authentication Token")
    return _parse_header(authorization, request)


def _parse_header(authorization: str, request: Received) -> Signature:
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignature(
            f"Authorization header requires the algorithm {ALGORITHM!r} (got {algorithm!r})."
        )
    parts: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, value = item.strip().partition("=")
        if sep:
            parts[name] = value
    missing = [p for p in ("Credential", "SignedHeaders", "Signature") if not parts.get(p)]
    if missing:
        needs = " ".join(f"Authorization header requires '{p}' parameter." for p in missing)
        raise IncompleteSignature(f"{needs} Authorization={authorization}")
    return Signature(
        _credential(parts["Credential"]),
        _signed_headers(parts["SignedHeaders"]),
        parts["Signature"],
        _header_timestamp(request),
    )


def _parse_query(query: dict[str, str]) -> Signature:
    missing = [
        name
        for name in (
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-Expires",
            "X-Amz-SignedHeaders",
            "X-Amz-Signature",
        )
        if not query.get(name)
    ]
    if missing:
        raise IncompleteSignature(
            f"AWS query-string parameters missing: {', '.join(missing)}. Re-examine the query"
            " string parameters."
        )
    if query["X-Amz-Algorithm"] != ALGORITHM:
        raise IncompleteSignature(f"X-Amz-Algorithm must be {ALGORITHM!r}.")
    try:
        expires = int(query["X-Amz-Expires"])
    except ValueError:
        expires = -1
    if not 1 <= expires <= MAX_EXPIRES_S:
        raise IncompleteSignature(
            f"X-Amz-Expires must be a number of seconds from 1 to {MAX_EXPIRES_S}."
        )
    timestamp = query["X-Amz-Date"]
    _parse_timestamp(timestamp)
    return Signature(
        _credential(query["X-Amz-Credential"]),
        _signed_headers(query["X-Amz-SignedHeaders"]),
        query["X-Amz-Signature"],
        timestamp,
        expires,
    )


def _credential(text: str) -> Credential:
    parts = text.split("/")
    if len(parts) != 5 or not all(parts):
        raise IncompleteSignature(
            f"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/"
            f"service/{TERMINATOR}, got '{text}'"
        )
    key_id, date, region, service, terminator = parts
    if terminator != TERMINATOR:
        raise InvalidSignature(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not "
            f"'{terminator}'."
        )
    return Credential(key_id, date, region, service)


def _signed_headers(text: str) -> tuple[str, ...]:
    names = tuple(text.split(";"))
    if "host" not in names:
        raise IncompleteSignature("'Host' must be a 'SignedHeader' in the AWS Authorization.")
    return names


def _header_timestamp(request: Received) -> str:
    """The request's time, as the string to sign carries it: `X-Amz-Date`, else `Date`."""
    stamp = request.header("x-amz-date")
    if stamp:
        _parse_timestamp(stamp)
        return stamp
    date = request.header("date")
    if not date:
        raise IncompleteSignature(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    try:
        return parsedate_to_datetime(date).astimezone(UTC).strftime(_TIMESTAMP)
    except (TypeError, ValueError) as exc:
        raise IncompleteSignature(f"Date header is not an HTTP date: '{date}'") from exc


def _parse_timestamp(stamp: str) -> datetime:
    try:
        return datetime.strptime(stamp, _TIMESTAMP).replace(tzinfo=UTC)
    except ValueError as exc:
        raise IncompleteSignature(
            f"Date must be in ISO-8601 'basic format'. Got '{stamp}'. See "
            "http://en.wikipedia.org/wiki/ISO_8601"
        ) from exc


def check_scope(signature: Signature, service: str) -> None:
    """The credential is scoped to `service` and to the date it was signed on."""
    credential = signature.credential
    if credential.service != service:
        raise InvalidSignature(f"Credential should be scoped to correct service: '{service}'. ")
    if credential.date != signature.timestamp[:8]:
        raise InvalidSignature(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{credential.date}' != '{signature.timestamp[:8]}', from "
            f"'{signature.timestamp}'."
        )


def check_time(signature: Signature, now: datetime) -> None:
    """The request was signed within 15 minutes of `now` (a presigned one: and has not
    expired); AWS's words otherwise."""
    signed = _parse_timestamp(signature.timestamp)
    stamp = now.astimezone(UTC).strftime(_TIMESTAMP)
    if signed < now - SKEW:
        earliest = (now - SKEW).strftime(_TIMESTAMP)
        if not signature.presigned:
            raise InvalidSignature(
                f"Signature expired: {signature.timestamp} is now earlier than {earliest} "
                f"({stamp} - 15 min.)"
            )
    if signed > now + SKEW:
        latest = (now + SKEW).strftime(_TIMESTAMP)
        raise InvalidSignature(
            f"Signature not yet current: {signature.timestamp} is still later than {latest} "
            f"({stamp} + 15 min.)"
        )
    if signature.expires_s is not None and now > signed + timedelta(seconds=signature.expires_s):
        raise InvalidSignature(
            f"Signature expired: {signature.timestamp} plus X-Amz-Expires "
            f"({signature.expires_s} s) is earlier than {stamp}"
        )


def verify(request: Received, signature: Signature, secret: str) -> None:
    """The signature is the one `secret` makes for this request; InvalidSignature otherwise."""
    expected = sign(request, signature, secret)
    if not hmac.compare_digest(expected, signature.signature.lower()):
        raise InvalidSignature(_MISMATCH)


def sign(request: Received, signature: Signature, secret: str) -> str:
    """The hex signature `secret` makes for the request, with the parsed signature's scope,
    time and signed headers."""
    digest = hashlib.sha256(canonical_request(request, signature).encode()).hexdigest()
    text = "\n".join((ALGORITHM, signature.timestamp, signature.credential.scope, digest))
    return hmac.new(signing_key(secret, signature.credential), text.encode(), "sha256").hexdigest()


def signing_key(secret: str, credential: Credential) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (credential.date, credential.region, credential.service, TERMINATOR):
        key = hmac.new(key, part.encode(), "sha256").digest()
    return key


def canonical_request(request: Received, signature: Signature) -> str:
    headers = "".join(
        f"{name}:{_header_values(request, name)}\n" for name in signature.signed_headers
    )
    return "\n".join(
        (
            request.method.upper(),
            canonical_path(request.path),
            canonical_query(request.query, drop_signature=signature.presigned),
            headers,
            ";".join(signature.signed_headers),
            payload_hash(request),
        )
    )


def payload_hash(request: Received) -> str:
    """What the canonical request says of the body: the `x-amz-content-sha256` header's value
    when sent (a digest that must be the body's, or UNSIGNED-PAYLOAD), else the body's digest
    (also for a presigned request: only S3 leaves those unsigned)."""
    declared = request.header("x-amz-content-sha256")
    if declared is None:
        return request.body_sha256
    if declared != UNSIGNED_PAYLOAD and declared.lower() != request.body_sha256:
        raise InvalidSignature(
            "The provided 'x-amz-content-sha256' header does not match what was computed."
        )
    return declared


def canonical_path(raw_path: str) -> str:
    """The path without dot segments and repeated slashes, URI-encoded once more (as every
    service but S3 signs it)."""
    return quote(_remove_dot_segments(raw_path or "/"), safe="/~")


def _remove_dot_segments(path: str) -> str:
    kept: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment and segment != ".":
            kept.append(segment)
    leading = "/" if path.startswith("/") else ""
    trailing = "/" if path.endswith("/") and kept else ""
    return leading + "/".join(kept) + trailing


def canonical_query(query: str, *, drop_signature: bool = False) -> str:
    """Each name and value URI-encoded (RFC 3986), sorted by name then value."""
    pairs = [
        (quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~"))
        for name, value in _query_pairs(query)
        if not (drop_signature and name == "X-Amz-Signature")
    ]
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = []
    for item in query.split("&"):
        if item:
            name, _, value = item.partition("=")
            pairs.append((name, value))
    return pairs


def _header_values(request: Received, name: str) -> str:
    return ",".join(" ".join(v.split()) for n, v in request.headers if n == name)
