"""analytics against the real broker and database: exactly-once counting with
competing instances, duplicates, redelivery and a crashing instance; events
outside the contract stored nowhere; tenant termination through retention's event."""
import collections
import random
import time
import uuid

import pytest
import requests
from kombu import Connection, Producer
from nameko.runners import ServiceRunner
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from services.analytics import counting
from services.analytics.models import (
    DailyShareCount, OutboxMessage, ProcessedEvent, ServiceShareCount, TermSetShareCount,
)
from services.analytics.service import AnalyticsService
from tests.support.analytics import share_event
from weintervene.contracts import (
    DELETION_COMPLETED, DELETION_REQUESTED, SHARE_RECORDED, SUBSCRIPTIONS, DeletionRequested, queue_name,
)
from weintervene.db import make_engine
from weintervene.messaging import event_exchange

pytestmark = pytest.mark.integration

SHARE_QUEUE = queue_name("referrals", SHARE_RECORDED, *SUBSCRIPTIONS[("referrals", SHARE_RECORDED)][0])


@pytest.fixture(scope="module")
def analytics_db(system):
    engine = make_engine(system.settings.database_url("analytics"))
    yield engine
    engine.dispose()


def publish(system, source, routing_key, payloads):
    """Publish straight to a service's events exchange, as nameko's dispatcher would."""
    with Connection(system.settings.amqp_uri) as conn:
        producer = Producer(conn.channel(), exchange=event_exchange(source), serializer="json")
        for payload in payloads:
            producer.publish(payload, routing_key=routing_key, delivery_mode=2, retry=True)


def queue_state(system, name):
    r = requests.get(f"{system.vhost.api}/api/queues/{system.vhost.name}/{name}", timeout=10)
    r.raise_for_status()
    body = r.json()
    return body.get("messages", 0), body.get("consumers", 0)


def wait_until(predicate, timeout=90.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


def tenant_total(engine, model, tenant_id) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.coalesce(func.sum(model.count), 0)).where(model.tenant_id == tenant_id))


def drained(system, engine, tenant_id, expected) -> bool:
    messages, _ = queue_state(system, SHARE_QUEUE)
    return messages == 0 and tenant_total(engine, DailyShareCount, tenant_id) == expected


def start_instance() -> ServiceRunner:
    runner = ServiceRunner()
    runner.add_service(AnalyticsService)
    runner.start()
    return runner


def test_competing_instances_with_duplicates_redelivery_and_a_crash_give_exact_totals(system, analytics_db):
    rng = random.Random(7)
    tenant = str(uuid.uuid4())
    services = [str(uuid.uuid4()) for _ in range(6)]
    terms = [str(uuid.uuid4()) for _ in range(4)]
    events = [
        share_event(tenant, rng.choice(services), rng.sample(terms, rng.randint(0, 3)),
                    rng.choice(["email", "sms", "print", "link"]), f"2026-11-{rng.randint(1, 28):02d}")
        for _ in range(600)
    ]
    expected_services = collections.Counter((e["service_id"], e["occurred_on"], e["channel"]) for e in events)
    expected_sets = collections.Counter(
        (",".join(sorted(e["taxonomy_term_ids"])), e["occurred_on"], e["channel"]) for e in events
        if e["taxonomy_term_ids"])

    # Two more instances join the system's own: three competing consumers on one queue.
    first, second = start_instance(), start_instance()
    try:
        wait_until(lambda: queue_state(system, SHARE_QUEUE)[1] >= 3, timeout=30)
        # A consumer that takes messages and dies before acknowledging: the broker
        # redelivers them to the others. It subscribes before the events are published,
        # so it gets its share of them however fast the instances drain the queue.
        with Connection(system.settings.amqp_uri) as conn:
            channel = conn.channel()
            channel.basic_qos(0, 40, False)
            taken = []
            channel.basic_consume(SHARE_QUEUE, no_ack=False, callback=taken.append)
            # Every event twice, a third of them three times, interleaved.
            copies = events + events[::3] + list(reversed(events))
            publish(system, "referrals", SHARE_RECORDED, copies)
            deadline = time.monotonic() + 30
            while len(taken) < 40 and time.monotonic() < deadline:
                try:
                    conn.drain_events(timeout=1)
                except TimeoutError:
                    pass
            assert taken, "the dying consumer received nothing"
        # One instance crashes mid-stream: its in-flight events are redelivered,
        # including ones it may already have committed.
        time.sleep(0.3)
        second.kill()
        wait_until(lambda: drained(system, analytics_db, tenant, len(events)))
        time.sleep(1.0)  # nothing trickles in late
    finally:
        second.kill()
        first.stop()

    with analytics_db.connect() as conn:
        got_services = {
            (r.service_id, r.day.isoformat(), r.channel): r.count
            for r in conn.execute(select(ServiceShareCount).where(ServiceShareCount.tenant_id == tenant))
        }
        got_sets = {
            (r.taxonomy_term_ids, r.day.isoformat(), r.channel): r.count
            for r in conn.execute(select(TermSetShareCount).where(TermSetShareCount.tenant_id == tenant))
        }
    assert got_services == dict(expected_services)
    assert got_sets == dict(expected_sets)
    assert tenant_total(analytics_db, DailyShareCount, tenant) == len(events)


