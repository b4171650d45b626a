"""`baepo up` as a process: starts, keeps its state in one directory, stops cleanly."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.backends import SQLITE_FS, backend
from tests.conftest import CRYPTOGRAPHY, BaepoProcess, free_port, maps

pytestmark = pytest.mark.integration


def test_sigterm_stops_cleanly_and_state_survives(fresh_baepo: BaepoProcess) -> None:
    with fresh_baepo.api() as api:
        made = api.post("/api/v1/tokens", json={"name": "kept"})
        assert made.status_code == 201
    assert fresh_baepo.stop() == 0
    log = fresh_baepo.log()
    assert "registry and API on http://127.0.0.1" in log and "stopped" in log
    kept = {p.name for p in fresh_baepo.data_dir.iterdir()}
    assert {"secrets", "router", "ca"} <= kept
    if backend() == SQLITE_FS:
        assert {"baepo.db", "registry"} <= kept
    fresh_baepo.start()
    token = made.json()["token"]
    r = httpx.get(f"{fresh_baepo.url}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["name"] == "admin"


def test_generated_admin_password_is_printed_once(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "BAEPO_ADMIN_PASSWORD"}
    server = BaepoProcess(tmp_path / "data")
    cmd = [
        sys.executable,
        "-m",
        "baepo",
        "up",
        "--port",
        str(server.port),
        "--data-dir",
        str(server.data_dir),
        "--http-port",
        str(server.http_port),
        "--https-port",
        str(server.https_port),
    ]
    outputs = []
    try:
        for _ in range(2):
            proc = subprocess.Popen(
                cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            assert proc.stdout is not None
            lines = []
            for line in proc.stdout:
                lines.append(line)
                if "Uvicorn running on" in line:
                    break
            r = httpx.get(f"{server.url}/v2/", timeout=30)  # it serves before being stopped
            assert r.status_code == 401
            proc.terminate()
            rest, _ = proc.communicate(timeout=20)
            outputs.append("".join(lines) + rest)
            assert proc.returncode == 0
            if len(outputs) == 1:
                first = [
                    ln for ln in outputs[0].splitlines() if "admin password (shown once):" in ln
                ]
                assert len(first) == 1
                password = first[0].rsplit(":", 1)[1].strip()
                with httpx.Client() as c:
                    proc_check = subprocess.Popen(
                        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                    )
                    try:
                        deadline = time.monotonic() + 20
                        while True:
                            try:
                                r = c.get(f"{server.url}/v2/", auth=("admin", password))
                                break
                            except httpx.HTTPError:
                                assert time.monotonic() < deadline
                                time.sleep(0.05)
                        assert r.status_code == 200
                    finally:
                        proc_check.terminate()
                        proc_check.wait(timeout=20)
        assert "admin password" not in outputs[1]
    finally:
        server.stop_data_plane()


def test_bad_data_dir_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "baepo",
            "up",
            "--port",
            str(free_port()),
            "--data-dir",
            str(blocker / "data"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "data" in done.stderr


@pytest.mark.parametrize("flag", ["--port", "--http-port", "--https-port"])
def test_a_taken_port_fails_before_anything_starts(tmp_path: Path, flag: str) -> None:
    data_dir = tmp_path / "data"
    ports = {"--port": free_port(), "--http-port": free_port(), "--https-port": free_port()}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports[flag] = taken.getsockname()[1]
        args = [a for flag_port in ports.items() for a in (flag_port[0], str(flag_port[1]))]
        done = subprocess.run(
            [sys.executable, "-m", "baepo", "up", "--data-dir", str(data_dir), *args],
            env={**os.environ, "BAEPO_ADMIN_PASSWORD": "x" * 16},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert f":{ports[flag]} ({flag}" in errors[0] and "in use" in errors[0]
    assert _processes_naming(data_dir) == []  # no HAProxy (nor anything else) left behind
    assert not data_dir.exists()  # nothing was started, not even the database


def test_a_registry_host_that_is_no_host_name_is_one_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "baepo", "up", "--data-dir", str(tmp_path / "data")),
            *("--port", str(free_port()), "--registry-host", "my registry"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "'my registry.localhost' is not a valid hostname" in done.stderr


def _processes_naming(path: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(path).encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_the_data_directory_and_everything_in_it_is_private(fresh_baepo: BaepoProcess) -> None:
    with fresh_baepo.api() as api:
        assert api.post("/api/v1/tokens", json={"name": "private"}).status_code == 201
    assert fresh_baepo.data_dir.stat().st_mode & 0o777 == 0o700
    shared = [
        f"{path.relative_to(fresh_baepo.data_dir)} {path.stat().st_mode & 0o777:o}"
        for path in fresh_baepo.data_dir.rglob("*")
        if not path.is_symlink() and path.stat().st_mode & 0o077
    ]
    assert shared == []


def test_an_older_data_directory_is_made_private_at_start(fresh_baepo: BaepoProcess) -> None:
    assert fresh_baepo.stop() == 0
    fresh_baepo.data_dir.chmod(0o755)
    on_sqlite = backend() == SQLITE_FS  # else the state is in PostgreSQL: no baepo.db
    if on_sqlite:
        (fresh_baepo.data_dir / "baepo.db").chmod(0o644)
    fresh_baepo.start()
    assert fresh_baepo.data_dir.stat().st_mode & 0o777 == 0o700
    if on_sqlite:
        assert (fresh_baepo.data_dir / "baepo.db").stat().st_mode & 0o777 == 0o600


def _signers(data_dir: Path) -> list[int]:
    """The local CA's signer processes of the Baepo on `data_dir` (alive, not zombies)."""
    found = []
    for pid in _processes_naming(data_dir / "ca"):
        try:
            cmdline = (Path("/proc") / str(pid) / "cmdline").read_bytes()
            state = _stat(pid)[0]
        except OSError:
            continue
        if b"baepo.router.signer" in cmdline and state not in ("Z", "X"):
            found.append(pid)
    return found


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat's fields after the command name: state, parent, …"""
    return (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()


def test_the_first_start_signs_in_a_child_that_ends_with_the_server(
    fresh_baepo: BaepoProcess,
) -> None:
    """A first start creates the local CA and signs the default certificate in a child
    process: the server never maps `cryptography`, and the certificate it serves verifies
    with the CA users download. The child, idle, lives on for a while, never past the server
    (even one killed with SIGKILL)."""
    from cryptography.hazmat.bindings import _rust  # noqa: F401  (loaded here, for the check)

    assert maps(os.getpid(), CRYPTOGRAPHY)  # the check sees the library where it is loaded
    assert fresh_baepo.process is not None
    server = fresh_baepo.process.pid
    assert not maps(server, CRYPTOGRAPHY)
    signers = _signers(fresh_baepo.data_dir)
    assert len(signers) == 1  # it signed moments ago, and lives 30 s idle
    assert int(_stat(signers[0])[1]) == server and maps(signers[0], CRYPTOGRAPHY)

    with fresh_baepo.api() as api:
        root = api.get("/api/v1/ca")
    assert root.status_code == 200 and "BEGIN CERTIFICATE" in root.text
    ca_file = fresh_baepo.data_dir.parent / "ca.pem"
    ca_file.write_text(root.text)
    port = fresh_baepo.https_port
    served = subprocess.run(
        [
            *("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}"),
            *("--cacert", str(ca_file), "--resolve", f"localhost:{port}:127.0.0.1"),
            f"https://localhost:{port}/",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert served.returncode == 0, served.stderr  # the default certificate, verified
    assert served.stdout == "404"  # no service there: the router's 404 page
    assert not maps(server, CRYPTOGRAPHY)

    fresh_baepo.kill()  # SIGKILL: no chance to end the child itself
    deadline = time.monotonic() + 10
    while _signers(fresh_baepo.data_dir):
        assert time.monotonic() < deadline, "the signer outlived the server"
        time.sleep(0.05)


def test_no_start_loads_cryptography_and_a_stop_leaves_no_signer(
    fresh_baepo: BaepoProcess,
) -> None:
    """The first start signs the router's certificates in a child process; a restart on the
    same data directory finds them valid from their notes and starts no child. A registry
    login and a bearer token need no cryptography either."""
    assert fresh_baepo.process is not None
    assert not maps(fresh_baepo.process.pid, CRYPTOGRAPHY)
    assert fresh_baepo.stop() == 0
    assert _signers(fresh_baepo.data_dir) == []  # the shutdown ended it
    fresh_baepo.start()
    assert fresh_baepo.process is not None
    assert not maps(fresh_baepo.process.pid, CRYPTOGRAPHY)
    assert _signers(fresh_baepo.data_dir) == []  # nothing to sign
    got = httpx.get(
        f"{fresh_baepo.url}/auth/token",
        params={"service": "baepo", "scope": "repository:admin/app:pull,push"},
        auth=fresh_baepo.admin,
    )
    assert got.status_code == 200, got.text
    bearer = {"Authorization": f"Bearer {got.json()['token']}"}
    assert httpx.get(f"{fresh_baepo.url}/v2/", headers=bearer).status_code == 200
    assert httpx.get(f"{fresh_baepo.url}/v2/admin/app/tags/list", headers=bearer).status_code == 404
    assert not maps(fresh_baepo.process.pid, CRYPTOGRAPHY)


def test_importing_the_server_loads_no_jwt_library_nor_cryptography() -> None:
    program = (
        "import sys, baepo.server\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'jwt', 'cryptography'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_importing_the_server_loads_no_http_client_nor_template_library() -> None:
    """httpx is the CLI's; its package imports rich and pygments (~4 MB resident). Jinja2
    (~4 MB) is loaded by the console's first page."""
    program = (
        "import sys, baepo.server\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}"
        " & {'httpx', 'rich', 'pygments', 'jinja2'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_the_registry_listens_before_the_loops_start(tmp_path: Path) -> None:
    """The reconciler's first pass can make the engine pull from Baepo's own registry (a
    push's deploy cut short by a restart): the port must take connections by then, not refuse
    them until the loops have started."""
    port = free_port()
    script = f"""
import socket
from pathlib import Path
from baepo import server
from baepo.config import Config

async def startup(self):
    with socket.create_connection(("127.0.0.1", {port}), timeout=5):
        print("connected while starting", flush=True)
    raise RuntimeError("enough")

server.Baepo.startup = startup
server.run(Config(data_dir=Path({str(tmp_path / "data")!r}), port={port},
                  http_port={free_port()}, https_port={free_port()}, admin_password="x" * 16))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert "connected while starting" in done.stdout, done.stderr[-2000:]
