"""Errors of the pipelines room (git remote, webhooks, the pipeline file, runs).

    PipelineError
    ├── RunNotFound              no run with that id the caller reaches (another's answers the
    │                            same, so that its id discloses nothing)
    ├── RunFinished              cancel of a run that has ended already
    ├── SourceMissing            a re-run whose source (the commit's tree) is no longer kept
    ├── InvalidPipelineSettings  a deploy branch or source URL that is no such thing (`.field`)
    ├── PipelineSpecError        baepo.yaml is malformed; the message names the field
    ├── AppRunnerConfigError     apprunner.yaml is malformed or names an unknown runtime
    ├── WebhookRejected          a webhook without a valid signature (or for no such service)
    ├── InvalidWebhookPayload    a correctly signed webhook whose body is not a push event
    ├── FetchFailed              a webhook's commit could not be fetched from its git URL
    └── PipelinesUnavailable     the state database or the room's directory cannot be used

A run that fails is not an exception to its caller: it is a run whose status is FAILED and
whose message says why (a step's exit code, the build's error, the deploy's outcome). Inside
the runner `RunFailed` carries that message to the one place that records it.

Foreign errors are mapped where the room touches them: SQLAlchemy's in `runs.py` and
`settings.py` (`PipelinesUnavailable`), the engine's and the control room's in `runner.py`
(they end a run FAILED with their words).
"""

from __future__ import annotations


class PipelineError(Exception):
    pass


class RunNotFound(PipelineError):
    pass


class RunFinished(PipelineError):
    pass


class SourceMissing(PipelineError):
    pass


class InvalidPipelineSettings(PipelineError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


class PipelineSpecError(PipelineError):
    pass


class AppRunnerConfigError(PipelineError):
    pass


class WebhookRejected(PipelineError):
    pass


class InvalidWebhookPayload(PipelineError):
    pass


class FetchFailed(PipelineError):
    pass


class PipelinesUnavailable(PipelineError):
    pass


class RunFailed(Exception):
    """Inside the runner: the run ends FAILED with this message (never leaves the room)."""


class RunCancelled(Exception):
    """Inside the runner: someone cancelled the run; it ends CANCELLED."""
