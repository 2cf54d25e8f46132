"""analytics intake: the contract, counters only, exactly-once effect, tenant deletion."""
import re
import uuid

import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import func, inspect, select, text

from services.analytics import counting
from services.analytics.models import (
    Base, DailyShareCount, DeletedTenant, ProcessedEvent, ServiceShareCount, TermSetShareCount,
)
from services.analytics.service import AnalyticsService
from tests.support.analytics import migrated_session, share_event

PERSON_WORDS = re.compile(r"user|student|contact|message_id|email|phone|mobile|name|address|note|ip", re.I)


@pytest.fixture
def session(tmp_path):
    s = migrated_session(f"sqlite:///{tmp_path}/analytics.db")
    yield s
    s.close()
    s.get_bind().dispose()


@pytest.fixture
def service(session):
    return worker_factory(AnalyticsService, db=session)


def all_rows(session) -> dict:
    return {
        table: [tuple(r) for r in session.execute(text(f"SELECT * FROM {table}"))]
        for table in inspect(session.get_bind()).get_table_names() if table != "alembic_version"
    }


def metric(counter, label) -> float:
    return counter.labels(label)._value.get()


def test_no_column_can_hold_a_person_or_message_identifier(session):
    columns = {
        (table, column["name"])
        for table in inspect(session.get_bind()).get_table_names()
        for column in inspect(session.get_bind()).get_columns(table)
    }
    offending = sorted(c for c in columns if PERSON_WORDS.search(c[1]))
    assert offending == []
    # The counter tables are exactly: tenant, district, day, service, term, channel -> count.
    counter_columns = {c for t, c in columns if t.endswith("_share_count")}
    assert counter_columns == {"tenant_id", "district_id", "day", "service_id", "taxonomy_term_ids", "channel", "count"}
    assert set(Base.metadata.tables) <= {t for t, _ in columns}


def test_a_share_increments_service_term_and_daily_counters(service, session):
    tenant, svc, t1, t2 = (str(uuid.uuid4()) for _ in range(4))
    service.on_share_recorded([share_event(tenant, svc, [t1, t2, t1], "email", "2026-11-10")])
    service.on_share_recorded([share_event(tenant, svc, [t1], "email", "2026-11-10")])
    service.on_share_recorded([share_event(tenant, svc, [], "sms", "2026-11-11")])

    services = {(r.day.isoformat(), r.channel): r.count for r in session.scalars(select(ServiceShareCount))}
    assert services == {("2026-11-10", "email"): 2, ("2026-11-11", "sms"): 1}
    sets = {r.taxonomy_term_ids: r.count for r in session.scalars(select(TermSetShareCount))}
    # A term listed twice in one share counts once; a share without terms has no set.
    assert sets == {",".join(sorted([t1, t2])): 1, t1: 1}
    assert session.scalar(select(func.sum(DailyShareCount.count))) == 3


def test_duplicates_and_redelivery_change_nothing(service, session):
    event = share_event(uuid.uuid4(), terms=[uuid.uuid4()])
    before = metric(counting.EVENTS_HANDLED, "duplicate")
    for _ in range(3):
        service.on_share_recorded([dict(event)])
    assert session.scalar(select(func.sum(ServiceShareCount.count))) == 1
    assert session.scalar(select(func.sum(TermSetShareCount.count))) == 1
    assert session.scalar(select(func.count()).select_from(ProcessedEvent)) == 1
    assert metric(counting.EVENTS_HANDLED, "duplicate") == before + 2


@pytest.mark.parametrize("change, reason", [
    ({"student_id": "7f1e4c1e-0000-4000-8000-00000000beef"}, "unknown_field"),
    ({"user_email": "rivera@lincoln.example"}, "unknown_field"),
    ({"channel": "carrier-pigeon"}, "invalid"),
    ({"tenant_id": "not-a-uuid"}, "invalid"),
    ({"occurred_on": None}, "invalid"),
])
def test_an_event_outside_the_contract_is_rejected_counted_and_stored_nowhere(service, session, change, reason):
    before = metric(counting.EVENTS_REJECTED, reason)
    service.on_share_recorded([{**share_event(uuid.uuid4()), **change}])
    assert metric(counting.EVENTS_REJECTED, reason) == before + 1
    rows = all_rows(session)
    assert {t: r for t, r in rows.items() if r} == {}
    assert all(str(v) not in repr(rows) for v in change.values())


