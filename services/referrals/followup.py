"""Following a referral until the family is connected: who may see it, who may move it, and how.

Visibility (least access):

* the sharer sees their own shares; a school admin every share of the school;
  a district admin every share of the district;
* a program's staff see the referrals sent to their program ("incoming"), with
  only what was disclosed to them;
* operators and auditors see no referral (they carry student data).

Anything else is answered "not found", so ids of other tenants reveal nothing.

Example::

    >>> update_status(db, auth, referral_id, {"status": "completed", "outcome": "connected"})
    {"id": "…", "status": "completed", "outcome": "connected", "history": [...]}
"""
from __future__ import annotations

import base64
import uuid
from datetime import timedelta

from nameko.exceptions import RemoteError
from sqlalchemy import func, select
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from services.referrals.exceptions import InvalidTransition, LinkNotFound, NotYourReferral, ReferralNotFound
from services.referrals.localization import SHIPPED
from services.referrals.messages import render_link_gone, render_page
from services.referrals.models import CLOSED_STATUSES, Disclosure, OutboxMessage, Referral, Share, StatusChange
from services.referrals.printing import share_pdf
from services.referrals.schemas import DisclosureSchema, ReferralQuerySchema, StatusUpdateSchema
from services.referrals.sharing import token_hash
from services.referrals.views import is_incoming_for, referral_view
from weintervene.auth import PROGRAM_ROLES, STUDENT_DATA_ROLES, AuthContext, Role
from weintervene.config import settings
from weintervene.contracts import MAX_DAYS_OPEN, REFERRAL_CLOSED, ReferralClosed
from weintervene.db import utcnow
from weintervene.errors import BadRequest, Forbidden, WeInterveneError
from weintervene.messaging import outbox_rows
from weintervene.validation import load

# Decisions that belong to the receiving program when there is one.
PROGRAM_DECISIONS = frozenset({"received", "accepted", "rejected"})
OUTCOME_STATUSES = frozenset({"completed", "failed", "cancelled", "rejected"})


def _caller(auth) -> AuthContext:
    caller = AuthContext.from_dict(auth)
    if caller.role not in STUDENT_DATA_ROLES:
        raise Forbidden("Your role does not see referrals.", code="role_forbidden")
    return caller


def can_view(referral: Referral, caller: AuthContext) -> bool:
    share = referral.share
    if is_incoming_for(referral, caller):
        return True
    if share.sharer_id == caller.user_id and share.tenant_id == caller.tenant_id:
        return True
    if caller.role is Role.SCHOOL_ADMIN and share.tenant_id == caller.tenant_id:
        return True
    if caller.role is Role.PROGRAM_ADMIN and share.tenant_id == caller.tenant_id:
        return True
    if caller.role is Role.DISTRICT_ADMIN and caller.tenant_id in (share.district_id, share.tenant_id):
        return True
    return False


def visible_referral(db, caller: AuthContext, referral_id: str) -> Referral:
    referral = db.get(Referral, referral_id)
    if referral is None or not can_view(referral, caller):
        raise ReferralNotFound("No such referral.")
    return referral


def get_referral(db, auth, referral_id: str) -> dict:
    caller = _caller(auth)
    return referral_view(visible_referral(db, caller, referral_id), caller, detail=True)


def list_referrals(db, auth, query: dict) -> dict:
    """``scope``: mine (I shared), school (admins: every share of the school/district), incoming (programs)."""
    caller = _caller(auth)
    params = load(ReferralQuerySchema(), query)
    stmt = select(Referral).join(Share)
    scope = params["scope"]
    if scope == "mine":
        stmt = stmt.where(Share.sharer_id == caller.user_id, Share.tenant_id == caller.tenant_id)
    elif scope == "school":
        if caller.role in (Role.SCHOOL_ADMIN, Role.PROGRAM_ADMIN):
            stmt = stmt.where(Share.tenant_id == caller.tenant_id)
        elif caller.role is Role.DISTRICT_ADMIN:
            stmt = stmt.where((Share.district_id == caller.tenant_id) | (Share.tenant_id == caller.tenant_id))
        else:
            raise Forbidden("Only school admins see every referral of the school.", code="role_forbidden")
    else:
        if caller.role not in PROGRAM_ROLES:
            raise Forbidden("Incoming referrals are for program staff.", code="role_forbidden")
        stmt = stmt.where(Referral.receiving_tenant_id == caller.tenant_id, Share.tenant_id != caller.tenant_id)
    if params["status"]:
        stmt = stmt.where(Referral.status == params["status"])
    if params["due"] is not None:
        due = Referral.status.not_in(CLOSED_STATUSES) & (Referral.follow_up_on <= utcnow().date())
        stmt = stmt.where(due if params["due"] else ~due | Referral.follow_up_on.is_(None))
    if params["student_id"] and scope != "incoming":
        stmt = stmt.where(Share.student_id == str(params["student_id"]))
    if params["service_id"]:
        stmt = stmt.where(Referral.service_id == str(params["service_id"]))
    total = db.scalar(select(func.count()).select_from(stmt.subquery()))
    page, per_page = params["page"], params["per_page"]
    rows = db.scalars(
        stmt.order_by(Referral.created_at.desc(), Referral.id).offset((page - 1) * per_page).limit(per_page)
    ).all()
    return {"items": [referral_view(r, caller) for r in rows], "total": total, "page": page, "per_page": per_page}


