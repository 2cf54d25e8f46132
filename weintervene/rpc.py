"""RPC clients between services: nameko's ``ServiceRpc`` / ``ClusterRpc``, minus costs
that buy nothing for a request/reply call, and surviving a broker restart.

1. **The reply queue is declared once per broker connection, not before every request.**
   nameko passes its reply queue to the publisher's ``declare`` list; because that queue
   has an ``x-expires`` argument, kombu will not cache the declaration, so every call
   sent ``exchange.declare``, ``queue.declare`` and ``queue.bind`` and waited for each
   answer before publishing. Profiling the referrals benchmark put a fifth of the
   gateway's CPU there, and a third of the broker's work per call. The queue is still
   declared on each new connection (kombu forgets its declarations when it reconnects),
   and the reply listener declares it again whenever it reconnects, so a queue that
   expired while the service was cut off is back before the next request.
2. **Requests are transient** (``delivery_mode=1``). A persistent request is written to
   disk by the broker; it would only matter if the broker restarted with the request
   still queued, and then the request would run after its caller had given up (the
   caller's reply queue is gone with the restart): a teacher whose share "failed" and
   who tries again would send the family the same share twice. Events are another
   matter: they go through the outbox, persistent and confirmed
   (:mod:`weintervene.messaging`).
3. **A lost reply fails its call instead of killing the service.** nameko's reply
   listener checks, each time it (re)connects, whether its reply queue still exists while calls wait for replies; if not, it raises
   ``ReplyQueueExpiredWithPendingReplies`` in its consumer thread and nameko kills the
   whole container: the service stays down in a process that looks alive (seen in
   ``tests/integration/test_retention_broker_restart.py``: the gateway died when a request
   arrived while it was starting). Here those calls fail (the gateway answers 503) and the
   listener goes on consuming from its re-declared queue.

4. **A message costs fewer steps to publish** (requests here, replies in
   :mod:`weintervene.entrypoints`): ``RpcPublisher`` does kombu's ``_publish`` itself for
   the one shape an RPC message has, on the pool found once, and the reply queue's
   declaration is checked as kombu checks it but without binding a copy of the queue
   and wrapping the check in a retry policy first (``ReplyQueueOncePerConnection``,
   ``already_declared``). Same message on the wire, same retries and reconnection.
   ``python -m bench rpc`` measures a call's CPU, both sides.

5. **Confirmed once, then trusted for a few seconds** (``KnownRoutes``). A request to
   a service is published ``mandatory`` with a confirm, as nameko does, so a call to a
   service whose queue does not exist still fails at once with ``UnknownService``; for
   5 s after such a confirm, requests to that service go out without one.

Example::

    from weintervene.rpc import ServiceRpc

    class ReferralsService:
        identity = ServiceRpc("identity")

        @rpc
        def share(self, auth, data):
            context = self.identity.share_context(auth, data["student_id"], [], [])
"""
from __future__ import annotations

import logging
import time
import warnings
from contextlib import contextmanager

from amqp.exceptions import NotFound
from kombu import Connection, Exchange, Queue
from kombu.entity import maybe_delivery_mode
from kombu.exceptions import ChannelError
from kombu.pools import producers
from kombu.serialization import dumps
from nameko import config
from nameko import rpc as nameko_rpc
from nameko.amqp import publish
from nameko.amqp.publish import Publisher, UndeliverableMessage
from nameko.constants import AMQP_SSL_CONFIG_KEY, DEFAULT_TRANSPORT_OPTIONS, NON_PERSISTENT
from nameko.exceptions import ReplyQueueExpiredWithPendingReplies

log = logging.getLogger(__name__)


_pools: dict = {}


def producer_pool(amqp_uri, confirms=True, ssl=None, login_method=None, transport_options=None):
    """The kombu producer pool nameko's ``get_producer`` would find, found once per key.

    Example: with producer_pool(uri).acquire(block=True) as producer: ...
    """
    options = dict(DEFAULT_TRANSPORT_OPTIONS if transport_options is None else transport_options)
    options["confirm_publish"] = confirms
    key = (amqp_uri, repr(ssl), login_method, tuple(sorted(options.items())))
    pool = _pools.get(key)
    if pool is None or pool._closed:  # closed by kombu.pools.reset(): find the new one
        pool = _pools[key] = producers[Connection(amqp_uri, transport_options=options,
                                                  login_method=login_method, ssl=ssl)]
    return pool


