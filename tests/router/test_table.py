from __future__ import annotations

import pytest

from baepo.router import Check, InvalidRoute, Route, RoutingTable, Server, ServerState
from baepo.router.table import table_from_json, table_to_json


@pytest.mark.parametrize("name", ["App", "-app", "app-", "a_b", "a.b", "", "x" * 64])
def test_service_names_are_dns_labels(name: str) -> None:
    with pytest.raises(InvalidRoute):
        Route(name, ("a.localhost",))


@pytest.mark.parametrize(
    "address", ["localhost:80", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "::1:80", "1.2.3:4"]
)
def test_server_addresses_are_ipv4_and_port(address: str) -> None:
    with pytest.raises(InvalidRoute):
        Server("a", address)


@pytest.mark.parametrize("address", ["127.0.0.1:32768", "172.18.0.5:8080", "10.88.0.12:80"])
def test_any_ipv4_address_is_a_server_address(address: str) -> None:
    """Instances live on Baepo's engine networks: the router reaches their own address."""
    assert Server("a", address).address == address


def test_hostnames_are_normalized_and_deduplicated() -> None:
    service = Route("app", ("App.LocalHost.", "app.localhost", "www.example.com"))
    assert service.hostnames == ("app.localhost", "www.example.com")


@pytest.mark.parametrize("host", ["bad host", "a..b", "-a.com", "a" * 64 + ".com", "*.x.com"])
def test_invalid_hostnames_are_refused(host: str) -> None:
    with pytest.raises(InvalidRoute):
        Route("app", (host,))


def test_a_hostname_belongs_to_one_service() -> None:
    with pytest.raises(InvalidRoute, match="claimed by both"):
        RoutingTable((Route("a", ("x.localhost",)), Route("b", ("x.localhost",))))


def test_server_names_are_unique_within_a_service() -> None:
    with pytest.raises(InvalidRoute):
        Route("a", ("a.localhost",), (Server("s", "127.0.0.1:1"), Server("s", "127.0.0.1:2")))


def test_with_and_without_keep_order_and_replace_by_name() -> None:
    a = Route("a", ("a.localhost",))
    b = Route("b", ("b.localhost",))
    table = RoutingTable((a, b))
    a2 = a.with_server(Server("s1", "127.0.0.1:1"))
    assert table.with_service(a2).services == (a2, b)
    assert table.without_service("a").services == (b,)
    drained = a2.with_server(Server("s1", "127.0.0.1:1", ServerState.DRAIN))
    assert drained.servers == (Server("s1", "127.0.0.1:1", ServerState.DRAIN),)
    assert drained.without_server("s1").servers == ()
    assert table.host_map() == {"a.localhost": "a", "b.localhost": "b"}


def test_json_round_trip() -> None:
    table = RoutingTable(
        (
            Route(
                "app",
                ("app.localhost", "www.example.com"),
                (Server("s1", "127.0.0.1:8080"), Server("s2", "127.0.0.1:8081", ServerState.DRAIN)),
                max_concurrency=7,
                paused=True,
            ),
            Route("api", ("api.localhost",), check=Check("/healthz", 3, 1, 2, 4)),
        )
    )
    assert table_from_json(table_to_json(table)) == table


def test_json_that_is_not_a_table_is_refused() -> None:
    with pytest.raises(InvalidRoute):
        table_from_json('{"services": [{"name": "x"}]}')


@pytest.mark.parametrize("bad", ["x\n.example.com", "a b.example.com", "a\tb.example.com"])
def test_hostnames_with_newlines_or_spaces_are_refused(bad: str) -> None:
    from baepo.router.table import normalize_hostname

    with pytest.raises(InvalidRoute):
        normalize_hostname(bad)


def test_service_and_server_names_with_a_trailing_newline_are_refused() -> None:
    from baepo.router.table import check_server_name, check_service_name

    with pytest.raises(InvalidRoute):
        check_service_name("app\n")
    with pytest.raises(InvalidRoute):
        check_server_name("a1\n")
