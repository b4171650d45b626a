"""The log keeper: what instances wrote, kept after their containers are gone.

The engine keeps a container's output only as long as the container, and the reconciler
removes an instance's container once it has exited or been stopped. Just before it does (and
as soon as the engine reports that one died), the keeper copies the output it has not kept
yet into the service's kept log: "why did it crash?" keeps an answer after the instance is
gone. The live instances' output is read from the engine (`service_logs.py`).

On disk, under the data directory, a directory per service and files of JSON lines:

    logs/                               0700
      <service>/                        the service's name
        00000041.log                    0600, the oldest segment still kept
        00000042.log
        00000043.log
        00000044.log                    the segment being written
          {"at": "2026-12-02T09:22:27.123456+00:00", "instance": "app-2-1f2e3d",
           "revision": 2, "stream": "stderr", "text": "panic: out of cheese"}

Bounds, per service: at most `LogLimits.lines` lines and `LogLimits.bytes` bytes on disk
(10,000 lines or 10 MiB by default, whichever comes first), in `SEGMENTS` segments of a
quarter of that each. When the segment being written is full a new one begins and the oldest
is deleted, so between three quarters of the bound and all of it is kept, and the disk never
holds more (a line may overshoot a segment's bytes only when it alone is larger than one).
A line is cut at `MAX_LINE` characters. The directory of a service that no longer exists is
deleted (`retain`); a new service of the same name reads only what was kept after it was
made (the facade asks from its creation on).

Why files and not rows: a chatty app writes thousands of lines a second. As rows they would
queue with every operation and registry write for SQLite's one writer, and grow the database
that backups copy. A segment costs one append per copy, and bounding it one file's deletion.

Copies do not repeat themselves: for each instance the keeper knows the time of its last kept
line and how many it kept with that very time (read from the files once per service and
process, then kept up to date). A copy asks the engine for what was written from that time
on, which answers in order, so of the lines with that time the first so many are kept
already: the others, and the later lines, are new. Counting matters: Podman stamps lines to
the second only. A copy may be asked twice, even at once (the engine's "died", then the
removal): the second finds nothing new. Safe from any thread; a failure (the engine, a full
disk) is logged and costs only the copy, never the removal.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections import deque
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from baepo.control.instances import revision_of
from baepo.runtime import (
    LABEL_INSTANCE,
    LABEL_REVISION,
    LABEL_SERVICE,
    ContainerNotFound,
    Engine,
    EngineError,
    EngineEvent,
    OutputSource,
)

log = logging.getLogger(__name__)

SEGMENTS = 4
MAX_LINE = 16 * 1024
"""Characters of one line kept (the engines split longer lines at 16 KiB anyway)."""
_SUFFIX = ".log"


@dataclass(frozen=True)
class LogLimits:
    """What one service keeps at most, on disk."""

    lines: int = 10_000
    bytes: int = 10 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.lines < SEGMENTS or self.bytes < SEGMENTS * 1024:
            raise ValueError(
                f"kept logs need at least {SEGMENTS} lines and {SEGMENTS} KiB per service"
            )

    @property
    def segment_lines(self) -> int:
        return self.lines // SEGMENTS

    @property
    def segment_bytes(self) -> int:
        return self.bytes // SEGMENTS


@dataclass(frozen=True)
class KeptLine:
    at: datetime
    instance: str
    revision: int | None
    stream: OutputSource
    text: str


@dataclass(frozen=True)
class _Last:
    """An instance's last kept line: its time, how many kept lines have that time, and the
    segment it is in."""

    at: datetime
    count: int
    segment: int

    def after(self, line: KeptLine, segment: int) -> _Last:
        """What is known once `line` (not before this one) is kept in `segment`."""
        return _Last(line.at, self.count + 1 if line.at == self.at else 1, segment)


@dataclass
class _Files:
    """What the keeper knows of one service's files (read once, then kept up to date)."""

    segments: list[int]
    """Sequence numbers, oldest first; the last is being written."""
    lines: int = 0
    bytes: int = 0
    """Of the segment being written."""
    last: dict[str, _Last] = field(default_factory=dict)
    """Instance → its last kept line."""


