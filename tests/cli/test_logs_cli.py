"""`baepo services logs`: how lines print, and how a follow reads Server-Sent Events and goes
on after the server ends one (without a server: the client's stream is scripted)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from baepo.cli import services
from baepo.cli.client import Client, CliError


def sse(*events: tuple[str, dict[str, Any]]) -> list[str]:
    lines = [": keep-alive", ""]
    for kind, data in events:
        if kind != "message":
            lines.append(f"event: {kind}")
        lines += [f"id: {data.get('at', '')}", f"data: {json.dumps(data)}", ""]
    return lines


def line(at: str, text: str, **fields: Any) -> dict[str, Any]:
    entry = {"at": at, "source": "application", "stream": "stdout", "instance": "app-1-aaaaaa"}
    return {**entry, "revision": 1, "text": text, "operation": None, **fields}


class ScriptedClient(Client):
    def __init__(self, *streams: list[str]) -> None:
        super().__init__(url="http://baepo.test", token=None)
        self.streams = list(streams)
        self.asked: list[dict[str, str]] = []

    def lines(
        self, path: str, params: Mapping[str, str], headers: Mapping[str, str]
    ) -> Iterator[str]:
        assert headers["Accept"] == "text/event-stream"
        self.asked.append(dict(params))
        yield from self.streams.pop(0)


def test_server_sent_events_are_read_as_entries() -> None:
    stream = sse(("message", line("t1", "a")), ("end", {"reason": "r", "since": "t2"}))
    stream.insert(4, 'data: {"continued": ')  # a data field over two lines is one message
    got = list(services._server_sent(sse(("message", line("t1", "a")))))
    assert got == [("message", line("t1", "a"))]
    ended = list(services._server_sent(sse(("end", {"reason": "r", "since": "t2"}))))
    assert ended == [("end", {"reason": "r", "since": "t2"})]
    with pytest.raises(CliError, match="unexpected event"):
        list(services._server_sent(["data: not json", ""]))


def test_a_follow_goes_on_after_the_server_ends_it(capsys: pytest.CaptureFixture[str]) -> None:
    first = line("2026-12-02T09:00:00.100000Z", "one")
    second = line("2026-12-02T09:00:01.200000Z", "two", stream="stderr")
    third = line("2026-12-02T09:00:02.300000Z", "three")
    client = ScriptedClient(
        sse(("message", first), ("message", second), ("end", {"since": "2026-12-02T09:00:01Z"})),
        sse(("message", second), ("message", third)),  # `two` again: at or after `since`
    )

    with pytest.raises(CliError, match="ended the stream"):
        services._follow_logs(client, "/p", {"source": "application", "limit": "5"}, False)

    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "2026-12-02 09:00:00.100  app-1-aaaaaa  one",
        "2026-12-02 09:00:01.200  app-1-aaaaaa !  two",
        "2026-12-02 09:00:02.300  app-1-aaaaaa  three",
    ]
    assert client.asked[0] == {"source": "application", "limit": "5", "follow": "true"}
    assert client.asked[1]["since"] == "2026-12-02T09:00:01Z"
    assert client.asked[1]["limit"] == "10000"


def test_event_log_lines_name_their_operation_or_kind(capsys: pytest.CaptureFixture[str]) -> None:
    services._print_entries(
        [
            line("2026-12-02T09:00:00Z", "CREATE_SERVICE requested", source="events",
                 stream="operation", instance="", operation="0123456789abcdef"),
            line("2026-12-02T09:00:01Z", "instance x exited with code 3", source="events",
                 stream="crashed"),
        ],
        as_json=False,
    )  # fmt: skip
    services._print_entries([line("2026-12-02T09:00:02Z", "x")], as_json=True)

    out = capsys.readouterr().out.splitlines()
    assert out[0] == "2026-12-02 09:00:00.000  operation 01234567  CREATE_SERVICE requested"
    assert out[1] == "2026-12-02 09:00:01.000  crashed  instance x exited with code 3"
    assert json.loads(out[2])["text"] == "x"
