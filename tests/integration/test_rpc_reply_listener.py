"""The RPC reply listener on a real broker: calls whose reply queue is gone fail, the
listener (and so its container) lives on (weintervene.rpc)."""
from __future__ import annotations

from unittest.mock import Mock

import pytest
from kombu import Connection
from nameko import config
from nameko import rpc as nameko_rpc
from nameko.exceptions import ReplyQueueExpiredWithPendingReplies

from gateway.errors import error_response
from weintervene.rpc import ClusterRpc, ReplyListener, ServiceRpc

pytestmark = pytest.mark.integration


def listener_of(cls, uri):
    listener = cls()
    listener.container = Mock(service_name="rpc_clients_test")
    with config.patch({"AMQP_URI": uri}):
        listener.setup()
    return listener


def test_calls_waiting_on_a_reply_queue_that_is_gone_fail_and_the_listener_lives(vhost):
    # The queue was never declared: as when a request reaches the gateway while its reply
    # listener is still connecting, or after a broker outage longer than the queue's expiry.
    with config.patch({"AMQP_URI": vhost.uri}):
        listener = listener_of(ReplyListener, vhost.uri)
        first, second = listener.register_for_reply("c-1"), listener.register_for_reply("c-2")
        listener.check_for_lost_replies()  # no exception: the consumer thread goes on
        for wait in (first, second):
            with pytest.raises(ReplyQueueExpiredWithPendingReplies):
                wait()
        assert listener.pending == {}
        # nameko's own listener raises here, in its consumer thread, which kills the container.
        original = listener_of(nameko_rpc.ReplyListener, vhost.uri)
        original.register_for_reply("c-3")
        with pytest.raises(ReplyQueueExpiredWithPendingReplies):
            original.check_for_lost_replies()


def test_calls_are_kept_while_their_reply_queue_exists(vhost):
    with config.patch({"AMQP_URI": vhost.uri}):
        listener = listener_of(ReplyListener, vhost.uri)
        with Connection(vhost.uri) as conn:
            listener.queue.bind(conn).declare()
            try:
                listener.register_for_reply("c-1")
                listener.check_for_lost_replies()
                assert list(listener.pending) == ["c-1"]
            finally:
                listener.queue.bind(conn).delete()


def test_every_service_uses_these_clients_and_a_lost_reply_is_a_503():
    from weintervene.runner import ALL_COMPONENTS, service_class

    for name in ALL_COMPONENTS:
        cls = service_class(name)
        for attr in vars(cls).values():
            if isinstance(attr, nameko_rpc.ClusterRpc):
                assert isinstance(attr, (ClusterRpc, ServiceRpc)), (name, attr)
                assert isinstance(attr.reply_listener, ReplyListener), (name, attr)
    status, body = error_response(ReplyQueueExpiredWithPendingReplies("lost"))
    assert status == 503 and body["error"]["code"] == "service_unavailable"
