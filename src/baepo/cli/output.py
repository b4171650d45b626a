"""Tables for people, JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

console = Console(soft_wrap=True)
error_console = Console(stderr=True, soft_wrap=True)


def emit(rows: Any, columns: Sequence[str], as_json: bool, title: str | None = None) -> None:
    """`rows` as JSON, or a table of `columns`: drawn to the terminal's width on a terminal,
    else plain with whole values (a pipe has no width to cut them to)."""
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    items = rows if isinstance(rows, list) else [rows]
    header = [column.upper().replace("_", " ") for column in columns]
    cells = [[_cell(item.get(c)) for c in columns] for item in items]
    if not console.is_terminal:
        _plain(header, cells, title)
        return
    table = Table(title=title, show_edge=False, header_style="bold")
    for name in header:
        table.add_column(name)
    for row in cells:
        table.add_row(*row)
    console.print(table)


def _plain(header: list[str], rows: list[list[str]], title: str | None) -> None:
    """Columns two spaces apart, each as wide as its widest value, one line per row: what
    `grep` and `awk '{print $1}'` read."""
    lines = [header] + [[" ".join(cell.splitlines()) for cell in row] for row in rows]
    widths = [max(cell_len(cell) for cell in column) for column in zip(*lines, strict=True)]
    if title:
        print(title)
    for line in lines:
        padded = (
            cell + " " * (width - cell_len(cell)) for cell, width in zip(line, widths, strict=True)
        )
        print("  ".join(padded).rstrip())


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
