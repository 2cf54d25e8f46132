"""The batch event handler: batches in delivery order, one multiple-ack per channel
after the method returned, every message requeued when it raised.

The broker side (competing instances, redelivery, a crash) is in
tests/integration/test_analytics_intake.py; here the settling rules, with
recording stand-ins for kombu's messages."""
from eventlet.queue import LightQueue

from services.analytics.intake import BatchEventHandler, acknowledge
from services.analytics.service import AnalyticsService
from weintervene.contracts import SHARE_RECORDED, SUBSCRIPTIONS


class Channel:
    def __init__(self, open_=True):
        self.connection = object() if open_ else None
        self.acks: list[tuple[int, bool]] = []


class Message:
    def __init__(self, channel, tag):
        self.channel, self.delivery_tag = channel, tag

    def ack(self, multiple=False):
        self.channel.acks.append((self.delivery_tag, multiple))


class Consumer:
    def __init__(self):
        self.requeued = []

    def requeue_message(self, message):
        self.requeued.append(message.delivery_tag)


class Settled:
    def __init__(self):
        self.sent = False

    def send(self, _value):
        self.sent = True


def handler(batch_size=3):
    h = BatchEventHandler("referrals", SHARE_RECORDED, requeue_on_error=True, batch_size=batch_size)
    h.max_batch = batch_size
    h.pending = LightQueue()
    h.consumer = Consumer()
    return h


def test_one_ack_with_multiple_on_the_last_tag_of_each_open_channel():
    first, second, closed = Channel(), Channel(), Channel(open_=False)
    messages = [Message(first, 7), Message(first, 9), Message(second, 1), Message(first, 8),
                Message(closed, 3), Message(second, 2)]
    acknowledge(messages)
    assert first.acks == [(9, True)]
    assert second.acks == [(2, True)]
    assert closed.acks == []  # the broker requeued those when the channel closed


def test_batches_follow_delivery_order_up_to_the_batch_size():
    h = handler(batch_size=3)
    channel = Channel()
    for tag in range(1, 8):
        h.handle_message({"n": tag}, Message(channel, tag))
    assert [[b["n"] for b, _ in h.take_batch()] for _ in range(3)] == [[1, 2, 3], [4, 5, 6], [7]]


def test_a_batch_is_acknowledged_after_success_and_requeued_after_an_error():
    h = handler()
    channel = Channel()
    ok = [({}, Message(channel, tag)) for tag in (1, 2, 3)]
    settled = Settled()
    assert h._settle(ok, settled, None, result={"counted": 3}) == ({"counted": 3}, None)
    assert channel.acks == [(3, True)] and h.consumer.requeued == [] and settled.sent

    failed = [({}, Message(channel, tag)) for tag in (4, 5)]
    error = (ConnectionError, ConnectionError("database unreachable"), None)
    settled = Settled()
    h._settle(failed, settled, None, exc_info=error)
    assert h.consumer.requeued == [4, 5]  # nothing of the batch was committed: all back
    assert channel.acks == [(3, True)] and settled.sent


def test_the_consumer_keeps_the_queue_the_autoscaler_and_topology_know():
    entrypoint = AnalyticsService.on_share_recorded.nameko_entrypoints
    (handler_,) = [e for e in entrypoint if isinstance(e, BatchEventHandler)]
    assert (handler_.source_service, handler_.event_type) == ("referrals", SHARE_RECORDED)
    assert SUBSCRIPTIONS[("referrals", SHARE_RECORDED)] == [("analytics", "on_share_recorded")]
    assert handler_.requeue_on_error is True
