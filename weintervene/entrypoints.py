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

**The caller's context is verified here, before the method runs**: a method whose
first parameter is named ``auth`` gets it only if the gateway's signature on it holds
(:mod:`weintervene.context_signing`; ``None``, an anonymous caller, passes as before),
and ``@rpc(signed_contexts=fn)`` names contexts carried inside the arguments
(``fn(args, kwargs)`` -> the contexts). An unsigned, altered or expired context is
answered 401 ``not_authenticated`` and the method never runs. Methods called
directly (``worker_factory`` in unit tests) are not entrypoint calls and are not
checked. A method for service-to-service use only names its first parameter
otherwise (``sharer``, ``request``) and is guarded by the broker's topic permissions
(:mod:`weintervene.broker`): only the services that may call it can publish to it.

What every call costs the service that answers it, cut where nameko spent CPU for
nothing (profiled in ``python -m bench referrals --profile``; ``python -m bench rpc``):

- **A reply is serialised once.** nameko encoded the result alone to check that it
  can be (a "disaster avoidance" check: an unserialisable result must not kill the
  container), threw that away and had kombu encode the whole reply again. The
  reply is encoded once here and those bytes are published; a result that cannot
  be encoded still answers ``UnserializableValueError``, as with nameko.
- **One reply publisher per service**, made at setup, not a ``Publisher`` and an
  ``Exchange`` built (and the config read) for every reply.
- **A worker starts at once when the worker pool has room**, not through one more
  green thread that waits for room (it still does when the pool is full).
- **A request's method is looked up in a dict**, not by formatting a routing key per method.
- **A call's arguments are checked against a signature computed once per method**,
  not by ``inspect.getcallargs`` rebuilding it on every call. Arguments that do not
  fit are still refused with nameko's ``IncorrectSignature`` and its exact message.

Example::

    from weintervene.entrypoints import rpc

    class IdentityService:
        @rpc
        def authenticate(self, token): ...
