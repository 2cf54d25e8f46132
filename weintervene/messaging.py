"""Reliable events: declared topology, a transactional outbox, idempotent consumers.

Publishing side: a service writes its row and an :class:`OutboxMessage` in one
transaction (``outbox_add``); the relay (:func:`relay_outbox`, run by the
:class:`OutboxRelay` mixin) publishes pending messages persistently, with
``mandatory=True``, as one batch on a channel in confirm mode, waits for the
broker's confirms, and marks the confirmed ones sent with one UPDATE. A broker
outage only delays; a crash between publish and mark re-publishes, which
consumers absorb.

The relay runs when a transaction that staged an event commits (``outbox_add``
marks the session, and a commit wakes the relay of that outbox), and otherwise
every few seconds for anything left behind (a broker outage, another instance
that died). An idle service no longer polls twice a second.

Consuming side: :func:`event_handler` (nameko's, from :mod:`weintervene.nameko_extensions`:
an ack over a connection that just died does not kill the container) and
:func:`first_deliveries`, which records the event id in the same
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
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import eventlet
from eventlet.event import Event
from kombu import Connection, Exchange, Producer, Queue
from kombu.exceptions import OperationalError
from nameko import config as nameko_config
from nameko.amqp.publish import get_connection
from nameko.extensions import DependencyProvider, Entrypoint
from nameko.timer import timer
from prometheus_client import Counter
from sqlalchemy import Integer, String, Text, delete, event, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from weintervene.config import settings
from weintervene.contracts import BROADCASTS, SUBSCRIPTIONS, queue_name
from weintervene.db import JSONType, UTCDateTime, execute_then_commit, new_id, partial_index, utcnow
# The event consumers every service uses (nameko's, tolerating acks over a connection that just died).
from weintervene.nameko_extensions import EventHandler, durable_queue_arguments, event_handler  # noqa: F401

log = logging.getLogger(__name__)

OUTBOX_PUBLISHED = Counter(
    "weintervene_outbox_published_total", "Outbox messages published", ["service", "event_type"]
)
OUTBOX_FAILED = Counter(
    "weintervene_outbox_publish_failures_total", "Outbox publish attempts that failed", ["service"]
)


def event_exchange(source: str) -> Exchange:
    """nameko's topic exchange for ``source``'s events (durable)."""
    return Exchange(f"{source}.events", type="topic", durable=True, auto_delete=False)


def declare_topology(amqp_uri: str | None = None, connection: Connection | None = None,
                     sources=None) -> list[str]:
    """Declare every events exchange and every durable consumer queue with its binding
    (of the events of ``sources`` only, when given: a publisher declares those of its own
    events, which its own broker user may declare, ``weintervene.broker``).

    Run at start-up by ``weintervene run`` and by every publisher, so a message
    published before its consumer ever started waits in the consumer's queue.
    On ``connection`` when given (a publisher's fresh one: a pooled connection
    may be a dead one after a broker restart), else on a pooled connection.
    Returns the queue names.

    Example: declare_topology()  # -> the durable queue names, one per subscribing handler
    """
    if connection is None:
        with get_connection(amqp_uri or nameko_config["AMQP_URI"]) as pooled:
            return declare_topology(connection=pooled, sources=sources)
    names = []
    channel = connection.channel()
    for (source, event_type), consumers in SUBSCRIPTIONS.items():
        if sources is not None and source not in sources:
            continue
        exchange = event_exchange(source)
        exchange(channel).declare()
        for consumer, method in consumers:
            name = queue_name(source, event_type, consumer, method)
            Queue(name, exchange=exchange, routing_key=event_type, durable=True,
                  queue_arguments=durable_queue_arguments())(channel).declare()
            names.append(name)
    channel.close()
    return names


class PublishOutcome:
    """What the broker said about one batch: the ids it confirmed, and why the rest were not."""

    def __init__(self):
        self.confirmed: set[str] = set()
        self.refused: dict[str, str] = {}  # id -> reason (unroutable, nacked)
        self.error: str | None = None  # the connection failed: nothing unconfirmed is known


class ReliablePublisher(DependencyProvider):
    """Publish this service's events persistently, confirmed, and never into the void.

    ``mandatory=True`` turns an unroutable message (no queue bound) into a
    refusal instead of a silent drop; the topology is declared on each new
    connection so the consumers' queues exist.

    :meth:`publish_many` sends a whole batch on one channel in confirm mode and
    only then waits for the broker's confirms (one round trip for the batch, not
    one per message). The connection is kept between batches and dropped on any
    error, so the next batch starts on a fresh one.
    """

    confirm_timeout = 10.0

    def setup(self):
        self.exchange = event_exchange(self.container.service_name)
        self.amqp_uri = nameko_config["AMQP_URI"]
        self._connection: Connection | None = None
        self._channel = None
        self._producer: Producer | None = None
        # One batch at a time per instance; also what keeps two relays of one
        # process (a timer and a direct call) from publishing the same rows.
        self.relay_lock = threading.Lock()
        self._lock = threading.Lock()

    def start(self):
        try:
            declare_topology(self.amqp_uri, sources=(self.container.service_name,))
        except (OperationalError, OSError) as exc:  # broker down: the relay will retry
            log.warning("could not declare topology yet: %s", exc)

    def stop(self):
        self.close()

    def kill(self):
        self.close()

    def get_dependency(self, worker_ctx):
        return self

    def close(self) -> None:
        """Drop the connection (the next batch opens a new one)."""
        connection, self._connection, self._channel, self._producer = self._connection, None, None, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass

    def _ensure_channel(self):
        if self._channel is not None:
            return self._channel
        connection = Connection(self.amqp_uri, connect_timeout=5)
        try:
            connection.ensure_connection(max_retries=0)  # fail now; the relay decides when to retry
            declare_topology(connection=connection, sources=(self.container.service_name,))
            channel = connection.channel()
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            channel.events["basic_return"].add(self._on_return)
            producer = Producer(channel, exchange=self.exchange, serializer="json")
            self.exchange(channel).declare()
        except BaseException:
            connection.close()
            raise
        self._connection, self._channel, self._producer = connection, channel, producer
        self._next_tag = 1
        return channel

    # Confirms: delivery tags count publishes on the channel from 1, in order.
    def _on_ack(self, delivery_tag, multiple):
        for tag in self._settled(delivery_tag, multiple):
            message_id = self._pending.pop(tag)
            if message_id not in self._outcome.refused:
                self._outcome.confirmed.add(message_id)

    def _on_nack(self, delivery_tag, multiple):
        for tag in self._settled(delivery_tag, multiple):
            self._outcome.refused[self._pending.pop(tag)] = "the broker refused the message (nack)"

    def _on_return(self, exc, exchange, routing_key, message):
        # An unroutable mandatory message comes back before its ack.
        message_id = (getattr(message, "properties", None) or {}).get("message_id")
        if message_id:
            self._outcome.refused[message_id] = f"unroutable: {exc}"

    def _settled(self, delivery_tag, multiple):
        return sorted(t for t in self._pending if t <= delivery_tag) if multiple else [delivery_tag]

    def publish_many(self, messages) -> PublishOutcome:
        """Publish ``[(event_type, payload, message_id), ...]``; then wait for every confirm.

        Persistent, ``mandatory``, on this service's events exchange. Never
        raises for the broker's sake: a connection failure is reported in
        ``outcome.error`` and the unconfirmed messages are simply not in
        ``outcome.confirmed`` (the outbox keeps them for the next try).

        Example: publish_many([("share_recorded", {...}, "5f0e…")]).confirmed == {"5f0e…"}
        """
        with self._lock:
            self._outcome, self._pending = PublishOutcome(), {}
            outcome = self._outcome
            try:
                self._ensure_channel()
                with corked(self._connection.connection.sock):
                    for event_type, payload, message_id in messages:
                        self._pending[self._next_tag] = message_id
                        self._next_tag += 1
                        self._producer.publish(payload, routing_key=event_type, message_id=message_id,
                                               delivery_mode=2, mandatory=True, retry=False)
                deadline = time.monotonic() + self.confirm_timeout
                while self._pending:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise socket.timeout("no confirm from the broker in time")
                    self._connection.drain_events(timeout=remaining)
            except Exception as exc:  # noqa: BLE001 - reported; the outbox keeps the rows
                outcome.error = f"{type(exc).__name__}: {exc}"[:500]
                self.close()
            return outcome


@contextmanager
def corked(sock):
    """Hold back ``sock``'s partial TCP segments until the block ends (Linux ``TCP_CORK``),
    so a batch of messages leaves as a few full segments instead of one per message.

    On loopback each segment sent wakes the broker and runs its receive path in the
    sender's system time: publishing an outbox batch message by message spent more CPU
    in ``send`` than in building the messages. Where TCP_CORK does not exist this does
    nothing. Example: ``with corked(connection.sock): publish each message``.
    """
    cork = getattr(socket, "TCP_CORK", None)
    if cork is None or sock is None:
        yield
        return
    sock.setsockopt(socket.IPPROTO_TCP, cork, 1)
    try:
        yield
    finally:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, cork, 0)  # sends what is held back
        except OSError:  # the connection broke meanwhile: the publish error says so
            pass


def make_outbox_model(base):
    """The outbox table in one service's own database."""

    class OutboxMessage(base):
        __tablename__ = "outbox_message"
        id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
        event_type: Mapped[str] = mapped_column(String(64))
        payload: Mapped[dict] = mapped_column(JSONType)
        created_at = mapped_column(UTCDateTime, default=utcnow)
        published_at = mapped_column(UTCDateTime, nullable=True)
        attempts: Mapped[int] = mapped_column(Integer, default=0)
        last_error: Mapped[str | None] = mapped_column(Text, nullable=True)

        # Two partial indexes, each holding only the rows one query needs: the relay's
        # pending rows in created_at order (read in order, no sort), and the purges'
        # published rows by publication time. Marking a row published (never a HOT
        # update: published_at is indexed) moves it from the one to the other; with an
        # index on all of created_at and all of published_at, it added an entry to both.
        __table_args__ = (
            partial_index("ix_outbox_message_pending", "created_at", where="published_at IS NULL"),
            partial_index("ix_outbox_message_published_at", "published_at", where="published_at IS NOT NULL"),
        )

    return OutboxMessage


