"""`baepo up`: its flags as the `Config` the server is run with (there `baepo.server.run` is
replaced by one that keeps the config), and a run with an engine that does not answer."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import baepo.server
from baepo.cli.main import app
from baepo.config import Config
from baepo.runtime import DockerEngine, SwarmEngine
from tests.conftest import running
from tests.fakes.socket_engine import Request, SocketEngine


def config_of(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *flags: str) -> Config:
    given: list[Config] = []
    monkeypatch.setattr(baepo.server, "run", given.append)
    done = CliRunner().invoke(app, ["up", "--data-dir", str(tmp_path / "data"), *flags])
    assert done.exit_code == 0, done.output
    [config] = given
    return config


def test_webhooks_fetch_from_public_addresses_only_unless_told(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert config_of(monkeypatch, tmp_path).webhook_private_sources is False
    flagged = config_of(monkeypatch, tmp_path, "--webhook-private-sources")
    assert flagged.webhook_private_sources is True


def test_a_swarm_edge_image_runs_services_on_the_swarm_pulling_from_the_given_host(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    alone = config_of(monkeypatch, tmp_path, "--port", "5001")
    assert isinstance(baepo.server.runtime_engine(alone), DockerEngine)
    assert alone.pull_address == "127.0.0.1:5001"

    flags = ["--port", "5001", "--swarm-edge-image", "edge:1", "--registry-pull-host", "10.0.0.5"]
    nodes = ["--swarm-node-engine", "n2=tcp://10.0.0.6:2375", "--swarm-node-engine", "n3=unix:///s"]
    swarm = config_of(monkeypatch, tmp_path, *flags, *nodes)

    assert isinstance(baepo.server.runtime_engine(swarm), SwarmEngine)
    assert swarm.pull_address == "10.0.0.5:5001"
    assert swarm.swarm_node_engines == (("n2", "tcp://10.0.0.6:2375"), ("n3", "unix:///s"))
    assert config_of(monkeypatch, tmp_path, "--registry-pull-host", "r:443").pull_address == "r:443"
    wrong = CliRunner().invoke(app, ["up", "--swarm-node-engine", "n2"])
    assert wrong.exit_code == 2 and "is not HOSTNAME=URL" in wrong.output


def hang_up(request: Request, connection: socket.socket) -> None:
    """No answer: the connection is closed as soon as the request is read."""


@pytest.mark.integration
def test_an_engine_that_does_not_answer_is_told_once(tmp_path: Path) -> None:
    with (
        SocketEngine(tmp_path / "engine.sock", hang_up) as engine,
        running(tmp_path / "data", "--docker-host", engine.url) as server,
    ):
        deadline = time.monotonic() + 120
        while sum(p.endswith("/containers/json") for p in engine.paths()) < 8:  # failed passes
            assert time.monotonic() < deadline, engine.paths()
            time.sleep(0.2)
        said = server.log()
    warnings = [line for line in said.splitlines() if " WARNING " in line]
    listing = [line for line in warnings if "reconciler: cannot list containers" in line]
    assert len(listing) == 1, "\n".join(warnings)
    assert "does not answer" in listing[0] and listing[0].count("cannot list") == 1
    assert len(warnings) <= 3, "\n".join(warnings)  # listing, events, metrics: each once
