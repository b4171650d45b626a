"""`baepo up --database-url postgresql+psycopg://…`: the whole flow with its state in PostgreSQL
(the other end-to-end tests run on SQLite; the store's suites run on both), and two processes
sharing it and one S3 bucket for their blobs (a real SeaweedFS), one leading the control loops,
the other taking over when the leader is killed."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from baepo.config import Config
from tests.clients import docker_host
from tests.conftest import BaepoProcess, free_port
from tests.databases import PostgresDatabases
from tests.e2e.conftest import Stack, https_client, open_stack, signed_in
from tests.e2e.test_backup_restore import baepo_cli
from tests.e2e.test_git_push import runs, service_with_remote
from tests.s3server import ACCESS_KEY, SECRET_KEY, S3Server

pytestmark = pytest.mark.integration


@pytest.fixture
def postgres_url(postgres_databases: PostgresDatabases) -> Iterator[str]:
    """A new, empty database: `baepo up` migrates it."""
    with postgres_databases.database(migrated=False) as url:
        yield url


@pytest.fixture
def shared_flags(postgres_url: str, s3_server: S3Server) -> tuple[str, ...]:
    """One PostgreSQL database and one S3 bucket, for every process of the test."""
    return (
        "--database-url", postgres_url, "--deploy-timeout", "20",
        "--storage", "s3", "--s3-endpoint", s3_server.endpoint, "--s3-bucket", s3_server.bucket(),
        "--s3-access-key", ACCESS_KEY, "--s3-secret-key", SECRET_KEY,
    )  # fmt: skip


@pytest.fixture
def stack(tmp_path: Path, shared_flags: tuple[str, ...]) -> Iterator[Stack]:
    with open_stack(tmp_path, *shared_flags) as made:
        yield made


def leader_pid(url: str) -> int | None:
    """The pid in the control lease's holder (`host/pid/random`), if it has one."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        holder = conn.execute(
            sa.text("SELECT holder FROM store_leases WHERE name = 'control'")
        ).scalar()
    engine.dispose()
    return None if holder is None else int(holder.split("/")[1])


def second_process(first: BaepoProcess, root: Path, flags: tuple[str, ...]) -> BaepoProcess:
    """Another Baepo on the same database and bucket, with the first's keys and CA (a token or
    a sealed secret one makes, the other reads)."""
    data = root / "data"
    data.mkdir(parents=True)
    for shared in ("secrets", "ca"):
        shutil.copytree(first.data_dir / shared, data / shared)
    return BaepoProcess(data, extra_args=flags)


def test_two_processes_on_postgresql_and_s3_deploy_and_survive_the_leaders_kill(
    stack: Stack, postgres_url: str, shared_flags: tuple[str, ...], tmp_path: Path
) -> None:
    first = stack.baepo
    second = second_process(first, tmp_path / "second", shared_flags)
    second.start()
    try:
        assert first.process is not None and second.process is not None
        assert leader_pid(postgres_url) == first.process.pid  # it claimed first
        follower = signed_in(second, tmp_path / "second", docker_host())

        # The leader deploys, and auto-deploys a push of the tag; the follower serves the
        # same state. (Each knows its own address as its registry's: behind a load balancer
        # both are named by the balancer's.)
        ref = stack.push("baepo-test/hello:1", "team/on-pg:live")
        created = stack.cli(
            *("services", "create", "on-pg", "--image", ref, "--port", "8080"),
            *("--health-check-path", "/healthz", "--wait"),
        )
        assert "SUCCEEDED" in created.stdout
        stack.wait_for("on-pg.localhost", "hello v1")
        stack.push("baepo-test/hello:2", "team/on-pg:live")  # the tracked tag moves: a deploy
        stack.wait_for("on-pg.localhost", "hello v2")
        assert follower.wait_idle("on-pg")["active_revision"] == 2
        engine = sa.create_engine(postgres_url)
        with engine.connect() as conn:
            tags = conn.execute(sa.text("SELECT name FROM registry_tags")).scalars().all()
            services = conn.execute(sa.text("SELECT name, status FROM control_services")).all()
        engine.dispose()
        assert tags == ["live"]
        assert [tuple(row) for row in services] == [("on-pg", "RUNNING")]
        assert not any(
            p.exists() for p in (first.data_dir / "baepo.db", second.data_dir / "baepo.db")
        )

        first.kill()  # kill -9: no release, the lease must expire
        killed = time.monotonic()
        while leader_pid(postgres_url) != second.process.pid:
            assert time.monotonic() - killed < 60, "the follower never took the lease"
            time.sleep(0.2)
        print(f"took over {time.monotonic() - killed:.1f} s after the kill")
        # The new leader adopts the running instances and routes to them, and deploys (an
        # image named by its own address: the dead one's no longer answers), its blobs in the
        # bucket the dead one wrote to as well.
        follower.wait_for("on-pg.localhost", "hello v2")
        ref = follower.push("baepo-test/hello:1", "team/on-pg:again")
        follower.cli("services", "deploy", "on-pg", "--image", ref, "--wait")
        follower.wait_for("on-pg.localhost", "hello v1")
    finally:
        second.stop()
        second.stop_data_plane()
        first.stop_data_plane()


