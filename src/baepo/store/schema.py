"""Every room's tables, imported in one place so the schema is complete."""

from __future__ import annotations


def load_tables() -> None:
    import baepo.auth.tables
    import baepo.control.tables
    import baepo.registry.tables  # noqa: F401
