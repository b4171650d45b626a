"""A service's recent metrics in the terminal: one row per series, with a sparkline.

    app: 1h, a point a minute, 14:05 to 15:04 UTC (the last minute is under way)
    SERIES       LAST       MAX  1h
    requests      120       340  ▁▁▂▃▅▇█▇▅▃▂▁
    p95 ms       38.2      91.0  ▂▂▂▃▃▇█▅▃▂▂▂
    memory   48.2 MiB  49.0 MiB  ▇▇▇▇▇██▇▇▇▇▇

LAST is the last complete minute's value (the minute under way when it is the only one), MAX
the window's; a gap (nothing measured) is a blank in the sparkline and `-` in a column. A
window longer than the sparkline is wide (60 columns) shows each column as the mean of the
minutes it covers. On a terminal the table is Rich's; piped, plain aligned text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.table import Table

from baepo.cli.output import console, human_bytes

BARS = "▁▂▃▄▅▆▇█"
WIDTH = 60

Value = float | None


def _count(v: float) -> str:
    return f"{v:.0f}"


def _mean(v: float) -> str:
    return f"{v:.1f}"


def _ms(v: float) -> str:
    return f"{v:.1f}"


def _percent(v: float) -> str:
    return f"{v:.1f} %"


def _bytes(v: float) -> str:
    return human_bytes(int(v))


ROWS: tuple[tuple[str, str, Callable[[float], str]], ...] = (
    ("requests", "requests", _count),
    ("http_2xx", "2xx", _count),
    ("http_4xx", "4xx", _count),
    ("http_5xx", "5xx", _count),
    ("p50_ms", "p50 ms", _ms),
    ("p95_ms", "p95 ms", _ms),
    ("p99_ms", "p99 ms", _ms),
    ("in_flight", "in flight", _mean),
    ("queued", "queued", _mean),
    ("instances", "instances", _count),
    ("cpu_percent", "cpu", _percent),
    ("memory_bytes", "memory", _bytes),
)
"""(series, label, format) in the order shown."""


def columns(values: Sequence[Value], width: int = WIDTH) -> list[Value]:
    """`values` in at most `width` columns, each the mean of the values it covers."""
    if len(values) <= width:
        return list(values)
    found: list[Value] = []
    for i in range(width):
        part = values[i * len(values) // width : (i + 1) * len(values) // width]
        known = [v for v in part if v is not None]
        found.append(sum(known) / len(known) if known else None)
    return found


def sparkline(values: Sequence[Value], width: int = WIDTH) -> str:
    shown = columns(values, width)
    known = [v for v in shown if v is not None]
    if not known:
        return " " * len(shown)
    low, high = min(known), max(known)
    span = high - low

    def bar(v: Value) -> str:
        if v is None:
            return " "
        if span == 0:
            return BARS[0] if high == 0 else BARS[len(BARS) // 2]
        return BARS[min(len(BARS) - 1, math.floor((v - low) / span * len(BARS)))]

    return "".join(bar(v) for v in shown)


def last(values: Sequence[Value]) -> Value:
    """The last complete minute's value: the minute under way (the last) only if it is all."""
    complete = values[:-1] if len(values) > 1 else values
    for v in reversed(complete):
        if v is not None:
            return v
    return None


def rows(series: Mapping[str, Sequence[Value]]) -> list[tuple[str, str, str, str]]:
    """(label, last, max, sparkline) per series."""
    found = []
    for key, label, fmt in ROWS:
        values = series.get(key, [])
        known = [v for v in values if v is not None]
        at_last = last(values)
        found.append(
            (
                label,
                "-" if at_last is None else fmt(at_last),
                fmt(max(known)) if known else "-",
                sparkline(values),
            )
        )
    return found


def title(body: Mapping[str, Any]) -> str:
    minutes = [datetime.fromisoformat(m) for m in body.get("minutes", [])]
    if not minutes:
        return f"{body['service']}: no metrics yet in the last {body['window']}"
    return (
        f"{body['service']}: {body['window']}, a point a minute, "
        f"{minutes[0]:%H:%M} to {minutes[-1]:%H:%M} UTC (the last minute is under way)"
    )


def show(body: Mapping[str, Any]) -> None:
    """Print a `GET /api/v1/services/{name}/metrics` answer."""
    heading = ("SERIES", "LAST", "MAX", body["window"])
    table = rows(body["series"])
    if console.is_terminal:
        rich = Table(title=title(body), show_edge=False, header_style="bold", title_justify="left")
        for i, name in enumerate(heading):
            rich.add_column(name, justify="right" if i in (1, 2) else "left", no_wrap=True)
        for row in table:
            rich.add_row(*row)
        console.print(rich)
        return
    widths = [max(len(r[i]) for r in [heading, *table]) for i in range(3)]
    print(title(body))
    for row in [heading, *table]:
        label, at_last, top, line = row
        print(f"{label:<{widths[0]}}  {at_last:>{widths[1]}}  {top:>{widths[2]}}  {line}".rstrip())
