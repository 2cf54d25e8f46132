"""Every place WeIntervene extends nameko or kombu, and what each one buys.

Written against **nameko 3.0.0rc11, kombu 5.7.0, amqp 5.4.2, eventlet 0.41.3** (the pins
in ``pyproject.toml``; ``tests/unit/test_library_versions.py`` fails when the installed
versions differ, so an upgrade is a decision: read nameko's ``rpc.py``, ``messaging.py``,
``events.py``, ``amqp/consume.py`` and ``amqp/publish.py`` again against what follows, then
move the pins). Everything here goes through nameko's and kombu's public extension
points: subclasses that set a class attribute nameko reads (``consumer_cls``,
``publisher_cls``, ``rpc_consumer``, ``reply_listener``) or override a method of the
class's documented behaviour (``setup``, ``check_signature``, ``handle_result``,
``ack_message``). Nothing assigns to a library's module or class, nothing reads a private
attribute (``tests/unit/test_no_third_party_rebinding.py`` checks the first for the whole
repository).

Kept because they are needed for correctness or are the product's own rules:

* :class:`ReplyListener` - a lost reply fails its calls instead of killing the service,
  and replies are routed by a key named after the caller (broker topic permissions).
* :class:`LostAcksTolerated` (in :class:`TolerantConsumer`, the reply listener's
  consumer, :class:`EventHandler`) - acknowledging over a socket that just died does not
  kill the container.
* :class:`Rpc` / :class:`RpcConsumer` - the caller's signed context is verified before a
  method runs; a database that refuses work answers 503, not 500; expected errors.

Kept because they were measured to buy ≥ 5 % of the share path's CPU or more
(``python -m bench rpc`` / ``python -m bench referrals``, figures in docs/FOUNDATIONS.md,
"nameko and kombu"):

* :class:`ReplyQueueOncePerConnection` - the reply queue declared once per connection,
  not three broker round trips before every request (``bench rpc``: +51-56 % CPU per call
  without it).
* :class:`RequestPublisher` with :class:`KnownRoutes` - a request confirmed once per route
  per 5 s, not every time (``bench referrals``: ~13 % of the share path's CPU); and requests
  transient (correctness: no late duplicate shares after a broker restart).
* :class:`ReplyPublisher` - replies transient and without a publisher confirm (nameko's own
  class attributes, no code redone).

Removed (no gain of 5 % measured for any; the figures are in docs/FOUNDATIONS.md): the
rebinding of nameko's ``get_producer`` to find kombu's producer pools once (re-added as a
subclass, it showed no gain in its one run), our own copy of kombu's ``_publish``, the channel-bound reply-queue copy, the
responder's single encoding, the routing-key dict (nameko's private ``_providers``), the
signature computed once, starting a worker without nameko's waiting thread (its private
``_worker_pool``).

Example::

    from weintervene.nameko_extensions import ServiceRpc, rpc

    class ReferralsService:
        name = "referrals"
        identity = ServiceRpc("identity")

        @rpc
        def share(self, auth, data):
            return self.identity.share_context(auth, data["student_id"], [], [])
"""
from __future__ import annotations

import inspect
import logging
import time

from amqp.exceptions import NotFound
from kombu import Connection, Queue
from nameko import config
from nameko import events as nameko_events
from nameko import rpc as nameko_rpc
from nameko.amqp.consume import Consumer
from nameko.amqp.publish import Publisher, UndeliverableMessage
from nameko.constants import AMQP_SSL_CONFIG_KEY, DEFAULT_TRANSPORT_OPTIONS, LOGIN_METHOD_CONFIG_KEY, NON_PERSISTENT
from nameko.exceptions import ReplyQueueExpiredWithPendingReplies

from weintervene import error_logging
from weintervene.context_signing import verify_context, verify_contexts
from weintervene.db import database_refusal
from weintervene.errors import Unauthorized, WeInterveneError

log = logging.getLogger(__name__)

# The versions this module was written against (also the pins; see the module docstring).
WRITTEN_AGAINST = {"nameko": "3.0.0rc11", "kombu": "5.7.0", "amqp": "5.4.2", "eventlet": "0.41.3"}

# A caller's mistake (a 4xx) is logged by nameko on one line, without a traceback (a
# logging.Filter on nameko's container logger: the logging module's own extension point).
error_logging.install()


# -- consuming: acknowledgements over a connection that just died ------------------------------

