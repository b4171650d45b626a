"""The router room: Baepo's data plane (HAProxy driven through its runtime API) and TLS.

Other rooms use `Router` (implemented by `HAProxyRouter`, faked by `MemoryRouter`), the
routing-table types, and `LocalCA` for the certificate users trust. Custom domains get
certificates from an ACME server: `CertificateBroker` over `LocalCA` and `AcmeIssuer`, whose
http-01 challenges a `ChallengeResponder` answers. `RouterSupervisor` starts HAProxy again
when it dies.
"""

from baepo.router.acme import AcmeIssuer, AcmeSettings, CertificateBroker
from baepo.router.certificates import CertificateSource, IssuedCertificate, LocalCA
from baepo.router.challenges import ChallengeResponder, ChallengeStore
from baepo.router.configuration import RouterSettings, render_config, render_map
from baepo.router.errors import (
    CertificateError,
    CommandFailed,
    ConfigInvalid,
    HAProxyUnavailable,
    InvalidRoute,
    ReloadFailed,
    RouterError,
    ServerBusy,
    UnknownServer,
    UnknownService,
)
from baepo.router.haproxy import HAProxyRouter
from baepo.router.interface import Router, ServerStats, ServiceStats
from baepo.router.memory import MemoryRouter
from baepo.router.process import running_haproxy
from baepo.router.supervision import RouterSupervisor
from baepo.router.table import (
    DEFAULT_MAX_CONCURRENCY,
    RoutingTable,
    Server,
    ServerState,
    Service,
)

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "AcmeIssuer",
    "AcmeSettings",
    "CertificateBroker",
    "CertificateError",
    "CertificateSource",
    "ChallengeResponder",
    "ChallengeStore",
    "CommandFailed",
    "ConfigInvalid",
    "HAProxyRouter",
    "HAProxyUnavailable",
    "InvalidRoute",
    "IssuedCertificate",
    "LocalCA",
    "MemoryRouter",
    "ReloadFailed",
    "Router",
    "RouterError",
    "RouterSettings",
    "RouterSupervisor",
    "RoutingTable",
    "Server",
    "ServerBusy",
    "ServerState",
    "ServerStats",
    "Service",
    "ServiceStats",
    "UnknownServer",
    "UnknownService",
    "render_config",
    "render_map",
    "running_haproxy",
]
