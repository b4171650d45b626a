"""SIGTERM ends Baepo within its shutdown budget whatever is under way: an engine that stopped
answering in the middle of calls (the reconciler's pass, the event watcher, a create) holds
nothing up, and the last-resort exit is not what ends it."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import running

pytestmark = pytest.mark.integration


class HungEngine:
    """A unix socket that accepts connections, reads what is sent, and never answers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.accepted = 0
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(64)
        self._open: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            self._open.append(conn)  # held open, never read to the end, never answered

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for conn in self._open:
            conn.close()


@contextlib.contextmanager
def hung_engine(path: Path) -> Iterator[HungEngine]:
    engine = HungEngine(path)
    try:
        yield engine
    finally:
        engine.close()


def test_a_hung_engine_does_not_hold_up_a_stop(tmp_path: Path) -> None:
    with (
        hung_engine(tmp_path / "engine.sock") as engine,
        running(tmp_path / "data", "--docker-host", f"unix://{engine.path}") as baepo,
    ):
        with baepo.api() as api:
            created = api.post("/api/v1/services", json={"name": "stuck", "image": "t/app:1"})
            assert created.status_code == 202, created.text
        deadline = time.monotonic() + 30
        while engine.accepted < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert engine.accepted >= 1, "Baepo never called the engine: nothing is under way"
        # `stop()` sends SIGTERM and kills after 20 s: 0 means it ended on its own.
        assert baepo.stop() == 0
        log = baepo.log()
    assert "Application shutdown failed" not in log
    assert "exiting with work under way" not in log, log[-3000:]
    assert "stopped" in log
