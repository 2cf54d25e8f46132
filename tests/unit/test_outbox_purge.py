"""Published outbox rows are purged after ``outbox_retention_days`` (referrals' outbox,
the biggest: one row per share); unpublished ones always stay."""
from __future__ import annotations

from datetime import timedelta

import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import select

from services.referrals.models import OutboxMessage
from services.referrals.service import ReferralsService
from tests.support.databases import migrated_session
from weintervene.db import utcnow
from weintervene.messaging import OutboxRelay, purge_published_outbox
from weintervene.runner import service_class


@pytest.fixture
def session(tmp_path):
    with migrated_session(tmp_path, "referrals") as db:
        yield db


def add_rows(session, **ages):
    """``name=(published_days_ago or None, created_days_ago)`` -> rows with those ids."""
    now = utcnow()
    for name, (published, created) in ages.items():
        session.add(OutboxMessage(
            id=name, event_type="share_recorded", payload={"tenant_id": "t"},
            created_at=now - timedelta(days=created),
            published_at=None if published is None else now - timedelta(days=published),
        ))
    session.commit()


def remaining(session):
    return sorted(session.scalars(select(OutboxMessage.id)))


def test_rows_published_before_the_retention_period_go_and_the_rest_stay(session, patch_settings):
    patch_settings(outbox_retention_days=7)
    add_rows(session, old_published=(8, 8), recent_published=(6, 9), old_pending=(None, 30), new_pending=(None, 0))
    worker_factory(ReferralsService, db=session).purge_published_outbox()
    assert remaining(session) == ["new_pending", "old_pending", "recent_published"]


def test_the_retention_period_is_a_setting(session, patch_settings):
    patch_settings(outbox_retention_days=1)
    add_rows(session, two_days=(2, 2), half_a_day=(0.5, 3))
    worker_factory(ReferralsService, db=session).purge_published_outbox()
    assert remaining(session) == ["half_a_day"]


def test_a_large_backlog_goes_in_batches(session):
    add_rows(session, **{f"r{i:03d}": (10, 10) for i in range(25)}, kept=(1, 1))
    assert purge_published_outbox(session, OutboxMessage, timedelta(days=7), batch=10) == 25
    assert remaining(session) == ["kept"]


def test_every_service_with_an_outbox_purges_it():
    for name in ("identity", "directory", "referrals", "analytics", "retention"):
        cls = service_class(name)
        if getattr(cls, "outbox_model", None) is not None:
            assert issubclass(cls, OutboxRelay) and hasattr(cls, "purge_published_outbox"), name
