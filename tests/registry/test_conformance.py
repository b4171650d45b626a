"""OCI distribution-spec conformance, as pytest checks against a live registry.

A port of the four workflows of opencontainers/distribution-spec `conformance/` (v1.1): pull,
push, content discovery (tags, referrers) and content management (deletes). The checks, and the
status codes each one accepts, are the Go suite's; a few assertions on bodies and headers are
stricter where the spec says MUST (see the individual tests). Where the Go suite only warns (an
image manifest without layers), this one fails: a warning nobody reads cannot catch a regression.
What the spec leaves optional (mounting with `from`, mounting without it, filtering referrers by
artifactType) is asserted as Baepo does it when the target is Baepo, and skipped only for a
foreign target that does not say (`RegistryTarget`).

Every pull and discovery check runs twice: "with credentials", and "without credentials" against
content pushed with credentials into a repository the target has made public. Push and management
run with credentials only: Baepo never allows anonymous writes.

Target:
    BAEPO_CONFORMANCE_URL (+ BAEPO_CONFORMANCE_USER, BAEPO_CONFORMANCE_PASSWORD) points the suite at
    any registry, e.g. a reference one. Otherwise the `baepo_server` fixture of tests/conftest.py is
    used, then `baepo_s3_server` (Baepo with its blobs on S3), and without either the suite is
    skipped. BAEPO_CONFORMANCE_AUTOMATIC_CROSSMOUNT=1|0 says whether the target mounts a blob
    without `from` (the Go suite's OCI_AUTOMATIC_CROSSMOUNT).

    .venv/bin/pytest tests/registry/test_conformance.py -m integration
"""

from __future__ import annotations

import base64
import os
import secrets
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import pytest

from . import conformance_data as data
from .conformance_client import (
    SUCCESS,
    TAG,
    Cleanup,
    ConformanceWarning,
    RegistryAuth,
    Repository,
    describe,
    expect_error_code,
    expect_status,
    index_manifests,
    tag_list,
)

pytestmark = pytest.mark.integration

WITH_CREDENTIALS = "with credentials"
WITHOUT_CREDENTIALS = "without credentials"


# --- the target ---------------------------------------------------------------------------------


class BaepoServer(Protocol):
    url: str
    username: str
    password: str

    def make_public(self, repo: str) -> None: ...


@dataclass(frozen=True)
class RegistryTarget:
    """The registry under test, and which optional behaviours it promises (None: unknown)."""

    url: str
    username: str | None
    password: str | None
    make_public: Callable[[str], None] | None = None
    mounts_from: bool | None = None
    """A blob the caller can read in `from` is mounted (201), not re-uploaded (202)."""
    automatic_crossmount: bool | None = None
    """A mount without `from` finds the blob in another repository (OCI_AUTOMATIC_CROSSMOUNT)."""
    filters_referrers: bool | None = None
    """The referrers API applies `artifactType` (OCI-Filters-Applied)."""


def _setting(name: str) -> bool | None:
    value = os.environ.get(name)
    return None if value is None else value.strip().lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session", params=["filesystem", "s3"])
def registry_target(request: pytest.FixtureRequest) -> RegistryTarget:
    """Baepo with blobs on the filesystem, then on S3 (`baepo_s3_server`); a foreign target
    once."""
    url = os.environ.get("BAEPO_CONFORMANCE_URL")
    if url:
        if request.param == "s3":
            pytest.skip("BAEPO_CONFORMANCE_URL names the target: its storage is its own")
        return RegistryTarget(
            url.rstrip("/"),
            os.environ.get("BAEPO_CONFORMANCE_USER") or None,
            os.environ.get("BAEPO_CONFORMANCE_PASSWORD") or None,
            automatic_crossmount=_setting("BAEPO_CONFORMANCE_AUTOMATIC_CROSSMOUNT"),
        )
    fixture = "baepo_s3_server" if request.param == "s3" else "baepo_server"
    try:
        server: BaepoServer = request.getfixturevalue(fixture)
    except pytest.FixtureLookupError:
        pytest.skip(
            "no `baepo_server` fixture in tests/conftest.py and BAEPO_CONFORMANCE_URL unset"
        )
    crossmount = _setting("BAEPO_CONFORMANCE_AUTOMATIC_CROSSMOUNT")
    return RegistryTarget(
        server.url,
        server.username,
        server.password,
        server.make_public,
        mounts_from=True,
        # Baepo mounts only from a repository the request names (and the caller may read):
        # guessing one would tell a caller that a blob exists somewhere it may not look.
        automatic_crossmount=False if crossmount is None else crossmount,
        filters_referrers=True,
    )