def find_producer_pools_once() -> None:
    """Let nameko find each kombu producer pool once, not on every publish.

    nameko's ``get_producer`` builds a kombu ``Connection`` for every message (parsing
    the URI, resolving the transport) only to look up the producer pool it keys, which
    hashes that connection's whole description again. Profiling the referrals
    benchmark put ~15% of the gateway's CPU there (every RPC request and reply of
    every service goes through it). The pool found is the very one nameko would find:
    same key, same pool, same connections and reconnection behaviour.

    Example: find_producer_pools_once()  # at import of this module and of weintervene.entrypoints
    """
    if getattr(publish.get_producer, "weintervene_pools_found_once", False):
        return

    @contextmanager
    def get_producer(amqp_uri, confirms=True, ssl=None, login_method=None, transport_options=None):
        with producer_pool(amqp_uri, confirms, ssl, login_method, transport_options).acquire(block=True) as producer:
            yield producer

    get_producer.weintervene_pools_found_once = True
    publish.get_producer = get_producer


find_producer_pools_once()


class KnownRoutes:
    """Services whose request queue the broker confirmed lately, per broker and exchange.

    nameko publishes every request ``mandatory`` and waits for the broker's confirm, so
    that a call to a service whose queue does not exist fails at once
    (``UnknownService``) instead of waiting for a reply that never comes. Once the
    broker has confirmed a request to a service, its queue is there: RPC queues are
    durable and outlive their consumers, restarts of the broker and of the service.
    So for ``ttl`` seconds after a confirmed request, requests to that service go out
    unconfirmed, and one request in each ``ttl`` confirms the route again. That saves
    a broker round trip, a wake-up of the caller and ~0.1 ms of CPU per call
    (``python -m bench rpc``). What it gives up: a queue deleted by hand (or a broker
    that lost its data) within those seconds makes the calls in flight wait for
    their timeout instead of failing at once; the next confirmed request fails at
    once again.

    Example::

        routes = KnownRoutes(ttl=5.0)
        routes.confirmed(("amqp://…", "nameko-rpc", "identity"))
        routes.known(("amqp://…", "nameko-rpc", "identity"))  # True for 5 s
    """

    def __init__(self, ttl: float = 5.0, clock=time.monotonic):
        self.ttl = ttl
        self._clock = clock
        self._until: dict[tuple, float] = {}

    def known(self, route: tuple) -> bool:
        return self._until.get(route, 0.0) > self._clock()

    def confirmed(self, route: tuple) -> None:
        self._until[route] = self._clock() + self.ttl

    def forget(self, route: tuple) -> None:
        self._until.pop(route, None)


KNOWN_ROUTES = KnownRoutes()


