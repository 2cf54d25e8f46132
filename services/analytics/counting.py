"""Turn ``share_recorded`` events into counter increments, exactly once in effect.

The event ids are recorded (``ProcessedEvent``) in the same transaction as the
increments, so a redelivered or duplicated event changes nothing. Increments
are ``INSERT … ON CONFLICT DO UPDATE SET count = count + excluded.count`` on
PostgreSQL and SQLite alike: any number of analytics instances may apply events
concurrently without losing an update (no read-modify-write, no in-memory
totals). Rows are written in a fixed order (tables, then sorted keys) so two
transactions touching the same counters cannot deadlock.

Events that arrive together are applied in one transaction (``count_shares``):
one commit, one disk flush for many events, instead of one per event. On
PostgreSQL a batch is two statements (the tenant locks, then ids, fence and
upserts together). The messages are acknowledged only after that commit (see
``intake``).

Example::

    >>> count_shares(session, [ShareRecorded().load({"event_id": "…", "tenant_id": "…",
    ...     "service_id": "…", "taxonomy_term_ids": ["…"], "channel": "sms",
    ...     "occurred_on": "2026-11-28"})])
    ['counted']
"""
from __future__ import annotations

import json
import logging

from marshmallow import ValidationError
from prometheus_client import Counter
from sqlalchemy import delete, select, text
from sqlalchemy.dialects import postgresql, sqlite

from services.analytics.models import (
    COUNTER_MODELS, DailyShareCount, DeletedTenant, OutcomeCount, ProcessedEvent, ServiceShareCount,
    TermSetShareCount,
)
from weintervene.contracts import ReferralClosed, ShareRecorded
from weintervene.messaging import first_deliveries

log = logging.getLogger(__name__)

COUNTED, DUPLICATE, FENCED, REJECTED = "counted", "duplicate", "fenced", "rejected"
COUNTER_ORDER = COUNTER_MODELS  # the order every transaction writes them in

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}

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


def increment(session, model, rows: list[dict]) -> None:
    """Add each row's ``count`` to the counter with the same key (creating it at need).

    ``rows`` must not repeat a key (PostgreSQL refuses to update one row twice
    in one statement); they are sorted here so concurrent writers lock in the
    same order. (On PostgreSQL ``count_shares`` does this inside ``_COUNT_BATCH``.)
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


def term_set(event: dict) -> str:
    """The event's distinct term ids, sorted, joined by commas ("" for none).

    A term listed twice is still one share carrying that term.
    """
    return ",".join(sorted({str(term) for term in event["taxonomy_term_ids"]}))


def share_increments(event: dict) -> dict:
    """{model: rows} for one loaded ShareRecorded event (ids as strings)."""
    common = {
        "tenant_id": str(event["tenant_id"]),
        "district_id": str(event["district_id"]) if event.get("district_id") else None,
        "day": event["occurred_on"],
        "channel": event["channel"],
        "count": 1,
    }
    terms = term_set(event)
    return {
        ServiceShareCount: [{**common, "service_id": str(event["service_id"])}],
        TermSetShareCount: [{**common, "taxonomy_term_ids": terms}] if terms else [],
        DailyShareCount: [common],
    }


def outcome_increments(event: dict) -> dict:
    """{model: rows} for one loaded ReferralClosed event: one OutcomeCount row."""
    return {OutcomeCount: [{
        "tenant_id": str(event["tenant_id"]),
        "district_id": str(event["district_id"]) if event.get("district_id") else None,
        "day": event["occurred_on"],
        "taxonomy_term_ids": term_set(event),
        "outcome": event["outcome"],
        "days_open": event["days_open"],
        "count": 1,
    }]}


def _key(model, row) -> tuple:
    return tuple(row[c.name] for c in model.__table__.primary_key.columns)


def lock_tenants(session, tenant_ids, exclusive: bool = False) -> None:
    """Serialise counting and termination per tenant (PostgreSQL; SQLite has one writer).

    Without it a batch that read "not terminated" could commit its increments
    after a concurrent termination deleted the counters, recreating them.
    Counting takes the locks shared (batches on other instances do not wait for
    each other: the counter upserts are safe together); termination takes them
    exclusive, so it waits for the batches in flight and they wait for it. One
    statement takes every tenant's lock, in the order of the lock keys, so two
    transactions never wait on each other in a cycle; they end with the
    transaction. (One statement per tenant was the largest cost of a batch.)
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    keys = sorted({"analytics-tenant:" + str(t) for t in tenant_ids})
    if keys:
        session.execute(_LOCK_TENANTS[exclusive], {"keys": json.dumps(keys)})


# The subquery sorts the keys before the outer SELECT calls the lock function on each.
_LOCK_TENANTS = {
    exclusive: text(
        f"SELECT {function}(k) FROM (SELECT DISTINCT hashtext(key) AS k "
        "FROM json_array_elements_text(CAST(:keys AS json)) AS key ORDER BY k) AS ordered"
    )
    for exclusive, function in ((True, "pg_advisory_xact_lock"), (False, "pg_advisory_xact_lock_shared"))
}


