"""Helpers for analytics tests: a migrated database, share events, fake tenants."""
from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy.orm import Session

from weintervene.db import make_engine, migrate


def migrated_session(url: str) -> Session:
    engine = make_engine(url)
    migrate("analytics", engine)
    return Session(engine, expire_on_commit=False)


def share_event(tenant_id, service_id=None, terms=(), channel="sms", day="2026-11-10", **extra) -> dict:
    """A share_recorded payload as referrals publishes it (JSON types)."""
    return {
        "event_id": str(uuid.uuid4()),
        "tenant_id": str(tenant_id),
        "district_id": extra.pop("district_id", None),
        "service_id": str(service_id or uuid.uuid4()),
        "taxonomy_term_ids": [str(t) for t in terms],
        "channel": channel,
        "occurred_on": day.isoformat() if isinstance(day, date) else day,
        **extra,
    }


def closed_event(tenant_id, outcome="connected", days_open=7, terms=(), service_id=None, day="2026-11-20",
                 **extra) -> dict:
    """A referral_closed payload as referrals publishes it (JSON types)."""
    share = share_event(tenant_id, service_id, terms, day=day, **extra)
    share.pop("channel")
    return {**share, "outcome": outcome, "days_open": days_open}


def tenant(name, kind="school", parent_id=None, consent=False, threshold=None, timezone="America/New_York",
           latitude=40.0, longitude=-75.0) -> dict:
    """A tenant_info answer as identity gives it."""
    return {
        "id": str(uuid.uuid4()), "kind": kind, "name": name, "parent_id": parent_id,
        "district_id": parent_id, "postcode": "19104", "latitude": latitude, "longitude": longitude,
        "timezone": timezone, "student_ids_enabled": True, "analytics_consent": consent,
        "suppression_threshold": threshold, "status": "active",
    }
