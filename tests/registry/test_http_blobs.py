"""The blob half of the HTTP API: pull, push (monolithic, chunked, streamed), mount, delete."""

from __future__ import annotations

import hashlib

import pytest

from .conftest import AppClient
from .content import Blob, error_codes, push_blob, random_layer, sha256

EVERY_DRIVER = True  # each test that stores blobs runs on the filesystem and on S3

REPO = "team/app/api"


def test_version_check(client: AppClient) -> None:
    r = client.get("/v2/")
    assert r.status_code == 200 and r.json() == {}
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"
    assert client.get("/v2").status_code == 200


# -- pull ------------------------------------------------------------------------------------


def test_get_and_head_blob(client: AppClient) -> None:
    blob = random_layer(3 * 1024 * 1024 + 17)  # more than one 1 MiB send chunk
    push_blob(client, REPO, blob)
    r = client.get(f"/v2/{REPO}/blobs/{blob.digest}")
    assert r.status_code == 200
    assert r.content == blob.data
    assert r.headers["docker-content-digest"] == blob.digest
    assert r.headers["content-length"] == str(len(blob.data))
    assert r.headers["content-type"] == "application/octet-stream"
    h = client.head(f"/v2/{REPO}/blobs/{blob.digest}")
    assert h.status_code == 200 and h.content == b""
    assert h.headers["content-length"] == str(len(blob.data))
    assert h.headers["docker-content-digest"] == blob.digest


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=100-", 100, 999),
        ("bytes=-10", 990, 999),
        ("bytes=995-5000", 995, 999),
    ],
)
def test_range_requests(client: AppClient, header: str, start: int, end: int) -> None:
    blob = random_layer(1000)
    push_blob(client, REPO, blob)
    r = client.get(f"/v2/{REPO}/blobs/{blob.digest}", headers={"Range": header})
    assert r.status_code == 206
    assert r.content == blob.data[start : end + 1]
    assert r.headers["content-range"] == f"bytes {start}-{end}/1000"
    assert r.headers["docker-content-digest"] == blob.digest


def test_unsatisfiable_range(client: AppClient) -> None:
    blob = random_layer(100)
    push_blob(client, REPO, blob)
    r = client.get(f"/v2/{REPO}/blobs/{blob.digest}", headers={"Range": "bytes=100-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == "bytes */100"


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (b"bytes=\xb2-", 200),  # not an ASCII digit: the Range is ignored
        (b"bytes=" + b"9" * 5000 + b"-", 416),
        (b"bytes=0-" + b"9" * 5000, 206),
        (b"bytes=-" + b"9" * 5000, 206),
    ],
)
def test_odd_numbers_in_a_range(client: AppClient, header: bytes, status: int) -> None:
    blob = random_layer(100)
    push_blob(client, REPO, blob)
    r = client.get(f"/v2/{REPO}/blobs/{blob.digest}", headers={"Range": header})
    assert r.status_code == status
    if status != 416:
        assert r.content == blob.data


def test_unknown_blob(client: AppClient) -> None:
    digest = sha256(b"never pushed")
    push_blob(client, REPO, random_layer())
    for method in ("GET", "HEAD"):
        r = client.request(method, f"/v2/{REPO}/blobs/{digest}")
        assert r.status_code == 404
    assert error_codes(client.get(f"/v2/{REPO}/blobs/{digest}")) == ["BLOB_UNKNOWN"]


def test_blob_of_another_repository_is_not_served(client: AppClient) -> None:
    blob = random_layer()
    push_blob(client, "team/one", blob)
    push_blob(client, "team/two", random_layer())
    assert client.get(f"/v2/team/two/blobs/{blob.digest}").status_code == 404


@pytest.mark.parametrize(
    "digest",
    ["sha256:abc", "sha256:" + "Z" * 64, "md5:" + "a" * 32, "nonsense", "sha256:" + "A" * 64],
)
def test_malformed_digest_is_400_not_500(client: AppClient, digest: str) -> None:
    r = client.get(f"/v2/{REPO}/blobs/{digest}")
    assert r.status_code == 400
    assert error_codes(r) == ["DIGEST_INVALID"]


