"""The S3 driver: blobs as objects in one bucket, on AWS S3 or any server that speaks it
(SeaweedFS, MinIO, Ceph), through boto3.

Bucket layout (below an optional key prefix)::

    blobs/sha256/4f/4f53...c9     a blob: the same names as the filesystem driver's files
    uploads/<id>/state            an upload's record (JSON, `_State`): its S3 multipart upload
                                  and the parts it holds, and how many bytes `data` and `tail`
                                  add before and after them
    uploads/<id>/data             the key of the upload's multipart upload, and the object it
                                  is completed into when the upload must be read or copied
    uploads/<id>/tail             what a request left that was too short for a part

An upload is an S3 multipart upload. S3 wants every part but the last to be at least 5 MiB,
and a registry upload arrives in PATCH requests of any size: a writer sends a part each time
it has gathered `part_size` bytes, and at the end of the request sends what is left as one
more part if it is at least 5 MiB, else stores it as `tail`, then rewrites `state`. The next
request reads `tail` back and goes on from there, so every part is big enough to be followed
by more, and an upload sent in small chunks costs one small GET and PUT per chunk (never a
copy of what it holds so far, which is how distribution's S3 driver resumes).

The commit completes the multipart upload (`tail` as its last part) and copies `data` to the
blob's key on the server (a copy is atomic: the blob appears whole or not at all), then
deletes the upload. Reading an upload back (a restart rebuilding its hash) completes it the
same way; a later request then starts a new multipart upload whose first part is a
server-side copy of `data`. Only what `state` lists is ever part of the upload: the parts of
a rejected chunk (`truncate`) or of a request that died before its end are never named in a
completion, and the collector aborts multipart uploads no `state` names (`sweep_temp`).

Calls go over the network: `remote` tells the registry to make them from worker threads.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import (  # type: ignore[import-untyped]  # boto3 ships no types
    BotoCoreError,
    ClientError,
)

from baepo.storage.driver import (
    BlobInfo,
    BlobReader,
    UploadInfo,
    UploadWriter,
    check_digest,
    check_upload_id,
)
from baepo.storage.errors import BlobNotFound, InvalidKey, StorageFailure, UploadNotFound

MIN_PART = 5 * 1024 * 1024
"""S3's smallest part but the last."""
DEFAULT_PART_SIZE = 10 * 1024 * 1024
"""A writer's buffer: 10,000 parts (S3's most) of it make a 100 GB blob."""
COPY_LIMIT = 5 * 1024**3
"""The largest object one CopyObject may copy; beyond it the copy goes in parts."""
SENDERS = 16
"""Parts sent at once, over all uploads (each writer has at most one in flight)."""
LOCK_WAIT_S = 60.0
REDIRECT_EXPIRY_S = 20 * 60
_MISSING = {"404", "NoSuchKey", "NotFound"}
_REFUSED = {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "403"}


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    endpoint: str | None = None  # None: AWS's own endpoint for the region
    region: str = "us-east-1"
    access_key: str | None = None  # None (both): boto3's chain (AWS_* variables, ~/.aws, a role)
    secret_key: str | None = None
    prefix: str = ""
    redirect: bool = False  # blob GETs answer 307 to a presigned URL
    part_size: int = DEFAULT_PART_SIZE


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _failure(what: str, exc: Exception) -> StorageFailure:
    """One sentence for an S3 error; a refused credential says which variables to check."""
    if isinstance(exc, ClientError):
        code = _error_code(exc)
        if code in _REFUSED:
            return StorageFailure(
                f"S3 refused the credentials ({code}) to {what}: check the access key and "
                "secret (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or --s3-access-key/"
                "--s3-secret-key)"
            )
        message = exc.response.get("Error", {}).get("Message", "")
        return StorageFailure(f"S3 could not {what}: {code} {message}".rstrip())
    return StorageFailure(f"cannot reach S3 to {what}: {exc}")