def _client(target: RegistryTarget, auth: RegistryAuth) -> httpx.Client:
    return httpx.Client(
        base_url=target.url,
        auth=auth,
        follow_redirects=True,
        timeout=30.0,
        headers={"User-Agent": "baepo-conformance-tests"},
    )


@pytest.fixture(scope="session")
def credentialed_http(registry_target: RegistryTarget) -> Iterator[httpx.Client]:
    auth = RegistryAuth(registry_target.username, registry_target.password)
    with _client(registry_target, auth) as client:
        yield client


@pytest.fixture(scope="session")
def anonymous_http(registry_target: RegistryTarget) -> Iterator[httpx.Client]:
    with _client(registry_target, RegistryAuth()) as client:
        yield client


@pytest.fixture(scope="module", params=[WITH_CREDENTIALS, WITHOUT_CREDENTIALS])
def reader_http(
    request: pytest.FixtureRequest,
    registry_target: RegistryTarget,
    credentialed_http: httpx.Client,
    anonymous_http: httpx.Client,
) -> httpx.Client:
    """The client pull and discovery checks read with, once per mode."""
    if request.param == WITH_CREDENTIALS:
        return credentialed_http
    if registry_target.make_public is None and registry_target.username is not None:
        pytest.skip("the target needs credentials and gives no way to make a repository public")
    return anonymous_http


def publish(target: RegistryTarget, repo: str) -> None:
    if target.make_public is not None:
        target.make_public(repo)


def unique_name(workflow: str) -> str:
    return f"conformance/{workflow}-{secrets.token_hex(4)}"


@pytest.fixture(scope="session")
def layer() -> data.Blob:
    return data.random_layer()


# --- pull ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PullContent:
    repo: str
    tagged: data.Image  # pushed as TAG
    untagged: data.Image  # pushed by digest only


@pytest.fixture(scope="module")
def pull_content(
    registry_target: RegistryTarget, credentialed_http: httpx.Client, layer: data.Blob
) -> Iterator[PullContent]:
    repo = Repository(credentialed_http, unique_name("pull"))
    tagged, untagged = data.random_image(layer), data.random_image(layer)
    expect_status(repo.push_image(tagged, TAG), SUCCESS)
    expect_status(repo.push_image(untagged), SUCCESS)
    publish(registry_target, repo.name)
    yield PullContent(repo.name, tagged, untagged)

    cleanup = Cleanup()
    for image in (tagged, untagged):
        cleanup.delete(repo, f"manifests/{image.manifest.digest}", SUCCESS | {405})
    for blob in (tagged.config, untagged.config, layer):
        cleanup.delete(repo, f"blobs/{blob.digest}", SUCCESS | {404, 405})
    cleanup.check()


@pytest.fixture
def puller(pull_content: PullContent, reader_http: httpx.Client) -> Repository:
    return Repository(reader_http, pull_content.repo)


def test_head_nonexistent_blob_returns_404(puller: Repository) -> None:
    expect_status(puller.request("HEAD", f"blobs/{data.DUMMY_DIGEST}"), {404})


def test_head_blob_returns_200(puller: Repository, pull_content: PullContent) -> None:
    config = pull_content.tagged.config
    response = puller.request("HEAD", f"blobs/{config.digest}")
    expect_status(response, {200})
    assert response.headers.get("Docker-Content-Digest", config.digest) == config.digest


def test_get_nonexistent_blob_returns_404(puller: Repository) -> None:
    expect_status(puller.request("GET", f"blobs/{data.DUMMY_DIGEST}"), {404})


def test_pull_blob(puller: Repository, pull_content: PullContent) -> None:
    config = pull_content.tagged.config
    response = puller.request("GET", f"blobs/{config.digest}")
    expect_status(response, {200})
    assert response.content == config.content


def test_head_nonexistent_manifest_returns_404(puller: Repository) -> None:
    expect_status(puller.get_manifest(data.NONEXISTENT_MANIFEST, "HEAD"), {404})


@pytest.mark.parametrize("which", ["tagged", "untagged"])
def test_head_manifest_by_digest(puller: Repository, pull_content: PullContent, which: str) -> None:
    manifest = getattr(pull_content, which).manifest
    response = puller.get_manifest(manifest.digest, "HEAD")
    expect_status(response, {200})
    assert response.headers.get("Docker-Content-Digest", manifest.digest) == manifest.digest


def test_head_manifest_by_tag(puller: Repository, pull_content: PullContent) -> None:
    digest = pull_content.tagged.manifest.digest
    response = puller.get_manifest(TAG, "HEAD")
    expect_status(response, {200})
    assert response.headers.get("Docker-Content-Digest", digest) == digest


