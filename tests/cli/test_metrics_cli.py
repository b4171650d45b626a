"""`baepo services metrics`: a row per series with its last and largest values and a sparkline;
gaps stay blank, long windows are squeezed to the sparkline's width, pipes get plain text."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from baepo.cli import sparklines
from baepo.cli.client import Client
from baepo.cli.main import app


def body(**series: list[float | None]) -> dict[str, Any]:
    count = max((len(v) for v in series.values()), default=0)
    return {
        "service": "app",
        "window": "1h",
        "step_seconds": 60,
        "minutes": [f"2026-12-02T14:{m:02d}:00Z" for m in range(count)],
        "series": series,
    }


def test_a_sparkline_spans_lowest_to_highest_with_gaps_blank() -> None:
    assert sparklines.sparkline([0, 1, 2, 3, 4, 5, 6, 7, None, 7]) == "▁▂▃▄▅▆▇█ █"
    assert sparklines.sparkline([5, 5, None]) == "▅▅ "
    assert sparklines.sparkline([0, 0]) == "▁▁"
    assert sparklines.sparkline([None, None]) == "  "
    assert sparklines.sparkline([]) == ""


def test_a_long_window_is_squeezed_to_the_width_by_means() -> None:
    day: list[float | None] = [float(i // 24) + i % 2 for i in range(1440)]
    shown = sparklines.columns(day)
    assert len(shown) == 60
    assert shown[:2] == [0.5, 1.5] and shown[-1] == 59.5  # 24 minutes a column, their mean
    assert len(sparklines.sparkline(day)) == 60
    assert sparklines.columns([None, None, 1.0, 3.0], width=2) == [None, 2.0]


def test_last_is_the_last_complete_minute() -> None:
    assert sparklines.last([1, 2, 9]) == 2  # 9: the minute under way
    assert sparklines.last([1, None, 9]) == 1
    assert sparklines.last([9]) == 9
    assert sparklines.last([]) is None


def test_piped_output_is_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    sparklines.show(
        body(
            requests=[10, 30, 20, 5],
            p95_ms=[12.25, None, 40.0, None],
            memory_bytes=[50 << 20, 52 << 20, 51 << 20, 51 << 20],
            cpu_percent=[None, None, None, None],
        )
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "app: 1h, a point a minute, 14:00 to 14:03 UTC (the last minute is under way)"
    rows = {line.split("  ")[0].strip(): line for line in out[2:]}
    assert out[1].split() == ["SERIES", "LAST", "MAX", "1h"]
    assert rows["requests"].split()[1:3] == ["20", "30"]
    assert rows["requests"].endswith("▂█▅▁")
    assert rows["p95 ms"].split()[2:4] == ["40.0", "40.0"]
    assert "51.0 MiB" in rows["memory"] and "52.0 MiB" in rows["memory"]
    assert rows["cpu"].split()[1:] == ["-", "-"]
    assert "\x1b[" not in "".join(out)


def test_the_command_asks_for_the_window_and_prints_json_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[tuple[str, dict[str, str]]] = []

    class Answering(Client):
        def get(self, path: str, **kwargs: Any) -> Any:
            asked.append((path, kwargs["params"]))
            return body(requests=[1, 2])

    monkeypatch.setattr(
        Client, "from_environment", classmethod(lambda cls: Answering("http://x", None))
    )
    runner = CliRunner()
    done = runner.invoke(app, ["services", "metrics", "my app", "--window", "6h"])
    assert done.exit_code == 0, done.output
    assert "requests" in done.output and "SERIES" in done.output
    assert asked == [("/api/v1/services/my%20app/metrics", {"window": "6h"})]
    as_json = runner.invoke(app, ["services", "metrics", "app", "--json"])
    assert '"step_seconds": 60' in as_json.output
