"""Referrals' backlog gauge: deliveries waiting for another try after a failed attempt.

A delivery that fails temporarily (the mail relay or SMS provider refused or timed out) goes
back to ``queued`` with its attempts counted and a later ``next_attempt_at``; one that fails
for good is counted by ``weintervene_referral_deliveries_total{result="failed"}``.

Example::

    measure_failing_deliveries(db)   # -> {"email": 3}
    # /metrics: weintervene_deliveries_failing{channel="email"} 3.0
"""
from __future__ import annotations

from prometheus_client import Gauge
from sqlalchemy import func, select

from services.referrals.models import Delivery

CHANNELS = ("email", "sms")
DELIVERIES_FAILING = Gauge(
    "weintervene_deliveries_failing", "Deliveries waiting to be retried after a failed attempt", ["channel"])


def measure_failing_deliveries(session) -> dict[str, int]:
    """Set the gauge per channel; returns the counts."""
    counts = dict(session.execute(
        select(Delivery.channel, func.count())
        .where(Delivery.state == "queued", Delivery.attempts > 0)
        .group_by(Delivery.channel)).all())
    for channel in CHANNELS:
        DELIVERIES_FAILING.labels(channel).set(counts.get(channel, 0))
    return counts