def test_get_nonexistent_manifest_returns_404(puller: Repository) -> None:
    expect_status(puller.get_manifest(data.NONEXISTENT_MANIFEST), {404})


@pytest.mark.parametrize("which", ["tagged", "untagged"])
def test_pull_manifest_by_digest(puller: Repository, pull_content: PullContent, which: str) -> None:
    manifest = getattr(pull_content, which).manifest
    response = puller.get_manifest(manifest.digest)
    expect_status(response, {200})
    # Stricter than the Go suite: a registry serves the exact bytes it was given.
    assert response.content == manifest.content


def test_pull_manifest_by_tag(puller: Repository, pull_content: PullContent) -> None:
    response = puller.get_manifest(TAG)
    expect_status(response, {200})
    assert response.content == pull_content.tagged.manifest.content


def test_malformed_digest_gives_oci_error_body(puller: Repository) -> None:
    response = puller.request(
        "GET",
        f"manifests/{data.MALFORMED_DIGEST}",
        headers={"Content-Type": data.MANIFEST_V1},
        content=data.INVALID_MANIFEST,
    )
    expect_status(response, {400, 404})
    if response.status_code == 400:
        expect_error_code(response, data.ERROR_CODES)


# --- push ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pusher(credentialed_http: httpx.Client) -> Repository:
    repo = Repository(credentialed_http, unique_name("push"))
    expect_status(repo.upload(data.EMPTY_JSON), SUCCESS)  # the Go suite's push setup
    return repo


def test_streamed_upload_patch_returns_202(pusher: Repository) -> None:
    session = pusher.start_upload()
    response = pusher.client.patch(
        pusher.location(session),
        headers={"Content-Type": data.OCTET_STREAM},
        content=data.random_blob(42).content,
    )
    expect_status(response, {202})


def test_streamed_upload_put_with_digest_returns_201(pusher: Repository) -> None:
    blob = data.random_blob(42)
    session = pusher.start_upload()
    patched = pusher.client.patch(
        pusher.location(session), headers={"Content-Type": data.OCTET_STREAM}, content=blob.content
    )
    response = pusher.finish_upload(patched, blob.digest)
    expect_status(response, {201})
    pusher.location(response)
    expect_status(pusher.request("GET", f"blobs/{blob.digest}"), {200})


def test_push_get_nonexistent_blob_returns_404(pusher: Repository) -> None:
    expect_status(pusher.request("GET", f"blobs/{data.DUMMY_DIGEST}"), {404})


def _monolithic_post(repo: Repository, blob: data.Blob) -> httpx.Response:
    return repo.request(
        "POST",
        "blobs/uploads/",
        params={"digest": blob.digest},
        headers={"Content-Type": data.OCTET_STREAM},
        content=blob.content,
    )


def test_monolithic_post_with_digest_returns_201_or_202(pusher: Repository) -> None:
    response = _monolithic_post(pusher, data.random_config())
    pusher.location(response)
    expect_status(response, {201, 202})


def test_blob_after_monolithic_post_exists_unless_202(pusher: Repository) -> None:
    blob = data.random_config()
    posted = _monolithic_post(pusher, blob)
    response = pusher.request("GET", f"blobs/{blob.digest}")
    # 202 means the registry ignored the body and opened a session: nothing is stored yet.
    expect_status(response, {404} if posted.status_code == 202 else {200})


def test_post_returns_upload_session(pusher: Repository) -> None:
    response = pusher.start_upload()
    expect_status(response, {202})
    pusher.location(response)


@pytest.mark.parametrize("kind", ["config", "layer"])
def test_monolithic_put_returns_201(pusher: Repository, kind: str) -> None:
    blob = data.random_config() if kind == "config" else data.random_layer()
    response = pusher.upload(blob)
    pusher.location(response)
    expect_status(response, {201})


@pytest.mark.parametrize("kind", ["config", "layer"])
def test_get_uploaded_blob_returns_200(pusher: Repository, kind: str) -> None:
    blob = data.random_config() if kind == "config" else data.random_layer()
    pusher.upload(blob)
    response = pusher.request("GET", f"blobs/{blob.digest}")
    expect_status(response, {200})
    assert response.content == blob.content


def test_upload_zero_length_blob(pusher: Repository) -> None:
    """Not in the Go suite: the empty blob is a legal blob like any other."""
    response = pusher.upload(data.ZERO_LENGTH)
    expect_status(response, {201})
    head = pusher.request("HEAD", f"blobs/{data.ZERO_LENGTH.digest}")
    expect_status(head, {200})
    assert head.headers.get("Content-Length") == "0"


