"""Errors of the state database.

StoreError
└── StoreUnavailable   the database cannot be opened or migrated
"""


class StoreError(Exception):
    pass


class StoreUnavailable(StoreError):
    pass