class LostAcksTolerated:
    """Mixin for nameko's ``Consumer`` (nameko 3.0.0rc11): settling a message over a dead socket
    is logged, not raised.

    nameko skips the ack when it knows the message's connection is gone and ignores amqp's
    ``ConnectionError``, but a socket that died before the consumer noticed raises
    ``ConnectionResetError`` / ``BrokenPipeError`` from the worker, and nameko then kills the
    whole container (the process lives on, the service is gone). Seen in
    ``tests/integration/test_retention_broker_restart.py``: a deletion that finished while
    the broker restarted killed referrals. The broker already put such a message back (it
    was never acknowledged), so it is redelivered, and every handler here is idempotent.
    Needed for correctness; costs nothing on the happy path (one ``try``).

    Example: class TolerantConsumer(LostAcksTolerated, nameko.amqp.consume.Consumer): ...
    """

    def ack_message(self, message):
        try:
            super().ack_message(message)
        except OSError as exc:  # ConnectionResetError, BrokenPipeError: the socket died
            log.warning("could not acknowledge a message, its broker connection is gone (%s); "
                        "the broker puts it back for redelivery", exc)

    def requeue_message(self, message):
        try:
            super().requeue_message(message)
        except OSError as exc:
            log.warning("could not requeue a message, its broker connection is gone (%s); "
                        "the broker puts it back for redelivery", exc)


class TolerantConsumer(LostAcksTolerated, Consumer):
    """nameko's consumer of a queue (RPC requests, events), tolerating lost acks."""


# -- queues: the one place their arguments come from -------------------------------------------

def durable_queue_arguments() -> dict:
    """The arguments every durable queue we consume is declared with: each service's RPC
    request queue (:class:`RpcConsumer`) and every event queue (:class:`EventHandler`, and
    :func:`weintervene.messaging.declare_topology`, which declares them before any consumer
    starts). None today (classic queues); quorum queues would be ``{"x-queue-type": "quorum"}``
    here, and nowhere else. Reply queues are not durable and keep nameko's ``x-expires``.

    Example: Queue("evt-…", exchange=…, durable=True, queue_arguments=durable_queue_arguments())
    """
    return {}


def with_durable_arguments(queue: Queue) -> Queue:
    """``queue`` as nameko made it, plus :func:`durable_queue_arguments` when it is durable."""
    if not queue.durable:
        return queue
    return Queue(queue.name, exchange=queue.exchange, routing_key=queue.routing_key, durable=True,
                 auto_delete=queue.auto_delete, exclusive=queue.exclusive,
                 queue_arguments={**(queue.queue_arguments or {}), **durable_queue_arguments()})


def consumer_like(made: Consumer, queues: list, *leading) -> Consumer:
    """A consumer of ``queues`` made as nameko made ``made`` (same class, connection, options):
    how an extension changes the queue nameko's ``setup`` put in a consumer, without assigning
    to the consumer nameko made. ``leading``: the class's own first arguments (the reply
    consumer's lost-replies check)."""
    return type(made)(*leading, made.amqp_uri, ssl=made.ssl, login_method=made.login_method, queues=queues,
                      callbacks=made.callbacks, heartbeat=made.heartbeat, prefetch_count=made.prefetch_count,
                      accept=made.accept, **made.consumer_options)


class EventHandler(nameko_events.EventHandler):
    """nameko's ``event_handler``, its consumer tolerating lost acks (:class:`LostAcksTolerated`),
    its queue declared with :func:`durable_queue_arguments` when durable.

    Example::

        @event_handler("retention", "deletion_requested", handler_type=SERVICE_POOL, reliable_delivery=True)
        def on_deletion_requested(self, payload): ...
    """

    consumer_cls = TolerantConsumer

    def setup(self):
        super().setup()
        self.queue = with_durable_arguments(self.queue)
        self.consumer = consumer_like(self.consumer, [self.queue])


event_handler = EventHandler.decorator


# -- RPC clients --------------------------------------------------------------------------------

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


class ReplyQueueOncePerConnection(Queue):
    """A reply queue whose declaration kombu may remember for the life of a connection
    (kombu 5.7.0's ``can_cache_declaration``, overridden).

    nameko passes its reply queue to the publisher's ``declare`` list; because that queue
    has an ``x-expires`` argument, kombu will not cache the declaration, so every request
    sent ``exchange.declare``, ``queue.declare`` and ``queue.bind`` and waited for each
    answer before publishing. With this, kombu declares it once per connection (and again
    on a new one: kombu forgets its declarations when it reconnects), and the reply
    listener declares it whenever it reconnects, so a queue that expired while the service
    was cut off is back before the next request.
    Measured: see docs/FOUNDATIONS.md ("nameko and kombu").

    Example: ReplyQueueOncePerConnection("rpc.reply-gateway-…", exchange=rpc_exchange, routing_key=key,
    queue_arguments={"x-expires": 300000})
    """

    @property
    def can_cache_declaration(self) -> bool:
        return True


class ReplyConsumer(LostAcksTolerated, nameko_rpc.ReplyListener.ReplyConsumer):
    """nameko's reply consumer (it checks for lost replies on every connect), tolerating lost acks."""