def test_empty_json_blob_has_the_spec_digest(pusher: Repository) -> None:
    assert data.EMPTY_JSON.digest == data.EMPTY_JSON_DIGEST
    expect_status(pusher.request("HEAD", f"blobs/{data.EMPTY_JSON_DIGEST}"), {200})


# Chunked uploads: POST a session, PATCH `0-k`, PATCH `k+1-n`, PUT with the digest.


def start_chunked_upload(repo: Repository) -> tuple[httpx.Response, data.ChunkedBlob]:
    """Open a session; the blob's first chunk is at least the registry's minimum chunk length."""
    session = repo.start_upload()
    repo.location(session)
    chunked = data.ChunkedBlob.of_size(42)
    minimum = session.headers.get("OCI-Chunk-Min-Length")
    if minimum and int(minimum) > len(chunked.first):
        chunked = data.ChunkedBlob.of_size(int(minimum) * 2 - 2)
    return session, chunked


def patch_chunk(repo: Repository, url: str, chunk: bytes, content_range: str) -> httpx.Response:
    headers = {"Content-Type": data.OCTET_STREAM, "Content-Range": content_range}
    return repo.client.patch(url, headers=headers, content=chunk)


def test_chunked_out_of_order_chunk_returns_416(pusher: Repository) -> None:
    session, chunked = start_chunked_upload(pusher)
    response = patch_chunk(pusher, pusher.location(session), chunked.second, chunked.second_range)
    expect_status(response, {416})


def test_chunked_first_chunk_returns_202_with_range(pusher: Repository) -> None:
    session, chunked = start_chunked_upload(pusher)
    response = patch_chunk(pusher, pusher.location(session), chunked.first, chunked.first_range)
    expect_status(response, {202})
    assert response.headers.get("Range") == chunked.first_range, describe(response)


def test_chunked_retried_chunk_returns_416(pusher: Repository) -> None:
    session, chunked = start_chunked_upload(pusher)
    url = pusher.location(session)
    patch_chunk(pusher, url, chunked.first, chunked.first_range)
    expect_status(patch_chunk(pusher, url, chunked.first, chunked.first_range), {416})


def test_chunked_session_status_returns_204_with_range(pusher: Repository) -> None:
    session, chunked = start_chunked_upload(pusher)
    url = pusher.location(session)
    patch_chunk(pusher, url, chunked.first, chunked.first_range)
    response = pusher.client.get(url)  # the session's first URL, now stale
    expect_status(response, {204})
    pusher.location(response)
    assert response.headers.get("Range") == chunked.first_range, describe(response)


def test_chunked_upload_resumes_from_status_location(pusher: Repository) -> None:
    """The Go suite's path: after a status GET on the stale URL, go on from its Location."""
    session, chunked = start_chunked_upload(pusher)
    url = pusher.location(session)
    patch_chunk(pusher, url, chunked.first, chunked.first_range)
    status = pusher.client.get(url)
    expect_status(status, {204})
    second = patch_chunk(pusher, pusher.location(status), chunked.second, chunked.second_range)
    expect_status(second, {202})
    expect_status(pusher.finish_upload(second, chunked.blob.digest), {201})


def _two_chunks(repo: Repository) -> tuple[httpx.Response, data.ChunkedBlob]:
    """Upload both chunks, each to the Location of the response before it (as clients do)."""
    session, chunked = start_chunked_upload(repo)
    first = patch_chunk(repo, repo.location(session), chunked.first, chunked.first_range)
    second = patch_chunk(repo, repo.location(first), chunked.second, chunked.second_range)
    return second, chunked


def test_chunked_second_chunk_returns_202_with_full_range(pusher: Repository) -> None:
    response, chunked = _two_chunks(pusher)
    expect_status(response, {202})
    assert response.headers.get("Range") == chunked.full_range, describe(response)
    pusher.location(response)


def test_chunked_put_with_digest_returns_201(pusher: Repository) -> None:
    second, chunked = _two_chunks(pusher)
    response = pusher.finish_upload(second, chunked.blob.digest)
    expect_status(response, {201})
    pusher.location(response)
    blob = pusher.request("GET", f"blobs/{chunked.blob.digest}")
    expect_status(blob, {200})
    assert blob.content == chunked.blob.content


# Cross-repository mount: POST /v2/<other>/blobs/uploads/?mount=<digest>&from=<repo>.


@pytest.fixture(scope="module")
def mount_target(credentialed_http: httpx.Client) -> Repository:
    return Repository(credentialed_http, unique_name("mount"))


