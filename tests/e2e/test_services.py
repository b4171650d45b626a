"""Services end to end: a real engine, the real HAProxy router, real docker CLI and curl."""

from __future__ import annotations

import secrets
import subprocess
import time

import pytest

from tests.conftest import CRYPTOGRAPHY, maps
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.integration

CURL_PEER_FAILED_VERIFICATION = 60
"""curl's exit code for a certificate it does not accept for the host."""


def curl_insecure(stack: Stack, host: str, path: str = "/") -> str:
    """The body `host` answers with through the router, whatever certificate it shows."""
    port = stack.baepo.https_port
    return subprocess.run(
        [
            "curl",
            "-sS",
            "-k",
            "--resolve",
            f"{host}:{port}:127.0.0.1",
            f"https://{host}:{port}{path}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout


def test_certificates_are_signed_outside_the_server(stack: Stack) -> None:
    """A fresh Baepo signs the default certificate, the sample service's and a new
    service's in a child process: curl verifies each with the CA `baepo ca` exported, and
    the long-running server never maps `cryptography`. (First in this module: a service with
    secrets would load it, for its secrets.)"""
    name = f"signed-{secrets.token_hex(2)}"
    ref = stack.push("baepo-test/hello:1", f"team/{name}:1")
    stack.cli(
        *("services", "create", name, "--image", ref, "--port", "8080"),
        *("--health-check-path", "/healthz", "--wait"),
    )
    stack.wait_for("hello.localhost", "Hello from Baepo")
    for host in (f"{name}.localhost", "hello.localhost"):
        answer = stack.curl(host)
        assert answer.returncode == 0, answer.stderr
    assert stack.baepo.process is not None
    assert not maps(stack.baepo.process.pid, CRYPTOGRAPHY)
    stack.cli("services", "rm", name, "--wait")


def test_image_pushed_with_docker_becomes_an_https_service(stack: Stack) -> None:
    name = f"hello-{secrets.token_hex(2)}"
    ref = stack.push("baepo-test/hello:1", f"team/{name}:live")
    created = stack.cli(
        "services",
        "create",
        name,
        "--image",
        ref,
        "--port",
        "8080",
        "--health-check-path",
        "/healthz",
        "--wait",
    )
    assert "SUCCEEDED" in created.stdout
    described = stack.describe(name)
    assert described["status"] == "RUNNING"
    assert described["url"] == f"https://{name}.localhost:{stack.baepo.https_port}"
    assert described["active_revision"] == 1
    host = f"{name}.localhost"
    answer = stack.curl(host)
    assert answer.returncode == 0, answer.stderr
    assert "hello v1" in answer.stdout

    # Update the environment: a new revision, same image.
    stack.cli("services", "update", name, "--env", "MESSAGE=from-the-env", "--wait")
    stack.wait_for(host, "from-the-env")
    assert stack.describe(name)["active_revision"] == 2

    # Push the tracked tag again with another image: auto-deploy, no command needed.
    stack.push("baepo-test/hello:2", f"team/{name}:live")
    stack.wait_for(host, "hello v2")
    assert stack.wait_idle(name)["active_revision"] == 3
    ops = stack.cli("services", "ops", name, "--json").stdout
    assert ops.index("START_DEPLOYMENT") < ops.index("UPDATE_SERVICE")  # newest first

    # Roll back to the first revision.
    stack.cli("services", "rollback", name, "--to", "1", "--wait")
    assert "hello v1" in stack.https(host).text
    revisions = stack.cli("services", "revisions", name, "--json").stdout
    assert '"number": 3' in revisions and '"number": 4' not in revisions  # rollback reuses 1

    stack.cli("services", "pause", name, "--wait")
    paused = stack.https(host)
    assert paused.status_code == 503 and "paused" in paused.text.lower()
    stack.cli("services", "resume", name, "--wait")
    assert "hello v1" in stack.https(host).text

    stack.cli("services", "rm", name, "--wait")
    # Gone as a host Baepo never knew: its certificate is no longer served (the default one
    # does not name it, so curl refuses it), and past the certificate is the 404 page. Polled
    # briefly: after a hitless reload the old HAProxy worker may still take a connection.
    deadline = time.monotonic() + 10
    while (refused := stack.curl(host, "/")).returncode != CURL_PEER_FAILED_VERIFICATION:
        assert time.monotonic() < deadline, (
            f"{refused.returncode}: {refused.stdout}{refused.stderr}"
        )
        time.sleep(0.1)
    assert "404 Not Found" in curl_insecure(stack, host)


def test_the_sample_service_answers_at_hello_localhost(stack: Stack) -> None:
    stack.wait_for("hello.localhost", "Hello from Baepo", timeout=60)
    answer = stack.curl("hello.localhost")  # curl verifies with the CA `baepo ca` exported
    assert answer.returncode == 0 and "Hello from Baepo" in answer.stdout


def test_http_redirects_to_https_and_unknown_hosts_get_404(stack: Stack) -> None:
    def curl(url_host: str, scheme: str, port: int, *extra: str) -> str:
        done = subprocess.run(
            [
                "curl",
                "-sS",
                *extra,
                "--resolve",
                f"{url_host}:{port}:127.0.0.1",
                f"{scheme}://{url_host}:{port}/a?b=1",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return done.stdout

    stack.wait_for("hello.localhost", "Hello from Baepo")
    answer = curl(
        "hello.localhost",
        "http",
        stack.baepo.http_port,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
    )
    code, location = answer.split(" ", 1)
    assert code == "308"
    assert location == f"https://hello.localhost:{stack.baepo.https_port}/a?b=1"
    # An unknown host: the 404 page over HTTP, and over HTTPS (past the certificate).
    assert "404 Not Found" in curl("nothing.localhost", "http", stack.baepo.http_port)
    assert "404 Not Found" in curl("nothing.localhost", "https", stack.baepo.https_port, "-k")


def test_a_revision_that_never_gets_healthy_fails_and_the_old_one_keeps_serving(
    stack: Stack,
) -> None:
    name = f"steady-{secrets.token_hex(2)}"
    ref = stack.push("baepo-test/hello:1", f"team/{name}:1")
    stack.cli(
        "services", "create", name, "--image", ref, "--health-check-path", "/healthz", "--wait"
    )
    broken = stack.push("baepo-test/broken:1", f"team/{name}:broken")
    failed = stack.cli("services", "deploy", name, "--image", broken, "--wait", check=False)
    assert failed.returncode == 1
    assert "FAILED" in failed.stdout + failed.stderr
    assert "refusing to listen" in failed.stdout  # the new container's last log lines
    assert "hello v1" in stack.https(f"{name}.localhost").text
    described = stack.describe(name)
    assert described["status"] == "RUNNING" and described["active_revision"] == 1
    stack.cli("services", "rm", name, "--wait")


def test_bad_service_specs_are_refused_with_one_line(stack: Stack) -> None:
    for args, words in [
        (["services", "create", "X_bad", "--image", "x"], "name"),
        (["services", "create", "okname", "--image", "x", "--cpu", "3"], "cpu"),
        (["services", "create", "okname", "--image", "x", "--port", "99999"], "port"),
        (["services", "describe", "nosuchservice"], "nosuchservice"),
    ]:
        done = stack.cli(*args, check=False)
        assert done.returncode == 1, args
        assert words in done.stderr and "Traceback" not in done.stderr