@pytest.mark.parametrize(
    "path",
    [
        "/v2/Team/app/blobs/uploads/",
        "/v2/team//app/tags/list",
        "/v2/a..b/manifests/latest",
        "/v2/-x/blobs/sha256:" + "a" * 64,
    ],
)
def test_invalid_names(client: AppClient, path: str) -> None:
    r = client.request("POST" if path.endswith("uploads/") else "GET", path)
    assert r.status_code == 400
    assert error_codes(r) == ["NAME_INVALID"]


def test_dot_segments_cannot_escape(client: AppClient) -> None:
    # httpx would normalise "..", so send it percent-encoded: the app sees the decoded path.
    r = client.get("/v2/team/%2E%2E/%2E%2E/tags/list")
    assert r.status_code == 400


def test_unknown_path_and_method(client: AppClient) -> None:
    assert client.get("/v2/team/app/nothing/here").status_code == 404
    r = client.request("PATCH", f"/v2/{REPO}/manifests/latest")
    assert r.status_code == 405
    assert error_codes(r) == ["UNSUPPORTED"]


# -- push ------------------------------------------------------------------------------------


def test_post_then_put(client: AppClient) -> None:
    blob = random_layer()
    start = client.post(f"/v2/{REPO}/blobs/uploads/")
    assert start.status_code == 202
    location = start.headers["location"]
    assert location.startswith(f"/v2/{REPO}/blobs/uploads/")
    assert start.headers["docker-upload-uuid"] in location
    done = client.put(location, params={"digest": blob.digest}, content=blob.data)
    assert done.status_code == 201
    assert done.headers["location"] == f"/v2/{REPO}/blobs/{blob.digest}"
    assert done.headers["docker-content-digest"] == blob.digest
    assert client.get(done.headers["location"]).content == blob.data


def test_single_post_with_digest(client: AppClient) -> None:
    blob = random_layer()
    r = client.post(f"/v2/{REPO}/blobs/uploads/", params={"digest": blob.digest}, content=blob.data)
    assert r.status_code == 201
    assert r.headers["docker-content-digest"] == blob.digest
    assert client.get(f"/v2/{REPO}/blobs/{blob.digest}").content == blob.data


def test_single_post_with_wrong_digest(client: AppClient, registry: object) -> None:
    blob = random_layer()
    wrong = sha256(b"other")
    r = client.post(f"/v2/{REPO}/blobs/uploads/", params={"digest": wrong}, content=blob.data)
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    assert client.head(f"/v2/{REPO}/blobs/{wrong}").status_code == 404
    assert client.head(f"/v2/{REPO}/blobs/{blob.digest}").status_code == 404


def test_wrong_digest_never_becomes_a_blob(client: AppClient) -> None:
    blob = random_layer()
    wrong = sha256(b"something else")
    start = client.post(f"/v2/{REPO}/blobs/uploads/")
    r = client.put(start.headers["location"], params={"digest": wrong}, content=blob.data)
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    assert client.head(f"/v2/{REPO}/blobs/{wrong}").status_code == 404
    # The session is over: its bytes can never become that blob.
    assert client.get(start.headers["location"]).status_code == 404


@pytest.mark.parametrize("params", [{}, {"digest": "sha256:bad"}, {"digest": "md5:" + "0" * 32}])
def test_put_without_a_valid_digest(client: AppClient, params: dict[str, str]) -> None:
    start = client.post(f"/v2/{REPO}/blobs/uploads/")
    r = client.put(start.headers["location"], params=params, content=b"x")
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]


def test_empty_blob(client: AppClient) -> None:
    empty = Blob(b"")
    push_blob(client, REPO, empty)
    h = client.head(f"/v2/{REPO}/blobs/{empty.digest}")
    assert h.status_code == 200 and h.headers["content-length"] == "0"
    r = client.get(f"/v2/{REPO}/blobs/{empty.digest}")
    assert r.status_code == 200 and r.content == b""