class RpcPublisher(Publisher):
    """nameko's ``Publisher`` for RPC requests and replies, in fewer steps per message.

    nameko's ``publish`` merges its options into fresh dicts and enters a context
    manager to find the pool; kombu's ``Producer.publish`` then sorts its arguments
    again, encodes a body that may already be encoded and checks for a batch in a
    green-thread-local. For the one shape an RPC message has (a routing key, an
    exchange object, a correlation id, headers, maybe ``mandatory`` and an encoded
    body) this does kombu's ``_publish`` itself: the same ``Message`` (body,
    priority, content type and encoding, headers, delivery mode, reply-to,
    correlation id), the same declarations before it, the same
    ``Connection.ensure`` retry policy around both, the same pool, and nameko's
    ``UndeliverableMessage`` for a ``NO_ROUTE`` return. ~15 µs less per message
    (~90 µs in all, most of it amqp's framing and the socket). Any other shape goes
    through nameko's own ``publish``.

    Example::

        RpcPublisher(uri, exchange=get_rpc_exchange(), reply_to="k").publish(
            {"args": [], "kwargs": {}}, routing_key="identity.health", mandatory=True, correlation_id="c")
    """

    ONE_SHAPE = frozenset({"routing_key", "mandatory", "correlation_id", "extra_headers", "exchange",
                           "content_type", "content_encoding", "serializer"})

    def publish(self, payload, **kwargs):
        exchange = kwargs.get("exchange", self.publish_kwargs.get("exchange"))
        if not (kwargs.keys() <= self.ONE_SHAPE and self.publish_kwargs.keys() <= {"exchange", "reply_to"}
                and isinstance(exchange, Exchange) and self.retry
                and self.compression is None and self.expiration is None):
            return super().publish(payload, **kwargs)
        content_type, content_encoding, body = encoded(payload, kwargs.get("content_type"),
                                                       kwargs.get("content_encoding"),
                                                       kwargs.get("serializer", self.serializer))
        properties = {"delivery_mode": maybe_delivery_mode(self.delivery_mode or exchange.delivery_mode),
                      "correlation_id": kwargs.get("correlation_id")}
        if "reply_to" in self.publish_kwargs:
            properties["reply_to"] = self.publish_kwargs["reply_to"]
        headers = dict(kwargs.get("extra_headers") or {})
        mandatory = kwargs.get("mandatory", self.mandatory)
        routing_key = kwargs.get("routing_key") or ""
        self.transport_options["confirm_publish"] = self.use_confirms  # as nameko's publish does
        route = (self.amqp_uri, exchange.name, routing_key.partition(".")[0])
        if mandatory and self.use_confirms and KNOWN_ROUTES.known(route):
            # A request to a service whose queue the broker confirmed moments ago: no
            # confirm, so not mandatory either (a return would come unasked, and be read
            # by whoever next waits on that connection).
            options = {**self.transport_options, "confirm_publish": False}
            pool = producer_pool(self.amqp_uri, False, self.ssl, self.login_method, options)
            with pool.acquire(block=True) as producer:
                self._publish_with(producer, body, content_type, content_encoding, headers, properties,
                                   exchange.name, routing_key, mandatory=False)
            return
        pool = producer_pool(self.amqp_uri, self.use_confirms, self.ssl, self.login_method, self.transport_options)
        with pool.acquire(block=True) as producer:
            try:
                self._publish_with(producer, body, content_type, content_encoding, headers, properties,
                                   exchange.name, routing_key, mandatory=mandatory)
            except UndeliverableMessage:
                KNOWN_ROUTES.forget(route)
                raise
        if mandatory and self.use_confirms:
            KNOWN_ROUTES.confirmed(route)
        if mandatory and not self.use_confirms:
            warnings.warn("Mandatory delivery was requested, but unroutable messages cannot be "
                          "detected without publish confirms enabled.")

    def _publish_with(self, producer, body, content_type, content_encoding, headers, properties,
                      exchange_name, routing_key, mandatory):
        """kombu's ``Producer.publish(..., retry=True)`` for an encoded body, on a pooled producer."""
        retry_policy = self.retry_policy
        declare = self.declare

        def send():
            channel = producer.channel  # a new channel after ensure() reconnected
            message = channel.prepare_message(body, self.priority, content_type, content_encoding,
                                              headers, properties)
            for entity in declare:
                if not already_declared(entity, channel):
                    producer.maybe_declare(entity, retry=True, **retry_policy)
            return channel.basic_publish(message, exchange=exchange_name, routing_key=routing_key,
                                         mandatory=mandatory, immediate=False, timeout=None, confirm_timeout=None)

        producer.connection.transport_options.update(retry_policy)  # as kombu's publish does
        try:
            producer.connection.ensure(producer, send, **retry_policy)()
        except ChannelError as exc:
            if "NO_ROUTE" in str(exc):
                raise UndeliverableMessage()
            raise


def already_declared(entity, channel) -> bool:
    """True when kombu's ``maybe_declare`` would find ``entity`` declared on ``channel``'s connection.

    The very test kombu's ``_maybe_declare`` makes (a cacheable entity whose hash the
    connection remembers), made before kombu binds the entity and wraps the check in
    a retry policy (~3% of the gateway's CPU for a check that does no I/O). Anything
    else (not cacheable, not declared yet, a closed channel) goes through kombu.

    Example: already_declared(reply_queue, producer.channel)
    """
    connection = getattr(channel, "connection", None)
    if connection is None or not entity.can_cache_declaration:
        return False
    return hash(entity) in connection.client.declared_entities


def encoded(body, content_type=None, content_encoding=None, serializer=None):
    """(content type, content encoding, body) as kombu's ``Producer._prepare`` makes them (no compression).

    Example: encoded({"a": 1}, serializer="json") == ("application/json", "utf-8", '{"a": 1}')
    """
    if not content_type:
        return dumps(body, serializer)
    if isinstance(body, str):
        content_encoding = content_encoding or "utf-8"
        return content_type, content_encoding, body.encode(content_encoding)
    return content_type, content_encoding or "binary", body


