"""Pipelines: a service's git remote, webhooks, the pipeline file, and the runs that test,
build, push and deploy a commit (see DESIGN.md's room table).

The composition root builds the runs' part:

    settings = Settings(db=db, secrets=box, services=services, clock=clock)
    runner = Runner(engine=engine, builder=builder, services=services,
                    deploy_branch=settings.deploy_branch, clock=clock, registry=link,
                    may_pull=owner_may_pull(auth, registry), base_images=images,
                    installation=box.fingerprint)
    runs = Runs(db=db, services=services, runner=runner, clock=clock,
                directory=config.pipelines_dir, workers=config.pipeline_workers)
    runs.start()        # at startup, in a thread: fails the runs a restart cut short

Errors are in `baepo.pipelines.errors`; the tables in `baepo.pipelines.tables`.
"""

from baepo.pipelines.errors import (
    AppRunnerConfigError,
    FetchFailed,
    InvalidPipelineSettings,
    InvalidWebhookPayload,
    PipelineError,
    PipelineSpecError,
    PipelinesUnavailable,
    RunFinished,
    RunNotFound,
    SourceMissing,
    WebhookRejected,
)
from baepo.pipelines.run_logs import MAX_LOG_BYTES, STAGE, RunLogFollower
from baepo.pipelines.runner import LABEL_RUN, LABEL_STEP, ImageBuilder, Runner
from baepo.pipelines.runs import (
    MAX_LIST,
    TRIGGERS,
    Outcome,
    Runs,
    RunStatus,
    RunView,
    StepStatus,
    StepView,
)
from baepo.pipelines.settings import PipelineSettings, Settings

__all__ = [
    "LABEL_RUN",
    "LABEL_STEP",
    "MAX_LIST",
    "MAX_LOG_BYTES",
    "STAGE",
    "TRIGGERS",
    "AppRunnerConfigError",
    "FetchFailed",
    "ImageBuilder",
    "InvalidPipelineSettings",
    "InvalidWebhookPayload",
    "Outcome",
    "PipelineError",
    "PipelineSettings",
    "PipelineSpecError",
    "PipelinesUnavailable",
    "RunFinished",
    "RunLogFollower",
    "RunNotFound",
    "RunStatus",
    "RunView",
    "Runner",
    "Runs",
    "Settings",
    "SourceMissing",
    "StepStatus",
    "StepView",
    "WebhookRejected",
]