def test_sha512_digest(client: AppClient) -> None:
    data = b"a blob addressed by sha512"
    digest = "sha512:" + hashlib.sha512(data).hexdigest()
    start = client.post(f"/v2/{REPO}/blobs/uploads/")
    client.patch(start.headers["location"], content=data[:5], headers={"Content-Range": "0-4"})
    r = client.put(start.headers["location"], params={"digest": digest}, content=data[5:])
    assert r.status_code == 201, r.text
    assert r.headers["docker-content-digest"] == digest
    assert client.get(f"/v2/{REPO}/blobs/{digest}").content == data
    wrong = "sha512:" + hashlib.sha512(b"no").hexdigest()
    r = client.post(f"/v2/{REPO}/blobs/uploads/", params={"digest": wrong}, content=data)
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]


# -- chunked ---------------------------------------------------------------------------------


def test_chunked_upload(client: AppClient) -> None:
    blob = random_layer(300)
    start = client.post(f"/v2/{REPO}/blobs/uploads/")
    location = start.headers["location"]
    first = client.patch(location, content=blob.data[:100], headers={"Content-Range": "0-99"})
    assert first.status_code == 202
    assert first.headers["range"] == "0-99"
    assert first.headers["location"] == location
    second = client.patch(
        first.headers["location"], content=blob.data[100:250], headers={"Content-Range": "100-249"}
    )
    assert second.status_code == 202 and second.headers["range"] == "0-249"
    status = client.get(location)
    assert status.status_code == 204
    assert status.headers["range"] == "0-249"
    assert status.headers["location"] == location
    assert status.headers["docker-upload-uuid"] in location
    # The last chunk rides on the PUT.
    done = client.put(
        location,
        params={"digest": blob.digest},
        content=blob.data[250:],
        headers={"Content-Range": "250-299"},
    )
    assert done.status_code == 201, done.text
    assert client.get(f"/v2/{REPO}/blobs/{blob.digest}").content == blob.data


@pytest.mark.parametrize(
    ("content_range", "size"),
    [("10-19", 10), ("0-9", 10), ("5-14", 10), ("100-109", 10)],
    ids=["gap", "repeat", "overlap", "far"],
)
def test_out_of_order_chunk_is_416(client: AppClient, content_range: str, size: int) -> None:
    start = client.post(f"/v2/{REPO}/blobs/uploads/")
    location = start.headers["location"]
    if content_range != "10-19":
        client.patch(location, content=b"x" * 10, headers={"Content-Range": "0-9"})
    r = client.patch(location, content=b"y" * size, headers={"Content-Range": content_range})
    assert r.status_code == 416
    assert error_codes(r) == ["BLOB_UPLOAD_INVALID"]
    status = client.get(location)
    expected = "0-0" if content_range == "10-19" else "0-9"
    assert status.status_code == 204 and status.headers["range"] == expected


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Content-Range": b"0-\xb2"}, 400),
        ({"Content-Range": b"0-" + b"9" * 5000}, 400),  # longer than the chunk
        ({"Content-Range": b"9" * 5000 + b"-" + b"9" * 5001}, 416),  # not where the upload is
        ({"Content-Length": b"\xb2"}, 400),
        ({"Content-Length": b"9" * 5000}, 400),
    ],
    ids=["range-superscript", "range-huge-end", "range-huge-start", "length-sup", "length-huge"],
)
def test_odd_numbers_in_a_chunk(client: AppClient, headers: dict[str, bytes], status: int) -> None:
    location = client.post(f"/v2/{REPO}/blobs/uploads/").headers["location"]
    r = client.patch(location, content=b"ab", headers=headers)
    assert r.status_code == status
    assert error_codes(r) == ["BLOB_UPLOAD_INVALID"]
    assert client.get(location).headers["range"] == "0-0"  # nothing was appended


