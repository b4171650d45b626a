"""Small files that must never be half-written or readable by others: keys, tokens,
certificates. Every room that keeps one writes it through here."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write `path` atomically and durably: a reader sees the old content or the new, never
    half; the file is created with `mode` (owner-only by default) before any byte lands."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_or_create(path: Path, make: Callable[[], bytes]) -> bytes:
    """The bytes in `path`; on first use `make()` them and keep them (0600), so a key
    survives restarts. Raises OSError when the file can be neither read nor created."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    data = make()
    write_private(path, data)
    return data
