"""Fixtures shared by every room's tests: a real `baepo up` process on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from baepo.config import Config
from baepo.control import SecretBox, load_or_create_secret_key
from baepo.runtime import DockerEngine
from baepo.schema import schema
from baepo.store import Database
from tests.backends import BACKENDS
from tests.components import REQUIRE_REAL, check_components, real_required
from tests.databases import DIALECTS, Databases, PostgresDatabases
from tests.s3server import ACCESS_KEY as S3_ACCESS_KEY
from tests.s3server import SECRET_KEY as S3_SECRET_KEY
from tests.s3server import S3Server
from tests.swarm_cluster import swarm_cluster

ADMIN_PASSWORD = "test-admin-password"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Where the real thing is required (tests/components.py), stop before the first test when
    a real component is missing: one line per component, and a failed run, not skips."""
    if not real_required():
        return
    problems = check_components()
    if problems:
        lines = "\n".join(f"  - {problem}" for problem in problems)
        raise pytest.UsageError(
            f"missing real components ({REQUIRE_REAL}=1 or CI=true; {REQUIRE_REAL}=0 to skip "
            f"their tests instead):\n{lines}"
        )


E2E = Path(__file__).resolve().parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `alone` the tests that must not run beside others: the end-to-end tests (load
    tests that count every request, and time-bound growth and shrinking) and the tests on the
    shared test swarm (two sessions using the cluster at once, each taking it down at its end,
    make each other fail). scripts/test runs them one at a time after the others' parallel run."""
    for item in items:
        if E2E in item.path.parents or on_the_swarm(item):
            item.add_marker(pytest.mark.alone)


def on_the_swarm(item: pytest.Item) -> bool:
    """Whether the test uses the test swarm's fixture, or asks for it only at run time and is
    marked `on_the_swarm` (the swarm variant of the engine conformance suite)."""
    uses = "swarm_manager" in getattr(item, "fixturenames", ())
    return uses or item.get_closest_marker("on_the_swarm") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class BaepoProcess:
    """A `baepo up` subprocess: start, kill -9, restart, and admin helpers."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    https_port: int = field(default_factory=free_port)
    extra_args: tuple[str, ...] = ()
    username: str = "admin"
    password: str = ADMIN_PASSWORD
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        """Start and wait until it answers. A port `free_port` found free can be taken by
        another process before Baepo binds it: then new ports, a few times."""
        for attempt in range(3):
            try:
                self._start(timeout)
                return
            except RuntimeError as exc:
                if attempt == 2 or "Address already in use" not in str(exc):
                    raise
                self.port, self.http_port, self.https_port = free_port(), free_port(), free_port()

    def _start(self, timeout: float) -> None:
        self.log_path = self.data_dir.parent / f"baepo-{self.port}.log"
        env = {**os.environ, "BAEPO_ADMIN_PASSWORD": self.password}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "baepo",
                "up",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                "--http-port",
                str(self.http_port),
                "--https-port",
                str(self.https_port),
                *self.extra_args,
                *BACKENDS.flags_for(self.data_dir, self.extra_args),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"baepo exited early:\n{self.log()}")
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()  # not left running (with its HAProxy) after the fixture gave up on it
        self.stop_data_plane()
        raise RuntimeError(f"baepo did not answer in {timeout}s:\n{self.log()}")

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def kill(self) -> None:
        """kill -9: no chance to clean up."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop_data_plane(self) -> None:
        """End what Baepo leaves running on purpose when it stops: its HAProxy, the
        containers of its services and their networks (found by this installation's label)."""
        pidfile = Config(data_dir=self.data_dir).router_run_dir / "haproxy.pid"
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pidfile.read_text().split()[0]), signal.SIGTERM)
        key = self.data_dir / "secrets" / "control.key"
        host = os.environ.get("DOCKER_HOST")
        if key.exists() and host:
            mine = SecretBox(load_or_create_secret_key(key)).fingerprint
            with contextlib.suppress(Exception):
                engine = DockerEngine(host)
                for instance in engine.list({"baepo.installation": mine}):
                    engine.remove(instance.id)
                for network in engine.networks({"baepo.installation": mine}):
                    engine.remove_network(network.name)
                engine.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    @property
    def admin(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(self.username, self.password)

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=self.admin, timeout=30)

    def make_public(self, repository: str, public: bool = True) -> None:
        with self.api() as c:
            r = c.put(
                f"/api/v1/registry/repositories/{quote(repository)}/public", json={"public": public}
            )
            r.raise_for_status()