def make_processed_event_model(base):
    """Event ids already applied by this consumer (exactly-once effect)."""

    class ProcessedEvent(base):
        __tablename__ = "processed_event"
        event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
        processed_at = mapped_column(UTCDateTime, default=utcnow)

    return ProcessedEvent


def outbox_add(session, model, event_type: str, payload: dict):
    """Stage an event in the caller's transaction; it is sent after commit (and the
    commit wakes the relay of ``model``'s outbox)."""
    message = model(id=new_id(), event_type=event_type, payload=payload)
    session.add(message)
    session.info.setdefault(_STAGED, set()).add(model)
    return message


def wake_after_commit(session, model) -> None:
    """Wake the :class:`RelayTrigger` entrypoints of ``model`` when ``session`` commits
    (as staging an outbox row does): another table of work done after answering, such
    as identity's mail jobs (``services.identity.mailing``)."""
    session.info.setdefault(_STAGED, set()).add(model)


def outbox_insert(session, model, events: list[tuple[str, dict]]) -> list[str]:
    """Stage several events with one plain INSERT in the caller's transaction (no ORM
    objects); returns their ids. Sent after commit, like :func:`outbox_add`."""
    rows = outbox_rows(session, model, events)
    if rows:
        session.connection().execute(model.__table__.insert(), rows)
    return [row["id"] for row in rows]


