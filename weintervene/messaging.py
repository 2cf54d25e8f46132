"""Reliable events: declared topology, a transactional outbox, idempotent consumers.

Publishing side: a service writes its row and an :class:`OutboxMessage` in one
transaction (``outbox_add``); the relay (a nameko timer calling
:func:`relay_outbox`) publishes pending messages persistently, with publisher
confirms and ``mandatory=True``, and marks them sent. A broker outage only
delays; a crash between publish and mark re-publishes, which consumers absorb.

Consuming side: :func:`first_deliveries` records the event id in the same
transaction as the effect, so a redelivered or duplicated event changes nothing.

Example::

    class ReferralsService(OutboxRelay):
        name = "referrals"
        db = Database("referrals", Base)
        outbox_model = OutboxMessage          # from make_outbox_models(Base)
        events = ReliablePublisher()

        @rpc
        def share(self, auth, data):
            self.db.add(share)
            outbox_add(self.db, OutboxMessage, SHARE_RECORDED, ShareRecorded().dump(evt))
            self.db.commit()                  # both or neither
"""
from __future__ import annotations

import logging
from datetime import timedelta

from kombu import Exchange, Queue
from kombu.exceptions import OperationalError
from nameko import config as nameko_config
from nameko.amqp.publish import Publisher, UndeliverableMessage
from nameko.amqp.publish import get_connection
from nameko.extensions import DependencyProvider
from nameko.timer import timer
from prometheus_client import Counter
from sqlalchemy import Integer, String, Text, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from weintervene.config import settings
from weintervene.contracts import SUBSCRIPTIONS, queue_name
from weintervene.db import JSONType, UTCDateTime, new_id, utcnow

log = logging.getLogger(__name__)

OUTBOX_PUBLISHED = Counter(
    "weintervene_outbox_published_total", "Outbox messages published", ["service", "event_type"]
)
OUTBOX_FAILED = Counter(
    "weintervene_outbox_publish_failures_total", "Outbox publish attempts that failed", ["service"]
)


def _settle_unless_the_connection_died(settle):
    """Wrap nameko's ``Consumer.ack_message`` / ``requeue_message`` (``settle``)."""

    def settle_message(consumer, message):
        try:
            settle(consumer, message)
        except OSError as exc:  # ConnectionResetError, BrokenPipeError: the socket died
            log.warning("could not settle a message, its broker connection is gone (%s); "
                        "the broker puts it back for redelivery", exc)

    settle_message.__name__ = settle.__name__
    settle_message.__wrapped__ = settle
    settle_message.weintervene_tolerant = True
    return settle_message


def tolerate_lost_acks() -> None:
    """Make nameko's consumers survive acknowledging over a connection that just died.

    nameko skips the ack when the message's connection is gone and ignores amqp's
    ``ConnectionError``, but a socket that died before the consumer noticed raises
    ``ConnectionResetError`` / ``BrokenPipeError`` from the worker, and nameko then
    kills the whole container (the process lives on, the service is gone). Seen in
    the broker-restart test: a deletion that finished while the broker restarted
    killed referrals. The broker already put such a message back (it was never
    acknowledged), so it is redelivered, and every handler here is idempotent.
    Applied once, to the base class every nameko consumer (RPC, events, replies) uses.

    Example: tolerate_lost_acks()  # at import of this module
    """
    from nameko.amqp.consume import Consumer

    for name in ("ack_message", "requeue_message"):
        method = getattr(Consumer, name)
        if not getattr(method, "weintervene_tolerant", False):
            setattr(Consumer, name, _settle_unless_the_connection_died(method))


tolerate_lost_acks()


def event_exchange(source: str) -> Exchange:
    """nameko's topic exchange for ``source``'s events (durable)."""
    return Exchange(f"{source}.events", type="topic", durable=True, auto_delete=False)


def declare_topology(amqp_uri: str | None = None) -> list[str]:
    """Declare every events exchange and every durable consumer queue with its binding.

    Run at start-up by ``weintervene run`` and by every publisher, so a message
    published before its consumer ever started waits in the consumer's queue.
    Returns the queue names.
    """
    amqp_uri = amqp_uri or nameko_config["AMQP_URI"]
    names = []
    with get_connection(amqp_uri) as conn:
        channel = conn.channel()
        for (source, event_type), consumers in SUBSCRIPTIONS.items():
            exchange = event_exchange(source)
            exchange(channel).declare()
            for consumer, method in consumers:
                name = queue_name(source, event_type, consumer, method)
                Queue(name, exchange=exchange, routing_key=event_type, durable=True)(channel).declare()
                names.append(name)
        channel.close()
    return names


