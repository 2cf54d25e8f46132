"""A worker that finishes after its broker connection died: the ack fails quietly (the broker
redelivers the message), instead of killing the container
(weintervene.nameko_extensions.LostAcksTolerated, in every consumer our services use)."""
from __future__ import annotations

from unittest import mock

import pytest
from nameko.amqp.consume import Consumer

from services.analytics.intake import BatchEventHandler
from weintervene.nameko_extensions import (
    EventHandler, ReplyConsumer, ReplyListener, RpcConsumer, TolerantConsumer, event_handler,
)

TOLERANT = [TolerantConsumer, ReplyConsumer]


def consumer_of(cls):
    if cls is ReplyConsumer:
        return cls(lambda: None, "memory://")
    return cls("memory://")


@pytest.mark.parametrize("error", [ConnectionResetError(104, "reset by peer"), BrokenPipeError(32, "broken pipe")])
@pytest.mark.parametrize("settle", ["ack_message", "requeue_message"])
@pytest.mark.parametrize("cls", TOLERANT)
def test_settling_over_a_dead_socket_does_not_raise(cls, error, settle):
    message = mock.Mock()
    message.channel.connection = object()  # nameko believes the connection is alive
    message.ack.side_effect = message.requeue.side_effect = error
    getattr(consumer_of(cls), settle)(message)  # no exception
    assert (message.ack if settle == "ack_message" else message.requeue).called
    with pytest.raises(type(error)):
        getattr(Consumer("memory://"), settle)(message)  # nameko's own raises (and kills the container)


@pytest.mark.parametrize("cls", TOLERANT)
def test_other_errors_still_raise_and_a_live_ack_still_acks(cls):
    message = mock.Mock()
    message.ack.side_effect = ValueError("a bug")
    with pytest.raises(ValueError):
        consumer_of(cls).ack_message(message)
    message = mock.Mock()
    consumer_of(cls).ack_message(message)
    message.ack.assert_called_once_with()


def test_every_consumer_our_services_use_is_a_tolerant_one():
    assert RpcConsumer.consumer_cls is TolerantConsumer
    assert ReplyListener.consumer_cls is ReplyConsumer
    assert EventHandler.consumer_cls is TolerantConsumer and issubclass(BatchEventHandler, EventHandler)
    assert event_handler == EventHandler.decorator
    # nameko's own classes are left as they were.
    from nameko.events import EventHandler as NamekoEventHandler
    from nameko.rpc import ReplyListener as NamekoReplyListener
    from nameko.rpc import RpcConsumer as NamekoRpcConsumer
    assert NamekoRpcConsumer.consumer_cls is Consumer and NamekoEventHandler.consumer_cls is Consumer
    assert NamekoReplyListener.consumer_cls.ack_message is Consumer.ack_message


def test_every_event_handler_of_every_service_is_ours():
    from nameko.events import EventHandler as NamekoEventHandler
    from nameko.extensions import iter_extensions  # noqa: F401  (nameko's public helper module)

    from weintervene.runner import ALL_COMPONENTS, service_class

    handlers = 0
    for name in ALL_COMPONENTS:
        cls = service_class(name)
        for attr in dir(cls):
            for entrypoint in getattr(getattr(cls, attr, None), "nameko_entrypoints", ()):
                if isinstance(entrypoint, NamekoEventHandler):
                    handlers += 1
                    assert isinstance(entrypoint, EventHandler), (name, attr)
    assert handlers >= 5
