"""A commit's tree, as a run gets it: a tar (`git archive`'s) unpacked into the run's workspace.

The tar comes from whoever pushed, so it is unpacked as untrusted input: members are regular
files, directories and symbolic links only (devices, fifos and hard links are refused), no
path leaves the workspace (absolute, `..`, or through a link unpacked earlier), no mode keeps
set-id bits, and the whole is bounded in members and bytes.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from baepo.pipelines.errors import RunFailed

MAX_MEMBERS = 100_000
MAX_BYTES = 2 << 30
MAX_FILE_BYTES = 1 << 20


def unpack(tar: Path, workspace: Path) -> None:
    """Unpack `tar` into the directory `workspace` (made if missing); `RunFailed` naming the
    first member that cannot be unpacked safely."""
    workspace.mkdir(parents=True, exist_ok=True)
    root = workspace.resolve()
    total = 0
    try:
        with tarfile.open(tar, "r:*") as archive:
            for count, member in enumerate(archive, start=1):
                if count > MAX_MEMBERS:
                    raise RunFailed(f"the source has more than {MAX_MEMBERS} files")
                if member.type in (tarfile.XGLTYPE, tarfile.XHDTYPE):
                    continue  # git archive's pax header (the commit id)
                total += max(0, member.size)
                if total > MAX_BYTES:
                    raise RunFailed(f"the source is larger than {MAX_BYTES >> 20} MiB")
                _check(member, root)
                member.mode &= 0o777
                member.uid = member.gid = os.getuid()
                archive.extract(member, root, set_attrs=not member.issym())
    except (tarfile.TarError, OSError) as exc:
        raise RunFailed(f"cannot unpack the source: {exc}") from exc


def _check(member: tarfile.TarInfo, root: Path) -> None:
    name = member.name
    if not (member.isfile() or member.isdir() or member.issym()):
        raise RunFailed(f"the source holds {name!r}, which is not a file, directory or link")
    parts = Path(name).parts
    if not parts or Path(name).is_absolute() or ".." in parts:
        raise RunFailed(f"the source holds {name!r}, a path outside its tree")
    # Where it lands, links unpacked before it followed: still inside the workspace?
    parent = (root / name).parent.resolve()
    if parent != root and root not in parent.parents:
        raise RunFailed(f"the source holds {name!r}, below a link that leaves its tree")
    if (root / name).is_symlink():  # a file written over a link would be written through it
        raise RunFailed(f"the source holds {name!r} twice")


def read_text(workspace: Path, name: str, limit: int = MAX_FILE_BYTES) -> str | None:
    """The file `name` of the unpacked tree as text, None if there is none; a link that
    leaves the tree, a file too large or not UTF-8 is `RunFailed`."""
    root = workspace.resolve()
    path = workspace / name
    if not path.exists() and not path.is_symlink():
        return None
    real = path.resolve()
    if root not in real.parents or not real.is_file():
        raise RunFailed(f"{name} is not a file of the repository")
    try:
        data = real.read_bytes()[: limit + 1]
    except OSError as exc:
        raise RunFailed(f"cannot read {name}: {exc}") from exc
    if len(data) > limit:
        raise RunFailed(f"{name} is larger than {limit >> 10} KiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RunFailed(f"{name} is not UTF-8 text: {exc}") from exc


def holds_file(workspace: Path, name: str) -> bool:
    """Whether the tree has a regular file `name` (not a link leaving it)."""
    path = workspace / name
    real = path.resolve()
    return real.is_file() and workspace.resolve() in real.parents
