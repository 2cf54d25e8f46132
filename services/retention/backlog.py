"""Retention's backlog gauges: deletion requests still open, and those past their due time.

Example::

    measure_deletions(db)   # -> ({"dispatched": 2}, 1)
    # /metrics: weintervene_deletion_requests_pending{status="dispatched"} 2.0
    #           weintervene_deletion_requests_overdue 1.0
"""
from __future__ import annotations

from prometheus_client import Gauge
from sqlalchemy import func, select

from services.retention.deletions import OPEN_STATUSES
from services.retention.models import DeletionRequest
from weintervene.db import utcnow

DELETIONS_PENDING = Gauge(
    "weintervene_deletion_requests_pending", "Deletion requests not completed yet, by status", ["status"])
DELETIONS_OVERDUE = Gauge(
    "weintervene_deletion_requests_overdue", "Deletion requests not completed by their due time (deletion_due_hours)")


def measure_deletions(session, now=None) -> tuple[dict[str, int], int]:
    """Set both gauges from the requests table; returns (open requests by status, overdue)."""
    now = now or utcnow()
    open_ = DeletionRequest.status.in_(OPEN_STATUSES)
    counts = dict(session.execute(select(DeletionRequest.status, func.count()).where(open_)
                                  .group_by(DeletionRequest.status)).all())
    overdue = session.scalar(select(func.count()).select_from(DeletionRequest)
                             .where(open_, DeletionRequest.due_at < now))
    for status in OPEN_STATUSES:
        DELETIONS_PENDING.labels(status).set(counts.get(status, 0))
    DELETIONS_OVERDUE.set(overdue)
    return counts, overdue
