"""Baepo's whole schema: every room's tables, gathered above the rooms.

Each room declares its tables on the store's `Base`; importing them here (and only here, not in
`store/`) completes the metadata that `Database.migrate()` creates or compares against.
"""

from __future__ import annotations

from sqlalchemy import MetaData

import baepo.auth.tables
import baepo.aws.tables
import baepo.control.tables
import baepo.pipelines.tables
import baepo.registry.tables
import baepo.router.shared
import baepo.store.leases  # noqa: F401  (importing declares the tables)
from baepo.store import Base


def schema() -> MetaData:
    """The metadata of every room's tables."""
    return Base.metadata