class ReplyListener(nameko_rpc.ReplyListener):
    """nameko's reply listener (nameko 3.0.0rc11), failing the calls whose replies were lost
    instead of dying, with its replies routed by a key named after its service.

    nameko's listener checks, each time it (re)connects, whether its reply queue still exists
    while calls wait for replies; if not, it raises ``ReplyQueueExpiredWithPendingReplies``
    in its consumer thread and nameko kills the whole container: the service stays down in
    a process that looks alive (seen in ``tests/integration/test_retention_broker_restart.py``:
    the gateway died when a request arrived while it was starting). Here those calls fail
    (the gateway answers 503) and the listener goes on consuming from its re-declared queue.
    Needed for correctness.

    Example: class GatewayService: cluster_rpc = ClusterRpc()  # its reply_listener is this one
    """

    consumer_cls = ReplyConsumer

    def setup(self):
        super().setup()
        # nameko made the queue with a bare uuid as its routing key: the same queue, bound
        # with the service's own key instead, and cacheable (ReplyQueueOncePerConnection); its
        # consumer made again around it (no green-thread switch in between: nobody saw the
        # first queue; ClusterRpc.setup reads ``self.queue`` and ``routing_key`` next).
        service = self.container.service_name
        reply_id = self.queue.name[len(f"rpc.reply-{service}-"):]
        self.routing_key = reply_routing_key(service, reply_id)
        self.queue = ReplyQueueOncePerConnection(self.queue.name, exchange=self.queue.exchange,
                                                 routing_key=self.routing_key,
                                                 queue_arguments=self.queue.queue_arguments)
        self.consumer = consumer_like(self.consumer, [self.queue], self.check_for_lost_replies)

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


class KnownRoutes:
    """Services whose request queue the broker confirmed lately, per broker, exchange and service.

    Once the broker has confirmed a request to a service, its queue is there: RPC queues are
    durable and outlive their consumers and restarts. So for ``ttl`` seconds after a confirmed
    request, requests to that service go out unconfirmed (and so not ``mandatory``: a return
    nobody waits for would be read by whoever next waits on that connection); one request in
    each ``ttl`` confirms the route again. What it gives up: a queue deleted by hand within
    those seconds makes the calls in flight wait for their timeout instead of failing at once.

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


class RequestPublisher(Publisher):
    """nameko's publisher for RPC requests: transient, and confirmed once per route per 5 s.

    Transient (``delivery_mode=1``): a persistent request is written to disk by the broker;
    it would only matter if the broker restarted with the request still queued, and then the
    request would run after its caller had given up (the caller's reply queue is gone with
    the restart): a teacher whose share "failed" and who tries again would send the family
    the same share twice. Needed for correctness; a class attribute nameko documents.

    Confirmed once per :class:`KnownRoutes` lifetime: nameko publishes every request
    ``mandatory`` and waits for the broker's confirm, so that a call to a service whose queue
    does not exist fails at once (``UnknownService``). After one confirmed request to a
    service, the next ones for 5 s go out through nameko's own ``publish`` with
    ``use_confirms=False, mandatory=False`` (its documented per-call options) and a
    transport-options dict of their own (nameko writes ``confirm_publish`` into the one it is
    given). Measured (``python -m bench referrals``, A/B in the same
    hour, load 6-8): without it the services cost 4.88 ms per share against 4.25 with it, ~13 %
    of the share path's CPU (the broker's 1.02 against 0.78 ms).

    Example: ClusterRpc.publisher_cls is RequestPublisher
    """

    delivery_mode = NON_PERSISTENT

    def publish(self, payload, **kwargs):
        exchange = kwargs.get("exchange", self.publish_kwargs.get("exchange"))
        routing_key = kwargs.get("routing_key") or ""
        route = (self.amqp_uri, getattr(exchange, "name", exchange), routing_key.partition(".")[0])
        mandatory = kwargs.get("mandatory", self.mandatory)
        confirms = kwargs.get("use_confirms", self.use_confirms)
        if mandatory and confirms and KNOWN_ROUTES.known(route):
            kwargs.update(mandatory=False, use_confirms=False,
                          transport_options={**self.transport_options, "confirm_publish": False})
            return super().publish(payload, **kwargs)
        try:
            super().publish(payload, **kwargs)
        except UndeliverableMessage:
            KNOWN_ROUTES.forget(route)
            raise
        if mandatory and confirms:
            KNOWN_ROUTES.confirmed(route)


class ClusterRpc(nameko_rpc.ClusterRpc):
    """``ClusterRpc()``: call any service, ``self.cluster_rpc.identity.health()``."""

    publisher_cls = RequestPublisher
    reply_listener = ReplyListener()


class ServiceRpc(nameko_rpc.ServiceRpc):
    """``ServiceRpc("identity")``: call one service, ``self.identity_rpc.health()``."""

    publisher_cls = RequestPublisher
    reply_listener = ReplyListener()


# -- RPC entrypoints ----------------------------------------------------------------------------

class ReplyPublisher(Publisher):
    """nameko's publisher for RPC replies, transient and without a publisher confirm.

    A reply goes to the caller's own transient reply queue; nameko published it with a
    confirm, so the worker waited one more broker round trip before acknowledging the
    request. A confirm there protects nothing: if the broker loses the reply, the caller's
    reply queue is gone with it and the caller times out either way. Requests keep theirs.
    Measured: see docs/FOUNDATIONS.md ("nameko and kombu").

    Example: Responder.publisher_cls is ReplyPublisher
    """

    use_confirms = False
    delivery_mode = NON_PERSISTENT
    # A dict of its own: nameko's ``publish`` writes ``confirm_publish`` into the class's
    # transport options, and kombu's connection pools are keyed by them. A dict shared with
    # the requests' publisher, flipped between False (replies) and True (requests), would
    # change the key of every pooled connection under the pools' feet.
    transport_options = {**DEFAULT_TRANSPORT_OPTIONS, "confirm_publish": False}


class Responder(nameko_rpc.Responder):
    """nameko's responder, publishing through :class:`ReplyPublisher`."""

    publisher_cls = ReplyPublisher