CRYPTOGRAPHY = "_rust.abi3.so"
"""cryptography's Rust core (~6 MB resident once loaded): what a process that loaded it maps."""


def maps(pid: int, library: str) -> bool:
    """Whether process `pid` has `library` mapped (loaded) now."""
    return library in (Path("/proc") / str(pid) / "maps").read_text()


@contextlib.contextmanager
def running(data_dir: Path, *flags: str, http_port: int | None = None) -> Iterator[BaepoProcess]:
    """A `baepo up` with these flags for the block; stopped, with its data plane, after it."""
    server = BaepoProcess(data_dir, extra_args=flags)
    if http_port is not None:
        server.http_port = http_port
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.stop_data_plane()


@pytest.fixture(scope="session")
def baepo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaepoProcess]:
    """One Baepo for the whole session (tests use their own repository names)."""
    with running(tmp_path_factory.mktemp("baepo") / "data") as server:
        yield server


@pytest.fixture
def fresh_baepo(tmp_path: Path) -> Iterator[BaepoProcess]:
    """A Baepo of the test's own, for tests that kill or restart it."""
    server = BaepoProcess(tmp_path / "data")
    server.start()
    yield server
    server.kill()
    server.stop_data_plane()


@pytest.fixture(scope="session", autouse=True)
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The S3 server and PostgreSQL databases of the session (tests/backends.py): started
    when first wanted, by a fixture or a `baepo up` under BAEPO_TEST_BACKEND=postgres-s3."""
    BACKENDS.root = tmp_path_factory.mktemp("backends")
    yield
    BACKENDS.close()


@pytest.fixture(scope="session")
def s3_server() -> S3Server:
    """One real S3 server (SeaweedFS on loopback) for the session; tests take a bucket each."""
    return BACKENDS.s3()


@pytest.fixture(scope="session")
def baepo_s3_server(
    tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server
) -> Iterator[BaepoProcess]:
    """One Baepo with its blobs on S3 (`s3_server`, a bucket of its own) for the session."""
    flags = ("--storage", "s3", "--s3-endpoint", s3_server.endpoint,
             "--s3-bucket", s3_server.bucket(),
             "--s3-access-key", S3_ACCESS_KEY, "--s3-secret-key", S3_SECRET_KEY)  # fmt: skip
    with running(tmp_path_factory.mktemp("baepo-s3") / "data", *flags) as server:
        yield server


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def docker_host() -> str:
    """The Docker engine `scripts/engine` answers with, holding the `scripts/test-images`."""
    engine = subprocess.run(
        [str(REPO / "scripts" / "engine")], capture_output=True, text=True, timeout=180
    )
    if engine.returncode != 0:
        pytest.fail(f"scripts/engine failed:\n{engine.stderr}")
    host = engine.stdout.strip().splitlines()[-1]
    images = subprocess.run(
        [str(REPO / "scripts" / "test-images")],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "DOCKER_HOST": host},
    )
    if images.returncode != 0:
        pytest.fail(f"scripts/test-images failed:\n{images.stdout}\n{images.stderr}")
    return host


@pytest.fixture(scope="session")
def postgres_databases() -> PostgresDatabases:
    """The tests' PostgreSQL, with a template database at the schema's head (tests/databases.py)."""
    return BACKENDS.postgres()


@pytest.fixture(params=DIALECTS)
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Databases]:
    """New state databases of each dialect in turn (tests/databases.py)."""
    postgres = None
    if request.param == "postgresql":
        postgres = request.getfixturevalue("postgres_databases")
    made = Databases(request.param, tmp_path, postgres)
    yield made
    made.close()


@pytest.fixture
def database_url(databases: Databases) -> str:
    """A new state database of each dialect in turn: a SQLite file not made yet, or a
    PostgreSQL database already at the schema's head (its `migrate()` is then a no-op)."""
    return databases.new()


@pytest.fixture
def state_db(database_url: str) -> Iterator[Database]:
    """A state database of each dialect in turn, at the schema's head."""
    made = Database(database_url)
    made.migrate(schema())
    yield made
    made.dispose()


@pytest.fixture(scope="session")
def swarm_manager() -> Iterator[str]:
    """The test Docker Swarm's manager address (tests/swarm_cluster.py), for the session: the
    runtime's and the end-to-end tests share one cluster."""
    with swarm_cluster() as manager:
        yield manager
