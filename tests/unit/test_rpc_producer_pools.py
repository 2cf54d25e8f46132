"""weintervene.nameko_extensions.producer_pool: the kombu producer pool nameko's get_producer
would find, found once. No broker needed: acquiring a producer does not connect."""
from __future__ import annotations

import kombu.pools
from kombu import Connection
from nameko.constants import DEFAULT_TRANSPORT_OPTIONS

from weintervene.nameko_extensions import ProducerPoolFoundOnce, ReplyPublisher, RequestPublisher, producer_pool

URI = "amqp://guest:guest@127.0.0.1:5999/unit-pools"


def test_the_pool_found_is_the_one_nameko_keys_and_it_is_found_once(monkeypatch):
    built = []
    original_init = Connection.__init__

    def counting_init(self, *args, **kwargs):
        built.append(args[:1])
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(Connection, "__init__", counting_init)
    first = producer_pool(URI, True, None, None, DEFAULT_TRANSPORT_OPTIONS.copy())
    second = producer_pool(URI, True, None, None, DEFAULT_TRANSPORT_OPTIONS.copy())
    key = Connection(URI, transport_options={**DEFAULT_TRANSPORT_OPTIONS, "confirm_publish": True})
    assert first is second is kombu.pools.producers[key]  # nameko's get_producer finds this one
    assert len([b for b in built if b == (URI,)]) == 2  # one to find the pool, one for the key above


def test_confirms_and_no_confirms_get_different_pools():
    with producer_pool(URI, True).acquire(block=True) as confirmed:
        pass
    with producer_pool(URI, False).acquire(block=True) as unconfirmed:
        pass
    assert confirmed is not unconfirmed
    assert confirmed.connection.transport_options["confirm_publish"] is True
    assert unconfirmed.connection.transport_options["confirm_publish"] is False


def test_after_kombu_resets_its_pools_a_new_pool_is_found():
    before = producer_pool(URI, True)
    kombu.pools.reset()
    after = producer_pool(URI, True)  # "Acquire on closed pool" otherwise
    assert after is not before
    with after.acquire(block=True):
        pass


def test_requests_and_replies_publish_through_it():
    assert issubclass(RequestPublisher, ProducerPoolFoundOnce) and issubclass(ReplyPublisher, ProducerPoolFoundOnce)


def test_it_hands_kombu_the_very_message_nameko_s_publish_does(monkeypatch):
    from contextlib import contextmanager, nullcontext

    import pytest
    from kombu import Exchange
    from kombu.exceptions import ChannelError
    from nameko.amqp import publish as nameko_publish
    from nameko.amqp.publish import Publisher, UndeliverableMessage

    from weintervene import nameko_extensions

    calls, refuse = [], []

    class Producer:
        def publish(self, payload, **kwargs):
            calls.append((payload, kwargs))
            if refuse:
                raise ChannelError("Basic.return: (312) NO_ROUTE")

    @contextmanager
    def get_producer(*args, **kwargs):
        yield Producer()

    class Pool:
        def acquire(self, block):
            return nullcontext(Producer())

    monkeypatch.setattr(nameko_publish, "get_producer", get_producer)
    monkeypatch.setattr(nameko_extensions, "producer_pool", lambda *args, **kwargs: Pool())

    class Ours(ProducerPoolFoundOnce, Publisher):
        pass

    exchange = Exchange("nameko-rpc", type="topic")
    for options, kwargs in [
        ({"reply_to": "r"}, {"routing_key": "svc.m", "mandatory": True, "correlation_id": "c", "extra_headers": {"a": 1}}),
        ({"headers": {"h": 1}, "delivery_mode": 1}, {"routing_key": "x", "use_confirms": False, "priority": 3,
                                                      "headers": {"h": 2}, "serializer": "json", "declare": [exchange]}),
    ]:
        calls.clear()
        Publisher(URI, exchange=exchange, **options).publish({"x": 1}, **dict(kwargs))
        Ours(URI, exchange=exchange, **options).publish({"x": 1}, **dict(kwargs))
        assert calls[0] == calls[1]
    refuse.append(True)
    with pytest.raises(UndeliverableMessage):
        Ours(URI, exchange=exchange).publish({}, routing_key="nobody.m", mandatory=True)