class RpcConsumer(nameko_rpc.RpcConsumer):
    """nameko's consumer of a service's RPC queue, replying through :class:`Responder`,
    tolerating lost acks, and answering a database's refusal as ``Unavailable`` (503).

    Example: class Rpc(nameko.rpc.Rpc): rpc_consumer = RpcConsumer()
    """

    consumer_cls = TolerantConsumer

    def setup(self):
        super().setup()
        self.queue = with_durable_arguments(self.queue)
        self.consumer = consumer_like(self.consumer, [self.queue])

    def handle_result(self, message, result, exc_info):
        # nameko's own (which builds nameko's Responder by name), with the Responder above; a
        # database that refused the work for now answers Unavailable (503), not an unmapped
        # error (500).
        refusal = database_refusal(exc_info[1]) if exc_info is not None else None
        if refusal is not None:
            exc_info = (type(refusal), refusal, exc_info[2])
        responder = Responder(self.amqp_uri, nameko_rpc.get_rpc_exchange(), message,
                              ssl=config.get(AMQP_SSL_CONFIG_KEY),
                              login_method=config.get(LOGIN_METHOD_CONFIG_KEY))
        result, exc_info = responder.send_response(result, exc_info)
        self.consumer.ack_message(message)
        return result, exc_info


class Rpc(nameko_rpc.Rpc):
    """nameko's ``rpc`` entrypoint, verifying the caller's signed context before the method runs.

    A method whose first parameter is named ``auth`` gets it only if the gateway's
    signature on it holds (:mod:`weintervene.context_signing`; ``None``, an anonymous
    caller, passes), and ``@rpc(signed_contexts=fn)`` names contexts carried inside the
    arguments (``fn(args, kwargs)`` -> the contexts). An unsigned, altered or expired
    context is answered 401 ``not_authenticated`` and the method never runs. The check is
    made in ``check_signature``, which nameko calls before it spawns the worker; what it
    raises is answered as an error reply and the request acknowledged, as nameko does for
    arguments that do not fit.

    Example: @rpc def authenticate(self, token): ...
    """

    rpc_consumer = RpcConsumer()

    takes_auth = False  # until setup: whether the method's first parameter is ``auth``

    def __init__(self, expected_exceptions=(), signed_contexts=None, **kwargs):
        self.signed_contexts = signed_contexts
        super().__init__(expected_exceptions=expected_exceptions, **kwargs)

    def setup(self):
        super().setup()
        parameters = list(inspect.signature(getattr(self.container.service_cls, self.method_name)).parameters)
        self.takes_auth = len(parameters) > 1 and parameters[1] == "auth"  # [0] is self

    def check_signature(self, args, kwargs):
        super().check_signature(args, kwargs)
        self.verify_caller(args, kwargs)

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


def rpc(fn=None, **kwargs):
    """Every service's ``@rpc``: :class:`Rpc`, with our errors expected (logged as warnings).

    Example: @rpc(signed_contexts=lambda args, kwargs: [c["auth"] for c in args[0]]) def share_contexts(...)
    """
    kwargs.setdefault("expected_exceptions", (WeInterveneError,))
    if fn is None:
        return Rpc.decorator(**kwargs)
    return Rpc.decorator(**kwargs)(fn)