"""
import inspect
import logging
import sys
from functools import partial

import kombu.serialization
from nameko import config
from nameko import rpc as nameko_rpc
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY, DEFAULT_TRANSPORT_OPTIONS, LOGIN_METHOD_CONFIG_KEY, NON_PERSISTENT,
)
from nameko.exceptions import ContainerBeingKilled, MalformedRequest, UnserializableValueError, serialize
from nameko.messaging import decode_from_headers

from weintervene import error_logging
from weintervene.context_signing import verify_context, verify_contexts
from weintervene.db import database_refusal
from weintervene.errors import Unauthorized, WeInterveneError
from weintervene.rpc import RpcPublisher, find_producer_pools_once

log = logging.getLogger(__name__)

# Every service answers RPCs, not all of them make any: the patch must not depend on
# whether a service happens to import weintervene.rpc's clients (identity did not,
# and built a kombu Connection for every reply).
find_producer_pools_once()
# A caller's mistake (a 4xx) is logged by nameko on one line, without a traceback.
error_logging.install()


class ReplyPublisher(RpcPublisher):
    use_confirms = False
    delivery_mode = NON_PERSISTENT
    # A dict of its own: nameko's ``publish`` writes ``confirm_publish`` into the
    # class's transport options, and kombu's connection pools are keyed by them. A
    # shared dict flipped between False (replies) and True (requests) would change
    # the key of every pooled connection under the pools' feet (new pools, new
    # connections, requests without confirms).
    transport_options = {**DEFAULT_TRANSPORT_OPTIONS, "confirm_publish": False}


class Responder(nameko_rpc.Responder):
    """nameko's responder, publishing with a given (shared) publisher and encoding once.

    Example::

        Responder(uri, exchange, message, publisher=ReplyPublisher(uri)).send_response({"ok": 1}, None)
    """

    publisher_cls = ReplyPublisher

    def __init__(self, amqp_uri, exchange, message, ssl=None, login_method=None, publisher=None):
        super().__init__(amqp_uri, exchange, message, ssl=ssl, login_method=login_method)
        self.publisher = publisher or self.publisher_cls(amqp_uri, ssl=ssl, login_method=login_method)

    def send_response(self, result, exc_info):
        error = None if exc_info is None else serialize(exc_info[1])
        # Answered in the serialiser the request came in, as nameko does.
        serializer = kombu.serialization.registry.type_to_name[self.message.properties["content_type"]]
        try:
            encoded = kombu.serialization.dumps({"result": result, "error": error}, serializer)
        except Exception:
            # nameko's guarantee: an unserialisable result becomes an error reply (which
            # always serialises) instead of killing the container and requeueing the
            # request for another victim.
            exc_info = sys.exc_info()
            result, error = None, serialize(UnserializableValueError(result))
            encoded = kombu.serialization.dumps({"result": None, "error": error}, serializer)
        content_type, content_encoding, body = encoded
        self.publisher.publish(
            body, content_type=content_type, content_encoding=content_encoding,
            exchange=self.exchange, routing_key=self.message.properties["reply_to"],
            correlation_id=self.message.properties.get("correlation_id"),
        )
        return result, exc_info


class RpcConsumer(nameko_rpc.RpcConsumer):
    """nameko's consumer of a service's RPC queue, replying through the Responder above.

    A request's method is found in a dict by its routing key: nameko formats
    ``"service.method"`` for each method in turn until one matches (identity has 37).
    """

    providers_by_key = None  # routing key -> Rpc; rebuilt when a method is (un)registered

    def register_provider(self, provider):
        self.providers_by_key = None
        super().register_provider(provider)

    def unregister_provider(self, provider):
        self.providers_by_key = None
        super().unregister_provider(provider)

    def get_provider_for_method(self, routing_key):
        providers = self.providers_by_key
        if providers is None:
            service_name = self.container.service_name
            providers = self.providers_by_key = {f"{service_name}.{p.method_name}": p for p in self._providers}
        provider = providers.get(routing_key)
        if provider is None:
            return super().get_provider_for_method(routing_key)  # MethodNotFound, as nameko raises it
        return provider

    def setup(self):
        super().setup()
        self.reply_exchange = nameko_rpc.get_rpc_exchange()
        self.reply_publisher = ReplyPublisher(self.amqp_uri, ssl=config.get(AMQP_SSL_CONFIG_KEY),
                                              login_method=config.get(LOGIN_METHOD_CONFIG_KEY))

    def handle_result(self, message, result, exc_info):
        # nameko's own, with the Responder above and the publisher made at setup; a database
        # that refused the work for now answers Unavailable (503), not an unmapped error (500).
        refusal = database_refusal(exc_info[1]) if exc_info is not None else None
        if refusal is not None:
            exc_info = (type(refusal), refusal, exc_info[2])
        responder = Responder(self.amqp_uri, self.reply_exchange, message, publisher=self.reply_publisher)
        result, exc_info = responder.send_response(result, exc_info)
        self.consumer.ack_message(message)
        return result, exc_info


class SignatureCheckedOnce:
    """Mixin for a nameko entrypoint: the call's arguments checked against a signature made at setup.

    nameko's ``check_signature`` runs ``inspect.getcallargs``, which rebuilds the
    method's signature on every call (~15 µs; 2-4% of the gateway's and identity's
    CPU). Arguments that bind to the signature made once are accepted; those that
    do not are checked again by nameko's own, which raises ``IncorrectSignature``
    with its exact message (and stays the judge).

    Example: class HttpEntrypoint(SignatureCheckedOnce, HttpRequestHandler): ...
    """

    signature = None  # until setup: nameko's own check

    def setup(self):
        super().setup()
        self.signature = signature_to_check(getattr(self.container.service_cls, self.method_name))

    def check_signature(self, args, kwargs):
        if self.signature is not None:
            try:
                self.signature.bind(None, *args, **kwargs)  # None: the unbound method's ``self``
                return
            except TypeError:
                pass
        super().check_signature(args, kwargs)


class Rpc(SignatureCheckedOnce, nameko_rpc.Rpc):
    rpc_consumer = RpcConsumer()

    takes_auth = False  # until setup: whether the method's first parameter is ``auth``

    def __init__(self, expected_exceptions=(), signed_contexts=None, **kwargs):
        self.signed_contexts = signed_contexts
        super().__init__(expected_exceptions=expected_exceptions, **kwargs)

    def setup(self):
        super().setup()
        parameters = list(inspect.signature(getattr(self.container.service_cls, self.method_name)).parameters)
        self.takes_auth = len(parameters) > 1 and parameters[1] == "auth"  # [0] is self

    def verify_caller(self, args, kwargs) -> None:
        """Refuse the call (401) unless every auth context in it carries a valid signature."""
        try:
            if self.takes_auth:
                auth = args[0] if args else kwargs.get("auth")
                if auth is not None:
                    verify_context(auth)
            if self.signed_contexts is not None:
                try:
                    contexts = list(self.signed_contexts(args, kwargs))
                except (TypeError, KeyError, AttributeError, IndexError):
                    contexts = []  # malformed arguments: the method's own checks answer them (400)
                verify_contexts(contexts)
        except Unauthorized as refused:
            # One line, no traceback: a forged or stale context is a 4xx, and worth seeing.
            log.warning("refused %s.%s: %s", self.container.service_name, self.method_name, refused)
            raise

    def handle_message(self, body, message):
        """nameko's, starting the worker at once when the worker pool has room.

        nameko always starts a "wait for worker pool" thread that then starts the
        worker, so that a full pool cannot block the consumer (which would then miss
        its heartbeats). With a free slot, starting the worker cannot block, and the
        extra green thread (spawned, linked, registered, reaped) is skipped. With the
        pool full, nameko's waiting thread does it, as before.
        """
        try:
            args = body["args"]
            kwargs = body["kwargs"]
        except KeyError:
            raise MalformedRequest("Message missing `args` or `kwargs`")
        self.check_signature(args, kwargs)
        self.verify_caller(args, kwargs)  # raised here: answered as an error reply, acked
        pool = getattr(self.container, "_worker_pool", None)
        if pool is None or pool.free() <= 0:
            return super().handle_message(body, message)
        context_data = decode_from_headers(message.headers)
        try:
            self.container.spawn_worker(self, args, kwargs, context_data=context_data,
                                        handle_result=partial(self.handle_result, message))
        except ContainerBeingKilled:
            self.rpc_consumer.consumer.requeue_message(message)


def signature_to_check(fn) -> inspect.Signature | None:
    """The signature nameko's ``inspect.getcallargs`` checks a call against, or None where the two may differ.

    ``getcallargs`` reads a function as ``getfullargspec`` does: its own signature, not
    the one of a function it wraps, and positional-only parameters as ordinary ones (a
    keyword of the same name then collides with them; ``bind`` would let it into
    ``**kwargs``). So: not following ``__wrapped__``, and None (always nameko's check)
    for a function with positional-only parameters.

    Example: signature_to_check(IdentityService.authenticate).bind(None, "token")
    """
    try:
        signature = inspect.signature(fn, follow_wrapped=False)
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.POSITIONAL_ONLY for p in signature.parameters.values()):
        return None
    return signature


def rpc(fn=None, **kwargs):
    kwargs.setdefault("expected_exceptions", (WeInterveneError,))
    if fn is None:
        return Rpc.decorator(**kwargs)
    return Rpc.decorator(**kwargs)(fn)
