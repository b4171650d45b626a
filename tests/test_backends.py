"""The test harness's backend switch (tests/backends.py): which flags a `baepo up` gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.backends import POSTGRES_S3, SQLITE_FS, VARIABLE, Backends
from tests.databases import PostgresDatabases
from tests.s3server import S3Server


def flag(flags: tuple[str, ...], name: str) -> str | None:
    return flags[flags.index(name) + 1] if name in flags else None


def test_sqlite_fs_adds_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(VARIABLE, SQLITE_FS)
    backends = Backends()
    assert backends.flags_for(tmp_path / "data", ()) == ()
    assert backends.database_url(tmp_path / "data") == f"sqlite:///{tmp_path / 'data/baepo.db'}"


def test_an_unknown_backend_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(VARIABLE, "mysql-nfs")
    with pytest.raises(pytest.UsageError, match="expected sqlite-fs or postgres-s3"):
        Backends().flags_for(tmp_path / "data", ())


def test_postgres_s3_gives_each_data_directory_a_database_and_a_bucket_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    s3_server: S3Server,
    postgres_databases: PostgresDatabases,
) -> None:
    monkeypatch.setenv(VARIABLE, POSTGRES_S3)
    backends = Backends()
    backends._s3, backends._postgres = s3_server, postgres_databases  # the session's
    try:
        first = backends.flags_for(tmp_path / "a", ("--deploy-timeout", "20"))
        second = backends.flags_for(tmp_path / "b", ())
        assert flag(first, "--storage") == flag(second, "--storage") == "s3"
        assert flag(first, "--s3-bucket") != flag(second, "--s3-bucket")
        assert flag(first, "--database-url") != flag(second, "--database-url")
        assert backends.flags_for(tmp_path / "a", ()) == first  # a restart finds its state
        assert backends.database_url(tmp_path / "a") == flag(first, "--database-url")
        named = backends.flags_for(tmp_path / "c", ("--database-url", "sqlite:///x.db"))
        assert "--database-url" not in named and flag(named, "--storage") == "s3"
        named = backends.flags_for(tmp_path / "d", ("--storage=filesystem",))
        assert "--storage" not in named and "--database-url" in named
    finally:
        backends.close()  # drops its databases; the session's server and PostgreSQL stay