def count_shares(session, events: list[dict]) -> list[str]:
    """Apply loaded events in one transaction and commit; an outcome per event
    (counted, duplicate or fenced), in order.

    A concurrent duplicate on another instance waits on the ``ProcessedEvent``
    key until this transaction ends, then finds the id and counts nothing.
    """
    if session.get_bind().dialect.name == "postgresql":
        return _committed(session, lambda: _count_in_postgresql(session, events))
    return _committed(session, lambda: _count_portably(session, events))


def count_outcomes(session, events: list[dict]) -> list[str]:
    """Apply loaded ReferralClosed events in one transaction and commit, exactly once each
    (the same ``ProcessedEvent`` ids and tenant fence as shares). Closings are few (one per
    referral), so every database takes the portable statements."""
    return _committed(session, lambda: _count_portably(session, events, outcome_increments))


def _committed(session, count) -> list[str]:
    """Run ``count()`` and commit (rolled back on any error); each outcome counted in the metric."""
    try:
        outcomes = count()
        session.commit()
    except BaseException:
        session.rollback()
        raise
    for outcome in outcomes:
        EVENTS_HANDLED.labels(outcome).inc()
    return outcomes


def _count_portably(session, events: list[dict], increments=share_increments) -> list[str]:
    """Any SQL database (SQLite, the embedded default): a few statements a batch."""
    tenants = sorted({str(e["tenant_id"]) for e in events})
    lock_tenants(session, tenants)
    new_ids = first_deliveries(session, ProcessedEvent, [e["event_id"] for e in events])
    fenced = set(session.scalars(select(DeletedTenant.tenant_id).where(DeletedTenant.tenant_id.in_(tenants))))
    totals: dict = {model: {} for model in COUNTER_ORDER}
    outcomes = []
    for event in events:
        event_id = str(event["event_id"])
        if event_id not in new_ids:
            outcomes.append(DUPLICATE)
            continue
        new_ids.discard(event_id)  # the same id twice in one batch counts once
        if str(event["tenant_id"]) in fenced:
            outcomes.append(FENCED)  # handled, by dropping: the tenant was terminated
            continue
        for model, rows in increments(event).items():
            for row in rows:
                key = _key(model, row)
                if key in totals[model]:
                    totals[model][key]["count"] += 1
                else:
                    totals[model][key] = dict(row)
        outcomes.append(COUNTED)
    for model in COUNTER_ORDER:
        increment(session, model, list(totals[model].values()))
    return outcomes


def _count_in_postgresql(session, events: list[dict]) -> list[str]:
    """PostgreSQL: the tenant locks, then one statement does the rest.

    The batch travels as one JSON parameter (serialising it is cheap in Python;
    the driver escapes array parameters element by element, which was a third of a
    batch's cost with the old pg8000 driver), and ``_COUNT_BATCH`` records the ids, skips the fenced
    tenants and upserts all three counter tables, sorted, in one round trip.
    """
    rows, seen = [], set()
    for event in events:
        event_id = str(event["event_id"])
        if event_id in seen:
            continue  # the same id twice in one batch counts once
        seen.add(event_id)
        rows.append({
            "event_id": event_id,
            "tenant_id": str(event["tenant_id"]),
            "district_id": str(event["district_id"]) if event.get("district_id") else None,
            "day": event["occurred_on"].isoformat(),
            "service_id": str(event["service_id"]),
            "channel": event["channel"],
            "term_set": term_set(event),
        })
    if not rows:
        return []
    lock_tenants(session, {row["tenant_id"] for row in rows})
    found = {
        event_id: (new, fenced)
        for event_id, new, fenced in session.execute(_COUNT_BATCH, {"events": json.dumps(rows)})
    }
    outcomes, settled = [], set()
    for event in events:
        event_id = str(event["event_id"])
        new, fenced = found[event_id]
        if not new or event_id in settled:
            outcomes.append(DUPLICATE)
        else:
            outcomes.append(FENCED if fenced else COUNTED)
        settled.add(event_id)
    return outcomes