def outbox_rows(session, model, events: list[tuple[str, dict]]) -> list[dict]:
    """The outbox rows of ``events``, for the caller to insert in its transaction along
    with its own rows (``weintervene.db.insert_together``); the commit wakes the relay.

    Example: insert_together(db, [(Share, [share]), (OutboxMessage, outbox_rows(db, OutboxMessage, events))])
    """
    if not events:
        return []
    now = utcnow()
    rows = [{"id": new_id(), "event_type": event_type, "payload": payload, "created_at": now,
             "published_at": None, "attempts": 0, "last_error": None} for event_type, payload in events]
    session.info.setdefault(_STAGED, set()).add(model)
    return rows


_STAGED = "weintervene.outbox_staged"
_WAKERS: dict[type, set] = {}


@event.listens_for(Session, "after_commit")
def _wake_relays(session):
    for model in session.info.pop(_STAGED, ()):
        for relay in list(_WAKERS.get(model, ())):
            relay.wake()


@event.listens_for(Session, "after_rollback")
def _forget_staged(session):
    session.info.pop(_STAGED, None)


@dataclass
class RelayResult:
    sent: int = 0
    failed: int = 0
    full: bool = False  # the batch was full: more may be waiting
    errors: list[str] = field(default_factory=list)


def relay_outbox(session, model, publisher: ReliablePublisher, service: str, batch: int = 500) -> int:
    """Publish pending outbox rows in order; returns how many were sent (see :func:`relay_batch`)."""
    return relay_batch(session, model, publisher, service, batch).sent


