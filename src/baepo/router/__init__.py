"""The router room: Baepo's data plane (HAProxy driven through its runtime API) and TLS.

Other rooms use `Router`, one service's `Route` at a time (`get`, `put`, `remove`; implemented
by `HAProxyRouter`, faked in the tests), and a `CertificateAuthority` for the certificate users
trust. The composition root owns the `HAProxyRouter`: it starts and stops it and renews its
certificates. The local CA (`LocalCA`) signs in a child process, `SigningChild`, so that the
server never loads `cryptography` for it. Custom domains get certificates from an ACME server:
`CertificateBroker` over the local CA and `AcmeIssuer`, whose http-01 challenges a
`ChallengeResponder` answers.
`RouterSupervisor` starts HAProxy again when it dies.
"""

from baepo.router.access_log import AccessRecord, parse_access_record
from baepo.router.acme import AcmeIssuer, AcmeSettings, CertificateBroker
from baepo.router.certificates import (
    CertificateAuthority,
    CertificateSource,
    IssuedCertificate,
    LocalCA,
)
from baepo.router.challenges import ChallengeResponder, ChallengeStore
from baepo.router.configuration import ACTIVATE_PATH, RouterSettings, render_config, render_map
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
from baepo.router.interface import Router, RouteState, ServerHealth
from baepo.router.process import running_haproxy
from baepo.router.shared import SharedRouter
from baepo.router.signing import SigningChild
from baepo.router.stats import ServerStats, ServiceStats
from baepo.router.supervision import RouterSupervisor
from baepo.router.table import (
    DEFAULT_MAX_CONCURRENCY,
    Check,
    Route,
    RoutingTable,
    Server,
    ServerState,
)

__all__ = [
    "ACTIVATE_PATH",
    "DEFAULT_MAX_CONCURRENCY",
    "AccessRecord",
    "AcmeIssuer",
    "AcmeSettings",
    "CertificateAuthority",
    "CertificateBroker",
    "CertificateError",
    "CertificateSource",
    "ChallengeResponder",
    "ChallengeStore",
    "Check",
    "CommandFailed",
    "ConfigInvalid",
    "HAProxyRouter",
    "HAProxyUnavailable",
    "InvalidRoute",
    "IssuedCertificate",
    "LocalCA",
    "ReloadFailed",
    "Route",
    "RouteState",
    "Router",
    "RouterError",
    "RouterSettings",
    "RouterSupervisor",
    "RoutingTable",
    "Server",
    "ServerBusy",
    "ServerHealth",
    "ServerState",
    "ServerStats",
    "ServiceStats",
    "SharedRouter",
    "SigningChild",
    "UnknownServer",
    "UnknownService",
    "parse_access_record",
    "render_config",
    "render_map",
    "running_haproxy",
]