# Data-modifying CTEs all run, on one snapshot (taken after the tenant locks, so
# a termination committed before them is seen). ``recorded`` returns only ids
# never seen before; a concurrent transaction inserting the same id makes this
# one wait for it, then skip the id. Every insert is sorted, so two batches
# touching the same keys lock them in the same order and cannot deadlock.
_COUNT_BATCH = text("""
WITH batch AS (
    SELECT * FROM json_to_recordset(CAST(:events AS json)) AS e(
        event_id text, tenant_id text, district_id text, day date, service_id text, channel text, term_set text)
), recorded AS (
    INSERT INTO processed_event (event_id, processed_at)
    SELECT event_id, now() FROM batch ORDER BY event_id
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
), fenced AS (
    SELECT tenant_id FROM deleted_tenant WHERE tenant_id IN (SELECT tenant_id FROM batch)
), counted AS (
    SELECT b.* FROM batch b JOIN recorded r USING (event_id)
    WHERE b.tenant_id NOT IN (SELECT tenant_id FROM fenced)
), services AS (
    INSERT INTO service_share_count (tenant_id, day, service_id, channel, district_id, count)
    SELECT tenant_id, day, service_id, channel, min(district_id), count(*) FROM counted
    GROUP BY tenant_id, day, service_id, channel ORDER BY tenant_id, day, service_id, channel
    ON CONFLICT (tenant_id, day, service_id, channel)
    DO UPDATE SET count = service_share_count.count + excluded.count
), term_sets AS (
    INSERT INTO term_set_share_count (tenant_id, day, channel, taxonomy_term_ids, district_id, count)
    SELECT tenant_id, day, channel, term_set, min(district_id), count(*) FROM counted WHERE term_set <> ''
    GROUP BY tenant_id, day, channel, term_set ORDER BY tenant_id, day, channel, term_set
    ON CONFLICT (tenant_id, day, channel, taxonomy_term_ids)
    DO UPDATE SET count = term_set_share_count.count + excluded.count
), daily AS (
    INSERT INTO daily_share_count (tenant_id, day, channel, district_id, count)
    SELECT tenant_id, day, channel, min(district_id), count(*) FROM counted
    GROUP BY tenant_id, day, channel ORDER BY tenant_id, day, channel
    ON CONFLICT (tenant_id, day, channel) DO UPDATE SET count = daily_share_count.count + excluded.count
)
SELECT b.event_id, r.event_id IS NOT NULL AS new, b.tenant_id IN (SELECT tenant_id FROM fenced) AS fenced
FROM batch b LEFT JOIN recorded r USING (event_id)
""")


def delete_tenants(session, tenant_ids: list[str]) -> dict:
    """Delete every counter of ``tenant_ids`` and fence them (in the caller's
    transaction); returns {table: rows deleted}. Idempotent."""
    lock_tenants(session, tenant_ids, exclusive=True)
    counts = {}
    for model in COUNTER_ORDER:
        result = session.execute(delete(model).where(model.tenant_id.in_(tenant_ids)))
        counts[model.__tablename__] = result.rowcount
    insert = _INSERTS[session.get_bind().dialect.name](DeletedTenant)
    session.execute(insert.values([{"tenant_id": t} for t in sorted(set(tenant_ids))]).on_conflict_do_nothing())
    return counts


# -- intake: the contract is the only way in ---------------------------------

def rejection_reason(messages) -> str:
    """A small, fixed label set: unknown_field (something extra, e.g. a student id) or invalid."""
    if isinstance(messages, dict) and any(
        "Unknown field." in (value if isinstance(value, list) else [value]) for value in messages.values()
    ):
        return "unknown_field"
    return "invalid"


_CONTRACT = ShareRecorded()  # one instance: building a schema per message costs more than loading


def load_event(contract, event_type: str, payload) -> dict | None:
    """The event loaded with its shared contract, or None when it is rejected.

    Anything outside the contract is rejected: counted in a metric, logged by
    field name only (never by value: the value may be the very student id that
    must not be kept), and acknowledged without being stored anywhere. It is
    not dead-lettered, because a dead-letter queue would store exactly what the
    contract keeps out; the publisher's own outbox still holds its copy.

    Example: load_event(ReferralClosed(), "referral_closed", {"student_id": "…"}) -> None
    """
    try:
        return contract.load(payload)
    except ValidationError as exc:
        reason = rejection_reason(exc.messages)
        EVENTS_REJECTED.labels(reason).inc()
        fields = sorted(exc.messages) if isinstance(exc.messages, dict) else ["_schema"]
        log.warning("rejected a %s event (%s) on fields %s", event_type, reason, fields)
        return None


def load_share(payload) -> dict | None:
    """A ``share_recorded`` event loaded with its contract, or None (see :func:`load_event`)."""
    return load_event(_CONTRACT, "share_recorded", payload)


_OUTCOME_CONTRACT = ReferralClosed()


def load_outcome(payload) -> dict | None:
    """A ``referral_closed`` event loaded with its contract, or None (see :func:`load_event`)."""
    return load_event(_OUTCOME_CONTRACT, "referral_closed", payload)


def _receive(session, payloads, load, count) -> dict:
    """Load every payload and count the loaded ones in one transaction; {outcome: events}."""
    events = [load(payload) for payload in payloads]
    loaded = [event for event in events if event is not None]
    summary: dict = {}
    if len(loaded) < len(events):
        summary[REJECTED] = len(events) - len(loaded)
    for outcome in count(session, loaded) if loaded else ():
        summary[outcome] = summary.get(outcome, 0) + 1
    return summary


def receive_outcomes(session, payloads) -> dict:
    """Load and count a batch of closings; returns {outcome: events}, e.g. {"counted": 3}."""
    return _receive(session, payloads, load_outcome, count_outcomes)


def receive_shares(session, payloads) -> dict:
    """Load every payload and count the loaded ones in one transaction;
    returns {outcome: events}, e.g. {"counted": 198, "duplicate": 1, "rejected": 1}."""
    return _receive(session, payloads, load_share, count_shares)
