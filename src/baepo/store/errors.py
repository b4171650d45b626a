"""Errors of the state database.

StoreError
└── StoreUnavailable   the database cannot be opened, migrated, read or written
    └── TargetNotEmpty  `baepo migrate-state` would copy into a database holding rows
"""


class StoreError(Exception):
    pass


class StoreUnavailable(StoreError):
    pass


class TargetNotEmpty(StoreUnavailable):
    pass
