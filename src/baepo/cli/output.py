"""Tables for people, JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(soft_wrap=True)
error_console = Console(stderr=True, soft_wrap=True)


def emit(rows: Any, columns: Sequence[str], as_json: bool, title: str | None = None) -> None:
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    items = rows if isinstance(rows, list) else [rows]
    table = Table(title=title, show_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column.upper().replace("_", " "))
    for item in items:
        table.add_row(*(_cell(item.get(c)) for c in columns))
    console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