@dataclass(frozen=True)
class Mount:
    blob: data.Blob
    response: httpx.Response


@pytest.fixture(scope="module")
def mount(pusher: Repository, mount_target: Repository) -> Mount:
    blob = data.random_blob(42)
    expect_status(pusher.upload(blob), SUCCESS)
    response = mount_target.start_upload(mount=blob.digest, **{"from": pusher.name})
    return Mount(blob, response)


def test_mount_without_from_returns_upload_session(mount_target: Repository) -> None:
    response = mount_target.start_upload(mount=data.DUMMY_DIGEST)
    expect_status(response, {202})
    mount_target.location(response)


def test_mount_from_another_repository_returns_201_or_202(mount: Mount) -> None:
    expect_status(mount.response, {201, 202})


def mounted(mount: Mount, target: RegistryTarget) -> bool:
    """Whether the registry mounted; a failure if it promised to and did not."""
    if target.mounts_from:
        expect_status(mount.response, {201})
    return mount.response.status_code == 201


def test_mounted_blob_is_readable_in_target(
    mount: Mount, mount_target: Repository, registry_target: RegistryTarget
) -> None:
    if not mounted(mount, registry_target):
        pytest.skip("the registry did not mount (202: fell back to an upload session)")
    url = mount_target.location(mount.response)
    assert httpx.URL(url).path == f"/v2/{mount_target.name}/blobs/{mount.blob.digest}"
    expect_status(mount_target.client.get(url), {200})


def test_unmounted_blob_falls_back_to_upload_session(
    pusher: Repository, mount_target: Repository
) -> None:
    # A blob `from` does not hold cannot be mounted by any registry: the fallback is always
    # seen (the Go suite's "cross-mounting of nonexistent blob should yield session id").
    response = mount_target.start_upload(mount=data.DUMMY_DIGEST, **{"from": pusher.name})
    expect_status(response, {202})
    path = httpx.URL(mount_target.location(response)).path
    assert path.startswith(f"/v2/{mount_target.name}/blobs/uploads/")


def test_mount_without_from_follows_automatic_crossmount(
    mount: Mount, registry_target: RegistryTarget, credentialed_http: httpx.Client
) -> None:
    automatic = registry_target.automatic_crossmount
    if automatic is None:
        pytest.skip("BAEPO_CONFORMANCE_AUTOMATIC_CROSSMOUNT is unset")
    if not mounted(mount, registry_target):
        pytest.skip("the registry does not mount with `from` either")
    other = Repository(credentialed_http, unique_name("automount"))
    response = other.start_upload(mount=mount.blob.digest)
    expect_status(response, {201} if automatic else {202})


# Manifest upload.


@pytest.fixture(scope="module")
def push_image(pusher: Repository, layer: data.Blob) -> Iterator[data.Image]:
    image = data.random_image(layer)
    for blob in image.blobs:
        expect_status(pusher.upload(blob), SUCCESS)
    yield image

    cleanup = Cleanup()
    cleanup.delete(pusher, f"manifests/{image.manifest.digest}", SUCCESS | {405})
    for blob in (image.config, layer, data.EMPTY_JSON):
        cleanup.delete(pusher, f"blobs/{blob.digest}", SUCCESS | {404, 405})
    cleanup.check()


def test_push_get_nonexistent_manifest_returns_404(pusher: Repository) -> None:
    expect_status(pusher.get_manifest(data.NONEXISTENT_MANIFEST), {404})


def test_push_manifest_under_several_tags(pusher: Repository, push_image: data.Image) -> None:
    for tag in ("test0", "test1", "test2", "test3"):
        response = pusher.put_manifest(push_image.manifest, tag)
        pusher.location(response)
        expect_status(response, {201})


def test_push_manifest_without_layers(pusher: Repository, push_image: data.Image) -> None:
    manifest = data.image_manifest(push_image.config, [], embed_config=True)
    response = pusher.put_manifest(manifest, "emptylayer")
    # The Go suite only warns; the spec's SHOULD (at least one layer) is for portability, and
    # artifacts and config-only images are pushed this way.
    expect_status(response, {201})
    pusher.location(response)


def test_push_manifest_then_get_by_digest(pusher: Repository, push_image: data.Image) -> None:
    pusher.put_manifest(push_image.manifest, "test0")
    response = pusher.get_manifest(push_image.manifest.digest)
    expect_status(response, {200})


