"""One conformance suite for the StorageDriver interface, run against every driver: the S3
driver's against a real S3 server (SeaweedFS, tests/s3server.py), a bucket per test."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from baepo.clock import FakeClock
from baepo.storage import (
    BlobNotFound,
    FilesystemDriver,
    InvalidKey,
    MemoryDriver,
    S3Driver,
    S3Settings,
    StorageDriver,
    StorageFailure,
    UploadNotFound,
)
from baepo.storage.s3 import MIN_PART
from tests.s3server import ACCESS_KEY, SECRET_KEY, S3Server


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def s3_settings(server: S3Server, bucket: str, **more: Any) -> S3Settings:
    """The smallest parts S3 allows, so that a few MiB cross part boundaries."""
    settings = S3Settings(
        bucket, server.endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, part_size=MIN_PART
    )
    return dataclasses.replace(settings, **more)


@pytest.fixture(params=["filesystem", "memory", "s3"])
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageDriver]:
    if request.param == "filesystem":
        yield FilesystemDriver(tmp_path / "root")
    elif request.param == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        yield S3Driver.connect(s3_settings(server, server.bucket()))
    else:
        yield MemoryDriver(FakeClock(datetime.now(UTC)))


def read_all(driver: StorageDriver, digest: str, offset: int = 0, chunk: int = 7) -> bytes:
    reader = driver.open(digest, offset)
    try:
        parts = []
        while part := reader.read(chunk):
            parts.append(part)
        return b"".join(parts)
    finally:
        reader.close()


def upload(driver: StorageDriver, upload_id: str, *chunks: bytes) -> None:
    driver.create_upload(upload_id)
    writer = driver.append(upload_id)
    try:
        for c in chunks:
            writer.write(c)
    finally:
        writer.close()


# -- blobs -----------------------------------------------------------------------------------


def test_put_then_get_stat_open(driver: StorageDriver) -> None:
    data = b"some bytes of a blob"
    d = digest_of(data)
    assert driver.stat(d) is None
    info = driver.put(d, data)
    assert (info.digest, info.size) == (d, len(data))
    assert driver.get(d) == data
    stat = driver.stat(d)
    assert stat is not None and stat.size == len(data) and stat.modified.tzinfo is not None
    assert read_all(driver, d) == data
    assert read_all(driver, d, offset=5) == data[5:]
    assert read_all(driver, d, offset=len(data)) == b""


def test_sha512_and_empty_blobs(driver: StorageDriver) -> None:
    d512 = digest_of(b"x", "sha512")
    driver.put(d512, b"x")
    assert driver.get(d512) == b"x"
    empty = digest_of(b"")
    driver.put(empty, b"")
    assert driver.get(empty) == b""
    stat = driver.stat(empty)
    assert stat is not None and stat.size == 0


def test_put_twice_is_harmless(driver: StorageDriver) -> None:
    d = digest_of(b"twice")
    driver.put(d, b"twice")
    driver.put(d, b"twice")
    assert driver.get(d) == b"twice"
    assert [b.digest for b in driver.blobs()] == [d]


def test_missing_blob(driver: StorageDriver) -> None:
    d = digest_of(b"never stored")
    with pytest.raises(BlobNotFound):
        driver.get(d)
    with pytest.raises(BlobNotFound):
        driver.open(d)
    assert driver.delete(d) is False


def test_delete_and_list(driver: StorageDriver) -> None:
    digests = {digest_of(bytes([i])) for i in range(5)}
    for d in digests:
        driver.put(d, b"?")
    assert {b.digest for b in driver.blobs()} == digests
    victim = sorted(digests)[0]
    assert driver.delete(victim) is True
    assert driver.stat(victim) is None
    assert {b.digest for b in driver.blobs()} == digests - {victim}


@pytest.mark.parametrize(
    "key",
    [
        "sha256:../../../../etc/passwd",
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 63,
        "md5:" + "a" * 32,
        "sha256/" + "a" * 64,
        "../" + "a" * 64,
        "",
        "sha256:" + "a" * 64 + "\n",
    ],
)
def test_malformed_digests_never_reach_storage(driver: StorageDriver, key: str) -> None:
    with pytest.raises(InvalidKey):
        driver.stat(key)
    with pytest.raises(InvalidKey):
        driver.put(key, b"x")
    with pytest.raises(InvalidKey):
        driver.delete(key)


@pytest.mark.parametrize("key", ["../x", "a/b", "", "x" * 65, "id with space", ".."])
def test_malformed_upload_ids_never_reach_storage(driver: StorageDriver, key: str) -> None:
    with pytest.raises(InvalidKey):
        driver.create_upload(key)
    with pytest.raises(InvalidKey):
        driver.upload_size(key)
    with pytest.raises(InvalidKey):
        driver.delete_upload(key)


# -- uploads ---------------------------------------------------------------------------------


def test_upload_append_read_commit(driver: StorageDriver) -> None:
    upload(driver, "u1", b"hello ", b"world")
    assert driver.upload_size("u1") == 11
    reader = driver.read_upload("u1", 6)
    assert reader.read(100) == b"world"
    reader.close()
    d = digest_of(b"hello world")
    info = driver.commit_upload("u1", d)
    assert info.size == 11
    assert driver.get(d) == b"hello world"
    with pytest.raises(UploadNotFound):
        driver.upload_size("u1")
    assert [u.id for u in driver.uploads()] == []


def test_append_resumes_at_the_end(driver: StorageDriver) -> None:
    upload(driver, "u2", b"abc")
    writer = driver.append("u2")
    assert writer.size == 3
    writer.write(b"def")
    assert writer.size == 6
    writer.truncate(3)  # a rejected chunk: back to where this request began
    assert writer.size == 3
    writer.write(b"X")
    writer.close()
    reader = driver.read_upload("u2")
    assert reader.read(100) == b"abcX"
    reader.close()
    assert driver.upload_size("u2") == 4


def read_upload_all(driver: StorageDriver, upload_id: str, offset: int = 0) -> bytes:
    reader = driver.read_upload(upload_id, offset)
    try:
        return b"".join(iter(lambda: reader.read(1 << 20), b""))
    finally:
        reader.close()


def test_large_upload_in_uneven_requests(driver: StorageDriver) -> None:
    """Requests of every size around S3's 5 MiB part minimum, read back between them and
    committed: the bytes are the ones sent, in order."""
    data = os.urandom(3 * MIN_PART + 12345)
    cuts = [0, 100, MIN_PART + 100, MIN_PART + 200, 2 * MIN_PART + 7, len(data)]
    driver.create_upload("big")
    for i, (start, end) in enumerate(itertools.pairwise(cuts)):
        writer = driver.append("big")
        assert writer.size == start
        for piece in range(start, end, 1 << 20):  # 1 MiB writes, as the registry's spool
            writer.write(data[piece : min(piece + (1 << 20), end)])
        writer.close()
        assert driver.upload_size("big") == end
        if i == 2:
            assert read_upload_all(driver, "big", 50) == data[50:end]
    assert read_upload_all(driver, "big") == data
    d = digest_of(data)
    assert driver.commit_upload("big", d).size == len(data)
    assert read_all(driver, d, offset=MIN_PART - 3, chunk=1 << 20) == data[MIN_PART - 3 :]
    assert list(driver.uploads()) == []


def test_a_rejected_chunk_after_parts_were_sent(driver: StorageDriver) -> None:
    head = os.urandom(MIN_PART + 10)
    upload(driver, "undo", head)
    writer = driver.append("undo")
    writer.write(os.urandom(2 * MIN_PART))  # parts sent, then the chunk is refused
    writer.truncate(len(head))
    writer.close()
    assert driver.upload_size("undo") == len(head)
    upload_more = driver.append("undo")
    upload_more.write(b"tail")
    upload_more.close()
    d = digest_of(head + b"tail")
    driver.commit_upload("undo", d)
    assert driver.get(d) == head + b"tail"


def test_commit_onto_an_existing_blob_keeps_both_succeeding(driver: StorageDriver) -> None:
    data = b"same layer"
    d = digest_of(data)
    upload(driver, "a", data)
    upload(driver, "b", data)
    driver.commit_upload("a", d)
    driver.commit_upload("b", d)
    assert driver.get(d) == data
    assert list(driver.uploads()) == []


def test_concurrent_commits_of_the_same_blob(driver: StorageDriver) -> None:
    data = os.urandom(256 * 1024)
    d = digest_of(data)
    ids = [f"c{i}" for i in range(8)]
    for i in ids:
        upload(driver, i, data)
    errors: list[BaseException] = []

    def commit(upload_id: str) -> None:
        try:
            driver.commit_upload(upload_id, d)
        except BaseException as exc:  # pragma: no cover - the assertion reports it
            errors.append(exc)

    threads = [threading.Thread(target=commit, args=(i,)) for i in ids]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert driver.get(d) == data


def test_missing_upload(driver: StorageDriver) -> None:
    with pytest.raises(UploadNotFound):
        driver.append("nope")
    with pytest.raises(UploadNotFound):
        driver.read_upload("nope")
    with pytest.raises(UploadNotFound):
        driver.commit_upload("nope", digest_of(b""))
    assert driver.delete_upload("nope") is False


def test_uploads_are_listed_with_size(driver: StorageDriver) -> None:
    upload(driver, "one", b"12345")
    upload(driver, "two")
    found = {u.id: u.size for u in driver.uploads()}
    assert found == {"one": 5, "two": 0}
    assert driver.delete_upload("one") is True
    assert {u.id for u in driver.uploads()} == {"two"}


def test_sweep_temp_keeps_recent_files(driver: StorageDriver) -> None:
    future = datetime.now(UTC) - timedelta(hours=1)
    assert driver.sweep_temp(future) == (0, 0)


# -- S3 specifics ----------------------------------------------------------------------------


def test_s3_refuses_a_wrong_secret_with_a_clear_error(s3_server: S3Server) -> None:
    settings = s3_settings(s3_server, s3_server.bucket(), secret_key="not-the-secret")
    with pytest.raises(StorageFailure, match=r"refused the credentials \(SignatureDoesNotMatch\)"):
        S3Driver.connect(settings)


def test_s3_names_a_missing_bucket(s3_server: S3Server) -> None:
    with pytest.raises(StorageFailure, match="bucket 'no-such-bucket' does not exist"):
        S3Driver.connect(s3_settings(s3_server, "no-such-bucket"))


def test_s3_driver_keeps_cryptography_out_of_the_process(s3_server: S3Server) -> None:
    """The server never loads `cryptography` (router/signing.py): nor does boto3 for it."""
    settings = s3_settings(s3_server, s3_server.bucket())
    program = (
        "import sys; from baepo.storage import S3Driver, S3Settings; "
        f"S3Driver.connect(S3Settings(**{dataclasses.asdict(settings)!r}))"
        f".put({digest_of(b'')!r}, b''); "
        "print(sorted(name for name in sys.modules if name.startswith('cryptography')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_s3_layout_and_redirects(s3_server: S3Server) -> None:
    bucket = s3_server.bucket()
    s3 = S3Driver.connect(s3_settings(s3_server, bucket, prefix="reg", redirect=True))
    data = b"layout"
    d = digest_of(data)
    s3.put(d, data)
    hexpart = d.split(":")[1]
    assert s3_server.objects(bucket) == {f"reg/blobs/sha256/{hexpart[:2]}/{hexpart}": 6}
    url = s3.redirect_url(d)
    assert url is not None and url.startswith(s3_server.endpoint)
    assert httpx.get(url).content == data  # presigned: no credentials of the client's
    assert S3Driver.connect(s3_settings(s3_server, bucket)).redirect_url(d) is None


def test_s3_small_chunks_cost_no_copies(s3_server: S3Server) -> None:
    """An upload in 1 MiB requests: small tails carried from one to the next, parts of at
    least 5 MiB; no server-side copy and no completion before the commit's."""
    s3 = S3Driver.connect(s3_settings(s3_server, s3_server.bucket()))
    calls: list[str] = []
    for operation in ("UploadPartCopy", "CompleteMultipartUpload", "CopyObject"):
        s3._client.meta.events.register(
            f"before-call.s3.{operation}", lambda op=operation, **_: calls.append(op)
        )
    data = os.urandom(12 * (1 << 20) + 3)
    s3.create_upload("small")
    for start in range(0, len(data), 1 << 20):
        writer = s3.append("small")
        writer.write(data[start : start + (1 << 20)])
        writer.close()
    assert calls == []
    assert s3.upload_size("small") == len(data)
    d = digest_of(data)
    s3.commit_upload("small", d)
    assert calls == ["CompleteMultipartUpload", "CopyObject"]
    assert s3.get(d) == data