def update_status(db, auth, referral_id: str, data: dict) -> dict:
    caller = _caller(auth)
    change = load(StatusUpdateSchema(), data)
    referral = visible_referral(db, caller, referral_id)
    status, outcome = change["status"], change["outcome"]
    incoming = is_incoming_for(referral, caller)
    if referral.share.student_id is None:
        raise InvalidTransition("A walk-in share cannot be followed up: nothing about the family was kept.")
    if referral.status in CLOSED_STATUSES:
        raise InvalidTransition(f"This referral is closed ({referral.status}).")
    if not incoming and referral.receiving_tenant_id and status in PROGRAM_DECISIONS:
        raise NotYourReferral("The receiving program decides whether it accepts this referral.")
    if incoming and status == "cancelled":
        raise NotYourReferral("Only the referring school cancels a referral; decline it instead.")
    if status == "completed" and not outcome:
        raise BadRequest("Say how it ended.", code="invalid_input",
                         details={"outcome": ["Required when the status is completed."]})
    if outcome and status not in OUTCOME_STATUSES:
        raise BadRequest("An outcome is given only when the referral closes.", code="invalid_input",
                         details={"outcome": [f"Not allowed with status {status}."]})
    now = utcnow()
    referral.status, referral.outcome, referral.last_update_at = status, outcome, now
    referral.follow_up_on = (now + timedelta(days=settings().referral_reminder_days)).date()
    referral.history.append(StatusChange(
        status=status, outcome=outcome, note=change["note"], changed_by=caller.user_id,
        changed_by_tenant_id=caller.tenant_id, at=now,
    ))
    if outcome:
        for row in outbox_rows(db, OutboxMessage, [closed_event(referral, outcome, now)]):
            db.add(OutboxMessage(**row))
    db.commit()
    return referral_view(referral, caller, detail=True)


REFERRAL_CLOSED_EVENT = ReferralClosed()


def closed_event(referral, outcome: str, now) -> tuple[str, dict]:
    """The de-identified ``referral_closed`` event of a referral that just closed: the
    referring school, the service and its terms, the outcome and the whole days it took.

    Example: closed_event(referral, "connected", now) -> ("referral_closed", {"event_id": "…",
    "tenant_id": lincoln, "service_id": …, "outcome": "connected", "days_open": 9, …})
    """
    share = referral.share
    days = max(0, (now - share.created_at).days)
    return REFERRAL_CLOSED, REFERRAL_CLOSED_EVENT.dump({
        "event_id": uuid.uuid4(),
        "tenant_id": share.tenant_id,
        "district_id": share.district_id,
        "service_id": referral.service_id,
        "taxonomy_term_ids": list((referral.service_info or {}).get("taxonomy_term_ids") or [])[:50],
        "outcome": outcome,
        "days_open": min(days, MAX_DAYS_OPEN),
        "occurred_on": now.date(),
    })


def print_share(db, auth, referral_id: str, fmt: str) -> dict:
    """The share's print-ready page: ``{"html": …}`` or ``{"pdf_base64": …}``."""
    caller = _caller(auth)
    referral = visible_referral(db, caller, referral_id)
    if is_incoming_for(referral, caller):
        raise NotYourReferral("Only the referring school prints its shares.")
    share = referral.share
    services = [r.service_info for r in share.referrals]
    if fmt == "pdf":
        return {"pdf_base64": base64.b64encode(share_pdf(share.language, services, share.note)).decode()}
    return {"html": render_page(share.language, services, share.note, kind="print")}


def open_link(db, token: str) -> dict:
    """The public page of a shared link: service information only (no note, no student)."""
    if not token or len(token) > 100:
        raise LinkNotFound("This link does not exist or has expired.")
    share = db.scalar(select(Share).where(Share.link_token_hash == token_hash(token)))
    if share is None or share.link_expires_at is None or share.link_expires_at <= utcnow():
        raise LinkNotFound("This link does not exist or has expired.")
    services = [r.service_info for r in share.referrals]
    return {"html": render_page(share.language, services, None, kind="link")}


def expired_link_page(db, identity, token: str, accept_language: str | None = None) -> dict:
    """The page of an expired or unknown link: ``{"html": …}`` in the share's language when the
    token was a real one, else the best shipped match of the browser's ``Accept-Language``; it
    names the school that shared it (a tenant's name only, never the student). The token is
    unguessable, so naming the school tells nothing to whoever does not hold the link.

    Example: expired_link_page(db, identity, "Xy…", "es-MX,es;q=0.9") -> {"html": "<!doctype html>…Pida a Lincoln…"}
    """
    share = None
    if token and len(token) <= 100:
        share = db.scalar(select(Share).where(Share.link_token_hash == token_hash(token)))
    school = None
    if share is not None:
        language = share.language
        try:
            school = identity.tenant_info(share.tenant_id).get("name")
        except (WeInterveneError, RemoteError):  # the page still says "ask your school"
            school = None
    else:
        accepted = parse_accept_header((accept_language or "")[:500], LanguageAccept)
        language = accepted.best_match(SHIPPED, default="en")
    return {"html": render_link_gone(language, school)}


def list_disclosures(db, identity, auth, student_id: str) -> dict:
    """FERPA disclosure log of one student, for the admins of the student's school."""
    caller = AuthContext.from_dict(auth).require(Role.SCHOOL_ADMIN, Role.DISTRICT_ADMIN)
    identity.check_student_access(auth, student_id)
    stmt = select(Disclosure).where(Disclosure.student_id == student_id)
    if caller.role is Role.SCHOOL_ADMIN:
        stmt = stmt.where(Disclosure.tenant_id == caller.tenant_id)
    rows = db.scalars(stmt.order_by(Disclosure.disclosed_at.desc())).all()
    items = DisclosureSchema(many=True).dump(rows)
    return {"items": items, "total": len(items), "page": 1, "per_page": max(len(items), 1)}
