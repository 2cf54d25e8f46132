"""weintervene.rpc.find_producer_pools_once: nameko's get_producer, finding each kombu
producer pool once. No broker needed: acquiring a producer does not connect."""
from __future__ import annotations

import kombu.pools
from kombu import Connection
from nameko.amqp import publish
from nameko.constants import DEFAULT_TRANSPORT_OPTIONS

import weintervene.rpc  # noqa: F401  (applies the patch)

URI = "amqp://guest:guest@127.0.0.1:5999/unit-pools"


def test_the_pool_found_is_the_one_nameko_keys_and_it_is_found_once(monkeypatch):
    assert publish.get_producer.weintervene_pools_found_once
    built = []
    original_init = Connection.__init__

    def counting_init(self, *args, **kwargs):
        built.append(args[:1])
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(Connection, "__init__", counting_init)
    with publish.get_producer(URI, True, None, None, DEFAULT_TRANSPORT_OPTIONS.copy()) as first:
        pass
    with publish.get_producer(URI, True, None, None, DEFAULT_TRANSPORT_OPTIONS.copy()) as second:
        pass
    key = Connection(URI, transport_options={**DEFAULT_TRANSPORT_OPTIONS, "confirm_publish": True})
    assert kombu.pools.producers[key] is not None
    assert first is second  # released to the same pool and handed out again
    assert len([b for b in built if b == (URI,)]) == 2  # one to find the pool, one for the key above


def test_confirms_and_no_confirms_get_different_pools():
    with publish.get_producer(URI, True, None, None, None) as confirmed:
        pass
    with publish.get_producer(URI, False, None, None, None) as unconfirmed:
        pass
    assert confirmed is not unconfirmed
    assert confirmed.connection.transport_options["confirm_publish"] is True
    assert unconfirmed.connection.transport_options["confirm_publish"] is False


def test_after_kombu_resets_its_pools_a_new_pool_is_found():
    with publish.get_producer(URI, True, None, None, None) as before:
        pass
    kombu.pools.reset()
    with publish.get_producer(URI, True, None, None, None) as after:  # "Acquire on closed pool" otherwise
        pass
    assert after is not before
