"""The control room: services, revisions, operations, and the reconciler that runs them.

`Services` is the facade the API and the CLI call; `Reconciler` is the loop that makes the
engine and the router match the database. The composition root builds both:

    box = SecretBox(load_or_create_secret_key(secrets_dir / "control.key"))
    registry = RegistryLink.of(["127.0.0.1:5000", "localhost:5000"], robot_credentials)
    keeper = LogKeeper(data_dir / "logs", engine, LogLimits(lines=10_000))
    reconciler = Reconciler(db=db, engine=engine, router=router, prober=NetworkProber(),
                            clock=clock, secrets=box, domain=domain, registry=registry,
                            logs=keeper)  # keeper: copies what an instance wrote before removal
    reconciler.subscribe(bus)            # auto-deploy on ImagePushed
    services = Services(db=db, engine=engine, secrets=box, clock=clock, domain=domain,
                        registry=registry, reconciler=reconciler, logs=keeper)
    await reconciler.run()               # until reconciler.stop()

Tables are declared in `baepo.control.tables`; errors in `baepo.control.errors`. The
autoscaler's decision (`Autoscaler`, one per service, fed the router's in-flight and queued
counts) is a pure core in `baepo.control.autoscaling`; `Scaling` holds one per service for the
reconciler (`Reconciler(scaling=...)`), which asks it how many instances each service wants.
"""

from baepo.control.autoscaling import (
    Autoscaler,
    AutoScalingConfiguration,
    InvalidAutoScalingConfiguration,
)
from baepo.control.autoscaling_configurations import AutoScalingConfigurations, ConfigurationView
from baepo.control.callers import ADMIN_OWNER, SYSTEM, Caller
from baepo.control.configuration_refs import DEFAULT_NAME, ConfigurationRef
from baepo.control.errors import (
    ConfigurationInUse,
    ConfigurationNotFound,
    Conflict,
    ControlError,
    ControlUnavailable,
    InvalidLogQuery,
    InvalidServiceSpec,
    InvalidServiceState,
    OperationInProgress,
    OperationNotFound,
    QuotaExceeded,
    RevisionNotFound,
    SecretsUnreadable,
    ServiceExists,
    ServiceNotFound,
    TooManyFollowers,
)
from baepo.control.images import ImageName, RegistryLink
from baepo.control.instances import LABEL_INSTALLATION
from baepo.control.lifecycle import Timing
from baepo.control.logkeeper import KeptLine, LogKeeper, LogLimits
from baepo.control.operations import OperationKind, OperationStatus, ServiceStatus
from baepo.control.planning import Health
from baepo.control.probes import NetworkProber, Prober, ProbeResult
from baepo.control.quotas import Quota
from baepo.control.reconciler import Reconciler
from baepo.control.scaling import Bounds, Scaling
from baepo.control.service_logs import (
    MAX_LOG_LINES,
    LogFollower,
    LogQuery,
    LogSource,
    parse_since,
)
from baepo.control.services import Services
from baepo.control.spec import (
    CPU_MEMORY,
    MASK,
    HealthCheck,
    ServiceSpec,
    SpecChange,
    apply_changes,
    validate_spec,
)
from baepo.control.vault import SecretBox, load_or_create_secret_key
from baepo.control.views import (
    EventView,
    InstanceView,
    LogEntry,
    LogLine,
    OperationView,
    RevisionView,
    ServiceIdentity,
    ServiceView,
)

__all__ = [
    "ADMIN_OWNER",
    "CPU_MEMORY",
    "DEFAULT_NAME",
    "LABEL_INSTALLATION",
    "MASK",
    "MAX_LOG_LINES",
    "SYSTEM",
    "AutoScalingConfiguration",
    "AutoScalingConfigurations",
    "Autoscaler",
    "Bounds",
    "Caller",
    "ConfigurationInUse",
    "ConfigurationNotFound",
    "ConfigurationRef",
    "ConfigurationView",
    "Conflict",
    "ControlError",
    "ControlUnavailable",
    "EventView",
    "Health",
    "HealthCheck",
    "ImageName",
    "InstanceView",
    "InvalidAutoScalingConfiguration",
    "InvalidLogQuery",
    "InvalidServiceSpec",
    "InvalidServiceState",
    "KeptLine",
    "LogEntry",
    "LogFollower",
    "LogKeeper",
    "LogLimits",
    "LogLine",
    "LogQuery",
    "LogSource",
    "NetworkProber",
    "OperationInProgress",
    "OperationKind",
    "OperationNotFound",
    "OperationStatus",
    "OperationView",
    "ProbeResult",
    "Prober",
    "Quota",
    "QuotaExceeded",
    "Reconciler",
    "RegistryLink",
    "RevisionNotFound",
    "RevisionView",
    "Scaling",
    "SecretBox",
    "SecretsUnreadable",
    "ServiceExists",
    "ServiceIdentity",
    "ServiceNotFound",
    "ServiceSpec",
    "ServiceStatus",
    "ServiceView",
    "Services",
    "SpecChange",
    "Timing",
    "TooManyFollowers",
    "apply_changes",
    "load_or_create_secret_key",
    "parse_since",
    "validate_spec",
]
