"""Two `baepo up` processes sharing one PostgreSQL and one S3 bucket (a real SeaweedFS) keep
no state that only one of them knows: a request may go to either, as a load balancer sends it.

One pair of processes serves every case (a module fixture), each case in its own repository:
an upload whose requests alternate between the processes, one cancelled on one while the other
holds it, two appending at once; a `docker push` and pull through a round-robin HAProxy that
sends each request anywhere; a tag deleted, a token or a user revoked, a repository's policy
changed through one and seen through the other at once."""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.clients import OciLayout, docker_host, skopeo
from tests.conftest import BaepoProcess, free_port
from tests.databases import PostgresDatabases
from tests.e2e.aws_cli import Aws
from tests.e2e.conftest import signed_in
from tests.e2e.test_postgres import second_process
from tests.registry.test_crash_recovery import patch
from tests.s3server import ACCESS_KEY, SECRET_KEY, S3Server

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass
class Pair:
    first: BaepoProcess
    second: BaepoProcess
    database_url: str
    front: str  # the balancer's host:port
    stats: Path  # its stats socket

    @contextmanager
    def clients(self, auth: httpx.Auth | None = None) -> Iterator[tuple[httpx.Client, ...]]:
        """A client of each process (the admin's Basic auth unless `auth` is given)."""
        chosen = auth or self.first.admin
        with (
            httpx.Client(base_url=self.first.url, auth=chosen, timeout=60) as a,
            httpx.Client(base_url=self.second.url, auth=chosen, timeout=60) as b,
        ):
            yield a, b

    def served(self) -> dict[str, int]:
        """Requests each process has answered through the balancer (its stats)."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.stats))
            s.sendall(b"show stat\n")
            out = b"".join(iter(lambda: s.recv(65536), b"")).decode()
        header, *rows = out.lstrip("# ").splitlines()
        names = header.split(",")
        found = {}
        for row in rows:
            values = dict(zip(names, row.split(","), strict=False))
            if values.get("pxname") == "baepo" and values.get("svname") in ("a", "b"):
                found[values["svname"]] = int(values["stot"])
        return found


@contextmanager
def round_robin(directory: Path, port: int, servers: tuple[BaepoProcess, ...]) -> Iterator[Path]:
    """HAProxy balancing each request on its own (`http-server-close`: a server connection
    per request, so a client's keep-alive connection does not stick to one process)."""
    stats = directory / "stats.sock"
    lines = "\n".join(
        f"    server {name} 127.0.0.1:{b.port} check inter 500"
        for name, b in zip("ab", servers, strict=True)
    )
    config = directory / "round-robin.cfg"
    config.write_text(
        f"""global
    maxconn 500
    stats socket {stats} mode 600
defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    timeout check 2s
frontend registry
    bind 127.0.0.1:{port}
    default_backend baepo
backend baepo
    balance roundrobin
    option http-server-close
    option httpchk GET /api/v1/health
{lines}
"""
    )
    log = directory / "round-robin.log"
    haproxy = subprocess.Popen(
        ["/usr/sbin/haproxy", "-db", "-f", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    try:
        deadline = time.monotonic() + 30
        while not stats.exists() or not _answers(f"http://127.0.0.1:{port}/api/v1/health"):
            assert haproxy.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the balancer never answered"
            time.sleep(0.1)
        yield stats
    finally:
        haproxy.terminate()
        haproxy.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_databases: PostgresDatabases,
    s3_server: S3Server,
) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("pair")
    front = free_port()
    with postgres_databases.database(migrated=False) as url:
        flags = (
            "--database-url", url, "--registry-address", f"127.0.0.1:{front}",
            "--storage", "s3", "--s3-endpoint", s3_server.endpoint,
            "--s3-bucket", s3_server.bucket(),
            "--s3-access-key", ACCESS_KEY, "--s3-secret-key", SECRET_KEY,
        )  # fmt: skip
        (root / "first").mkdir()
        first = BaepoProcess(root / "first" / "data", extra_args=flags)
        first.start()
        second = second_process(first, root / "second", flags)
        try:
            second.start()
            with round_robin(root, front, (first, second)) as stats:
                yield Pair(first, second, url, f"127.0.0.1:{front}", stats)
        finally:
            for baepo in (first, second):
                baepo.stop()
                baepo.stop_data_plane()


# -- the registry's raw calls -------------------------------------------------------------


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def start_upload(client: httpx.Client, repository: str) -> str:
    started = client.post(f"/v2/{repository}/blobs/uploads/")
    assert started.status_code == 202, started.text
    return started.headers["Location"]


def finish(client: httpx.Client, location: str, digest: str, body: bytes = b"") -> httpx.Response:
    return client.put(location, params={"digest": digest}, content=body)


def upload_range(client: httpx.Client, location: str) -> str:
    found = client.get(location)
    assert found.status_code == 204, found.text
    return found.headers["Range"]


def blob(client: httpx.Client, repository: str, digest: str) -> bytes:
    found = client.get(f"/v2/{repository}/blobs/{digest}")
    assert found.status_code == 200, found.text
    return found.content


def error_code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["code"])


def push_image(client: httpx.Client, repository: str, tag: str) -> str:
    """A small image (a config and a layer, each one monolithic POST), tagged; its digest."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": secrets.token_hex(8)})
    layer = secrets.token_bytes(2048)
    descriptors = []
    for data, media_type in (
        (config.encode(), "application/vnd.oci.image.config.v1+json"),
        (layer, "application/vnd.oci.image.layer.v1.tar"),
    ):
        done = client.post(
            f"/v2/{repository}/blobs/uploads/", params={"digest": sha256(data)}, content=data
        )
        assert done.status_code == 201, done.text
        descriptors.append({"mediaType": media_type, "digest": sha256(data), "size": len(data)})
    manifest = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptors[0],
         "layers": descriptors[1:]}
    ).encode()  # fmt: skip
    put = client.put(
        f"/v2/{repository}/manifests/{tag}",
        content=manifest,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert put.status_code == 201, put.text
    return sha256(manifest)


# -- uploads ------------------------------------------------------------------------------


def test_a_chunked_upload_whose_requests_alternate_between_the_processes(pair: Pair) -> None:
    """POST on A, then PATCHes on B, A, B: each process finds the upload as the other left it
    (its status on either says so), and the PUT on A, which last saw less, commits what is
    stored. Chunks of 6 MiB and less: S3 parts and the short tail between requests."""
    repository = "team/alternating"
    chunks = [secrets.token_bytes(n) for n in (6 * MIB, MIB + 7, 6 * MIB)]
    whole = b"".join(chunks)
    with pair.clients() as (a, b):
        location = start_upload(a, repository)
        offset = 0
        for client, chunk in zip((b, a, b), chunks, strict=True):
            patched = patch(client, location, chunk, offset)
            assert patched.status_code == 202, patched.text
            offset += len(chunk)
            assert patched.headers["Range"] == f"0-{offset - 1}"
            assert upload_range(a, location) == upload_range(b, location) == f"0-{offset - 1}"
        done = finish(a, location, sha256(whole))
        assert done.status_code == 201, done.text
        assert blob(b, repository, sha256(whole)) == whole
        assert blob(a, repository, sha256(whole)) == whole


def test_a_digest_is_checked_against_the_bytes_stored_not_those_one_process_saw(
    pair: Pair,
) -> None:
    """A saw the first two chunks; B appended a third. The digest of what A saw is wrong for
    what is stored: refused on A (never a blob of the wrong bytes), and the upload is gone."""
    repository = "team/stale-digest"
    chunks = [secrets.token_bytes(n) for n in (MIB, MIB, MIB)]
    with pair.clients() as (a, b):
        location = start_upload(a, repository)
        offset = 0
        for client, chunk in zip((a, a, b), chunks, strict=True):
            assert patch(client, location, chunk, offset).status_code == 202
            offset += len(chunk)
        seen_by_a = sha256(b"".join(chunks[:2]))
        refused = finish(a, location, seen_by_a)
        assert refused.status_code == 400, refused.text
        assert error_code(refused) == "DIGEST_INVALID"
        assert a.head(f"/v2/{repository}/blobs/{seen_by_a}").status_code == 404
        assert b.get(location).status_code == 404


def test_a_monolithic_upload_started_on_one_process_and_put_on_the_other(pair: Pair) -> None:
    repository = "team/monolithic"
    data = secrets.token_bytes(7 * MIB)
    small = secrets.token_bytes(1000)
    with pair.clients() as (a, b):
        location = start_upload(a, repository)
        done = finish(b, location, sha256(data), data)
        assert done.status_code == 201, done.text
        assert blob(a, repository, sha256(data)) == data
        wrong = finish(a, start_upload(b, repository), sha256(data), small)
        assert wrong.status_code == 400 and error_code(wrong) == "DIGEST_INVALID", wrong.text
        one_request = b.post(
            f"/v2/{repository}/blobs/uploads/", params={"digest": sha256(small)}, content=small
        )
        assert one_request.status_code == 201, one_request.text
        assert blob(a, repository, sha256(small)) == small


def test_an_upload_cancelled_on_one_process_is_gone_on_the_other(pair: Pair) -> None:
    repository = "team/cancelled"
    chunk = secrets.token_bytes(MIB)
    with pair.clients() as (a, b):
        location = start_upload(a, repository)
        assert patch(a, location, chunk, 0).status_code == 202
        assert upload_range(a, location) == f"0-{MIB - 1}"  # A remembers it
        assert b.delete(location).status_code == 204
        assert a.get(location).status_code == 404
        assert patch(a, location, chunk, MIB).status_code == 404
        assert finish(a, location, sha256(chunk + chunk)).status_code == 404


def held_by(pair: Pair, location: str) -> str | None:
    """Who holds the upload's row now, as the database says."""
    engine = sa.create_engine(pair.database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                sa.text("SELECT held_by FROM registry_uploads WHERE id = :id"),
                {"id": location.rsplit("/", 1)[1]},
            ).scalar()
    finally:
        engine.dispose()


def test_while_one_process_appends_to_an_upload_the_other_may_not_touch_it(pair: Pair) -> None:
    """A streams a chunk and is held mid-way; B's PATCH, PUT and DELETE of the same upload are
    refused (416, BLOB_UPLOAD_INVALID: the client asks for the status, which B answers); once
    A's chunk ends, B appends and commits, and the blob is exactly A's bytes then B's."""
    repository = "team/at-once"
    first_half, second_half, more = (secrets.token_bytes(MIB) for _ in range(3))
    go_on = threading.Event()
    answered: list[httpx.Response] = []

    def held_body() -> Iterator[bytes]:
        yield first_half
        assert go_on.wait(60)
        yield second_half

    with pair.clients() as (a, b):
        location = start_upload(a, repository)
        streaming = threading.Thread(
            target=lambda: answered.append(a.patch(location, content=held_body()))
        )
        streaming.start()
        try:
            deadline = time.monotonic() + 30
            while held_by(pair, location) is None:
                assert time.monotonic() < deadline, "A never held the upload"
                time.sleep(0.05)
            busy = patch(b, location, more, 0)
            assert busy.status_code == 416, busy.text
            assert finish(b, location, sha256(more), more).status_code == 416
            assert b.delete(location).status_code == 416
            assert b.get(location).status_code == 204
        finally:
            go_on.set()
            streaming.join(60)
        [appended] = answered
        assert appended.status_code == 202, appended.text
        assert appended.headers["Range"] == f"0-{2 * MIB - 1}"
        whole = first_half + second_half + more
        assert patch(b, location, more, 2 * MIB).status_code == 202
        done = finish(b, location, sha256(whole))
        assert done.status_code == 201, done.text
        assert blob(a, repository, sha256(whole)) == whole


# -- whole images through the balancer ----------------------------------------------------


def test_docker_push_and_pull_of_a_multi_layer_image_through_a_round_robin_balancer(
    pair: Pair, tmp_path: Path
) -> None:
    """docker sends each layer as POST, PATCH (the whole layer, streamed), PUT: the balancer
    sends each to either process. The pushed image pulls back whole, and both processes
    answered some of it."""
    layout = OciLayout(tmp_path / "layout")
    layout.tag(layout.image("amd64", layer_bytes=6 * MIB, layers=4), "big")
    local = f"baepo-test/multi-layer:{secrets.token_hex(4)}"
    host = docker_host()
    skopeo(
        "copy", "--dest-daemon-host", host, f"oci:{layout.root}:big", f"docker-daemon:{local}"
    )  # fmt: skip
    (tmp_path / "front").mkdir()
    front = BaepoProcess(tmp_path / "front" / "data", port=int(pair.front.split(":")[1]))
    stack = signed_in(front, tmp_path / "front", host)
    before = pair.served()
    ref = stack.push(local, "team/multi-layer:1")
    pushed = stack.docker.inspect(local)["Id"]
    stack.docker("rmi", local, ref)
    stack.docker("pull", ref)
    assert stack.docker.inspect(ref)["Id"] == pushed
    stack.docker("rmi", ref)
    after = pair.served()
    assert all(after[s] - before.get(s, 0) >= 5 for s in ("a", "b")), (before, after)


# -- what one process changes, the other serves at once -----------------------------------


def test_a_tag_deleted_through_one_process_is_gone_through_the_other(pair: Pair) -> None:
    repository = "team/tag-deleted"
    with pair.clients() as (a, b):
        digest = push_image(a, repository, "gone")
        push_image(a, repository, "kept")
        accept = {"Accept": OCI_MANIFEST}
        assert b.get(f"/v2/{repository}/manifests/gone", headers=accept).status_code == 200
        deleted = b.delete(f"/api/v1/registry/repositories/{repository}/tags/gone")
        assert deleted.status_code == 204, deleted.text
        assert a.get(f"/v2/{repository}/manifests/gone", headers=accept).status_code == 404
        assert a.get(f"/v2/{repository}/tags/list").json()["tags"] == ["kept"]
        assert a.get(f"/v2/{repository}/manifests/{digest}", headers=accept).status_code == 200


def test_a_token_or_a_user_revoked_on_one_process_is_refused_by_the_other(pair: Pair) -> None:
    with pair.clients() as (a, b):
        made = a.post("/api/v1/tokens", json={"name": "revoked-soon"})
        assert made.status_code == 201, made.text
        secret = made.json()["token"]
        user = a.post("/api/v1/users", json={"name": "leaving", "password": "a long password"})
        assert user.status_code == 201, user.text
        signed = (httpx.BasicAuth("token", secret), httpx.BasicAuth("leaving", "a long password"))
        for auth in signed:  # each works on B, which remembers it
            assert b.get("/v2/_catalog", auth=auth).status_code == 200
            assert b.get("/api/v1/whoami", auth=auth).status_code == 200
        assert a.delete("/api/v1/tokens/revoked-soon").status_code == 204
        assert a.delete("/api/v1/users/leaving").status_code == 204
        for auth in signed:
            assert b.get("/v2/_catalog", auth=auth).status_code == 401
            assert b.get("/api/v1/whoami", auth=auth).status_code == 401


def test_failed_sign_ins_spread_over_the_processes_share_one_budget(pair: Pair) -> None:
    """Guesses alternating between the processes are throttled as if all went to one: ten
    wrong passwords for an account (the burst), and the next is refused by both, before any
    password check. (From 127.0.0.2: this client's address has a bucket of its own.)"""
    guess = httpx.BasicAuth("guessed", "not the password")
    with contextlib.ExitStack() as stack:
        a, b = (
            stack.enter_context(
                httpx.Client(
                    base_url=baepo.url,
                    timeout=60,
                    transport=httpx.HTTPTransport(local_address="127.0.0.2"),
                )
            )
            for baepo in (pair.first, pair.second)
        )
        for i in range(10):
            assert (a, b)[i % 2].get("/api/v1/whoami", auth=guess).status_code == 401
        refused = [c.get("/api/v1/whoami", auth=guess) for c in (a, b)]
    assert [r.status_code for r in refused] == [429, 429], refused[0].text
    assert all(int(r.headers["retry-after"]) >= 1 for r in refused)


def test_a_repository_policy_changed_on_one_process_holds_on_the_other(pair: Pair) -> None:
    repository = "team/policies"
    manifest = f"/v2/{repository}/manifests/v1"
    accept = {"Accept": OCI_MANIFEST}
    with pair.clients() as (a, b):
        push_image(a, repository, "v1")
        public = f"/api/v1/registry/repositories/{repository}/public"
        with httpx.Client(base_url=pair.second.url, timeout=30) as anonymous:
            assert anonymous.get(manifest, headers=accept).status_code == 401
            assert a.put(public, json={"public": True}).status_code == 204
            assert anonymous.get(manifest, headers=accept).status_code == 200
            assert a.put(public, json={"public": False}).status_code == 204
            assert anonymous.get(manifest, headers=accept).status_code == 401
        immutable = a.put(
            f"/api/v1/registry/repositories/{repository}/tag-mutability",
            json={"immutable": True},
        )
        assert immutable.status_code == 200, immutable.text
        with pytest.raises(AssertionError, match="TAG_INVALID"):
            push_image(b, repository, "v1")


def test_an_ecr_lifecycle_preview_started_on_one_process_is_read_on_the_other(
    pair: Pair, tmp_path: Path
) -> None:
    """`aws ecr start-lifecycle-policy-preview` on A, `get-lifecycle-policy-preview` on B."""
    repository = "team/previewed"
    with pair.clients() as (a, _):
        for n in range(3):
            push_image(a, repository, f"release-{n}")
    keep_one = json.dumps(
        {"rules": [{
            "rulePriority": 1, "description": "keep the newest release",
            "selection": {"tagStatus": "tagged", "tagPatternList": ["release-*"],
                          "countType": "imageCountMoreThan", "countNumber": 1},
            "action": {"type": "expire"},
        }]}
    )  # fmt: skip
    aws = Aws(signed_in(pair.first, tmp_path, docker_host()), tmp_path)
    started = aws.ecr(
        "start-lifecycle-policy-preview",
        *("--repository-name", repository, "--lifecycle-policy-text", keep_one),
    )
    assert started["status"] == "COMPLETE"
    aws.url = pair.second.url
    preview = aws.ecr("get-lifecycle-policy-preview", "--repository-name", repository)
    assert preview["lifecyclePolicyText"] == keep_one
    assert preview["summary"]["expiringImageTotalCount"] == 2


def test_a_service_changed_through_one_process_is_described_so_by_the_other(
    pair: Pair, tmp_path: Path
) -> None:
    stack = signed_in(pair.first, tmp_path, docker_host())
    ref = stack.push("baepo-test/hello:1", "team/described:1")
    stack.cli("services", "create", "described", "--image", ref, "--wait")
    stack.cli("services", "update", "described", "--env", "GREETING=changed", "--wait")
    with pair.clients() as (_, b):
        described = b.get("/api/v1/services/described").json()
    assert described["config"]["env"] == {"GREETING": "changed"}, described
    assert described["revision"] == described["active_revision"] == 2
    assert [i["revision"] for i in described["instances"]] == [2], described["instances"]
    assert [i["health"] for i in described["instances"]] == ["healthy"], described["instances"]