def test_one_batch_on_postgresql_counts_each_id_once_and_skips_fenced_tenants(analytics_db):
    """The PostgreSQL statement (ids, fence and upserts in one) gives what the portable path gives."""
    tenant, fenced, district, svc, t1, t2 = (str(uuid.uuid4()) for _ in range(6))
    session = Session(analytics_db, expire_on_commit=False)
    try:
        counting.delete_tenants(session, [fenced])
        session.commit()
        seen = counting.load_share(share_event(tenant, svc, [t1]))
        assert counting.count_shares(session, [seen]) == ["counted"]
        first = counting.load_share(share_event(tenant, svc, [t2, t1, t2], channel="email", district_id=district))
        batch = [
            first,
            counting.load_share(share_event(tenant, svc, [t1, t2], channel="email", district_id=district)),
            dict(first),  # the same id twice in one batch
            seen,  # already counted by an earlier batch
            counting.load_share(share_event(fenced, svc, [t1])),
            counting.load_share(share_event(tenant, svc, [], channel="email")),
        ]
        assert counting.count_shares(session, batch) == [
            "counted", "counted", "duplicate", "duplicate", "fenced", "counted"]

        services = {(r.channel, r.district_id): r.count for r in session.scalars(
            select(ServiceShareCount).where(ServiceShareCount.tenant_id.in_([tenant, fenced])))}
        assert services == {("sms", None): 1, ("email", district): 3}
        sets = {(r.channel, r.taxonomy_term_ids): r.count for r in session.scalars(
            select(TermSetShareCount).where(TermSetShareCount.tenant_id.in_([tenant, fenced])))}
        assert sets == {("sms", t1): 1, ("email", ",".join(sorted([t1, t2]))): 2}
        assert tenant_total(analytics_db, DailyShareCount, tenant) == 4
        assert tenant_total(analytics_db, DailyShareCount, fenced) == 0
        ids = {str(e["event_id"]) for e in batch}
        assert session.scalar(select(func.count()).select_from(ProcessedEvent).where(
            ProcessedEvent.event_id.in_(ids))) == len(ids)  # the fenced one is handled too
    finally:
        session.close()


def test_an_event_with_a_student_id_is_rejected_and_stored_nowhere(system, analytics_db):
    tenant, student_id = str(uuid.uuid4()), str(uuid.uuid4())
    before = counting.EVENTS_REJECTED.labels("unknown_field")._value.get()
    publish(system, "referrals", SHARE_RECORDED, [
        share_event(tenant, student_id=student_id),
        share_event(tenant),  # a valid one after it, to know the queue moved on
    ])
    wait_until(lambda: drained(system, analytics_db, tenant, 1)
               and counting.EVENTS_REJECTED.labels("unknown_field")._value.get() >= before + 1)
    with analytics_db.connect() as conn:
        tables = [t for t in conn.execute(text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")).scalars()]
        dump = {t: [tuple(r) for r in conn.execute(text(f'SELECT * FROM "{t}"'))] for t in tables}
    assert student_id not in repr(dump)
    metrics = requests.get(system.url("/metrics"), timeout=10).text
    assert 'weintervene_analytics_events_rejected_total{reason="unknown_field"}' in metrics


def test_tenant_termination_deletes_counters_and_confirms(system, analytics_db):
    district, school, other = (str(uuid.uuid4()) for _ in range(3))
    publish(system, "referrals", SHARE_RECORDED,
            [share_event(t, terms=[uuid.uuid4()]) for t in (district, school, school, other)])
    wait_until(lambda: drained(system, analytics_db, school, 2) and tenant_total(analytics_db, DailyShareCount, other) == 1)

    request_id = str(uuid.uuid4())
    publish(system, "retention", DELETION_REQUESTED, [DeletionRequested().dump({
        "request_id": request_id, "scope": "tenant", "tenant_id": district, "subject_id": district,
        "tenant_ids": [district, school],
    })])

    def confirmed():
        with analytics_db.connect() as conn:
            return conn.execute(select(OutboxMessage).where(
                OutboxMessage.event_type == DELETION_COMPLETED,
                OutboxMessage.published_at.is_not(None))).all()

    wait_until(lambda: any(r.payload["request_id"] == request_id for r in confirmed()))
    row = next(r for r in confirmed() if r.payload["request_id"] == request_id)
    assert row.payload["service"] == "analytics"
    assert row.payload["counts"] == {"service_share_count": 3, "term_set_share_count": 3, "daily_share_count": 2,
                                     "outcome_count": 0}
    for tenant in (district, school):
        assert tenant_total(analytics_db, ServiceShareCount, tenant) == 0
    assert tenant_total(analytics_db, ServiceShareCount, other) == 1

    # A share staged before the termination, relayed after it, recreates nothing.
    publish(system, "referrals", SHARE_RECORDED, [share_event(school), share_event(other)])
    wait_until(lambda: drained(system, analytics_db, other, 2))
    assert tenant_total(analytics_db, DailyShareCount, school) == 0