class LogKeeper:
    def __init__(self, root: Path, engine: Engine, limits: LogLimits | None = None) -> None:
        self.root = root
        self.limits = limits or LogLimits()
        self._engine = engine
        self._lock = threading.Lock()
        self._files: dict[str, _Files] = {}

    # -- copying --------------------------------------------------------------------------

    def capture(
        self, container_id: str, service: str, instance: str, revision: int | None = None
    ) -> int:
        """Copy what the container wrote and is not kept yet; the number of lines kept.
        `revision` defaults to the one the instance id names."""
        if not _safe(service) or not instance:
            return 0
        if revision is None:
            revision = revision_of(service, instance)
        with self._lock:
            last = self._load(service).last.get(instance)
        since = last.at if last else None
        lines: deque[KeptLine] = deque()
        size = 0
        try:
            stream = self._engine.output(container_id, since=since, tail=self.limits.lines)
            try:
                for line in stream:
                    if since is not None and line.at < since:
                        continue
                    kept = KeptLine(line.at, instance, revision, line.stream, line.text[:MAX_LINE])
                    lines.append(kept)
                    size += len(kept.text)
                    while len(lines) > self.limits.lines or size > self.limits.bytes:
                        size -= len(lines.popleft().text)
            finally:
                stream.close()
        except ContainerNotFound:
            pass  # removed by someone else first: nothing left to copy
        except EngineError as exc:
            log.warning("cannot copy the output of %s (%s): %s", instance, container_id[:12], exc)
        return self._append(service, instance, lines) if lines else 0

    def capture_died(self, event: EngineEvent) -> int:
        """`capture` for an engine's "died" event of an instance (its labels say whose)."""
        labels = event.labels
        if event.action != "die" or LABEL_SERVICE not in labels:
            return 0
        revision = labels.get(LABEL_REVISION, "")
        return self.capture(
            event.instance_id,
            labels[LABEL_SERVICE],
            labels.get(LABEL_INSTANCE, ""),
            int(revision) if revision.isdigit() else None,
        )

    # -- reading --------------------------------------------------------------------------

    def kept(self, service: str, since: datetime | None = None) -> list[KeptLine]:
        """The service's kept lines written at or after `since`, in the order they were kept
        (by instance, each in time order: sort by `at` to interleave them)."""
        if not _safe(service):
            return []
        with self._lock:
            segments = list(self._load(service).segments)
        found: list[KeptLine] = []
        for number in segments:
            for line in self._read(self._segment(service, number)):
                if since is None or line.at >= since:
                    found.append(line)
        return found

    def kept_until(self, service: str) -> dict[str, datetime]:
        """Instance → the time of its last kept line: the engine's lines of an instance
        up to then are kept already."""
        if not _safe(service):
            return {}
        with self._lock:
            return {name: last.at for name, last in self._load(service).last.items()}

    # -- bounds ---------------------------------------------------------------------------

    def retain(self, services: Collection[str]) -> None:
        """Delete the kept logs of every service not in `services` (those that are gone)."""
        try:
            present = [p.name for p in self.root.iterdir() if p.is_dir()]
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("cannot list kept logs in %s: %s", self.root, exc)
            return
        for name in present:
            if name in services:
                continue
            with self._lock:
                self._files.pop(name, None)
                try:
                    shutil.rmtree(self.root / name)
                except OSError as exc:
                    log.warning("cannot delete the kept logs of %s: %s", name, exc)
                    continue
            log.info("deleted the kept logs of %s: the service is gone", name)

    # -- files ----------------------------------------------------------------------------

    def _append(self, service: str, instance: str, lines: Iterable[KeptLine]) -> int:
        """Keep those of `lines` (the instance's, in order, from its last kept line's time on)
        that are not kept yet, also by a copy made meanwhile (the "died" event's and the
        removal's may run at once); how many were kept."""
        with self._lock:
            files = self._load(service)
            last = files.last.get(instance)
            new: list[KeptLine] = []
            seen = 0  # of the lines with the last kept line's time
            for line in lines:
                if last is not None and line.at <= last.at:
                    if line.at < last.at:
                        continue
                    seen += 1
                    if seen <= last.count:
                        continue
                new.append(line)
            try:
                self._write(service, files, new)
            except OSError as exc:
                log.warning("cannot keep the output of %s's instances: %s", service, exc)
                self._files.pop(service, None)  # read the files again next time
                return 0
            return len(new)

    def _write(self, service: str, files: _Files, lines: Iterable[KeptLine]) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.root / service).mkdir(mode=0o700, exist_ok=True)
        batch: list[bytes] = []

        def flush() -> None:
            if not batch:
                return
            path = self._segment(service, files.segments[-1])
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "ab") as out:
                out.write(b"".join(batch))
            batch.clear()

        for line in lines:
            data = _encode(line)
            full = files.lines >= self.limits.segment_lines or (
                files.bytes + len(data) > self.limits.segment_bytes
            )
            if full and files.lines:
                flush()
                self._rotate(service, files)
            batch.append(data)
            files.lines += 1
            files.bytes += len(data)
            before = files.last.get(line.instance)
            files.last[line.instance] = (
                before.after(line, files.segments[-1])
                if before is not None
                else _Last(line.at, 1, files.segments[-1])
            )
        flush()

    def _rotate(self, service: str, files: _Files) -> None:
        """Begin a new segment; past `SEGMENTS`, delete the oldest."""
        files.segments.append(files.segments[-1] + 1)
        files.lines = files.bytes = 0
        while len(files.segments) > SEGMENTS:
            oldest = files.segments.pop(0)
            self._segment(service, oldest).unlink(missing_ok=True)
            for instance in [i for i, last in files.last.items() if last.segment <= oldest]:
                del files.last[instance]

    def _load(self, service: str) -> _Files:
        """The service's files as the keeper knows them (read from disk the first time)."""
        files = self._files.get(service)
        if files is not None:
            return files
        numbers = []
        try:
            for path in (self.root / service).iterdir():
                stem = path.name.removesuffix(_SUFFIX)
                if path.name.endswith(_SUFFIX) and stem.isdigit():
                    numbers.append(int(stem))
        except FileNotFoundError:
            pass
        files = _Files(segments=sorted(numbers) or [1])
        for number in files.segments:
            for line in self._read(self._segment(service, number)):
                before = files.last.get(line.instance)
                if before is None or line.at > before.at:
                    files.last[line.instance] = _Last(line.at, 1, number)
                elif line.at == before.at:
                    files.last[line.instance] = before.after(line, number)
                if number == files.segments[-1]:
                    files.lines += 1
        try:
            files.bytes = self._segment(service, files.segments[-1]).stat().st_size
        except FileNotFoundError:
            files.bytes = 0
        self._files[service] = files
        return files

    def _segment(self, service: str, number: int) -> Path:
        return self.root / service / f"{number:08d}{_SUFFIX}"

    def _read(self, path: Path) -> Iterator[KeptLine]:
        """The lines of one segment; a line cut short (a crash mid-write) is skipped."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # deleted by a rotation meanwhile
            return
        for raw in data.splitlines():
            line = _decode(raw)
            if line is not None:
                yield line


def _safe(service: str) -> bool:
    """Whether `service` can name a directory (service names are DNS labels)."""
    return bool(service) and "/" not in service and not service.startswith(".")


def _encode(line: KeptLine) -> bytes:
    record = {
        "at": line.at.isoformat(),
        "instance": line.instance,
        "revision": line.revision,
        "stream": line.stream,
        "text": line.text,
    }
    return json.dumps(record, ensure_ascii=False).encode() + b"\n"


def _decode(raw: bytes) -> KeptLine | None:
    try:
        record: Any = json.loads(raw)
        at = datetime.fromisoformat(record["at"])
        revision = record.get("revision")
        return KeptLine(
            at=at,
            instance=str(record["instance"]),
            revision=revision if isinstance(revision, int) else None,
            stream="stderr" if record.get("stream") == "stderr" else "stdout",
            text=str(record.get("text", "")),
        )
    except (ValueError, KeyError, TypeError):
        return None
