"""A service's metrics (`GET /api/v1/services/{name}/metrics`) as charts drawn on the server:
inline SVG paths, no script and no chart library, each with its words for a screen reader
(what it shows, the latest and highest values). Pure functions over the API's JSON.

A chart is a box `WIDTH` x `HEIGHT` the page stretches; a series is one path, broken where the
API has no value (`null`: nothing was measured that minute). The top of the box is the highest
value shown, rounded up to a round number, and the bottom is 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

WIDTH = 600
HEIGHT = 160
WINDOWS = ("1h", "6h", "24h")
"""The spans a person may pick (the API keeps a day)."""


@dataclass(frozen=True)
class Line:
    label: str
    path: str
    """The SVG path's `d`: `M x,y L x,y …`, a new `M` after each gap."""
    latest: float | None
    highest: float | None


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    unit: str
    lines: tuple[Line, ...]
    top: float
    """The value at the top of the box."""
    grid: tuple[float, ...]
    """The y of each horizontal rule (a quarter of `top` apart)."""

    @property
    def empty(self) -> bool:
        return all(line.highest is None for line in self.lines)

    @property
    def description(self) -> str:
        """The chart in words: each line's latest and highest value."""
        if self.empty:
            return f"{self.title}: nothing measured yet."
        parts = [
            f"{line.label}: latest {number(line.latest)}, highest {number(line.highest)}"
            for line in self.lines
        ]
        return f"{self.title} ({self.unit}). " + "; ".join(parts) + "."


CHARTS: tuple[tuple[str, str, str, tuple[tuple[str, str], ...]], ...] = (
    ("requests", "Requests", "per minute", (("requests", "requests"),)),
    ("latency", "Latency", "ms", (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99"))),
    ("errors", "Errors", "per minute", (("http_4xx", "4xx"), ("http_5xx", "5xx"))),
    ("instances", "Instances", "serving", (("instances", "instances"),)),
)
"""(key, title, unit, ((series, label), …)) of each chart, in page order."""


def number(value: float | None) -> str:
    if value is None:
        return "none"
    return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:.2g}"


def nice_top(highest: float) -> float:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten that is at least `highest`."""
    if highest <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(highest))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= highest)


def path(values: Sequence[float | None], top: float) -> str:
    """The SVG path of `values` across the box, 0 at the bottom and `top` at the top. A value
    between two gaps is a dot (a line to itself, drawn with a round cap)."""
    step = WIDTH / max(len(values) - 1, 1)
    runs: list[list[str]] = [[]]
    for index, value in enumerate(values):
        if value is None:
            runs.append([])
            continue
        y = HEIGHT - min(value, top) / top * HEIGHT
        runs[-1].append(f"{index * step:.1f},{y:.1f}")
    return " ".join(f"M{run[0]} L" + " L".join(run[1:] or run) for run in runs if run)


def charts(metrics: Mapping[str, Any]) -> list[Chart]:
    """The page's charts from the API's answer."""
    series: Mapping[str, Sequence[float | None]] = metrics.get("series") or {}
    made = []
    for key, title, unit, shown in CHARTS:
        picked = [(label, list(series.get(name) or ())) for name, label in shown]
        measured = [v for _, values in picked for v in values if v is not None]
        top = nice_top(max(measured, default=0.0))
        lines = tuple(
            Line(
                label,
                path(values, top),
                next((v for v in reversed(values) if v is not None), None),
                max((v for v in values if v is not None), default=None),
            )
            for label, values in picked
        )
        grid = tuple(HEIGHT * quarter / 4 for quarter in range(1, 4))
        made.append(Chart(key, title, unit, lines, top, grid))
    return made


def requests_per_second(metrics: Mapping[str, Any]) -> float | None:
    """Requests a second over the last complete minute (the last point is the minute under
    way); None when nothing was measured then."""
    requests = (metrics.get("series") or {}).get("requests") or []
    if len(requests) < 2 or requests[-2] is None:
        return None
    return float(requests[-2]) / 60
