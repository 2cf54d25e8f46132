"""Turn one ``share_recorded`` event into counter increments, exactly once in effect.

The event id is recorded (``ProcessedEvent``) in the same transaction as the
increments, so a redelivered or duplicated event changes nothing. Increments
are ``INSERT … ON CONFLICT DO UPDATE SET count = count + excluded.count`` on
PostgreSQL and SQLite alike: any number of analytics instances may apply events
concurrently without losing an update (no read-modify-write, no in-memory
totals). Rows are written in a fixed order (tables, then sorted keys) so two
transactions touching the same counters cannot deadlock.

Example::

    >>> count_share(session, ShareRecorded().load({"event_id": "…", "tenant_id": "…",
    ...     "service_id": "…", "taxonomy_term_ids": ["…"], "channel": "sms",
    ...     "occurred_on": "2026-11-28"}))
    'counted'
"""
from __future__ import annotations

import logging

from marshmallow import ValidationError
from prometheus_client import Counter
from sqlalchemy.dialects import postgresql, sqlite

from services.analytics.models import (
    DailyShareCount, DeletedTenant, ProcessedEvent, ServiceShareCount, TermShareCount,
)
from weintervene.contracts import ShareRecorded
from weintervene.messaging import first_delivery

log = logging.getLogger(__name__)

COUNTED, DUPLICATE, FENCED = "counted", "duplicate", "fenced"

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def increment(session, model, rows: list[dict]) -> None:
    """Add each row's ``count`` to the counter with the same key (creating it at need).

    ``rows`` must not repeat a key (PostgreSQL refuses to update one row twice
    in one statement); they are sorted here so concurrent writers lock in the
    same order.
    """
    if not rows:
        return
    keys = [column.name for column in model.__table__.primary_key.columns]
    rows = sorted(rows, key=lambda row: tuple(str(row[k]) for k in keys))
    insert = _INSERTS[session.get_bind().dialect.name](model).values(rows)
    session.execute(
        insert.on_conflict_do_update(
            index_elements=keys, set_={"count": model.__table__.c.count + insert.excluded.count}
        )
    )


def share_increments(event: dict) -> dict:
    """{model: rows} for one loaded ShareRecorded event (ids as strings)."""
    common = {
        "tenant_id": str(event["tenant_id"]),
        "district_id": str(event["district_id"]) if event.get("district_id") else None,
        "day": event["occurred_on"],
        "channel": event["channel"],
        "count": 1,
    }
    service_id = str(event["service_id"])
    # A term listed twice is still one share carrying that term.
    terms = sorted({str(term) for term in event["taxonomy_term_ids"]})
    return {
        ServiceShareCount: [{**common, "service_id": service_id}],
        TermShareCount: [{**common, "service_id": service_id, "taxonomy_term_id": t} for t in terms],
        DailyShareCount: [common],
    }


def count_share(session, event: dict) -> str:
    """Apply one loaded event and commit; returns counted, duplicate or fenced.

    A concurrent duplicate on another instance blocks on the ``ProcessedEvent``
    primary key until this transaction ends, then finds the id and does nothing.
    """
    if not first_delivery(session, ProcessedEvent, event["event_id"]):
        session.rollback()
        return DUPLICATE
    if session.get(DeletedTenant, str(event["tenant_id"])) is not None:
        session.commit()  # remember the id: the event is handled, by dropping it
        return FENCED
    for model, rows in share_increments(event).items():
        increment(session, model, rows)
    session.commit()
    return COUNTED


# -- intake: the contract is the only way in ---------------------------------

EVENTS_HANDLED = Counter(
    "weintervene_analytics_events_total",
    "share_recorded events handled by analytics, by outcome (counted, duplicate, fenced)",
    ["outcome"],
)
EVENTS_REJECTED = Counter(
    "weintervene_analytics_events_rejected_total",
    "share_recorded events outside the contract, acknowledged and dropped (never stored)",
    ["reason"],
)


def rejection_reason(messages) -> str:
    """A small, fixed label set: unknown_field (something extra, e.g. a student id) or invalid."""
    if isinstance(messages, dict) and any(
        "Unknown field." in (value if isinstance(value, list) else [value]) for value in messages.values()
    ):
        return "unknown_field"
    return "invalid"


def receive_share(session, payload) -> str:
    """Load ``payload`` with the shared contract, then count it; returns the outcome.

    Anything outside the contract is rejected: counted in a metric, logged by
    field name only (never by value: the value may be the very student id that
    must not be kept), and acknowledged without being stored anywhere. It is
    not dead-lettered, because a dead-letter queue would store exactly what the
    contract keeps out; the publisher's own outbox still holds its copy.
    """
    try:
        event = ShareRecorded().load(payload)
    except ValidationError as exc:
        reason = rejection_reason(exc.messages)
        EVENTS_REJECTED.labels(reason).inc()
        fields = sorted(exc.messages) if isinstance(exc.messages, dict) else ["_schema"]
        log.warning("rejected a share_recorded event (%s) on fields %s", reason, fields)
        return "rejected"
    outcome = count_share(session, event)
    EVENTS_HANDLED.labels(outcome).inc()
    return outcome