@pytest.mark.parametrize("style", ["config media type", "artifactType"])
def test_push_artifact_manifest(pusher: Repository, style: str) -> None:
    blob = data.Blob(b"conformance artifact " + secrets.token_bytes(8))
    expect_status(pusher.upload(blob), SUCCESS)
    if style == "config media type":
        manifest = data.image_manifest(
            blob, [data.EMPTY_JSON], config_media_type=data.ARTIFACT_TYPE_A
        )
    else:
        layer = data.Blob(blob.content, data.ARTIFACT_TYPE_A)
        manifest = data.image_manifest(data.EMPTY_JSON, [layer], artifact_type=data.ARTIFACT_TYPE_A)
    expect_status(pusher.put_manifest(manifest), SUCCESS)


@dataclass(frozen=True)
class PushedIndex:
    index: data.Blob
    response: httpx.Response


@pytest.fixture(scope="module")
def pushed_index(pusher: Repository, layer: data.Blob) -> PushedIndex:
    image = data.random_image(layer)
    expect_status(pusher.push_image(image, TAG), SUCCESS)
    index = data.image_index(
        [image.manifest], artifact_type=data.ARTIFACT_TYPE_INDEX, annotation="test index"
    )
    return PushedIndex(index, pusher.put_manifest(index))


def test_push_image_index(pushed_index: PushedIndex) -> None:
    expect_status(pushed_index.response, SUCCESS)


def test_push_nested_image_index(pusher: Repository, pushed_index: PushedIndex) -> None:
    nested = data.image_index(
        [pushed_index.index], artifact_type=data.ARTIFACT_TYPE_INDEX, annotation="test index"
    )
    expect_status(pusher.put_manifest(nested), SUCCESS)


def test_push_referrer_with_dangling_subject(pusher: Repository, layer: data.Blob) -> None:
    never_pushed = data.random_image(layer).manifest
    blob = data.Blob(b"conformance artifact " + secrets.token_bytes(8))
    expect_status(pusher.upload(blob), SUCCESS)
    referrer = data.image_manifest(
        data.EMPTY_JSON,
        [data.Blob(blob.content, data.ARTIFACT_TYPE_B)],
        artifact_type=data.ARTIFACT_TYPE_B,
        subject=never_pushed,
    )
    response = pusher.put_manifest(referrer)
    expect_status(response, SUCCESS)
    # The Go suite only matches a pattern; the spec says the header names the subject's digest.
    assert response.headers.get("OCI-Subject") == never_pushed.digest, describe(response)


# --- content discovery --------------------------------------------------------------------------


@dataclass(frozen=True)
class DiscoveryContent:
    repo: str
    tags: tuple[str, ...]
    referrers: data.ReferrersSet
    pushes: dict[str, httpx.Response]  # referrer name -> the response to its PUT


@pytest.fixture(scope="module")
def discovery_content(
    registry_target: RegistryTarget, credentialed_http: httpx.Client, layer: data.Blob
) -> Iterator[DiscoveryContent]:
    repo = Repository(credentialed_http, unique_name("discovery"))
    tags = ("test0", "test1", "test2", "test3")
    tagged = data.random_image(layer)
    expect_status(repo.push_image(tagged, tags[0]), SUCCESS)
    for tag in tags[1:]:
        expect_status(repo.put_manifest(tagged.manifest, tag), SUCCESS)

    refs = data.referrers_set(layer)
    pushes: dict[str, httpx.Response] = {}
    for blob in (data.EMPTY_JSON, refs.blob_a):
        expect_status(repo.upload(blob), SUCCESS)
    for referrer in refs.before_subject:  # the subject does not exist yet
        pushes[referrer.name] = repo.put_manifest(referrer.manifest)
        expect_status(pushes[referrer.name], SUCCESS)
    expect_status(repo.push_image(refs.subject, TAG), SUCCESS)
    expect_status(repo.upload(refs.blob_b), SUCCESS)
    for referrer in (*refs.after_subject, refs.dangling):
        pushes[referrer.name] = repo.put_manifest(referrer.manifest)
        expect_status(pushes[referrer.name], SUCCESS)
    publish(registry_target, repo.name)
    yield DiscoveryContent(repo.name, (*tags, TAG), refs, pushes)

    cleanup = Cleanup()
    gone_ok = SUCCESS | {404, 405}
    for referrer in refs.all:
        cleanup.delete(repo, f"manifests/{referrer.manifest.digest}", gone_ok)
    for manifest in (tagged.manifest, refs.subject.manifest):
        cleanup.delete(repo, f"manifests/{manifest.digest}", gone_ok)
    for blob in (tagged.config, refs.subject.config, layer):
        cleanup.delete(repo, f"blobs/{blob.digest}", SUCCESS | {405})
    for blob in (refs.blob_a, refs.blob_b, data.EMPTY_JSON):
        cleanup.delete(repo, f"blobs/{blob.digest}", gone_ok)
    cleanup.check()


