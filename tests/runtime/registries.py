"""CNCF distribution (`docker-registry`, apt docker-registry) with htpasswd auth, for the tests
that pull from a real registry with credentials."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.components import missing
from tests.runtime.waiting import eventually, http_get


@dataclass(frozen=True)
class Registry:
    host: str
    credentials: tuple[str, str]


@contextmanager
def distribution(root: Path, address: str) -> Iterator[Registry]:
    """`docker-registry serve` on `address` (`ip:port`), its files under `root`, for the
    block; one user, robot:s3cret."""
    binary = shutil.which("docker-registry")
    if binary is None:
        missing("docker-registry is not installed (apt install docker-registry)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt
        except ImportError:
            missing("no crypt module to write a bcrypt htpasswd")
        # bcrypt cost 4, not 12: docker push checks the password on every request.
        hashed = crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    (root / "htpasswd").write_text(f"robot:{hashed}\n")
    (root / "config.yml").write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}}}\n"
        f"http: {{addr: {address}}}\n"
        f"auth: {{htpasswd: {{realm: test, path: {root / 'htpasswd'}}}}}\n"
    )
    with (root / "registry.log").open("wb") as log:
        process = subprocess.Popen(
            [binary, "serve", str(root / "config.yml")], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            eventually(
                lambda: True if http_get(f"http://{address}/v2/") is not None else None,
                what="docker-registry answers",
            )
            yield Registry(address, ("robot", "s3cret"))
        finally:
            process.terminate()
            process.wait(timeout=10)
