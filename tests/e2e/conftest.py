"""End-to-end fixtures: a Baepo with its router, the docker CLI signed in, https clients."""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.clients import Docker, docker_host
from tests.conftest import BaepoProcess, running


def parse_wrk(output: str) -> tuple[int, int, int]:
    """(requests, socket errors, non-2xx/3xx responses) from wrk's summary."""
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    socket_errors = sum(int(g) for g in errors.groups()) if errors else 0
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return requests, socket_errors, int(bad.group(1)) if bad else 0


@dataclass
class Load:
    """What wrk said, once it ended."""

    output: str = ""

    def counts(self) -> tuple[int, int, int]:
        return parse_wrk(self.output)


@dataclass
class Stack:
    baepo: BaepoProcess
    docker: Docker
    env: dict[str, str]  # for the `baepo` CLI
    ca_file: Path

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "baepo", *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"baepo {' '.join(args)}:\n{done.stdout}{done.stderr}")
        return done

    def describe(self, name: str) -> dict[str, object]:
        return json.loads(self.cli("services", "describe", name, "--json").stdout)  # type: ignore[no-any-return]

    def wait_idle(self, name: str, timeout: float = 60) -> dict[str, object]:
        """Until no operation of the service is in flight; its description then."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            described = self.describe(name)
            if described["operation"] is None:
                return described
            time.sleep(0.2)
        raise AssertionError(f"{name} still busy after {timeout}s: {described}")

    def push(self, source: str, target: str) -> str:
        """docker tag + push; returns the full reference in Baepo's registry."""
        ref = f"{self.baepo.host}/{target}"
        self.docker("tag", source, ref)
        self.docker("push", ref)
        return ref

    def https(self, host: str, path: str = "/", timeout: float = 10) -> httpx.Response:
        """GET https://<host><path> through the router, with the local CA (and SNI)."""
        with self.client(host, timeout) as c:
            return c.get(path)

    def client(self, host: str, timeout: float = 10) -> httpx.Client:
        return https_client(self.ca_file, self.baepo.https_port, host, timeout)

    def curl(self, host: str, path: str = "/") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "curl",
                "-sS",
                "--cacert",
                str(self.ca_file),
                "--resolve",
                f"{host}:{self.baepo.https_port}:127.0.0.1",
                f"https://{host}:{self.baepo.https_port}{path}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )

    @contextmanager
    def load(
        self,
        host: str,
        connections: int,
        seconds: int,
        headers: tuple[str, ...] = (),
        timeout_s: int = 10,
    ) -> Iterator[Load]:
        """wrk over HTTPS through the router to `host` while the block runs (bounded by
        `seconds`); its summary is in the yielded `Load` once the block ends. wrk counts a
        request unanswered after `timeout_s` as a socket error."""
        extra = [arg for header in headers for arg in ("-H", header)]
        wrk = subprocess.Popen(
            [
                "wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", f"{timeout_s}s",
                "-H", f"Host: {host}", *extra, f"https://127.0.0.1:{self.baepo.https_port}/",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        result = Load()
        try:
            yield result
        finally:
            wrk.send_signal(signal.SIGINT)
            result.output, _ = wrk.communicate(timeout=60)

    def wait_for(self, host: str, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                r = self.https(host)
                last = f"{r.status_code} {r.text[:200]}"
                if r.status_code == 200 and text in r.text:
                    return
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise AssertionError(f"{host} never answered {text!r}; last: {last}")


def https_client(ca_file: Path, port: int, host: str, timeout: float = 10) -> httpx.Client:
    """An https client that sends every request to the router on 127.0.0.1 for `host`."""
    transport = httpx.HTTPTransport(verify=ssl.create_default_context(cafile=str(ca_file)))

    class ToRouter(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            request.url = request.url.copy_with(host="127.0.0.1", port=port)
            request.headers["Host"] = host
            request.extensions["sni_hostname"] = host
            return transport.handle_request(request)

        def close(self) -> None:
            transport.close()

    return httpx.Client(base_url=f"https://{host}", transport=ToRouter(), timeout=timeout)


@contextmanager
def open_stack(root: Path, *flags: str, http_port: int | None = None) -> Iterator[Stack]:
    """Baepo started with `flags`, the docker CLI and Baepo's CLI signed in to it, its CA
    saved: for the block."""
    host = docker_host()
    os.environ.setdefault("DOCKER_HOST", host)
    with running(root / "data", *flags, http_port=http_port) as baepo:
        yield signed_in(baepo, root, host)


def signed_in(baepo: BaepoProcess, root: Path, host: str) -> Stack:
    """The docker CLI and Baepo's CLI signed in to a running `baepo`, its CA saved."""
    docker = Docker(host, root / "docker")
    docker("login", baepo.host, "-u", "admin", "--password-stdin", input=baepo.password)
    env = {"BAEPO_CONFIG": str(root / "cli.json"), "BAEPO_URL": baepo.url, "COLUMNS": "200"}
    stack = Stack(baepo, docker, env, root / "ca.pem")
    done = subprocess.run(
        [sys.executable, "-m", "baepo", "login", "--password-stdin"],
        env={**os.environ, **env},
        input=baepo.password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    stack.cli("ca", "--out", str(stack.ca_file))
    return stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    sample = subprocess.run(
        [str(Path(__file__).resolve().parents[2] / "scripts/sample-image")],
        env={**os.environ, "DOCKER_HOST": docker_host()},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout.strip()
    root = tmp_path_factory.mktemp("stack")
    with open_stack(root, "--deploy-timeout", "20", "--sample-image", sample) as stack:
        yield stack
