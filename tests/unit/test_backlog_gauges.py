"""The backlog gauges the alert rules watch: each service's outbox, retention's open and overdue
deletion requests, referrals' deliveries waiting to be retried; each measured by its service's
timer into /metrics."""
from __future__ import annotations

from datetime import timedelta

import pytest
from nameko.testing.services import worker_factory
from prometheus_client import REGISTRY

from services.referrals.models import Delivery, OutboxMessage, Share
from services.referrals.service import ReferralsService
from services.retention.models import DeletionRequest
from services.retention.service import RetentionService
from tests.support.databases import migrated_session
from weintervene.db import utcnow
from weintervene.observability import OutboxBacklogGauges, outbox_backlog
from weintervene.runner import ALL_COMPONENTS, service_class


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels)


@pytest.fixture
def referrals_db(tmp_path):
    with migrated_session(tmp_path, "referrals") as db:
        yield db


@pytest.fixture
def retention_db(tmp_path):
    with migrated_session(tmp_path, "retention") as db:
        yield db


def test_the_outbox_backlog_counts_what_is_not_published_and_its_oldest_age(referrals_db):
    now = utcnow()
    for name, created, published in [("a", 120, None), ("b", 30, None), ("c", 600, now)]:
        referrals_db.add(OutboxMessage(id=name, event_type="share_recorded", payload={},
                                       created_at=now - timedelta(seconds=created), published_at=published))
    referrals_db.commit()
    pending, oldest = outbox_backlog(referrals_db, OutboxMessage, now=now)
    assert pending == 2 and oldest == pytest.approx(120, abs=1)
    worker_factory(ReferralsService, db=referrals_db).measure_outbox_backlog()
    assert sample("weintervene_outbox_pending", service="referrals") == 2
    assert sample("weintervene_outbox_oldest_pending_seconds", service="referrals") >= 120


def test_an_empty_outbox_reads_zero(referrals_db):
    assert outbox_backlog(referrals_db, OutboxMessage) == (0, 0.0)


def test_every_service_with_an_outbox_measures_it():
    for name in ALL_COMPONENTS:
        cls = service_class(name)
        if hasattr(cls, "outbox_model"):
            assert issubclass(cls, OutboxBacklogGauges), name


def _deletion(status, due_in_hours):
    return DeletionRequest(scope="student", tenant_id="t", subject_ref="0:" + "ab" * 32, requested_by="u",
                           reason="opt_out", status=status, due_at=utcnow() + timedelta(hours=due_in_hours))


def test_deletion_requests_pending_and_overdue(retention_db):
    retention_db.add_all([_deletion("pending", 72), _deletion("dispatched", 1), _deletion("dispatched", -2),
                          _deletion("completed", -100)])
    retention_db.commit()
    worker_factory(RetentionService, db=retention_db).measure_deletions()
    assert sample("weintervene_deletion_requests_pending", status="pending") == 1
    assert sample("weintervene_deletion_requests_pending", status="dispatched") == 2
    assert sample("weintervene_deletion_requests_pending", status="waiting_ferpa_inspection") == 0
    # The completed one is past its due time but done: not overdue.
    assert sample("weintervene_deletion_requests_overdue") == 1


def test_deliveries_failing_are_those_queued_again_after_a_failed_attempt(referrals_db):
    share = Share(tenant_id="t", sharer_role="teacher", channel="email")
    referrals_db.add(share)
    referrals_db.flush()
    for channel, state, attempts in [("email", "queued", 2), ("email", "queued", 0), ("sms", "queued", 1),
                                     ("sms", "failed", 6), ("email", "sent", 1)]:
        referrals_db.add(Delivery(share_id=share.id, channel=channel, recipient_kind="contact", state=state,
                                  attempts=attempts))
    referrals_db.commit()
    worker_factory(ReferralsService, db=referrals_db).measure_deliveries()
    assert sample("weintervene_deliveries_failing", channel="email") == 1
    assert sample("weintervene_deliveries_failing", channel="sms") == 1
