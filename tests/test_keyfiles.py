from pathlib import Path

from baepo.keyfiles import load_or_create, write_private


def test_a_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "key"
    calls = []

    def make() -> bytes:
        calls.append(1)
        return b"secret"

    assert load_or_create(path, make) == b"secret"
    assert load_or_create(path, make) == b"secret"
    assert calls == [1]
    assert path.stat().st_mode & 0o777 == 0o600


def test_write_private_replaces_atomically_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "cert.pem"
    write_private(path, b"old")
    write_private(path, b"new", mode=0o644)
    assert path.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["cert.pem"]