def test_a_batch_counts_its_valid_events_and_rejects_only_the_bad_one(service, session):
    tenant, student_id = str(uuid.uuid4()), "7f1e4c1e-0000-4000-8000-00000000beef"
    good = share_event(tenant)
    batch = [good, share_event(tenant, student_id=student_id), dict(good), share_event(tenant, channel="pigeon"),
             share_event(tenant)]
    assert service.on_share_recorded(batch) == {"rejected": 2, "counted": 2, "duplicate": 1}
    assert session.scalar(select(func.sum(DailyShareCount.count))) == 2
    assert student_id not in repr(all_rows(session)) and "pigeon" not in repr(all_rows(session))


@pytest.mark.parametrize("payload", ["a string", None, [1, 2], {}])
def test_payloads_that_are_not_events_are_rejected(service, session, payload):
    before = metric(counting.EVENTS_REJECTED, "invalid")
    service.on_share_recorded([payload])
    assert metric(counting.EVENTS_REJECTED, "invalid") == before + 1
    assert {t: r for t, r in all_rows(session).items() if r} == {}


def test_tenant_termination_deletes_its_counters_and_fences_late_events(service, session):
    district, school, other = (str(uuid.uuid4()) for _ in range(3))
    for tenant in (district, school, school, other):
        service.on_share_recorded([share_event(tenant, terms=[uuid.uuid4()])])

    counts = service.delete_for({"scope": "tenant", "tenant_id": district, "subject_id": district,
                                 "tenant_ids": [district, school], "request_id": str(uuid.uuid4())})
    session.commit()
    assert counts == {"service_share_count": 3, "term_set_share_count": 3, "daily_share_count": 2, "outcome_count": 0}
    assert set(session.scalars(select(DailyShareCount.tenant_id))) == {other}
    assert set(session.scalars(select(DeletedTenant.tenant_id))) == {district, school}

    # A share committed just before the termination arrives late: dropped.
    service.on_share_recorded([share_event(school)])
    assert set(session.scalars(select(ServiceShareCount.tenant_id))) == {other}
    # Deleting again is idempotent.
    assert service.delete_for({"scope": "tenant", "tenant_ids": [district, school]})["service_share_count"] == 0
    assert service.delete_for({"scope": "student", "tenant_ids": [other]}) == {}


def test_increment_adds_counts_with_one_statement_on_existing_rows(session):
    row = {"tenant_id": "t", "district_id": None, "day": __import__("datetime").date(2026, 1, 1), "channel": "sms"}
    counting.increment(session, DailyShareCount, [{**row, "count": 5}])
    counting.increment(session, DailyShareCount, [{**row, "count": 7}])
    session.commit()
    assert session.scalar(select(DailyShareCount.count)) == 12


def test_a_batch_commits_together_and_counts_each_id_once(session):
    tenant, fenced, svc = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    session.add(DeletedTenant(tenant_id=fenced))
    session.commit()
    seen = counting.load_share(share_event(tenant, svc))
    counting.count_shares(session, [seen])
    first = counting.load_share(share_event(tenant, svc, channel="email"))
    batch = [first, counting.load_share(share_event(tenant, svc, channel="email")), dict(first),
             seen, counting.load_share(share_event(fenced, svc))]
    assert counting.count_shares(session, batch) == ["counted", "counted", "duplicate", "duplicate", "fenced"]
    rows = {(r.tenant_id, r.channel): r.count for r in session.scalars(select(ServiceShareCount))}
    assert rows == {(tenant, "sms"): 1, (tenant, "email"): 2}
    assert session.scalar(select(func.count()).select_from(ProcessedEvent)) == 4


def test_a_failing_batch_leaves_nothing_behind(session, monkeypatch):
    events = [counting.load_share(share_event(uuid.uuid4())) for _ in range(3)]

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(counting, "increment", broken)
    with pytest.raises(RuntimeError):
        counting.count_shares(session, events)
    monkeypatch.undo()
    assert {t: r for t, r in all_rows(session).items() if r} == {}
    assert counting.count_shares(session, events) == ["counted"] * 3  # the redelivery counts them
