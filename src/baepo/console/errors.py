"""Errors of the console.

    ConsoleError
    └── ApiRefused      the API answered with an error: its status, stable code, message and
                        bad fields (`401`: the session's token is no more, sign in again)

The console shows an `ApiRefused` as the API worded it: beside the form field it names, on the
page of the action that was refused, or as a page of its own (a service that is not there, or
not the caller's, is the API's `404`).
"""

from __future__ import annotations

from collections.abc import Sequence


class ConsoleError(Exception):
    pass


class ApiRefused(ConsoleError):
    def __init__(
        self, status: int, code: str, message: str, fields: Sequence[tuple[str, str]] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = tuple(fields)
        """`(field, reason)` for each bad field of the request, as the API names them."""
