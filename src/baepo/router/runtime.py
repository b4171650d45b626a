"""HAProxy's runtime API: the worker's stats socket and the master CLI, and their parsers.

Both are unix sockets speaking lines: one connection per command in non-interactive mode (we
send the command, half-close, and read to EOF). A payload (`set ssl cert <file> <<`) follows
the command line and ends with an empty line. The worker answers on the stats socket; the
master CLI (`-S <socket>`) adds `show proc`, `reload`, and `@!<pid> <command>` to reach a
worker by pid, including old workers still finishing requests after a reload.

OSError on a socket becomes `HAProxyUnavailable`; an answer that is not the documented success
becomes `CommandFailed` (or `ServerBusy`). Parsing is pure and tested on recorded output.
"""

from __future__ import annotations

import csv
import io
import socket
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from baepo.router.errors import CommandFailed, HAProxyUnavailable, ServerBusy, UnknownServer

Check = Callable[[str], bool]


def _empty(out: str) -> bool:
    return out.strip() == ""


def _any(out: str) -> bool:
    return True


def _csv(out: str) -> bool:
    return out.startswith("# pxname")


def _not_error(out: str) -> bool:
    return not out.startswith(("Unknown", "No such", "Missing", "Permission"))


class RuntimeSocket:
    """One unix socket of HAProxy's CLI."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout

    def send(self, command: str, payload: str | None = None) -> str:
        if "\n" in command or ";" in command:
            raise CommandFailed(command, "a runtime command is one line without ';'")
        data = command + "\n"
        if payload is not None:
            data = f"{command} <<\n{payload.strip()}\n\n"
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(str(self.path))
                sock.sendall(data.encode())
                sock.shutdown(socket.SHUT_WR)
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise HAProxyUnavailable(f"HAProxy socket {self.path}: {exc}") from exc
        return b"".join(chunks).decode(errors="replace")

    def run(self, command: str, ok: Check = _empty, payload: str | None = None) -> str:
        out = self.send(command, payload)
        if not ok(out):
            if out.startswith("No such server") or out.startswith("No such backend"):
                raise UnknownServer(f"{command!r}: {out.strip()}")
            raise CommandFailed(command, out)
        return out

    def available(self) -> bool:
        try:
            self.send("show info")
        except HAProxyUnavailable:
            return False
        return True


class WorkerAPI:
    """Typed commands of the current worker's stats socket (admin level)."""

    def __init__(self, sock: RuntimeSocket) -> None:
        self.sock = sock

    def add_server(self, backend: str, line: str) -> None:
        self.sock.run(f"add server {backend}/{line}", lambda o: "New server registered" in o)

    def enable_server(self, backend: str, server: str) -> None:
        self.sock.run(f"enable server {backend}/{server}")

    def enable_health(self, backend: str, server: str) -> None:
        """Start the checks of a server added at runtime (`add server` leaves them off)."""
        self.sock.run(f"enable health {backend}/{server}")

    def set_server_state(self, backend: str, server: str, state: str) -> None:
        self.sock.run(f"set server {backend}/{server} state {state}")

    def set_server_maxconn(self, backend: str, server: str, maxconn: int) -> None:
        self.sock.run(f"set maxconn server {backend}/{server} {maxconn}")

    def del_server(self, backend: str, server: str) -> None:
        command = f"del server {backend}/{server}"
        out = self.sock.send(command)
        if "Server deleted" in out:
            return
        if "still has connections" in out or "in use" in out or "queue" in out:
            raise ServerBusy(command, out)
        if out.startswith("No such"):
            raise UnknownServer(f"{command!r}: {out.strip()}")
        raise CommandFailed(command, out)

    def stats(self, backend: str | None = None) -> list[dict[str, str]]:
        """`show stat` rows (proxies and servers), keyed by the CSV header's field names."""
        out = self.sock.run(f"show stat {backend or '-1'} -1 -1", _csv)
        return parse_stat_csv(out, STAT_FIELDS)

    def servers_state(self) -> str:
        """`show servers state`, verbatim: the format of `server-state-file`."""
        return self.sock.run("show servers state", lambda o: o.startswith("1\n"))

    def show_map(self, map_path: Path) -> dict[str, str]:
        return parse_show_map(self.sock.run(f"show map {map_path}", _not_error))

    def add_map(self, map_path: Path, key: str, value: str) -> None:
        self.sock.run(f"add map {map_path} {key} {value}")

    def set_map(self, map_path: Path, key: str, value: str) -> None:
        self.sock.run(f"set map {map_path} {key} {value}")

    def del_map(self, map_path: Path, key: str) -> None:
        self.sock.run(f"del map {map_path} {key}", lambda o: _empty(o) or "not found" in o)

    def ssl_certs(self) -> set[str]:
        out = self.sock.run("show ssl cert", lambda o: o.startswith("# filename"))
        return {line.strip() for line in out.splitlines()[1:] if line.strip()}

    def new_ssl_cert(self, path: Path) -> None:
        self.sock.run(f"new ssl cert {path}", lambda o: "New empty certificate store" in o)

    def set_ssl_cert(self, path: Path, pem: str) -> None:
        self.sock.run(f"set ssl cert {path}", lambda o: "ransaction" in o, payload=pem)

    def commit_ssl_cert(self, path: Path) -> None:
        self.sock.run(f"commit ssl cert {path}", lambda o: "Success!" in o)

    def add_crt_list(self, crt_list: Path, path: Path) -> None:
        self.sock.run(f"add ssl crt-list {crt_list} {path}", lambda o: "Success!" in o)

    def del_crt_list(self, crt_list: Path, path: Path) -> None:
        self.sock.run(f"del ssl crt-list {crt_list} {path}", lambda o: "deleted" in o)

    def del_ssl_cert(self, path: Path) -> None:
        self.sock.run(f"del ssl cert {path}", lambda o: "deleted" in o)