def reply_routing_key(service: str, reply_id: str) -> str:
    """The routing key a service's replies come back with: ``reply-<service>-<uuid>``.

    nameko binds a reply queue with the bare uuid; a service that learned it (it is the
    ``reply_to`` of every request sent to it) could bind a queue of its own with it and
    copy every reply its caller gets from others. Named after the caller, the broker's
    topic permissions let only the caller's own user bind it (:mod:`weintervene.broker`).
    One word (no dot), so it never matches a service's ``<service>.*`` request binding.

    Example: reply_routing_key("gateway", "0b6f…") -> "reply-gateway-0b6f…"
    """
    return f"reply-{service}-{reply_id}"


class ReplyListener(nameko_rpc.ReplyListener):
    """nameko's reply listener, failing the calls whose replies were lost instead of dying,
    with its replies routed by a key named after its service (:func:`reply_routing_key`)."""

    def setup(self):
        super().setup()
        # nameko made the queue and its consumer with a bare uuid as the routing key; the same
        # queue, bound with the service's own key instead (no green-thread switch in between:
        # nobody saw the first key).
        service = self.container.service_name
        reply_id = self.queue.name[len(f"rpc.reply-{service}-"):]
        self.routing_key = reply_routing_key(service, reply_id)
        self.queue = Queue(self.queue.name, exchange=self.queue.exchange, routing_key=self.routing_key,
                           queue_arguments=self.queue.queue_arguments)
        self.consumer.queues = [self.queue]

    def check_for_lost_replies(self):
        if not self.pending:
            return
        try:
            # A connection of its own: a passive declare that fails closes its channel,
            # which must not be a pooled connection's channel that others use next.
            with Connection(self.amqp_uri, ssl=config.get(AMQP_SSL_CONFIG_KEY)) as conn:
                self.queue.bind(conn).queue_declare(passive=True)
        except NotFound:
            self.fail_pending_calls()

    def fail_pending_calls(self) -> int:
        """Raise ReplyQueueExpiredWithPendingReplies in every waiting caller; returns how many."""
        lost, self.pending = self.pending, {}
        log.warning("%s: the reply queue was gone on reconnecting; failing %d call(s) whose replies are lost",
                    self.container.service_name, len(lost))
        for correlation_id, reply_event in lost.items():
            if not reply_event.ready():
                reply_event.send_exception(
                    ReplyQueueExpiredWithPendingReplies(f"reply lost for correlation id {correlation_id}"))
        return len(lost)


class ReplyQueueOncePerConnection(Queue):
    """A reply queue whose declaration kombu may remember for the life of a connection.

    Bound once per channel: before every request kombu binds the queue to the
    producer's channel to see whether it is declared there, and binding copies the
    queue and its exchange (kombu's ``Object.__copy__`` rebuilds them through
    ``as_dict``), ~4% of a caller's CPU. The copy bound to a channel is kept on that
    channel (so it goes with it) and handed out again while it is still bound to it;
    kombu then finds the declaration remembered as before, or declares it on a new
    connection as before.
    """

    @property
    def can_cache_declaration(self) -> bool:
        return True

    def bind(self, channel):
        copies = getattr(channel, "__dict__", None)
        if copies is None:  # not a channel object: kombu's own way
            return super().bind(channel)
        copies = copies.setdefault("weintervene_bound_reply_queues", {})
        bound = copies.get(self)
        if bound is None or bound._channel is not channel:
            bound = copies[self] = super().bind(channel)
        return bound

    @classmethod
    def like(cls, queue: Queue) -> "ReplyQueueOncePerConnection":
        return cls(queue.name, exchange=queue.exchange, routing_key=queue.routing_key,
                   queue_arguments=queue.queue_arguments)


class _RequestOptions:
    """Mixin for nameko's RPC dependency providers: transient requests, reply queue declared once."""

    def __init__(self, *args, **publisher_options):
        publisher_options.setdefault("delivery_mode", NON_PERSISTENT)
        super().__init__(*args, **publisher_options)

    def setup(self):
        super().setup()
        self.publisher.declare = [ReplyQueueOncePerConnection.like(self.reply_listener.queue)]


class ClusterRpc(_RequestOptions, nameko_rpc.ClusterRpc):
    """``ClusterRpc()``: call any service, ``self.cluster_rpc.identity.health()``."""

    publisher_cls = RpcPublisher
    reply_listener = ReplyListener()


class ServiceRpc(_RequestOptions, nameko_rpc.ServiceRpc):
    """``ServiceRpc("identity")``: call one service, ``self.identity_rpc.health()``."""

    publisher_cls = RpcPublisher
    reply_listener = ReplyListener()