def relay_batch(session, model, publisher: ReliablePublisher, service: str, batch: int = 500) -> RelayResult:
    """Publish up to ``batch`` pending outbox rows as one confirmed batch; mark the
    confirmed ones sent with one UPDATE and the others' attempt with another.

    Rows are locked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) so two instances
    never relay the same row at once; within one process the publisher's lock
    keeps two relays (the relay entrypoint, a direct call) apart.
    """
    # Core statements on the table: the rows are plain values, and the ORM's per-statement
    # machinery (its compile state, bulk-update bookkeeping) cost more than the statements.
    table = model.__table__
    with publisher.relay_lock:
        query = (
            select(table.c.id, table.c.event_type, table.c.payload)
            .where(table.c.published_at.is_(None))
            .order_by(table.c.created_at)
            .limit(batch)
        )
        if session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        connection = session.connection()
        rows = connection.execute(query).all()
        if not rows:
            session.rollback()
            return RelayResult()
        outcome = publisher.publish_many([(r.event_type, r.payload, r.id) for r in rows])
        now = utcnow()
        for r in rows:
            # A broadcast nobody is bound to hear (no gateway running) is done, not failed.
            if r.event_type in BROADCASTS and outcome.refused.get(r.id, "").startswith("unroutable"):
                del outcome.refused[r.id]
                outcome.confirmed.add(r.id)
        confirmed = [r.id for r in rows if r.id in outcome.confirmed]
        result = RelayResult(sent=len(confirmed), full=len(rows) >= batch)
        failed: dict[str, list[str]] = {}
        for r in rows:
            if r.id not in outcome.confirmed:
                reason = str(outcome.refused.get(r.id) or outcome.error or "not confirmed")
                failed.setdefault(reason, []).append(r.id)
        for reason, ids in failed.items():
            connection.execute(update(table).where(table.c.id.in_(ids))
                               .values(attempts=table.c.attempts + 1, last_error=reason[:500]))
            result.failed += len(ids)
            result.errors.append(reason)
        if confirmed:  # last, so that the commit goes with it
            execute_then_commit(session, update(table).where(table.c.id.in_(confirmed))
                                .values(published_at=now, attempts=table.c.attempts + 1))
        else:
            session.commit()
    for r in rows:
        if r.id in outcome.confirmed:
            OUTBOX_PUBLISHED.labels(service, r.event_type).inc()
    if result.failed:
        OUTBOX_FAILED.labels(service).inc(result.failed)
        log.warning("%s: %d outbox message(s) not published yet: %s", service, result.failed, result.errors[0])
    return result


class RelayTrigger(Entrypoint):
    """Runs the relay when the service commits an outbox row, and every
    ``idle_seconds`` otherwise; at once again while batches come back full;
    backing off (up to ``max_backoff_seconds``) while publishing fails.

    A ``linger`` after a wake lets the commits of the next moments join one batch
    (``outbox_relay_linger_seconds`` unless given). Each relay run costs about the
    same whatever its size (a locked SELECT, a confirmed publish, an UPDATE, a
    commit), and so does each batch the consumers take from it: at 200 shares/s,
    lingering 0.1 s rather than 0.01 s halved analytics' CPU per event and cut the
    whole system's by about 0.5 ms per share, for ~60 ms more outbox-to-analytics lag.
    """

    def __init__(self, idle_seconds: float = 2.0, linger_seconds: float | None = None,
                 max_backoff_seconds: float = 5.0, **kwargs):
        self.idle_seconds = idle_seconds
        self.linger_seconds = linger_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.gt = None
        super().__init__(**kwargs)

    def setup(self):
        if self.linger_seconds is None:
            self.linger_seconds = settings().outbox_relay_linger_seconds
        self.model = getattr(self.container.service_cls, "outbox_model", None)
        self._woken = Event()
        self._done = Event()
        self._stopping = False

    def start(self):
        if self.model is not None:
            _WAKERS.setdefault(self.model, set()).add(self)
        self.gt = self.container.spawn_managed_thread(self._run)

    def stop(self):
        _WAKERS.get(self.model, set()).discard(self)
        self._stopping = True
        self.wake()
        if self.gt is not None:
            self.gt.wait()

    def kill(self):
        _WAKERS.get(self.model, set()).discard(self)
        if self.gt is not None:
            self.gt.kill()

    def wake(self):
        if not self._woken.ready():
            self._woken.send(True)

    def _run(self):
        delay, backoff = 0.0, 0.5  # relay at once at start: rows left from before
        while not self._stopping:
            woken = False
            with eventlet.Timeout(delay, False):
                woken = self._woken.wait()
            if woken and self.linger_seconds and not self._stopping:
                eventlet.sleep(self.linger_seconds)
            if self._stopping:
                break
            self._woken = Event()  # commits from now on wake the next run
            self._done = Event()
            self.container.spawn_worker(self, (), {}, handle_result=self._handle_result)
            result = self._done.wait()
            if isinstance(result, RelayResult) and result.failed:
                delay, backoff = backoff, min(backoff * 2, self.max_backoff_seconds)
            elif isinstance(result, RelayResult) and result.full:
                delay, backoff = 0.0, 0.5
            elif result is None:  # the worker raised (database down…): try again later
                delay = self.idle_seconds
            else:
                delay, backoff = self.idle_seconds, 0.5

    def _handle_result(self, worker_ctx, result, exc_info):
        self._done.send(None if exc_info else result)
        return result, exc_info


relay_trigger = RelayTrigger.decorator


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
    """Mixin: relays the service's outbox when it commits events (and every few seconds),
    and purges what it published more than ``outbox_retention_days`` ago once an hour.

    The service defines ``db`` (a Database), ``events`` (a ReliablePublisher)
    and ``outbox_model``.
    """

    @relay_trigger
    def relay_outbox(self):
        return relay_batch(self.db, self.outbox_model, self.events, self.name)

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