def test_s3_sweep_aborts_multipart_uploads_nothing_names(s3_server: S3Server) -> None:
    bucket = s3_server.bucket()
    s3 = S3Driver.connect(s3_settings(s3_server, bucket))
    upload(s3, "kept", os.urandom(MIN_PART + 1))  # a live upload's multipart upload
    client = s3_server.client()
    stray = client.create_multipart_upload(Bucket=bucket, Key="uploads/crashed/data")
    client.upload_part(
        Bucket=bucket,
        Key="uploads/crashed/data",
        UploadId=stray["UploadId"],
        PartNumber=1,
        Body=b"x" * 10,
    )
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert s3.sweep_temp(datetime.now(UTC) - timedelta(hours=1)) == (0, 0)
    assert s3.sweep_temp(later, dry_run=True) == (1, 10)
    assert s3.sweep_temp(later) == (1, 10)
    assert s3.sweep_temp(later) == (0, 0)
    assert s3.upload_size("kept") == MIN_PART + 1


def test_the_storage_room_loads_boto3_only_for_s3() -> None:
    """boto3 is ~40 MiB resident: a registry on the filesystem does not pay for it."""
    program = (
        "import sys, baepo.server, baepo.storage\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'boto3', 'botocore'}))\n"
        "baepo.storage.S3Driver\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'boto3', 'botocore'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split("\n")[:2] == ["[]", "['botocore']"]


# -- filesystem specifics --------------------------------------------------------------------


def test_filesystem_layout_and_stray_temp_files(tmp_path: Path) -> None:
    fs = FilesystemDriver(tmp_path)
    data = b"layout"
    d = digest_of(data)
    fs.put(d, data)
    hexpart = d.split(":")[1]
    assert (tmp_path / "blobs" / "sha256" / hexpart[:2] / hexpart).read_bytes() == data
    stray = tmp_path / "tmp" / "put-crashed"
    stray.write_bytes(b"half a blob")
    past = datetime.now(UTC) - timedelta(hours=2)
    os.utime(stray, (past.timestamp(), past.timestamp()))
    assert fs.sweep_temp(datetime.now(UTC) - timedelta(hours=1), dry_run=True) == (1, 11)
    assert stray.exists()
    assert fs.sweep_temp(datetime.now(UTC) - timedelta(hours=1)) == (1, 11)
    assert not stray.exists()
    assert [b.digest for b in fs.blobs()] == [d]


def test_filesystem_upload_is_never_a_blob_until_committed(tmp_path: Path) -> None:
    fs = FilesystemDriver(tmp_path)
    data = b"partial upload"
    upload(fs, "killed", data[:7])
    d = digest_of(data)
    assert fs.stat(d) is None
    assert list(fs.blobs()) == []
    # A restarted process sees the upload as it was left.
    again = FilesystemDriver(tmp_path)
    assert again.upload_size("killed") == 7
