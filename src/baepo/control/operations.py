"""Operations: every change to a service is one, asynchronous, with an id, a status and a log.

Kinds (App Runner's operation types, plus Baepo's rollback):

    CREATE_SERVICE     pull the image, pin revision 1, start it, route to it
    UPDATE_SERVICE     new configuration; a new revision when instances must change
    START_DEPLOYMENT   pull the tracked tag again (or a given image): a new revision
    ROLLBACK_SERVICE   serve an earlier revision again (revisions are immutable)
    PAUSE_SERVICE      stop every instance; the URL answers with a "paused" page
    RESUME_SERVICE     start the last active revision again
    DELETE_SERVICE     stop and remove every instance and the route

State machine of one operation:

                 begin (the reconciler picks it up:                converged (instances of the
                 pulls, pins the revision, sets the                target revision healthy and
                 service's desired state)                          routed, old ones drained and
    PENDING ────────────────────────────▶ IN_PROGRESS ──────────▶ SUCCEEDED   removed)
       │                                      │
       │ cancelled (the service is            │ the image cannot be pulled; the new revision
       │ being deleted)                       │ is not healthy by the deadline, or crashes
       │                                      │ while starting; the deadline passes
       ▼                                      ▼
     FAILED ◀─────────────────────────────── FAILED

- One operation per service is IN_PROGRESS at a time; requests made meanwhile are refused
  (`OperationInProgress`), except auto-deploys, which wait as PENDING (a newer push replaces a
  waiting one), and delete, which cancels whatever waits or runs.
- The status lives in the database, so it survives a restart of Baepo: the new reconciler finds
  the IN_PROGRESS operation and its deadline, observes what runs, and carries on. An operation
  therefore always ends SUCCEEDED or FAILED, never stuck.
- A FAILED operation puts the desired state back as it was: a failed deploy leaves the previous
  revision serving (it was never drained: traffic moves only once the new one is healthy).
- ROLLBACK_IN_PROGRESS, ROLLBACK_SUCCEEDED and ROLLBACK_FAILED are App Runner's statuses for a
  deploy undone after traffic moved. Baepo never moves traffic before the new revision is
  healthy, so it has nothing to undo and never produces them; they exist so that clients written
  for App Runner accept every status Baepo can send.

Each operation keeps a log of timestamped lines (what was pulled, started, found healthy,
routed, drained, stopped; on failure the new instances' last log lines), newest last.
"""

from __future__ import annotations

from enum import StrEnum


class OperationKind(StrEnum):
    CREATE_SERVICE = "CREATE_SERVICE"
    UPDATE_SERVICE = "UPDATE_SERVICE"
    START_DEPLOYMENT = "START_DEPLOYMENT"
    ROLLBACK_SERVICE = "ROLLBACK_SERVICE"
    PAUSE_SERVICE = "PAUSE_SERVICE"
    RESUME_SERVICE = "RESUME_SERVICE"
    DELETE_SERVICE = "DELETE_SERVICE"

    @property
    def deploys(self) -> bool:
        """Whether it ends with a revision serving (and so waits for health checks)."""
        return self in _DEPLOYING


_DEPLOYING = frozenset(
    {
        OperationKind.CREATE_SERVICE,
        OperationKind.UPDATE_SERVICE,
        OperationKind.START_DEPLOYMENT,
        OperationKind.ROLLBACK_SERVICE,
        OperationKind.RESUME_SERVICE,
    }
)


class OperationStatus(StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    ROLLBACK_IN_PROGRESS = "ROLLBACK_IN_PROGRESS"
    ROLLBACK_SUCCEEDED = "ROLLBACK_SUCCEEDED"
    ROLLBACK_FAILED = "ROLLBACK_FAILED"

    @property
    def finished(self) -> bool:
        return self in _FINISHED


_FINISHED = frozenset(
    {
        OperationStatus.SUCCEEDED,
        OperationStatus.FAILED,
        OperationStatus.ROLLBACK_SUCCEEDED,
        OperationStatus.ROLLBACK_FAILED,
    }
)

_MOVES: dict[OperationStatus, frozenset[OperationStatus]] = {
    OperationStatus.PENDING: frozenset({OperationStatus.IN_PROGRESS, OperationStatus.FAILED}),
    OperationStatus.IN_PROGRESS: frozenset({OperationStatus.SUCCEEDED, OperationStatus.FAILED}),
}


def can_move(current: OperationStatus, new: OperationStatus) -> bool:
    """Whether the state machine above allows `current` → `new`."""
    return new in _MOVES.get(current, frozenset())


class ServiceStatus(StrEnum):
    """App Runner's service statuses."""

    RUNNING = "RUNNING"
    OPERATION_IN_PROGRESS = "OPERATION_IN_PROGRESS"
    PAUSED = "PAUSED"
    CREATE_FAILED = "CREATE_FAILED"
    DELETE_FAILED = "DELETE_FAILED"
    DELETED = "DELETED"
