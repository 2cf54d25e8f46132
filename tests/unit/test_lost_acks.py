"""A worker that finishes after its broker connection died: the ack fails quietly (the broker
redelivers the message), instead of killing the container (weintervene.messaging.tolerate_lost_acks)."""
from __future__ import annotations

from unittest import mock

import pytest
from nameko.amqp.consume import Consumer
from nameko.rpc import ReplyListener

import weintervene.messaging  # noqa: F401  (applies tolerate_lost_acks)


@pytest.mark.parametrize("error", [ConnectionResetError(104, "reset by peer"), BrokenPipeError(32, "broken pipe")])
@pytest.mark.parametrize("settle", ["ack_message", "requeue_message"])
def test_settling_over_a_dead_socket_does_not_raise(error, settle):
    message = mock.Mock()
    message.channel.connection = object()  # nameko believes the connection is alive
    message.ack.side_effect = message.requeue.side_effect = error
    consumer = Consumer("memory://")
    getattr(consumer, settle)(message)  # no exception
    assert (message.ack if settle == "ack_message" else message.requeue).called


def test_other_errors_still_raise_and_every_consumer_class_is_covered():
    message = mock.Mock()
    message.ack.side_effect = ValueError("a bug")
    with pytest.raises(ValueError):
        Consumer("memory://").ack_message(message)
    assert ReplyListener.ReplyConsumer.ack_message is Consumer.ack_message
    weintervene.messaging.tolerate_lost_acks()  # applying it again wraps nothing twice
    for settle in (Consumer.ack_message, Consumer.requeue_message):
        assert settle.weintervene_tolerant and not getattr(settle.__wrapped__, "weintervene_tolerant", False)
