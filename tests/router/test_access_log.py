"""HAProxy's request log: each request to a service arrives as one datagram that says its
service, status and times; other backends and malformed lines are not a service's."""

from __future__ import annotations

import queue

import pytest

from baepo.metrics import AccessLog
from baepo.router import AccessRecord, parse_access_record
from tests.router.backends import Backend
from tests.router.conftest import Plane
from tests.router.routes import add_server, ensure_service


@pytest.mark.parametrize(
    ("datagram", "record"),
    [
        (b"svc_app 200 12 13\n", AccessRecord("app", 200, 12, 13)),
        (b"svc_my-app 503 -1 60001", AccessRecord("my-app", 503, None, 60001)),
        (b"baepo_not_found 404 -1 0\n", None),
        (b"baepo_registry 200 3 4\n", None),
        (b"svc_app 200 12\n", None),
        (b"svc_app OK 12 13\n", None),
        (b"svc_app 200 1 -1\n", None),
        (b"\xff\xfe 200 1 1\n", None),
        (b"", None),
    ],
)
def test_datagrams_are_read_as_a_services_requests(
    datagram: bytes, record: AccessRecord | None
) -> None:
    assert parse_access_record(datagram) == record


@pytest.mark.integration
def test_haproxy_sends_each_requests_service_status_and_time(
    plane: Plane, backends: dict[str, Backend]
) -> None:
    records: queue.Queue[AccessRecord] = queue.Queue()
    access = AccessLog(plane.settings.paths.access_socket, records.put)
    access.start()
    try:
        ensure_service(plane.router, "app", ["app.localhost"])
        add_server(plane.router, "app", "a1", backends["a1"].address)
        assert plane.get("app.localhost", "/slow?seconds=0.3").status_code == 200
        assert plane.get("nothing.baepo.test").status_code == 404
        assert plane.get("app.localhost").status_code == 200
        slow, fast = records.get(timeout=5), records.get(timeout=5)
    finally:
        access.stop()
    assert (slow.service, slow.status, fast.service, fast.status) == ("app", 200, "app", 200)
    assert 300 <= slow.active_ms < 5000
    assert slow.response_ms is not None and 300 <= slow.response_ms <= slow.active_ms
    assert fast.active_ms < 300
    assert records.empty()
