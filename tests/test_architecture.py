"""The shape of the house, read from the source: Baepo's modules import one another without
cycles, the lower rooms never reach up into a domain room, and every silenced type error says why.

Every import counts, wherever it is written (inside a function, under `TYPE_CHECKING`): a cycle
hidden from the interpreter is still a cycle for the reader.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
LOWER_ROOMS = ("store", "storage", "runtime", "router")
DOMAIN_ROOMS = (
    "auth",
    "control",
    "metrics",
    "pipelines",
    "registry",
    "aws",
    "api",
    "cli",
    "server",
    "schema",
)


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted((SRC / "baepo").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The Baepo modules that `name` imports (a package means its `__init__`)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*up, base] if base else up)
            for alias in node.names:
                if f"{base}.{alias.name}" in known:
                    found.add(f"{base}.{alias.name}")
                elif base in known:
                    found.add(base)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_module_imports_itself_back() -> None:
    assert cycles(import_graph()) == []


def test_the_lower_rooms_never_import_a_domain_room() -> None:
    upward = [
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        if room(module) in LOWER_ROOMS
        for target in sorted(targets)
        if room(target) in DOMAIN_ROOMS
    ]
    assert upward == []


def test_the_aws_room_stays_below_the_http_edge() -> None:
    """The AWS endpoint speaks for the domain rooms; the HTTP edge routes to it, never the
    other way round."""
    upward = [
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        if room(module) == "aws"
        for target in sorted(targets)
        if room(target) in ("api", "cli", "server")
    ]
    assert upward == []


CONSOLE_MAY_IMPORT = ("baepo.console", "baepo.service_fields", "baepo.references")
"""The console reaches Baepo through the HTTP API only: besides itself, plain data that
imports nothing of Baepo's (the service fields' table, the image-reference grammar)."""


def test_the_console_reaches_baepo_through_the_api_only() -> None:
    reached = {
        target
        for module, targets in import_graph().items()
        if room(module) == "console"
        for target in targets
    }
    assert reached, "no console found"
    assert {t for t in reached if not t.startswith(CONSOLE_MAY_IMPORT)} == set()


def test_the_room_graph_has_no_cycle() -> None:
    rooms: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        rooms.setdefault(room(module), set()).update(
            room(t) for t in targets if room(t) != room(module)
        )
    assert cycles(rooms) == []


IGNORE = re.compile(r"#\s*type:\s*ignore(\[[^\]]*\])?(?P<rest>.*)$")


def test_every_silenced_type_error_says_why() -> None:
    bare = []
    for path in sorted((SRC / "baepo").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            found = IGNORE.search(line)
            if found and not re.search(r"#\s*\S", found.group("rest")):
                bare.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert bare == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}}, [["a", "b", "c"]]),
    ],
)
def test_the_cycle_finder_finds_cycles(
    graph: dict[str, set[str]], expected: list[list[str]]
) -> None:
    assert cycles(graph) == expected


def test_the_import_reader_sees_imports_inside_functions_and_type_checking(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from baepo.registry import service\n"
        "def f():\n    import baepo.store.database\n    from . import gc\n"
    )
    known = {name: module for name in ("baepo.registry.service", "baepo.store.database")}
    known |= {"baepo.registry.gc": module, "baepo.registry.m": module, "baepo.registry": module}
    assert imports_of("baepo.registry.m", module, known) == {
        "baepo.registry.service",
        "baepo.store.database",
        "baepo.registry.gc",
    }