@pytest.fixture
def discoverer(discovery_content: DiscoveryContent, reader_http: httpx.Client) -> Repository:
    return Repository(reader_http, discovery_content.repo)


def test_list_tags(discoverer: Repository, discovery_content: DiscoveryContent) -> None:
    response = discoverer.tags()
    expect_status(response, {200})
    assert set(discovery_content.tags) <= set(tag_list(response))


def test_list_tags_limited_by_n(discoverer: Repository) -> None:
    n = len(tag_list(discoverer.tags())) // 2
    response = discoverer.tags(n=n)
    expect_status(response, {200})
    assert len(tag_list(response)) == n, describe(response)


def test_list_tags_continues_after_last(discoverer: Repository) -> None:
    everything = sorted(tag_list(discoverer.tags()))
    n = len(everything) // 2
    response = discoverer.tags(n=n, last=everything[n - 1])
    expect_status(response, {200})
    # The spec: up to n tags, in lexical order, starting after `last`.
    assert tag_list(response) == everything[n : 2 * n], describe(response)


def test_referrers_of_unknown_digest_is_empty_index(discoverer: Repository) -> None:
    assert index_manifests(discoverer.referrers(data.DUMMY_DIGEST)) == []


def _check_descriptors(descriptors: list[dict[str, Any]], expected: list[data.Referrer]) -> None:
    by_digest = {r.manifest.digest: r for r in expected}
    assert sorted(d["digest"] for d in descriptors) == sorted(by_digest), descriptors
    for descriptor in descriptors:
        referrer = by_digest[descriptor["digest"]]
        assert descriptor.get("annotations") == {data.ANNOTATION_KEY: referrer.annotation}
        # Stricter than the Go suite: the spec makes artifactType a MUST on each descriptor.
        assert descriptor.get("artifactType") == referrer.artifact_type, descriptor
        assert descriptor.get("mediaType") == referrer.manifest.media_type, descriptor


def test_referrers_lists_every_referrer(
    discoverer: Repository, discovery_content: DiscoveryContent
) -> None:
    refs = discovery_content.referrers
    descriptors = index_manifests(discoverer.referrers(refs.subject.manifest.digest))
    assert len(descriptors) == 5
    _check_descriptors(descriptors, list(refs.of_subject))


def test_referrers_filtered_by_artifact_type(
    discoverer: Repository, discovery_content: DiscoveryContent, registry_target: RegistryTarget
) -> None:
    refs = discovery_content.referrers
    response = discoverer.referrers(refs.subject.manifest.digest, artifactType=data.ARTIFACT_TYPE_A)
    descriptors = index_manifests(response)
    if registry_target.filters_referrers:
        assert response.headers.get("OCI-Filters-Applied") == "artifactType", describe(response)
    if response.headers.get("OCI-Filters-Applied"):
        assert response.headers["OCI-Filters-Applied"] == "artifactType"
        expected = [r for r in refs.of_subject if r.artifact_type == data.ARTIFACT_TYPE_A]
        assert len(descriptors) == 2
        _check_descriptors(descriptors, expected)
    else:
        assert len(descriptors) == 5
        _check_descriptors(descriptors, list(refs.of_subject))
        warnings.warn("filtering by artifact-type is not implemented", ConformanceWarning, 1)


def test_referrers_of_missing_subject(
    discoverer: Repository, discovery_content: DiscoveryContent
) -> None:
    refs = discovery_content.referrers
    descriptors = index_manifests(discoverer.referrers(refs.missing_subject.manifest.digest))
    assert [d["digest"] for d in descriptors] == [refs.dangling.manifest.digest]


@pytest.mark.parametrize(
    "name",
    [
        "test config a",
        "test layer a",
        "test index",
        "test config b",
        "test layer b",
        "dangling layer c",
    ],
)
def test_referrer_push_returns_oci_subject(discovery_content: DiscoveryContent, name: str) -> None:
    referrer = next(r for r in discovery_content.referrers.all if r.name == name)
    response = discovery_content.pushes[name]
    assert response.headers.get("OCI-Subject") == referrer.subject.digest, describe(response)


# --- content management -------------------------------------------------------------------------


@dataclass(frozen=True)
class Managed:
    repo: Repository
    image: data.Image


@pytest.fixture
def managed(credentialed_http: httpx.Client, layer: data.Blob) -> Managed:
    """A fresh repository holding the image to delete (as TAG) and a keeper image."""
    repo = Repository(credentialed_http, unique_name("manage"))
    image, keeper = data.random_image(layer), data.random_image(layer)
    expect_status(repo.push_image(image, TAG), SUCCESS)
    expect_status(repo.push_image(keeper, "keep"), SUCCESS)
    return Managed(repo, image)


