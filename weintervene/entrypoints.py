"""nameko's ``rpc`` with our errors declared as expected, and replies sent without
waiting for a publisher confirm.

An expected error (a 4xx at the gateway) is logged as a warning, not as a
server error with a traceback.

A reply goes to the caller's own transient reply queue; nameko published it with
a publisher confirm, so the worker waited one more broker round trip before
acknowledging the request. A confirm there protects nothing: if the broker loses
the reply, the caller's reply queue is gone with it and the caller times out either
way. Replies are therefore published without confirms (and transient). Requests
keep theirs (:mod:`weintervene.rpc`).

Every service's RPC methods must come from this ``rpc`` (not nameko's): one
service's methods are served by one consumer of its queue.

Example::

    from weintervene.entrypoints import rpc

    class IdentityService:
        @rpc
        def authenticate(self, token): ...
"""
from nameko import config
from nameko import rpc as nameko_rpc
from nameko.amqp.publish import Publisher
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY, DEFAULT_TRANSPORT_OPTIONS, LOGIN_METHOD_CONFIG_KEY, NON_PERSISTENT,
)

from weintervene.errors import WeInterveneError


class ReplyPublisher(Publisher):
    use_confirms = False
    delivery_mode = NON_PERSISTENT
    # A dict of its own: nameko's ``publish`` writes ``confirm_publish`` into the
    # class's transport options, and kombu's connection pools are keyed by them. A
    # shared dict flipped between False (replies) and True (requests) would change
    # the key of every pooled connection under the pools' feet (new pools, new
    # connections, requests without confirms).
    transport_options = {**DEFAULT_TRANSPORT_OPTIONS, "confirm_publish": False}


class Responder(nameko_rpc.Responder):
    publisher_cls = ReplyPublisher


class RpcConsumer(nameko_rpc.RpcConsumer):
    def handle_result(self, message, result, exc_info):
        # nameko's own, with the Responder above.
        responder = Responder(self.amqp_uri, nameko_rpc.get_rpc_exchange(), message,
                              ssl=config.get(AMQP_SSL_CONFIG_KEY), login_method=config.get(LOGIN_METHOD_CONFIG_KEY))
        result, exc_info = responder.send_response(result, exc_info)
        self.consumer.ack_message(message)
        return result, exc_info


class Rpc(nameko_rpc.Rpc):
    rpc_consumer = RpcConsumer()


def rpc(fn=None, **kwargs):
    kwargs.setdefault("expected_exceptions", (WeInterveneError,))
    if fn is None:
        return Rpc.decorator(**kwargs)
    return Rpc.decorator(**kwargs)(fn)