@contextmanager
def _mapped(what: str) -> Iterator[None]:
    """botocore's errors become StorageFailure, here and nowhere else."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise _failure(what, exc) from exc


def _modified(value: datetime) -> datetime:
    return value.astimezone(UTC)


@dataclass
class _State:
    """What `uploads/<id>/state` says the upload holds, in order: `base` bytes of the object
    `data` (a multipart upload completed to be read back), the parts (number, ETag, size) of
    the open multipart upload, each at least MIN_PART so that more may follow, and `tail`
    bytes in the object `tail` (what a request left that was too short for a part). A new
    multipart upload copies a `base` into its first part: `base` is 0 while one is open."""

    multipart: str | None = None
    parts: list[tuple[int, str, int]] = field(default_factory=list)
    base: int = 0
    tail: int = 0

    @property
    def size(self) -> int:
        return self.base + sum(size for _, _, size in self.parts) + self.tail

    @property
    def whole(self) -> bool:
        """Every byte is in `data` already."""
        return self.multipart is None and self.tail == 0

    def dumps(self) -> bytes:
        fields = {
            "multipart": self.multipart,
            "parts": self.parts,
            "base": self.base,
            "tail": self.tail,
        }
        return json.dumps(fields).encode()

    @classmethod
    def loads(cls, data: bytes) -> _State:
        raw = json.loads(data)
        parts = [(int(n), str(etag), int(size)) for n, etag, size in raw["parts"]]
        return cls(raw["multipart"], parts, int(raw["base"]), int(raw["tail"]))


class _ObjectReader:
    def __init__(self, body: Any) -> None:
        self._body = body

    def read(self, size: int) -> bytes:
        if self._body is None:
            return b""
        try:
            return bytes(self._body.read(size))
        except (BotoCoreError, OSError) as exc:
            raise StorageFailure(f"cannot read from S3: {exc}") from exc

    def close(self) -> None:
        if self._body is not None:
            self._body.close()


class _PartWriter:
    """Appends of one request to an upload (see the module docstring). Opened by `append`, it
    holds the upload's lock until `close`, so a request that follows waits for its parts.

    The bytes a part will carry gather in `_buffer`, which starts with what was read back (a
    short `base`, the `tail`). A full part goes out in the driver's sender threads while the
    next one fills: one part in flight at a time, so a writer holds at most two parts."""

    def __init__(
        self,
        driver: S3Driver,
        upload_id: str,
        state: _State,
        loaded: bytes,
        release: Callable[[], None],
    ) -> None:
        self._driver = driver
        self._id = upload_id
        self._opened = state
        self._loaded = loaded
        self._release = release
        self._closed = False
        self._in_flight: Future[tuple[int, str, int]] | None = None
        self._in_flight_size = 0
        self._restore()

    def _restore(self) -> None:
        state = self._opened
        self._multipart = state.multipart
        self._parts = list(state.parts)
        self._base = state.base if state.base >= MIN_PART else 0  # a short one was loaded
        self._buffer = bytearray(self._loaded)
        self._dirty = False

    @property
    def size(self) -> int:
        sent = sum(size for _, _, size in self._parts)
        return self._base + sent + self._in_flight_size + len(self._buffer)

    def write(self, data: bytes) -> None:
        self._buffer += data
        self._dirty = True
        part_size = self._driver.settings.part_size
        while len(self._buffer) >= part_size:
            self._send_part(bytes(self._buffer[:part_size]))
            del self._buffer[:part_size]

    def truncate(self, size: int) -> None:
        """Undo this request's chunk: back to the parts the upload had when it began (its
        parts sent since are left out of every completion)."""
        if size != self._opened.size:
            raise StorageFailure("an S3 upload is cut back only to where the request began")
        self._drop_in_flight()
        if self._multipart is not None and self._opened.multipart is None:
            self._driver._abort(self._id, self._multipart)
        self._restore()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._dirty:
                self._end_request()
        finally:
            self._drop_in_flight()  # after a failure: no send outlives the lock
            self._release()

    def _end_request(self) -> None:
        """What is left becomes a part if more parts may follow it; else, in an upload that
        is that short, all of `data` (what a blob of a few bytes needs: no multipart upload
        at all), or the tail."""
        driver = self._driver
        left, short = bytes(self._buffer), self._multipart is None and self._base == 0
        self._buffer.clear()
        tail = 0
        if len(left) >= MIN_PART:
            self._send_part(left)
        elif short:
            with _mapped(f"write upload {self._id}"):
                driver._put(driver._data_key(self._id), left)
        elif left:
            with _mapped(f"write upload {self._id}"):
                driver._put(driver._tail_key(self._id), left)
            tail = len(left)
        self._settle()
        base = len(left) if short and len(left) < MIN_PART else self._base
        driver._save_state(self._id, _State(self._multipart, self._parts, base, tail))

    def seal(self) -> _State:
        """Put every byte into `data` (to read the upload back, or to copy it whole): the
        rest becomes the last part, of any size, and the multipart upload is completed."""
        driver = self._driver
        if self._multipart is None and self._base == 0:
            with _mapped(f"write upload {self._id}"):  # under 2 x MIN_PART, all loaded
                driver._put(driver._data_key(self._id), bytes(self._buffer))
        else:
            if self._buffer:
                self._send_part(bytes(self._buffer))
                self._buffer.clear()
            self._settle()
            with _mapped(f"complete upload {self._id}"):
                driver._client.complete_multipart_upload(
                    Bucket=driver.bucket,
                    Key=driver._data_key(self._id),
                    UploadId=self._multipart,
                    MultipartUpload={
                        "Parts": [{"PartNumber": n, "ETag": etag} for n, etag, _ in self._parts]
                    },
                )
        sealed = _State(base=self.size)
        driver._save_state(self._id, sealed)
        return sealed

    def _settle(self) -> None:
        """Wait for the part in flight; it joins the parts (or its error is raised here)."""
        if self._in_flight is not None:
            sent, self._in_flight = self._in_flight, None
            self._in_flight_size = 0
            self._parts.append(sent.result())

    def _drop_in_flight(self) -> None:
        if self._in_flight is not None:
            wait([self._in_flight])
            self._in_flight, self._in_flight_size = None, 0

    def _send_part(self, data: bytes) -> None:
        self._settle()
        driver = self._driver
        key = driver._data_key(self._id)
        if self._multipart is None:
            with _mapped(f"write upload {self._id}"):
                self._multipart = driver._client.create_multipart_upload(
                    Bucket=driver.bucket, Key=key
                )["UploadId"]
                if self._base:  # `data` (at least MIN_PART) becomes the first part
                    copied = driver._client.upload_part_copy(
                        Bucket=driver.bucket,
                        Key=key,
                        UploadId=self._multipart,
                        PartNumber=1,
                        CopySource={"Bucket": driver.bucket, "Key": key},
                    )
                    self._parts = [(1, copied["CopyPartResult"]["ETag"], self._base)]
                    self._base = 0
        number, multipart = len(self._parts) + 1, self._multipart

        def send() -> tuple[int, str, int]:
            with _mapped(f"write upload {self._id}"):
                sent = driver._client.upload_part(
                    Bucket=driver.bucket, Key=key, UploadId=multipart, PartNumber=number,
                    Body=data,
                )  # fmt: skip
            return number, str(sent["ETag"]), len(data)

        self._in_flight = driver._senders.submit(send)
        self._in_flight_size = len(data)


def _without_pyopenssl() -> None:
    """Keep `cryptography` out of the process that uses boto3. botocore imports urllib3's
    pyOpenSSL shim only to find the standard library's SSLContext, and uses that one when the
    import fails; the shim imports `cryptography`, ~15 MiB resident that the server otherwise
    never loads (router/signing.py). Marked absent, the shim fails to import, as without
    pyOpenSSL installed (it is, for ACME); nothing else in the server imports it."""
    sys.modules.setdefault("urllib3.contrib.pyopenssl", None)  # type: ignore[arg-type]  # None: absent


class S3Driver:
    """Blobs in an S3 bucket (layout in the module docstring)."""

    remote = True

    def __init__(self, client: Any, settings: S3Settings) -> None:
        self._client = client
        self.settings = settings
        self.bucket = settings.bucket
        self._prefix = settings.prefix.strip("/") + "/" if settings.prefix.strip("/") else ""
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._senders = ThreadPoolExecutor(SENDERS, thread_name_prefix="s3-parts")
        if settings.part_size < MIN_PART:
            raise ValueError(f"part_size must be at least {MIN_PART} bytes")

    @classmethod
    def connect(cls, settings: S3Settings) -> S3Driver:
        """A driver on a boto3 client for `settings`, after one request that proves the bucket
        is there and the credentials are accepted (StorageFailure says which is wrong)."""
        _without_pyopenssl()
        import boto3  # type: ignore[import-untyped]  # ~40 MiB resident: only where S3 is used
        from botocore.config import Config  # type: ignore[import-untyped]  # no types either

        client = boto3.client(
            "s3",
            endpoint_url=settings.endpoint,
            region_name=settings.region,
            aws_access_key_id=settings.access_key,
            aws_secret_access_key=settings.secret_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
                max_pool_connections=32,
            ),
        )
        driver = cls(client, settings)
        driver.check()
        return driver

    def __repr__(self) -> str:
        return f"S3Driver({self.settings.endpoint or 'aws'!r}, {self.bucket!r})"

    def check(self) -> None:
        """One listing of the bucket: a wrong secret or a missing bucket fails here."""
        try:
            self._client.list_objects_v2(Bucket=self.bucket, MaxKeys=1)
        except ClientError as exc:
            if _error_code(exc) == "NoSuchBucket":
                raise StorageFailure(f"S3 bucket {self.bucket!r} does not exist") from exc
            raise _failure(f"list bucket {self.bucket!r}", exc) from exc
        except BotoCoreError as exc:
            raise _failure(f"list bucket {self.bucket!r}", exc) from exc

    # -- keys ------------------------------------------------------------------------------
    def _blob_key(self, digest: str) -> str:
        algorithm, hexpart = check_digest(digest)
        return f"{self._prefix}blobs/{algorithm}/{hexpart[:2]}/{hexpart}"

    def _upload_dir(self, upload_id: str) -> str:
        return f"{self._prefix}uploads/{check_upload_id(upload_id)}/"

    def _data_key(self, upload_id: str) -> str:
        return self._upload_dir(upload_id) + "data"

    def _state_key(self, upload_id: str) -> str:
        return self._upload_dir(upload_id) + "state"

    def _tail_key(self, upload_id: str) -> str:
        return self._upload_dir(upload_id) + "tail"

    # -- small calls -----------------------------------------------------------------------
    def _put(self, key: str, data: bytes) -> None:
        self._client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return dict(self._client.head_object(Bucket=self.bucket, Key=key))
        except ClientError as exc:
            if _error_code(exc) in _MISSING:
                return None
            raise

    def _listing(self, prefix: str) -> Iterator[dict[str, Any]]:
        pages = self._client.get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.bucket, Prefix=prefix):
            yield from page.get("Contents", [])

    def _load_state(self, upload_id: str) -> _State:
        key = self._state_key(upload_id)
        with _mapped(f"read upload {upload_id}"):
            try:
                body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
            except ClientError as exc:
                if _error_code(exc) in _MISSING:
                    raise UploadNotFound(upload_id) from exc
                raise
            with body:
                data = body.read()
        try:
            return _State.loads(data)
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageFailure(f"the record of upload {upload_id} is unreadable") from exc

    def _save_state(self, upload_id: str, state: _State) -> None:
        with _mapped(f"record upload {upload_id}"):
            self._put(self._state_key(upload_id), state.dumps())

    def _abort(self, upload_id: str, multipart: str) -> None:
        """Best effort: an abort that fails leaves parts the collector aborts later."""
        with suppress(ClientError, BotoCoreError):
            self._client.abort_multipart_upload(
                Bucket=self.bucket, Key=self._data_key(upload_id), UploadId=multipart
            )

    # -- per-upload lock -------------------------------------------------------------------
    def _hold(self, upload_id: str) -> None:
        with self._locks_guard:
            lock = self._locks.setdefault(upload_id, threading.Lock())
        if not lock.acquire(timeout=LOCK_WAIT_S):
            raise StorageFailure(f"upload {upload_id} is busy")

    def _release(self, upload_id: str) -> None:
        with self._locks_guard:
            lock = self._locks.get(upload_id)
        if lock is not None and lock.locked():
            lock.release()

    def _busy(self, upload_id: str) -> bool:
        with self._locks_guard:
            lock = self._locks.get(upload_id)
        return lock is not None and lock.locked()

    def _forget_lock(self, upload_id: str) -> None:
        with self._locks_guard:
            self._locks.pop(upload_id, None)

    @contextmanager
    def _holding(self, upload_id: str) -> Iterator[None]:
        self._hold(upload_id)
        try:
            yield
        finally:
            self._release(upload_id)

    # -- blobs -----------------------------------------------------------------------------
    def stat(self, digest: str) -> BlobInfo | None:
        key = self._blob_key(digest)
        with _mapped(f"stat blob {digest}"):
            head = self._head(key)
        if head is None:
            return None
        return BlobInfo(digest, int(head["ContentLength"]), _modified(head["LastModified"]))

    def get(self, digest: str) -> bytes:
        reader = self.open(digest)
        try:
            return b"".join(iter(lambda: reader.read(1024 * 1024), b""))
        finally:
            reader.close()

    def open(self, digest: str, offset: int = 0) -> BlobReader:
        key = self._blob_key(digest)
        extra = {"Range": f"bytes={offset}-"} if offset else {}
        with _mapped(f"read blob {digest}"):
            try:
                return _ObjectReader(
                    self._client.get_object(Bucket=self.bucket, Key=key, **extra)["Body"]
                )
            except ClientError as exc:
                code = _error_code(exc)
                if code in _MISSING:
                    raise BlobNotFound(digest) from exc
                if code == "InvalidRange":  # at or past the end of a blob that exists
                    return _ObjectReader(None)
                raise

    def put(self, digest: str, data: bytes) -> BlobInfo:
        key = self._blob_key(digest)
        with _mapped(f"store blob {digest}"):
            self._put(key, data)
        return BlobInfo(digest, len(data), datetime.now(UTC))

    def delete(self, digest: str) -> bool:
        key = self._blob_key(digest)
        with _mapped(f"delete blob {digest}"):
            if self._head(key) is None:
                return False
            self._client.delete_object(Bucket=self.bucket, Key=key)
        return True

    def blobs(self) -> Iterator[BlobInfo]:
        start = len(self._prefix) + len("blobs/")
        with _mapped("list blobs"):
            for item in self._listing(self._prefix + "blobs/"):
                algorithm, _, rest = item["Key"][start:].partition("/")
                digest = f"{algorithm}:{rest.rpartition('/')[2]}"
                try:
                    check_digest(digest)
                except InvalidKey:
                    continue  # a stray object
                yield BlobInfo(digest, int(item["Size"]), _modified(item["LastModified"]))

    def redirect_url(self, digest: str) -> str | None:
        """A presigned GET of the blob when redirects are on (the client fetches from S3)."""
        if not self.settings.redirect:
            return None
        key = self._blob_key(digest)
        with _mapped(f"sign a URL for blob {digest}"):
            return str(
                self._client.generate_presigned_url(
                    "get_object",
                    Params={"Bucket": self.bucket, "Key": key},
                    ExpiresIn=REDIRECT_EXPIRY_S,
                )
            )

    # -- uploads ---------------------------------------------------------------------------
    def create_upload(self, upload_id: str) -> None:
        """A fresh record: one request (the registry's ids are new; the multipart upload of
        an id created again is no longer named, and `sweep_temp` aborts it)."""
        key = self._state_key(upload_id)
        with self._holding(upload_id), _mapped(f"create upload {upload_id}"):
            self._put(key, _State().dumps())

    def append(self, upload_id: str) -> UploadWriter:
        self._hold(upload_id)
        try:
            state = self._load_state(upload_id)
            return self._writer(upload_id, state, lambda: self._release(upload_id))
        except BaseException:
            self._release(upload_id)
            raise

    def _writer(self, upload_id: str, state: _State, release: Callable[[], None]) -> _PartWriter:
        """A writer at the end of the upload, with a short `base` and the `tail` read back."""
        loaded = b""
        if state.multipart is None and 0 < state.base < MIN_PART:
            loaded += self._read_whole(self._data_key(upload_id), state.base, upload_id)
        if state.tail:
            loaded += self._read_whole(self._tail_key(upload_id), state.tail, upload_id)
        return _PartWriter(self, upload_id, state, loaded, release)

    def _read_whole(self, key: str, size: int, upload_id: str) -> bytes:
        reader = self._read(key, 0, upload_id)
        try:
            data = b"".join(iter(lambda: reader.read(1024 * 1024), b""))
        finally:
            reader.close()
        if len(data) != size:
            raise StorageFailure(f"upload {upload_id}: {key} holds {len(data)} bytes, not {size}")
        return data

    def _seal(self, upload_id: str) -> _State:
        """Every byte of the upload in `data` (the caller holds the upload's lock)."""
        state = self._load_state(upload_id)
        if state.whole:
            return state
        return self._writer(upload_id, state, lambda: None).seal()

    def upload_size(self, upload_id: str) -> int:
        return self._load_state(upload_id).size

    def read_upload(self, upload_id: str, offset: int = 0) -> BlobReader:
        with self._holding(upload_id):
            state = self._seal(upload_id)
        if offset >= state.base:
            return _ObjectReader(None)
        return self._read(self._data_key(upload_id), offset, upload_id)

    def _read(self, key: str, offset: int, upload_id: str) -> BlobReader:
        extra = {"Range": f"bytes={offset}-"} if offset else {}
        with _mapped(f"read upload {upload_id}"):
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=key, **extra)
            except ClientError as exc:
                if _error_code(exc) in _MISSING:
                    raise UploadNotFound(upload_id) from exc
                raise
        return _ObjectReader(response["Body"])

    def commit_upload(self, upload_id: str, digest: str) -> BlobInfo:
        target = self._blob_key(digest)
        with self._holding(upload_id):
            state = self._seal(upload_id)
            with _mapped(f"commit upload {upload_id}"):
                head = self._head(target)
                if head is None:
                    self._copy_into(upload_id, state.base, target)
                    info = BlobInfo(digest, state.base, datetime.now(UTC))
                else:  # same digest, same bytes: keep the stored blob
                    size, modified = int(head["ContentLength"]), head["LastModified"]
                    info = BlobInfo(digest, size, _modified(modified))
            self._remove_upload(upload_id, None)
        self._forget_lock(upload_id)
        return info

    def _copy_into(self, upload_id: str, size: int, target: str) -> None:
        if size == 0:
            self._put(target, b"")
            return
        source = {"Bucket": self.bucket, "Key": self._data_key(upload_id)}
        if size < COPY_LIMIT:
            self._client.copy_object(Bucket=self.bucket, Key=target, CopySource=source)
            return
        from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped]  # no types

        self._client.copy(
            source,
            self.bucket,
            target,
            Config=TransferConfig(multipart_threshold=COPY_LIMIT, multipart_chunksize=1024**3),
        )

    def _remove_upload(self, upload_id: str, state: _State | None) -> None:
        if state is not None and state.multipart is not None:
            self._abort(upload_id, state.multipart)
        keys = [self._data_key(upload_id), self._tail_key(upload_id), self._state_key(upload_id)]
        with _mapped(f"delete upload {upload_id}"):
            done = self._client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
            )
        for error in done.get("Errors", [])[:1]:
            code, message = error.get("Code"), error.get("Message")
            raise StorageFailure(f"S3 could not delete upload {upload_id}: {code} {message}")

    def delete_upload(self, upload_id: str) -> bool:
        with self._holding(upload_id):
            try:
                state = self._load_state(upload_id)
            except UploadNotFound:
                return False
            self._remove_upload(upload_id, state)
        self._forget_lock(upload_id)
        return True

    def uploads(self) -> Iterator[UploadInfo]:
        start = len(self._prefix) + len("uploads/")
        with _mapped("list uploads"):
            found = [
                (item["Key"][start:].rpartition("/")[0], item["LastModified"])
                for item in self._listing(self._prefix + "uploads/")
                if item["Key"].endswith("/state")
            ]
        for upload_id, modified in found:
            try:
                size = self.upload_size(upload_id)
            except (UploadNotFound, InvalidKey):
                continue  # gone meanwhile, or a stray object
            yield UploadInfo(upload_id, size, _modified(modified))

    def sweep_temp(self, older_than: datetime, *, dry_run: bool = False) -> tuple[int, int]:
        """Abort multipart uploads no upload's `state` names (left by a crash or by a rejected
        chunk's writer) that began before `older_than`."""
        count = freed = 0
        start = len(self._prefix) + len("uploads/")
        with _mapped("list multipart uploads"):
            pages = self._client.get_paginator("list_multipart_uploads")
            stale = [
                item
                for page in pages.paginate(Bucket=self.bucket, Prefix=self._prefix + "uploads/")
                for item in page.get("Uploads", [])
                if _modified(item["Initiated"]) < older_than
            ]
            for item in stale:
                upload_id = item["Key"][start:].rpartition("/")[0]
                if self._busy(upload_id) or self._names(upload_id, item["UploadId"]):
                    continue  # a writer of this process may not have recorded it yet
                count += 1
                freed += self._parts_size(item["Key"], item["UploadId"])
                if not dry_run:
                    self._client.abort_multipart_upload(
                        Bucket=self.bucket, Key=item["Key"], UploadId=item["UploadId"]
                    )
        return count, freed

    def _names(self, upload_id: str, multipart: str) -> bool:
        try:
            return self._load_state(upload_id).multipart == multipart
        except (UploadNotFound, InvalidKey):
            return False

    def _parts_size(self, key: str, multipart: str) -> int:
        pages = self._client.get_paginator("list_parts")
        return sum(
            int(part["Size"])
            for page in pages.paginate(Bucket=self.bucket, Key=key, UploadId=multipart)
            for part in page.get("Parts", [])
        )
