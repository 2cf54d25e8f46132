"""KnownRoutes: a confirmed route is trusted for its lifetime, per broker, exchange and service."""
from __future__ import annotations

from weintervene.nameko_extensions import KnownRoutes

ROUTE = ("amqp://guest:guest@127.0.0.1:5672/a", "nameko-rpc", "identity")


def test_a_route_is_known_for_its_lifetime_after_a_confirm():
    now = [100.0]
    routes = KnownRoutes(ttl=5.0, clock=lambda: now[0])
    assert not routes.known(ROUTE)
    routes.confirmed(ROUTE)
    assert routes.known(ROUTE)
    now[0] += 4.9
    assert routes.known(ROUTE)
    now[0] += 0.2
    assert not routes.known(ROUTE)  # confirmed again by the next request


def test_routes_are_told_apart_by_broker_exchange_and_service():
    routes = KnownRoutes(ttl=5.0, clock=lambda: 0.0)
    routes.confirmed(ROUTE)
    assert not routes.known(("amqp://guest:guest@127.0.0.1:5672/b", "nameko-rpc", "identity"))
    assert not routes.known((ROUTE[0], "nameko-rpc", "referrals"))


def test_an_undeliverable_request_forgets_the_route():
    routes = KnownRoutes(ttl=5.0, clock=lambda: 0.0)
    routes.confirmed(ROUTE)
    routes.forget(ROUTE)
    assert not routes.known(ROUTE)


def test_a_lifetime_of_zero_confirms_every_request():
    routes = KnownRoutes(ttl=0.0, clock=lambda: 0.0)
    routes.confirmed(ROUTE)
    assert not routes.known(ROUTE)
