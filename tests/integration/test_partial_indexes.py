"""The partial indexes of the outbox and of referrals' deliveries on a real PostgreSQL: built
as the models declare them, and usable by the very statements the relay, the purge and the
sender send (captured as the driver is given them, bound parameters included).

PostgreSQL uses a partial index only when it can prove the query's WHERE implies the
index's. The statements are explained with sequential scans disabled: on these small
tables the planner would rightly scan instead, and the question here is whether it *can*
use the index, which is what it does once the table is large.
"""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import sessionmaker

from services.referrals import delivery
from services.referrals.models import Base, Delivery, OutboxMessage, Referral, Share
from tests.support.infra import scratch_postgres_database
from weintervene import messaging
from weintervene.db import make_engine, migrate, new_id, utcnow

pytestmark = pytest.mark.integration


@pytest.fixture
def engine():
    with scratch_postgres_database("wit_partial") as url:
        engine = make_engine(url)
        try:
            migrate("referrals", engine)
            yield engine
        finally:
            engine.dispose()


class ConfirmingPublisher:
    """Confirms every message, as the broker does when all goes well."""

    def __init__(self):
        self.relay_lock = threading.Lock()

    def publish_many(self, messages):
        outcome = messaging.PublishOutcome()
        outcome.confirmed.update(message_id for _event_type, _payload, message_id in messages)
        return outcome


def captured(engine, run) -> list[tuple[str, tuple]]:
    """The (statement, parameters) the driver was given while ``run()`` ran."""
    statements = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", keep)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    return statements


def index_used(engine, statement: str, parameters) -> str:
    """The plan of ``statement`` (as text) with sequential scans off, in a rolled-back transaction."""
    with engine.connect() as conn:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters))
        conn.rollback()
    return plan


def test_the_partial_indexes_are_built_as_declared(engine):
    with engine.connect() as conn:
        built = dict(conn.execute(text(
            "SELECT c.relname, pg_get_expr(i.indpred, i.indrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public'")).all())
    declared = {index.name: index.dialect_options["postgresql"]["where"] is not None
                for table in Base.metadata.tables.values() for index in table.indexes}
    assert {name: built[name] is not None for name in declared} == declared
    assert built["ix_outbox_message_pending"] == "(published_at IS NULL)"
    assert built["ix_outbox_message_published_at"] == "(published_at IS NOT NULL)"
    assert built["ix_delivery_due"] == "((state)::text = 'queued'::text)"
    assert built["ix_delivery_sending"] == "((state)::text = 'sending'::text)"
    assert "ix_outbox_message_created_at" not in built


def test_the_relay_and_the_purge_use_the_outbox_partial_indexes(engine):
    make_session = sessionmaker(engine, expire_on_commit=False)
    with make_session() as db:
        messaging.outbox_insert(db, OutboxMessage, [("share_recorded", {"n": 1}), ("share_recorded", {"n": 2})])
        db.commit()
        relay = captured(engine, lambda: messaging.relay_batch(db, OutboxMessage, ConfirmingPublisher(), "referrals"))
        assert db.query(OutboxMessage).filter(OutboxMessage.published_at.is_(None)).count() == 0
        purge = captured(engine, lambda: messaging.purge_published_outbox(db, OutboxMessage, timedelta(days=-1)))
        assert db.query(OutboxMessage).count() == 0  # published "a day from now" ago: both purged

    select_pending = next(s for s in relay if s[0].lstrip().startswith("SELECT") and "FOR UPDATE" in s[0])
    assert "ix_outbox_message_pending" in index_used(engine, *select_pending)
    delete_published = next(s for s in purge if s[0].lstrip().startswith("DELETE"))
    assert "ix_outbox_message_published_at" in index_used(engine, *delete_published)


def test_the_sender_finds_due_and_stranded_deliveries_by_their_partial_indexes(engine):
    make_session = sessionmaker(engine, expire_on_commit=False)
    share_id, referral_id = new_id(), new_id()
    with make_session() as db:
        db.add(Share(id=share_id, tenant_id=new_id(), sharer_id=new_id(), sharer_role="teacher", channel="email"))
        db.flush()
        db.add(Referral(id=referral_id, share_id=share_id, tenant_id=new_id(), service_id=new_id(), service_info={}))
        db.flush()
        # Nothing due yet (so deliver_due stops after its select) and nothing stranded.
        db.add(Delivery(share_id=share_id, channel="email", recipient_kind="contact", recipient_id=new_id(),
                        next_attempt_at=utcnow() + timedelta(hours=1)))
        db.add(Delivery(share_id=share_id, referral_id=referral_id, purpose="reminder", channel="email",
                        recipient_kind="sharer", recipient_id=new_id(), state="sent"))
        db.commit()

    statements = captured(engine, lambda: delivery.deliver_due(make_session, identity=None))
    stranded = next(s for s in statements if "'sending'" in str(s) or "sending" in s[1])
    due = next(s for s in statements if "JOIN share" in s[0])
    assert "ix_delivery_sending" in index_used(engine, *stranded)
    assert "ix_delivery_due" in index_used(engine, *due)

    # Deleting a referral deletes its reminders (ON DELETE CASCADE), found by the partial index.
    with engine.connect() as conn:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        conn.exec_driver_sql("PREPARE cascade_q(varchar) AS DELETE FROM ONLY delivery WHERE $1 = referral_id")
        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")  # as the trigger's cached plan
        plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN EXECUTE cascade_q('x')"))
        conn.rollback()
        conn.exec_driver_sql("DEALLOCATE cascade_q")  # a session's, not the transaction's
        conn.commit()
    assert "ix_delivery_referral_id" in plan
    with make_session() as db:
        db.execute(Referral.__table__.delete().where(Referral.id == referral_id))
        db.commit()
        assert [d.purpose for d in db.query(Delivery)] == ["share"]


def test_the_sms_status_callback_finds_its_delivery_by_the_provider_id_index(engine):
    make_session = sessionmaker(engine, expire_on_commit=False)
    share_id = new_id()
    with make_session() as db:
        db.add(Share(id=share_id, tenant_id=new_id(), sharer_id=new_id(), sharer_role="teacher", channel="sms"))
        db.flush()
        db.add(Delivery(share_id=share_id, channel="sms", recipient_kind="contact", recipient_id=new_id(),
                        state="sent", provider_message_id="SM123"))
        db.add(Delivery(share_id=share_id, channel="email", recipient_kind="contact", recipient_id=new_id(),
                        state="sent", provider_message_id="<m1@weintervene.local>"))
        db.commit()
        statements = captured(engine, lambda: delivery.apply_provider_status(
            db, {"MessageSid": "SM123", "MessageStatus": "delivered"}))
        # An email's Message-ID is never taken for an SMS's id.
        assert not delivery.apply_provider_status(
            db, {"MessageSid": "<m1@weintervene.local>", "MessageStatus": "undelivered"})
    lookup = next(s for s in statements if s[0].lstrip().startswith("SELECT"))
    assert "ix_delivery_sms_provider_message_id" in index_used(engine, *lookup)
    with make_session() as db:
        states = dict(db.query(Delivery.channel, Delivery.state).all())
    assert states == {"sms": "delivered", "email": "sent"}
