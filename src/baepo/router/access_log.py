"""HAProxy's per-request log, sent to Baepo as one datagram per request: what request
latencies are measured from.

The HTTPS frontend (every service's requests) logs each request, at its end, to a unix datagram
socket in the run directory (`access.sock`), which Baepo binds and reads:

    log unix@<run_dir>/access.sock len 1024 format raw local1 info
    log-format "%b %ST %Tr %Ta"

`format raw` sends the log-format's text alone (no syslog header). One datagram reads
`svc_app 200 12 13`: the backend, the status HAProxy sent, Tr (ms until the server's response
headers; -1 when no server answered) and Ta (ms the request was active: from its first byte
to the response's last, queue and connect included; keep-alive idle time excluded), which is
what a client waits for.

Lossy by design: HAProxy sends without blocking and drops a message the socket cannot take
now (its `show info` counts them as DroppedLogs). A unix datagram socket queues only
`net.unix.max_dgram_qlen` messages (10 here) before that happens, so under a burst the
latencies are those of a sample of the requests; a HAProxy never waits on Baepo, and while
Baepo is stopped the messages go nowhere (HAProxy says so once, in its own log).
"""

from __future__ import annotations

from dataclasses import dataclass

from baepo.router.configuration import service_of_backend


@dataclass(frozen=True)
class AccessRecord:
    """One request to a service, as HAProxy logged it."""

    service: str
    status: int
    response_ms: int | None  # until the server's response headers; None if none answered
    active_ms: int  # what the client waited: queue, connect, response, transfer


def parse_access_record(datagram: bytes) -> AccessRecord | None:
    """A service's request, or None for anything else (another backend, a malformed line)."""
    fields = datagram.split()
    if len(fields) != 4:
        return None
    try:
        backend = fields[0].decode("ascii")
        status, response_ms, active_ms = (int(f) for f in fields[1:])
    except ValueError:
        return None
    service = service_of_backend(backend)
    if service is None or active_ms < 0:
        return None
    return AccessRecord(service, status, response_ms if response_ms >= 0 else None, active_ms)
