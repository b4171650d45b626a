"""`baepo up`'s flags as the `Config` the server is run with (the server itself is not started:
`baepo.server.run` is replaced by one that keeps the config)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import baepo.server
from baepo.cli.main import app
from baepo.config import Config


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