def test_delete_tag(managed: Managed) -> None:
    response = managed.repo.request("DELETE", f"manifests/{TAG}")
    expect_status(response, {202, 400, 405})
    if response.status_code == 400:
        expect_error_code(response, {"UNSUPPORTED"})


def test_delete_manifest_by_digest(managed: Managed) -> None:
    managed.repo.request("DELETE", f"manifests/{TAG}")
    response = managed.repo.request("DELETE", f"manifests/{managed.image.manifest.digest}")
    # 404 if deleting the tag already took the manifest with it.
    expect_status(response, {202, 404})


def test_get_deleted_manifest(managed: Managed) -> None:
    digest = managed.image.manifest.digest
    managed.repo.request("DELETE", f"manifests/{TAG}")
    managed.repo.request("DELETE", f"manifests/{digest}")
    # 200 only where deletes are disallowed.
    expect_status(managed.repo.get_manifest(digest), {200, 404})


def test_tags_list_reflects_manifest_deletion(managed: Managed) -> None:
    before = managed.repo.tags()
    expect_status(before, {200})
    managed.repo.request("DELETE", f"manifests/{TAG}")
    managed.repo.request("DELETE", f"manifests/{managed.image.manifest.digest}")
    after = managed.repo.tags()
    expect_status(after, {200})
    assert len(tag_list(after)) < len(tag_list(before)), describe(after)


def _delete_image(managed: Managed) -> list[httpx.Response]:
    """Delete as the Go suite does: tag, manifest, then the config and layer blobs."""
    managed.repo.request("DELETE", f"manifests/{TAG}")
    managed.repo.request("DELETE", f"manifests/{managed.image.manifest.digest}")
    return [managed.repo.request("DELETE", f"blobs/{b.digest}") for b in managed.image.blobs]


def test_delete_blob(managed: Managed) -> None:
    for response in _delete_image(managed):
        expect_status(response, {202, 404, 405})


def test_get_deleted_blob_returns_404(managed: Managed) -> None:
    if _delete_image(managed)[-1].status_code == 405:
        pytest.skip("the registry does not allow deleting blobs (405)")
    expect_status(managed.repo.request("GET", f"blobs/{managed.image.config.digest}"), {404})


# --- the suite's own client: its answers to auth challenges ------------------------------------


def _fake_registry(challenge: str, accepted: str, seen: list[httpx.Request]) -> httpx.Client:
    """A registry that answers 401 with `challenge` until it sees `accepted`, and its realm."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/token":
            scope = request.url.params.get_list("scope")
            if scope != ["repository:team/app:pull"] or request.url.params["service"] != "reg":
                return httpx.Response(400)
            basic = request.headers.get("Authorization", "anonymous")
            return httpx.Response(200, json={"access_token": f"token-for-{basic}"})
        if request.headers.get("Authorization") == accepted:
            return httpx.Response(200, json={"tags": []})
        return httpx.Response(401, headers={"WWW-Authenticate": challenge})

    return httpx.Client(base_url="http://reg.test", transport=httpx.MockTransport(handle))


BEARER = 'Bearer realm="http://reg.test/token",service="reg",scope="repository:team/app:pull"'
ALICE = "Basic " + base64.b64encode(b"alice:secret").decode()


@pytest.mark.parametrize(
    ("username", "token_for"), [("alice", ALICE), (None, "anonymous")], ids=["user", "anonymous"]
)
def test_auth_answers_bearer_challenge(username: str | None, token_for: str) -> None:
    seen: list[httpx.Request] = []
    with _fake_registry(BEARER, f"Bearer token-for-{token_for}", seen) as client:
        auth = RegistryAuth(username, "secret" if username else None)
        assert client.get("/v2/team/app/tags/list", auth=auth).status_code == 200
        paths = [request.url.path for request in seen]
        assert paths == ["/v2/team/app/tags/list", "/token", "/v2/team/app/tags/list"]
        assert client.get("/v2/team/app/tags/list", auth=auth).status_code == 200
        assert len(seen) == 4, "the token is reused"


def test_auth_answers_basic_challenge() -> None:
    seen: list[httpx.Request] = []
    with _fake_registry('Basic realm="reg"', ALICE, seen) as client:
        response = client.get("/v2/team/app/tags/list", auth=RegistryAuth("alice", "secret"))
        assert response.status_code == 200
        assert len(seen) == 2