def test_chunk_longer_than_its_range_is_rejected_and_undone(client: AppClient) -> None:
    start = client.post(f"/v2/{REPO}/blobs/uploads/")
    location = start.headers["location"]
    client.patch(location, content=b"abcd", headers={"Content-Range": "0-3"})
    r = client.patch(location, content=b"too long", headers={"Content-Range": "4-5"})
    assert r.status_code == 400 and error_codes(r) == ["BLOB_UPLOAD_INVALID"]
    assert client.get(location).headers["range"] == "0-3"
    data = b"abcdEF"
    client.patch(location, content=b"EF", headers={"Content-Range": "4-5"})
    assert client.put(location, params={"digest": sha256(data)}).status_code == 201


def test_streamed_patch_without_content_range(client: AppClient) -> None:
    blob = random_layer(5000)
    start = client.post(f"/v2/{REPO}/blobs/uploads/")
    location = start.headers["location"]
    r = client.patch(location, content=blob.data[:3000])
    assert r.status_code == 202 and r.headers["range"] == "0-2999"
    r = client.patch(r.headers["location"], content=blob.data[3000:])
    assert r.headers["range"] == "0-4999"
    assert client.put(location, params={"digest": blob.digest}).status_code == 201


def test_cancel_upload(client: AppClient) -> None:
    start = client.post(f"/v2/{REPO}/blobs/uploads/")
    location = start.headers["location"]
    client.patch(location, content=b"abc")
    assert client.delete(location).status_code == 204
    for r in (client.get(location), client.patch(location, content=b"x"), client.delete(location)):
        assert r.status_code == 404
        assert error_codes(r) == ["BLOB_UPLOAD_UNKNOWN"]


def test_unknown_or_foreign_upload(client: AppClient) -> None:
    assert client.get(f"/v2/{REPO}/blobs/uploads/no-such-upload").status_code == 404
    assert client.get(f"/v2/{REPO}/blobs/uploads/..%2F..%2Fetc").status_code in (400, 404)
    start = client.post("/v2/team/one/blobs/uploads/")
    upload_id = start.headers["docker-upload-uuid"]
    r = client.get(f"/v2/team/two/blobs/uploads/{upload_id}")
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UPLOAD_UNKNOWN"]


# -- mount and delete ------------------------------------------------------------------------


def test_cross_repository_mount(client: AppClient) -> None:
    blob = random_layer()
    push_blob(client, "team/source", blob)
    r = client.post(
        "/v2/team/target/blobs/uploads/", params={"mount": blob.digest, "from": "team/source"}
    )
    assert r.status_code == 201
    assert r.headers["location"] == f"/v2/team/target/blobs/{blob.digest}"
    assert r.headers["docker-content-digest"] == blob.digest
    assert client.get(r.headers["location"]).content == blob.data


@pytest.mark.parametrize(
    "params",
    [
        {"mount": sha256(b"absent"), "from": "team/source"},
        {"mount": sha256(b"absent")},
        {"mount": "sha256:bad", "from": "team/source"},
        {"mount": sha256(b"absent"), "from": "Bad//Name"},
    ],
)
def test_mount_falls_back_to_an_upload(client: AppClient, params: dict[str, str]) -> None:
    push_blob(client, "team/source", random_layer())
    r = client.post("/v2/team/target/blobs/uploads/", params=params)
    assert r.status_code == 202
    assert r.headers["location"].startswith("/v2/team/target/blobs/uploads/")


def test_delete_blob(client: AppClient) -> None:
    blob = random_layer()
    push_blob(client, REPO, blob)
    r = client.delete(f"/v2/{REPO}/blobs/{blob.digest}")
    assert r.status_code == 202
    r = client.get(f"/v2/{REPO}/blobs/{blob.digest}")
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UNKNOWN"]
    assert client.delete(f"/v2/{REPO}/blobs/{blob.digest}").status_code == 404


def test_every_response_names_the_api_version(client: AppClient) -> None:
    responses = [
        client.get("/v2/"),
        client.get("/v2/x/blobs/sha256:bad"),
        client.head(f"/v2/x/blobs/{sha256(b'')}"),
        client.post("/v2/x/blobs/uploads/"),
        client.get("/v2/nothing"),
    ]
    for r in responses:
        assert r.headers["docker-distribution-api-version"] == "registry/2.0"
