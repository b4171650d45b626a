"""What an app can reach from its instance: not Baepo's API (it listens on loopback, and the
app's loopback is its own), not the engine socket (never mounted), not another service's
instances (each service has its own network); the router reaches both."""

from __future__ import annotations

import os
import secrets
import shlex

import pytest

from baepo.runtime import DockerEngine
from tests.e2e.conftest import Stack
from tests.runtime.waiting import eventually

pytestmark = pytest.mark.integration

PROBE = "; ".join(
    [
        "gw=$(ip route | awk '/^default/ {{print $3}}')",
        'try() {{ if nc -w 2 "$1" "$2" </dev/null 2>/dev/null; then echo "REACHED $3";'
        ' else echo "refused $3"; fi; }}',
        'try "$gw" {api_port} api-via-gateway',
        "try 127.0.0.1 {api_port} api-on-loopback",
        "try {other} other-service",
        "for s in /var/run/docker.sock /run/docker.sock /run/baepo-engine/docker.sock;"
        ' do if [ -e "$s" ]; then echo "REACHED socket $s"; else echo "no socket $s"; fi; done',
        "echo probe-done",
        "exec /bin/serve",
    ]
)


def test_an_app_reaches_neither_the_api_nor_the_engine_nor_other_services(
    stack: Stack,
) -> None:
    other, prober = f"other-{secrets.token_hex(2)}", f"prober-{secrets.token_hex(2)}"
    image = stack.push("baepo-test/hello:1", f"team/{other}:1")
    stack.cli("services", "create", other, "--image", image, "--wait")
    engine = DockerEngine(os.environ["DOCKER_HOST"])
    try:
        (target,) = [i for i in engine.list({"baepo.service": other}) if i.running]
        assert target.address is not None
        host, _, port = target.address.rpartition(":")
        script = PROBE.format(api_port=stack.baepo.port, other=f"{host} {port}")
        stack.cli(
            "services", "create", prober, "--image", image, "--command",
            f"sh -c {shlex.quote(script)}",
            "--wait",
        )  # fmt: skip
        (instance,) = [i for i in engine.list({"baepo.service": prober}) if i.running]
        logs = eventually(
            lambda: text if "probe-done" in (text := engine.logs(instance.id)) else None,
            what="the probe's report",
        )
    finally:
        engine.close()
    print(logs)
    assert "REACHED" not in logs
    for what in ("api-via-gateway", "api-on-loopback", "other-service"):
        assert f"refused {what}" in logs
    assert "hello v1" in stack.https(f"{other}.localhost").text
    assert "hello v1" in stack.https(f"{prober}.localhost").text
    for name in (other, prober):
        stack.cli("services", "rm", name, "--wait")