@dataclass(frozen=True)
class ProcessList:
    """The master's `show proc`: its reload counters and the pids of its workers."""

    master: int
    reloads: int
    failed_reloads: int
    workers: list[int] = field(default_factory=list)
    old_workers: list[int] = field(default_factory=list)


class MasterCLI:
    def __init__(self, sock: RuntimeSocket) -> None:
        self.sock = sock

    def processes(self) -> ProcessList:
        return parse_show_proc(self.sock.run("show proc", lambda o: o.startswith("#<PID>")))

    def reload(self) -> None:
        self.sock.send("reload")  # the master closes the connection as it re-executes

    def on_worker(self, pid: int, command: str, ok: Check = _any) -> str:
        return self.sock.run(f"@!{pid} {command}", ok)

    def stats_of(self, pid: int, backend: str | None = None) -> list[dict[str, str]]:
        out = self.on_worker(pid, f"show stat {backend or '-1'} -1 -1", _csv)
        return parse_stat_csv(out, STAT_FIELDS)


STAT_FIELDS = frozenset(
    {
        "pxname", "svname", "type", "addr", "status", "scur", "qcur", "stot", "slim",
        "hrsp_2xx", "hrsp_4xx", "hrsp_5xx", "check_status", "check_desc",
    }
)  # fmt: skip
"""The columns of `show stat` Baepo reads (of about a hundred): a sampler reads every server's
row each second, and building a dict of every column was most of its cost."""


def parse_stat_csv(text: str, fields: Collection[str] | None = None) -> list[dict[str, str]]:
    """Rows of `show stat` (CSV, header line starting with '# '), keyed by the header's names;
    only `fields` when given."""
    text = text.strip()
    if not text.startswith("# "):
        return []
    reader = csv.reader(io.StringIO(text[2:]))
    header = next(reader, [])
    picked = [(i, n) for i, n in enumerate(header) if n and (fields is None or n in fields)]
    if "pxname" not in header:
        return []
    proxy = header.index("pxname")
    return [
        {name: row[i] for i, name in picked if i < len(row)}
        for row in reader
        if len(row) > proxy and row[proxy]
    ]


def parse_show_map(text: str) -> dict[str, str]:
    """`show map` lines are `<ref> <key> <value>`."""
    entries: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0].startswith("0x"):
            entries[parts[1]] = parts[2]
    return entries


def parse_show_proc(text: str) -> ProcessList:
    master, reloads, failed = 0, 0, 0
    workers: list[int] = []
    old: list[int] = []
    section = ""
    for line in text.splitlines():
        if line.startswith("# "):
            section = line[2:].strip()
            continue
        parts = line.split()
        if not parts or not parts[0].isdigit():
            continue
        pid = int(parts[0])
        if parts[1] == "master":
            master, reloads = pid, int(parts[2])
            if "[failed:" in line:
                failed = int(line.split("[failed:")[1].split("]")[0])
        elif section == "workers":
            workers.append(pid)
        elif section == "old workers":
            old.append(pid)
    return ProcessList(master, reloads, failed, workers, old)
