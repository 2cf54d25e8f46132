"""Privacy-policy versions, who acknowledged them, and incident notices.

Operators publish a new policy version (its "Last Updated" date and a one-line
summary) or an incident notice; everyone, signed in or not, reads the current
policy and the notices in force; each user acknowledges the current version once
(recorded here, per user, so it follows them from browser to browser and goes
with them when their data is deleted).

The current policy is the last published version; a new one may not be dated
before it nor in the future, so the date the privacy page shows never goes back.
A version is named by its id (two may share a date: a same-day correction). An incident notice is in force from when it is posted until its
``ends_at`` (set at posting or by "end now").

Example::

    >>> publish_policy(db, operator, {"last_updated": date(2026, 12, 1), "summary": "Shorter retention."})
    {"id": "9c1…", "version": "9c1…", "last_updated": "2026-12-01", "summary": "Shorter retention.", …}
    >>> current(db, teacher)
    {"policy": {"version": "9c1…", "last_updated": "2026-12-01", …}, "incidents": [], "acknowledged": False}
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from services.identity.models import IncidentNotice, PolicyAcknowledgement, PolicyVersion
from weintervene.auth import AuthContext, Role
from weintervene.db import utcnow
from weintervene.errors import BadRequest, Conflict, NotFound

# Enough for any operator's view; notices are few (a handful a year).
HISTORY_LIMIT = 100


def policy_dict(version: PolicyVersion | None) -> dict | None:
    if version is None:
        return None
    return {"id": version.id, "version": version.id,
            "last_updated": version.last_updated.isoformat(), "summary": version.summary,
            "published_at": version.published_at.isoformat()}


def notice_dict(notice: IncidentNotice, now: datetime | None = None) -> dict:
    now = now or utcnow()
    return {"id": notice.id, "message": notice.message, "severity": notice.severity,
            "starts_at": notice.starts_at.isoformat(),
            "ends_at": notice.ends_at.isoformat() if notice.ends_at else None,
            "active": notice.starts_at <= now and (notice.ends_at is None or notice.ends_at > now)}


def current_policy(db) -> PolicyVersion | None:
    return db.scalar(select(PolicyVersion).order_by(PolicyVersion.published_at.desc(), PolicyVersion.id).limit(1))


def active_notices(db, now: datetime | None = None) -> list[IncidentNotice]:
    now = now or utcnow()
    return list(db.scalars(select(IncidentNotice).where(
        IncidentNotice.starts_at <= now, or_(IncidentNotice.ends_at.is_(None), IncidentNotice.ends_at > now),
    ).order_by(IncidentNotice.starts_at.desc())))


def _acknowledgement(db, user_id: str, version: PolicyVersion) -> PolicyAcknowledgement | None:
    return db.scalar(select(PolicyAcknowledgement).where(
        PolicyAcknowledgement.user_id == user_id, PolicyAcknowledgement.policy_version_id == version.id))


def current(db, auth: AuthContext | None) -> dict:
    """What every page's banner needs, in one call; ``acknowledged`` is None for a visitor."""
    policy = current_policy(db)
    now = utcnow()
    acknowledged = None
    if auth is not None and policy is not None:
        acknowledged = _acknowledgement(db, auth.user_id, policy) is not None
    return {"policy": policy_dict(policy), "incidents": [notice_dict(n, now) for n in active_notices(db, now)],
            "acknowledged": acknowledged}


# -- operators ------------------------------------------------------------------------

def publish_policy(db, auth: AuthContext, values: dict) -> dict:
    auth.require(Role.OPERATOR)
    last_updated = values["last_updated"]
    if last_updated > utcnow().date():
        raise BadRequest("A policy version cannot be dated in the future.", code="invalid_input",
                         details={"last_updated": ["Must be today or earlier."]})
    latest = current_policy(db)
    if latest is not None and last_updated < latest.last_updated:
        raise Conflict(f"The current policy is dated {latest.last_updated.isoformat()}: a new version cannot be older.",
                       code="policy_version_outdated",
                       details={"last_updated": [f"Must be {latest.last_updated.isoformat()} or later."]})
    version = PolicyVersion(last_updated=last_updated, summary=values["summary"].strip())
    db.add(version)
    db.commit()
    return policy_dict(version)


def list_policies(db, auth: AuthContext) -> dict:
    auth.require(Role.OPERATOR)
    rows = db.scalars(select(PolicyVersion).order_by(PolicyVersion.published_at.desc(), PolicyVersion.id)
                      .limit(HISTORY_LIMIT))
    return {"items": [policy_dict(v) for v in rows]}


def post_notice(db, auth: AuthContext, values: dict) -> dict:
    auth.require(Role.OPERATOR)
    now = utcnow()
    if values["ends_at"] is not None and values["ends_at"] <= now:
        raise BadRequest("The notice would end before it starts.", code="invalid_input",
                         details={"ends_at": ["Must be in the future."]})
    notice = IncidentNotice(message=values["message"].strip(), severity=values["severity"], starts_at=now,
                            ends_at=values["ends_at"], created_at=now)
    db.add(notice)
    db.commit()
    return notice_dict(notice, now)


def end_notice(db, auth: AuthContext, notice_id: str) -> dict:
    auth.require(Role.OPERATOR)
    notice = db.get(IncidentNotice, str(notice_id))
    if notice is None:
        raise NotFound("No such notice.", code="notice_not_found")
    now = utcnow()
    if notice.ends_at is not None and notice.ends_at <= now:
        raise Conflict("This notice has already ended.", code="notice_ended")
    notice.ends_at = now
    db.commit()
    return notice_dict(notice, now)


def list_notices(db, auth: AuthContext) -> dict:
    """Every notice, newest first, in force or not (the operator's page)."""
    auth.require(Role.OPERATOR)
    now = utcnow()
    rows = db.scalars(select(IncidentNotice).order_by(IncidentNotice.starts_at.desc()).limit(HISTORY_LIMIT))
    return {"items": [notice_dict(n, now) for n in rows]}


# -- every signed-in user ----------------------------------------------------------------

def acknowledgement(db, auth: AuthContext) -> dict:
    policy = current_policy(db)
    if policy is None:
        raise NotFound("No policy version is published.", code="policy_not_found")
    ack = _acknowledgement(db, auth.user_id, policy)
    return {"version": policy.id, "last_updated": policy.last_updated.isoformat(), "acknowledged": ack is not None,
            "acknowledged_at": ack.acknowledged_at.isoformat() if ack else None}


def acknowledge(db, auth: AuthContext, version: str) -> dict:
    """Record that the caller read ``version``; only the current version can be acknowledged
    (an old tab must not mark a newer policy read). Acknowledging twice changes nothing."""
    policy = current_policy(db)
    if policy is None:
        raise NotFound("No policy version is published.", code="policy_not_found")
    if version != policy.id:
        raise Conflict(f"The privacy policy was updated again on {policy.last_updated.isoformat()}: read it, then "
                       "acknowledge it.", code="policy_version_not_current",
                       details={"version": [f"Not the current version ({policy.id})."]})
    if _acknowledgement(db, auth.user_id, policy) is None:
        db.add(PolicyAcknowledgement(user_id=auth.user_id, tenant_id=auth.tenant_id, policy_version_id=policy.id))
        try:
            db.commit()
        except IntegrityError:  # two tabs at once: the other one recorded it
            db.rollback()
    return acknowledgement(db, auth)
