"""Errors of the router room (the data plane).

    RouterError
    ├── InvalidRoute          a service, server, hostname or address HAProxy cannot carry
    ├── UnknownService        no such service in the routing table
    ├── UnknownServer         no such server in a service's backend
    ├── HAProxyUnavailable    HAProxy cannot be started, found or reached on its sockets
    ├── ConfigInvalid         `haproxy -c` rejected a rendered configuration (`.output` holds why)
    ├── ReloadFailed          the master did not bring up a worker with the new configuration
    ├── CommandFailed         the runtime API refused a command (`.command`, `.output`)
    │   └── ServerBusy        `del server` refused: the server still has connections or a queue
    └── CertificateError      the local CA or a certificate cannot be created, read or installed

Foreign errors (OSError from sockets and files, subprocess failures, `cryptography` errors) are
mapped to these once, where the room touches them (`runtime.py`, `process.py`,
`certificates.py`), with `raise ... from exc`.
"""

from __future__ import annotations


class RouterError(Exception):
    pass


class InvalidRoute(RouterError):
    pass


class UnknownService(RouterError):
    pass


class UnknownServer(RouterError):
    pass


class HAProxyUnavailable(RouterError):
    pass


class ConfigInvalid(RouterError):
    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class ReloadFailed(RouterError):
    pass


class CommandFailed(RouterError):
    def __init__(self, command: str, output: str) -> None:
        super().__init__(f"HAProxy refused {command!r}: {output.strip() or '(no output)'}")
        self.command = command
        self.output = output


class ServerBusy(CommandFailed):
    pass


class CertificateError(RouterError):
    pass
