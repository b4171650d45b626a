"""Errors of the control room (services, revisions, operations).

    ControlError
    ├── InvalidServiceSpec     a service spec or change is malformed (`.field`, `.problems`:
    │                          every bad field with its reason; nothing was stored)
    ├── ServiceNotFound        no live service of that name
    ├── ServiceExists          a live service already has that name
    ├── RevisionNotFound       the service has no revision of that number
    ├── OperationNotFound      no operation with that id
    ├── ConfigurationNotFound  no autoscaling configuration (revision) of that name the caller
    │                          reaches
    ├── Conflict               the request clashes with the service's current state
    │   ├── OperationInProgress    another operation of the service is pending or in progress
    │   ├── ConfigurationInUse     an autoscaling configuration a live service uses (delete)
    │   └── InvalidServiceState    not possible in this status (resume a running service,
    │                              deploy a deleted one, pause a paused one)
    ├── QuotaExceeded          the owner has as many services, or instances, as a user may
    ├── InvalidLogQuery        a logs filter that means nothing (`--since yesterday`)
    ├── TooManyFollowers       as many logs are followed at once as Baepo allows; retry later
    ├── SecretsUnreadable      the secrets key is missing or does not open a stored secret
    └── ControlUnavailable     the state database cannot be reached; retry later

Foreign errors are mapped where the room touches them: SQLAlchemy's in `records.session` (the
facades' sessions) and the runtime's and router's in `reconciler.py` (and `containers.py`, for
the stops that run in the background), where they become lines of an operation's log rather
than exceptions, since the loop retries on its next pass.
"""

from __future__ import annotations

from collections.abc import Sequence


class ControlError(Exception):
    pass


class InvalidServiceSpec(ControlError):
    """`problems` lists `(field, reason)` for every bad field; `field` is the first one."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems: tuple[tuple[str, str], ...] = tuple(problems)
        self.field = self.problems[0][0] if self.problems else ""
        super().__init__("; ".join(f"{field}: {reason}" for field, reason in self.problems))


class ServiceNotFound(ControlError):
    pass


class ServiceExists(ControlError):
    pass


class RevisionNotFound(ControlError):
    pass


class OperationNotFound(ControlError):
    pass


class ConfigurationNotFound(ControlError):
    pass


class QuotaExceeded(ControlError):
    pass


class InvalidLogQuery(ControlError):
    pass


class TooManyFollowers(ControlError):
    pass


class Conflict(ControlError):
    pass


class OperationInProgress(Conflict):
    """Another operation must end first; `operation_id` names it."""

    def __init__(self, message: str, operation_id: str = "") -> None:
        super().__init__(message)
        self.operation_id = operation_id


class ConfigurationInUse(Conflict):
    pass


class InvalidServiceState(Conflict):
    pass


class SecretsUnreadable(ControlError):
    pass


class ControlUnavailable(ControlError):
    pass