class ReliablePublisher(DependencyProvider):
    """Publish this service's events persistently, confirmed, and never into the void.

    ``mandatory=True`` turns an unroutable message (no queue bound) into an
    error instead of a silent drop; the topology is declared at setup so the
    consumers' queues exist.
    """

    def setup(self):
        self.exchange = event_exchange(self.container.service_name)
        self.amqp_uri = nameko_config["AMQP_URI"]
        self.publisher = Publisher(
            self.amqp_uri,
            serializer="json",
            use_confirms=True,
            delivery_mode=2,
            mandatory=True,
            declare=[self.exchange],
        )

    def start(self):
        try:
            declare_topology(self.amqp_uri)
        except (OperationalError, OSError) as exc:  # broker down: the relay will retry
            log.warning("could not declare topology yet: %s", exc)

    def publish(self, event_type: str, payload: dict, message_id: str) -> None:
        self.publisher.publish(
            payload,
            exchange=self.exchange,
            routing_key=event_type,
            message_id=message_id,
            retry=False,
        )

    def get_dependency(self, worker_ctx):
        return self


def make_outbox_model(base):
    """The outbox table in one service's own database."""

    class OutboxMessage(base):
        __tablename__ = "outbox_message"
        id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
        event_type: Mapped[str] = mapped_column(String(64))
        payload: Mapped[dict] = mapped_column(JSONType)
        created_at = mapped_column(UTCDateTime, default=utcnow, index=True)
        published_at = mapped_column(UTCDateTime, nullable=True, index=True)
        attempts: Mapped[int] = mapped_column(Integer, default=0)
        last_error: Mapped[str | None] = mapped_column(Text, nullable=True)

    return OutboxMessage


def make_processed_event_model(base):
    """Event ids already applied by this consumer (exactly-once effect)."""

    class ProcessedEvent(base):
        __tablename__ = "processed_event"
        event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
        processed_at = mapped_column(UTCDateTime, default=utcnow)

    return ProcessedEvent


def outbox_add(session, model, event_type: str, payload: dict):
    """Stage an event in the caller's transaction; it is sent after commit."""
    message = model(id=new_id(), event_type=event_type, payload=payload)
    session.add(message)
    return message


def relay_outbox(session, model, publisher: ReliablePublisher, service: str, batch: int = 200) -> int:
    """Publish pending outbox rows in order; returns how many were sent.

    Rows are locked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) so two instances
    never relay the same row at once.
    """
    query = (
        select(model)
        .where(model.published_at.is_(None))
        .order_by(model.created_at)
        .limit(batch)
    )
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    sent = 0
    for message in session.scalars(query).all():
        try:
            publisher.publish(message.event_type, message.payload, message.id)
        except (OperationalError, OSError, UndeliverableMessage, ConnectionError) as exc:
            message.attempts += 1
            message.last_error = str(exc)[:500]
            OUTBOX_FAILED.labels(service).inc()
            break
        message.published_at = utcnow()
        message.attempts += 1
        OUTBOX_PUBLISHED.labels(service, message.event_type).inc()
        sent += 1
    session.commit()
    return sent


def purge_published_outbox(session, model, older_than: timedelta, batch: int = 10_000) -> int:
    """Delete outbox rows published before ``now - older_than``; returns how many.

    A published row has done its work; kept, it is a copy of every event payload
    (tenant and referral ids) that nobody needs. Unpublished rows always stay. In
    batches, one commit each, so no transaction holds many rows.

    Example: purge_published_outbox(db, OutboxMessage, timedelta(days=7)) -> 1843
    """
    cutoff = utcnow() - older_than
    total = 0
    while True:
        ids = select(model.id).where(model.published_at.is_not(None), model.published_at < cutoff).limit(batch)
        n = session.execute(delete(model).where(model.id.in_(ids.scalar_subquery()))).rowcount
        session.commit()
        total += max(n or 0, 0)
        if not n or n < batch:
            return total


class OutboxRelay:
    """Mixin: relays the service's outbox twice a second, and purges what it published
    more than ``outbox_retention_days`` ago once an hour.

    The service defines ``db`` (a Database), ``events`` (a ReliablePublisher)
    and ``outbox_model``.
    """

    @timer(interval=0.5)
    def relay_outbox(self):
        relay_outbox(self.db, self.outbox_model, self.events, self.name)

    @timer(interval=3600.0)
    def purge_published_outbox(self):
        days = settings().outbox_retention_days
        n = purge_published_outbox(self.db, self.outbox_model, timedelta(days=days))
        if n:
            log.info("%s: purged %d outbox rows published over %s days ago", self.name, n, days)


def first_deliveries(session, model, event_ids) -> set[str]:
    """Record every event id in the current transaction; returns the ids not seen
    before. Apply the effects of only those, and commit both together.

    ``INSERT … ON CONFLICT DO NOTHING RETURNING``: a concurrent transaction
    inserting the same id makes this one wait for its outcome, then skip the id
    if it committed. Ids are inserted in sorted order, so two batches sharing ids
    wait on each other in one direction only (no deadlock).
    """
    ids = sorted({str(event_id) for event_id in event_ids})
    if not ids:
        return set()
    from sqlalchemy.dialects import postgresql, sqlite

    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[session.get_bind().dialect.name]
    now = utcnow()
    statement = (
        insert(model)
        .values([{"event_id": event_id, "processed_at": now} for event_id in ids])
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(model.event_id)
    )
    return set(session.scalars(statement))