def test_a_leader_whose_lease_is_taken_stops_with_an_error_to_restart_as_a_follower(
    postgres_url: str, tmp_path: Path
) -> None:
    baepo = BaepoProcess(tmp_path / "data", extra_args=("--database-url", postgres_url))
    baepo.start()
    try:
        assert baepo.process is not None
        deadline = time.monotonic() + 60
        while leader_pid(postgres_url) != baepo.process.pid:
            assert time.monotonic() < deadline, "it never took the lease"
            time.sleep(0.2)
        engine = sa.create_engine(postgres_url)
        with engine.begin() as conn:  # another process took it (its clock ran ahead, say)
            conn.execute(
                sa.text(
                    "UPDATE store_leases SET holder = 'elsewhere/1/x', term = term + 1,"
                    " expires_at = now() + interval '1 hour'"
                )
            )
        engine.dispose()
        assert baepo.process.wait(timeout=60) == 1
        assert "lost the control lease" in baepo.log()
    finally:
        baepo.stop()
        baepo.stop_data_plane()


@contextmanager
def balancer(
    directory: Path, api_port: int, https_port: int, baepos: tuple[BaepoProcess, ...], via: str
) -> Iterator[None]:
    """One HAProxy in front of several Baepo processes: their registry and API (HTTP, checked
    at /api/v1/health) and their routers (HTTPS passed through as TCP), a router checked
    `via` its own Baepo (as docs/operations.md sets it up) or its own port alone."""
    api_servers = "\n".join(
        f"    server b{i} 127.0.0.1:{b.port} check inter 500 fall 2 rise 2"
        for i, b in enumerate(baepos)
    )
    router_servers = "\n".join(
        f"    server b{i} 127.0.0.1:{b.https_port} check"
        + (f" port {b.port}" if via == "baepo" else "")
        + " inter 500 fall 2 rise 2"
        for i, b in enumerate(baepos)
    )
    router_check = "    option httpchk GET /api/v1/health\n" if via == "baepo" else ""
    config = directory / "balancer.cfg"
    config.write_text(
        f"""global
    maxconn 2000
defaults
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout check 2s
    retries 3
    option redispatch
frontend api
    mode http
    bind 127.0.0.1:{api_port}
    default_backend baepo
backend baepo
    mode http
    balance roundrobin
    option httpchk GET /api/v1/health
{api_servers}
frontend routers
    mode tcp
    bind 127.0.0.1:{https_port}
    default_backend routers
backend routers
    mode tcp
    balance roundrobin
{router_check}{router_servers}
"""
    )
    haproxy = subprocess.Popen(
        ["/usr/sbin/haproxy", "-db", "-f", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=(directory / "balancer.log").open("wb"),
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert haproxy.poll() is None, (directory / "balancer.log").read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{api_port}/api/v1/health").status_code == 200:
                    break
            assert time.monotonic() < deadline, "the balancer never answered"
            time.sleep(0.1)
        yield
    finally:
        haproxy.terminate()
        haproxy.wait(timeout=30)


@pytest.mark.parametrize(
    ("restarted", "via", "settings"),
    [
        (True, "baepo", ("--port", "8080", "--health-check-path", "/healthz")),
        (False, "port", ()),  # the defaults a user gets: port 8080, a TCP health check
    ],
    ids=["restarted", "left-dead-defaults"],
)
def test_two_processes_behind_one_haproxy_serve_and_deploy_through_the_leaders_kill(
    postgres_url: str,
    shared_flags: tuple[str, ...],
    tmp_path: Path,
    restarted: bool,
    via: str,
    settings: tuple[str, ...],
) -> None:
    """The issue's check: two processes share PostgreSQL and an S3 bucket behind one HAProxy
    that balances both their registry/API and their routers. Through it: push, create, and
    under load, the leader killed, the follower taking over, and a deploy by the new leader:
    no request fails. Either the killed one is started again, as systemd would (its router
    checked through it), or it stays dead with its HAProxy checked by port alone: its watchdog
    then soft-stops that HAProxy before the new leader's deploy could make its routes stale."""
    api_port, https_port = free_port(), free_port()
    flags = (*shared_flags, "--registry-address", f"127.0.0.1:{api_port}")
    (tmp_path / "first").mkdir()
    first = BaepoProcess(tmp_path / "first" / "data", extra_args=flags)
    first.start()
    second = second_process(first, tmp_path / "second", flags)
    second.start()
    # The balancer's address, as a Baepo the clients sign in to (it is no process of its own).
    (tmp_path / "front").mkdir()
    front = BaepoProcess(tmp_path / "front" / "data", port=api_port, https_port=https_port)
    try:
        with balancer(tmp_path, api_port, https_port, (first, second), via):
            stack = signed_in(front, tmp_path / "front", docker_host())
            ref = stack.push("baepo-test/hello:1", "team/balanced:live")
            stack.cli("services", "create", "balanced", "--image", ref, *settings, "--wait")
            stack.wait_for("balanced.localhost", "hello v1")
            for baepo in (first, second):  # each router carries the route
                with https_client(stack.ca_file, baepo.https_port, "balanced.localhost") as c:
                    assert "hello v1" in c.get("/").text
            assert first.process is not None
            killed = first.process.pid
            assert leader_pid(postgres_url) == killed
            with stack.load("balanced.localhost", connections=16, seconds=90) as load:
                time.sleep(3)
                haproxy = router_pid(first)
                first.kill()
                if restarted:
                    first.start()  # its supervisor starts it again: a follower now
                deadline = time.monotonic() + 60
                while leader_pid(postgres_url) in (killed, None):
                    assert time.monotonic() < deadline, "nobody took the lease"
                    time.sleep(0.2)
                stack.push("baepo-test/hello:2", "team/balanced:live")  # a deploy by the new one
                stack.wait_for("balanced.localhost", "hello v2", timeout=120)
                assert stack.wait_idle("balanced", timeout=120)["active_revision"] == 2
                time.sleep(2)
            requests, socket_errors, bad = load.counts()
            print(f"{requests} requests through the balancer, {socket_errors} socket errors, "
                  f"{bad} not 2xx/3xx")  # fmt: skip
            assert requests > 0
            assert (socket_errors, bad) == (0, 0), load.output
            for baepo in (first, second) if restarted else (second,):
                with https_client(stack.ca_file, baepo.https_port, "balanced.localhost") as c:
                    assert "hello v2" in c.get("/").text
            if not restarted:
                assert not Path(f"/proc/{haproxy}").exists(), "the dead one's HAProxy serves"
    finally:
        for baepo in (first, second):
            baepo.stop()
        for baepo in (first, second):
            baepo.stop_data_plane()


def router_pid(baepo: BaepoProcess) -> int:
    """The pid of the HAProxy master that `baepo` started."""
    pidfile = Config(data_dir=baepo.data_dir).router_run_dir / "haproxy.pid"
    return int(pidfile.read_text().split()[0])


def test_a_git_push_to_a_follower_is_passed_on_to_the_leader(
    stack: Stack, shared_flags: tuple[str, ...], tmp_path: Path
) -> None:
    """The git remote and the pipelines keep files on the machine that runs them: the leader.
    A push that the load balancer sends to another process is passed on, streaming both ways
    (the pusher sees the pipeline's output); so are the runs' listing and logs."""
    first = stack.baepo
    second = second_process(first, tmp_path / "second", shared_flags)
    second.start()
    try:
        follower = signed_in(second, tmp_path / "second", docker_host())
        repo = service_with_remote(stack, tmp_path, "pushed", "pipeline-python")
        remote = repo.git("remote", "get-url", "baepo").stdout.strip()
        repo.git("remote", "set-url", "baepo", remote.replace(first.host, second.host))
        pushed = repo.push()
        assert "remote: test_greeting_names_the_version" in pushed.stderr, pushed.stderr
        follower.wait_for("pushed.localhost", "pipeline app v1")
        [run] = runs(follower, "pushed")
        assert run["status"] == "SUCCEEDED", run
        logs = follower.cli("pipelines", "logs", str(run["id"])).stdout
        assert "test_greeting_names_the_version" in logs
        assert not any((second.data_dir / "git").glob("*")), "the follower kept a repository"
    finally:
        second.stop()
        second.stop_data_plane()
        first.stop_data_plane()


def test_a_backup_on_postgresql_and_s3_comes_back_in_a_new_database_and_bucket(
    stack: Stack,
    shared_flags: tuple[str, ...],
    postgres_databases: PostgresDatabases,
    s3_server: S3Server,
    tmp_path: Path,
) -> None:
    """`baepo backup` with the flags `baepo up` runs with (its rows as of one snapshot, its
    blobs from the bucket); the machine, the database and the bucket lost; `baepo restore`
    into a new bucket, `baepo migrate-state` into a new database, and `baepo up` on them: the
    service converges again, pulling its image from the restored registry."""
    ref = stack.push("baepo-test/hello:1", "team/kept:1")
    digest = json.loads(stack.cli("registry", "tags", "team/kept", "--json").stdout)[0]["digest"]
    stack.cli("services", "create", "kept", "--image", ref, "--wait")  # the defaults
    stack.wait_for("kept.localhost", "hello v1")
    where = shared_flags[shared_flags.index("--storage") :]  # the database is named apart
    url = shared_flags[shared_flags.index("--database-url") + 1]
    archive = tmp_path / "backup.tar.gz"
    data_dir = str(stack.baepo.data_dir)
    done = baepo_cli("backup", str(archive), "--data-dir", data_dir, "--database-url", url, *where)
    assert done.returncode == 0, done.stderr
    port = stack.baepo.port
    stack.baepo.stop()
    stack.baepo.stop_data_plane()
    stack.docker("rmi", "-f", ref, f"127.0.0.1:{port}/team/kept@{digest}", check=False)

    bucket = s3_server.bucket()
    new_place = (*where[: where.index("--s3-bucket") + 1], bucket)
    new_place += where[where.index("--s3-bucket") + 2 :]
    restored = tmp_path / "b" / "data"
    done = baepo_cli("restore", str(archive), "--data-dir", str(restored), *new_place)
    assert done.returncode == 0, done.stderr
    assert s3_server.objects(bucket), "no blob went into the new bucket"
    with postgres_databases.database(migrated=False) as new_url:
        done = baepo_cli("migrate-state", "--data-dir", str(restored), "--to", new_url)
        assert done.returncode == 0, done.stderr
        again = BaepoProcess(
            restored, port=port, extra_args=("--database-url", new_url, *new_place)
        )
        again.start(timeout=60)
        try:
            Stack(again, stack.docker, stack.env, stack.ca_file).wait_for(
                "kept.localhost", "hello v1", timeout=180
            )
        finally:
            again.stop()
            again.stop_data_plane()
