"""Errors of the pipelines room.

    PipelineError
    ├── PipelineSpecError       baepo.yaml is malformed; the message names the field
    │                           (`steps[1].timeout: ...`), or a step's dependency does not run
    │                           on the branch being run
    ├── AppRunnerConfigError    apprunner.yaml is malformed or names a runtime Baepo cannot build
    ├── WebhookRejected         a webhook whose signature (or token) does not check, or that
    │                           came for a service that has no webhook (one answer for both)
    ├── InvalidWebhookPayload   a correctly signed webhook whose body is not the provider's push
    │                           event (not JSON, fields missing)
    ├── FetchFailed             a commit could not be fetched from its git URL (refused URL,
    │                           unreachable, no such commit, too big, too slow)
    └── PipelinesUnavailable    the state database cannot be used now; retry later

The parsers (`spec.py`, `apprunner.py`, `webhooks.py`) are pure and raise only these; YAML's
and JSON's own errors are mapped where they are read. `fetch.py` maps the git client's failures
and OS errors to `FetchFailed` with the first line git printed; `deliveries.py` SQLAlchemy's
to `PipelinesUnavailable`.
"""

from __future__ import annotations


class PipelineError(Exception):
    pass


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
