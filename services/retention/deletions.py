"""Deletion requests: accept, fence, wait for FERPA, dispatch, re-send, confirm, complete.

The life of a request (``status``)::

    pending ──fence ok──▶ (FERPA inspection open? waiting_ferpa_inspection) ──▶ dispatched ──all confirmed──▶ completed
       ▲ identity unreachable: stays pending, retried by the sweep timer

* **Fence first.** Before any service is asked to delete, identity is asked
  (synchronously) to fence the subject, so no new data about it is accepted
  while the deletion travels. If identity does not answer, the request stays
  ``pending`` with the reason, and the sweep retries.
* **FERPA guard.** A student's deletion waits while an inspection of that
  student's records is open, and says so in ``status_reason``.
* **Dispatch** goes through retention's own outbox (one transaction with the
  state change and its audit entry), so a broker outage only delays it.
* **Re-send** to the services that have not confirmed within
  ``deletion_resend_seconds``: a new attempt number, addressed to those only.
* **Complete** when every service of ``contracts.DATA_SERVICES`` confirmed; then
  the raw subject id is erased from retention too, leaving the opaque reference.

Example::

    >>> req = create_request(session, identity, auth, {"scope": "student",
    ...     "subject_id": "9b1…", "reason": "parent_opt_out",
    ...     "verification": {"method": "in_person_photo_id", "verified_by": "4c0…"}})
    >>> req.status
    'dispatched'
"""
from __future__ import annotations

import io
import logging
from datetime import date, datetime, time, timedelta, timezone

import eventlet
from sqlalchemy import and_, delete, func, or_, select

from services.retention import audit
from services.retention.exceptions import RequestNotFound
from services.retention.models import (
    DataExport, DeletionConfirmation, DeletionRequest, InspectionRequest, OutboxMessage, RetentionPolicy,
)
from services.retention.schemas import DeletionRequestSchema, PolicySchema
from weintervene import spreadsheets
from weintervene.auth import AuthContext, Role
from weintervene.config import settings
from weintervene.hashing import keyed_hash, keyed_hashes
from weintervene.contracts import (
    DATA_SERVICES, DELETION_REQUESTED, PLATFORM_ACTION, DeletionCompleted, DeletionRequested, PlatformAction,
)
from weintervene.db import new_id, utcnow
from weintervene.errors import BadRequest, Forbidden, NotFound
from weintervene.messaging import outbox_add

log = logging.getLogger(__name__)

OPEN_STATUSES = ("pending", "waiting_ferpa_inspection", "dispatched")
ADMIN_ROLES = (Role.SCHOOL_ADMIN, Role.DISTRICT_ADMIN, Role.PROGRAM_ADMIN)
FENCE_TIMEOUT_SECONDS = 5.0


def subject_ref(subject_id: str) -> str:
    """The opaque reference kept forever: HMAC-SHA256 of the id under the current key, with its key id."""
    return keyed_hash("subject", str(subject_id))


def subject_refs(subject_id: str) -> list[str]:
    """Every reference the subject may be stored under: one per key still accepted (a
    request or an inspection made before a key rotation keeps the older key's)."""
    return keyed_hashes("subject", str(subject_id))


def refs_of(subject_id: str | None, stored_ref: str) -> list[str]:
    """What rows about the same subject as a stored row may hold: every key's reference
    while the raw id is known, else the stored reference alone."""
    return subject_refs(subject_id) if subject_id else [stored_ref]


def _call(fn, *args, timeout: float | None = None):
    with eventlet.Timeout(timeout or settings().rpc_timeout_seconds):
        return fn(*args)


# -- accepting a request --------------------------------------------------------

def _facts_for_student(identity, auth: AuthContext, data: dict) -> dict:
    auth.require(*ADMIN_ROLES)
    student = _call(identity.check_student_access, auth.to_dict(), str(data["subject_id"]))
    verifier = _call(identity.user_info, str(data["verification"]["verified_by"]))
    if verifier["tenant_id"] not in (student["tenant_id"], auth.tenant_id) or verifier["role"] in (
        Role.OPERATOR.value, Role.AUDITOR.value,
    ):
        raise Forbidden("The verifier must be a staff member of the student's school or program.",
                        code="verifier_out_of_scope")
    return {"tenant_id": student["tenant_id"], "tenant_ids": [student["tenant_id"]]}


def _facts_for_tenant(identity, session, auth: AuthContext, data: dict) -> dict:
    auth.require(Role.OPERATOR)
    tenant_id = str(data["subject_id"])
    tenant = _call(identity.tenant_info, tenant_id)
    if tenant["kind"] == "platform":
        raise BadRequest("The platform tenant cannot be terminated.", code="platform_tenant")
    covered = [t["id"] for t in _call(identity.list_tenants_in, tenant_id)]
    if data.get("export_id"):
        export = session.get(DataExport, str(data["export_id"]))
        if export is None or export.tenant_id != tenant_id:
            raise NotFound("No such export of this tenant.", code="export_not_found")
    return {"tenant_id": tenant_id, "tenant_ids": sorted(set(covered) | {tenant_id})}


def _facts_for_user(identity, auth: AuthContext, data: dict) -> dict:
    """Removing an account is its own tenant's administrators' (a district admin's for its
    schools); an operator removes platform accounts (operators, auditors) only."""
    auth.require(Role.OPERATOR, *ADMIN_ROLES)
    user = _call(identity.user_info, str(data["subject_id"]))
    tenant = _call(identity.tenant_info, user["tenant_id"])
    if auth.role is Role.OPERATOR:
        if tenant["kind"] != "platform":
            raise Forbidden("A tenant's accounts are removed by its own administrators; "
                            "an operator may disable the account.", code="tenant_user_not_operators")
    elif not auth.in_scope(tenant["id"], tenant.get("district_id") or tenant.get("parent_id")):
        raise Forbidden("That user is not in your tenant.", code="out_of_scope")
    return {"tenant_id": user["tenant_id"], "tenant_ids": [user["tenant_id"]]}


def _creator_grace(now: datetime) -> datetime:
    # The creator advances the request right after creating it; the sweep takes
    # over only if that attempt did not finish (a crash), never racing it.
    return now + timedelta(seconds=FENCE_TIMEOUT_SECONDS * 2)


def create_request(session, identity, auth: AuthContext, data: dict) -> DeletionRequest:
    """Record a verified request and try to fence and dispatch it at once.

    Repeating an open request for the same subject returns the open one
    (harmless); after completion a repeat is a new request, which deletes nothing more.
    """
    scope = data["scope"]
    if scope == "student":
        facts = _facts_for_student(identity, auth, data)
    elif scope == "tenant":
        facts = _facts_for_tenant(identity, session, auth, data)
    else:
        facts = _facts_for_user(identity, auth, data)
    ref = subject_ref(data["subject_id"])
    existing = session.scalars(
        select(DeletionRequest).where(
            DeletionRequest.scope == scope, DeletionRequest.subject_ref.in_(subject_refs(data["subject_id"])),
            DeletionRequest.status.in_(OPEN_STATUSES),
        )
    ).first()
    if existing is not None:
        return existing
    verification = data.get("verification") or {}
    now = utcnow()
    req = DeletionRequest(
        scope=scope, tenant_id=facts["tenant_id"], tenant_ids=facts["tenant_ids"],
        subject_ref=ref, subject_id=str(data["subject_id"]),
        export_id=str(data["export_id"]) if data.get("export_id") else None,
        requested_by=auth.user_id,
        verified_by=str(verification["verified_by"]) if verification else None,
        verification_method=verification.get("method"),
        reason=data["reason"], note=data.get("note"), status="pending", attempt=0,
        created_at=now, due_at=now + timedelta(hours=settings().deletion_due_hours),
        next_try_at=_creator_grace(now),
    )
    session.add(req)
    session.flush()
    audit.append(session, "request_created", req.id, {
        "scope": scope, "tenant_id": req.tenant_id, "tenant_ids": req.tenant_ids, "subject_ref": ref,
        "requested_by": req.requested_by, "verified_by": req.verified_by,
        "verification_method": req.verification_method, "reason": req.reason,
        "export_id": req.export_id,
    })
    session.commit()
    advance(session, identity, req)
    return req


def create_policy_request(session, policy: RetentionPolicy, now: datetime) -> DeletionRequest:
    """A policy run: records of ``policy.record_kind`` older than the policy's age expire."""
    req = DeletionRequest(
        scope="policy", tenant_id=policy.tenant_id, tenant_ids=[policy.tenant_id],
        subject_ref=subject_ref(policy.tenant_id), subject_id=policy.tenant_id,
        older_than=now - timedelta(days=policy.max_age_days), record_kind=policy.record_kind,
        policy_id=policy.id, requested_by="policy", reason="retention_policy", status="pending",
        attempt=0, created_at=now, due_at=now + timedelta(hours=settings().deletion_due_hours),
        next_try_at=_creator_grace(now),
    )
    session.add(req)
    session.flush()
    audit.append(session, "request_created", req.id, {
        "scope": "policy", "tenant_id": req.tenant_id, "policy_id": policy.id,
        "record_kind": policy.record_kind, "older_than": req.older_than.isoformat(),
        "requested_by": "policy", "reason": "retention_policy",
    })
    return req


# -- moving a request forward ---------------------------------------------------

def _set_status(session, req: DeletionRequest, status: str, reason: str | None, event: str | None = None):
    changed = (req.status, req.status_reason) != (status, reason)
    req.status, req.status_reason = status, reason
    if changed and event:
        audit.append(session, event, req.id, {"status": status, "reason": reason})


def open_inspection_for(session, refs: list[str]) -> InspectionRequest | None:
    """The open inspection of the subject ``refs`` name (see :func:`refs_of`)."""
    return session.scalars(
        select(InspectionRequest).where(
            InspectionRequest.subject_ref.in_(refs), InspectionRequest.status == "open",
            InspectionRequest.kind == "inspection",
        ).order_by(InspectionRequest.opened_at)
    ).first()


def advance(session, identity, req: DeletionRequest) -> DeletionRequest:
    """Fence, check the FERPA guard, dispatch: as far as the request can go now. Commits."""
    if req.status not in ("pending", "waiting_ferpa_inspection"):
        return req
    now = utcnow()
    if req.scope != "policy" and req.fenced_at is None:
        try:
            # The requester's id: a platform account's request goes into the tenant's access log.
            _call(identity.fence_subject, req.id, req.scope, req.tenant_id, req.subject_id, req.requested_by,
                  timeout=min(FENCE_TIMEOUT_SECONDS, settings().rpc_timeout_seconds))
        except (Exception, eventlet.Timeout) as exc:  # noqa: BLE001 - any failure: not fenced, retry
            retry = settings().deletion_fence_retry_seconds
            log.warning("fence of request %s failed: %r; retrying in %ss", req.id, exc, retry)
            req.next_try_at = now + timedelta(seconds=retry)
            _set_status(
                session, req, "pending",
                f"Waiting for identity to fence the subject (it did not answer: {type(exc).__name__}); "
                f"retried every {retry:g} s. No service is asked to delete before the fence holds.",
                "fence_failed",
            )
            session.commit()
            return req
        req.fenced_at = now
        audit.append(session, "fenced", req.id, {})
    if req.scope == "student":
        inspection = open_inspection_for(session, refs_of(req.subject_id, req.subject_ref))
        if inspection is not None:
            _set_status(
                session, req, "waiting_ferpa_inspection",
                f"A request to inspect this student's records ({inspection.id}, opened "
                f"{inspection.opened_at:%Y-%m-%d}) is open; FERPA forbids destroying the records "
                "until it is closed. The deletion proceeds when it is.",
                "waiting_ferpa_inspection",
            )
            req.next_try_at = None
            session.commit()
            return req
    req.attempt = 1
    req.dispatched_at = req.last_sent_at = now
    req.next_try_at = None
    req.status, req.status_reason = "dispatched", None
    outbox_add(session, OutboxMessage, DELETION_REQUESTED, request_payload(req))
    audit.append(session, "dispatched", req.id, {"attempt": 1, "services": list(DATA_SERVICES)})
    session.commit()
    return req


def request_payload(req: DeletionRequest, services=()) -> dict:
    """The ``deletion_requested`` message (contract DeletionRequested)."""
    return DeletionRequested().dump({
        "request_id": req.id, "scope": req.scope, "tenant_id": req.tenant_id,
        "subject_id": req.subject_id or req.tenant_id, "tenant_ids": list(req.tenant_ids or []),
        "older_than": req.older_than, "attempt": req.attempt, "services": list(services),
        "record_kind": req.record_kind,
    })


def missing_services(req: DeletionRequest) -> list[str]:
    confirmed = {c.service for c in req.confirmations}
    return [s for s in DATA_SERVICES if s not in confirmed]


def resend(session, req: DeletionRequest) -> list[str]:
    """Send again, to the services that have not confirmed, with the next attempt number."""
    missing = missing_services(req)
    if req.status != "dispatched" or not missing:
        return []
    req.attempt += 1
    req.last_sent_at = utcnow()
    outbox_add(session, OutboxMessage, DELETION_REQUESTED, request_payload(req, missing))
    audit.append(session, "resent", req.id, {"attempt": req.attempt, "services": missing})
    return missing


def _lock(session, req_id: str) -> DeletionRequest | None:
    # Serialises confirmations of one request, so exactly one of them completes it.
    return session.get(DeletionRequest, req_id, with_for_update=True, populate_existing=True)


def record_confirmation(session, payload: dict, expected_service: str) -> str:
    """Apply one ``deletion_completed``; idempotent (the first confirmation per service counts).

    Returns what happened: recorded | completed | updated (a later confirmation counting
    more: the record takes its totals) | duplicate | unknown | rejected.
    """
    data = DeletionCompleted().load(payload)
    if data["service"] != expected_service:
        log.error("confirmation from %s arrived on %s's queue; ignored", data["service"], expected_service)
        return "rejected"
    req = _lock(session, str(data["request_id"]))
    if req is None:
        log.warning("confirmation for unknown request %s from %s", data["request_id"], data["service"])
        session.rollback()
        return "unknown"
    earlier = session.get(DeletionConfirmation, (req.id, data["service"]))
    if earlier is not None:
        if not _grew(earlier.counts or {}, data["counts"]):
            session.rollback()
            return "duplicate"
        # Services confirm the running totals of their deletion receipt, so a later run that
        # deleted more (a copy redelivered after a late write) says so: the record follows,
        # and the chain says what it said before.
        audit.append(session, "confirmation_updated", req.id, {
            "service": data["service"], "counts_before": earlier.counts, "counts": data["counts"]})
        earlier.counts = data["counts"]
        session.commit()
        return "updated"
    session.add(DeletionConfirmation(
        request_id=req.id, service=data["service"], counts=data["counts"],
        completed_at=data["completed_at"], attempt=req.attempt,
    ))
    session.flush()
    session.refresh(req, ["confirmations"])
    audit.append(session, "confirmed", req.id, {"service": data["service"], "counts": data["counts"],
                                                 "attempt": req.attempt})
    outcome = "recorded"
    if not missing_services(req) and req.status != "completed":
        complete(session, req)
        outcome = "completed"
    session.commit()
    return outcome


def _grew(before: dict, after: dict) -> bool:
    """Whether ``after`` counts at least as much as ``before`` of every kind, and more of one.

    Example: _grew({"shares": 2}, {"shares": 3}) -> True; _grew({"shares": 2}, {"shares": 0}) -> False
    """
    if any(after.get(kind, 0) < n for kind, n in before.items()):
        return False
    return any(n > before.get(kind, 0) for kind, n in after.items())


def complete(session, req: DeletionRequest) -> None:
    """Every service confirmed: close the request and forget the raw subject id here too."""
    req.status, req.status_reason = "completed", None
    req.completed_at = utcnow()
    refs = refs_of(req.subject_id, req.subject_ref)
    req.subject_id = None
    if req.scope == "student":
        for inspection in session.scalars(
            select(InspectionRequest).where(InspectionRequest.subject_ref.in_(refs))
        ):
            inspection.student_id = None
    # The dispatched messages carried the raw id; they have served their purpose.
    for message in session.scalars(select(OutboxMessage).where(OutboxMessage.event_type == DELETION_REQUESTED)):
        if (message.payload or {}).get("request_id") == req.id:
            session.delete(message)
    totals = {c.service: sum(c.counts.values()) for c in req.confirmations}
    audit.append(session, "completed", req.id, {"rows_deleted_by_service": totals})


# -- the sweep timer --------------------------------------------------------------

def sweep(session, identity, now: datetime | None = None) -> dict:
    """Retry fences, release FERPA waits, re-send to silent services. One transaction per request."""
    now = now or utcnow()
    s = settings()
    stats = {"advanced": 0, "resent": 0}
    due_ids = session.scalars(
        select(DeletionRequest.id).where(or_(
            and_(DeletionRequest.status == "pending",
                 or_(DeletionRequest.next_try_at.is_(None), DeletionRequest.next_try_at <= now)),
            DeletionRequest.status == "waiting_ferpa_inspection",
        ))
    ).all()
    for req_id in due_ids:
        req = _lock(session, req_id)
        if req is None or req.status not in ("pending", "waiting_ferpa_inspection"):
            session.rollback()
            continue
        if req.status == "waiting_ferpa_inspection" and open_inspection_for(session, refs_of(req.subject_id, req.subject_ref)):
            session.rollback()
            continue
        advance(session, identity, req)
        stats["advanced"] += req.status == "dispatched"
    stale = now - timedelta(seconds=s.deletion_resend_seconds)
    for req_id in session.scalars(
        select(DeletionRequest.id).where(DeletionRequest.status == "dispatched", DeletionRequest.last_sent_at <= stale)
    ).all():
        req = _lock(session, req_id)
        if req is None or req.status != "dispatched" or req.last_sent_at > stale:
            session.rollback()
            continue
        if resend(session, req):
            stats["resent"] += 1
        session.commit()
    return stats


def create_left_student_request(session, policy: RetentionPolicy, student: dict, now: datetime) -> DeletionRequest | None:
    """A ``left_students`` policy run for one student a roster import marked left: an ordinary
    scope=student request (fenced, FERPA-guarded, every service deletes and confirms) that
    records the policy it came from. None when a request for the student is already open."""
    refs = subject_refs(student["id"])
    if session.scalar(select(DeletionRequest.id).where(
            DeletionRequest.scope == "student", DeletionRequest.subject_ref.in_(refs),
            DeletionRequest.status.in_(OPEN_STATUSES))) is not None:
        return None
    req = DeletionRequest(
        scope="student", tenant_id=student["tenant_id"], tenant_ids=[student["tenant_id"]],
        subject_ref=subject_ref(student["id"]), subject_id=student["id"], record_kind=policy.record_kind,
        policy_id=policy.id, requested_by="policy", reason="retention_policy",
        note=f"Left the roster more than {policy.max_age_days} days ago (retention policy)",
        status="pending", attempt=0, created_at=now, due_at=now + timedelta(hours=settings().deletion_due_hours),
        next_try_at=_creator_grace(now),
    )
    session.add(req)
    session.flush()
    audit.append(session, "request_created", req.id, {
        "scope": "student", "tenant_id": req.tenant_id, "tenant_ids": req.tenant_ids, "subject_ref": req.subject_ref,
        "policy_id": policy.id, "record_kind": policy.record_kind, "max_age_days": policy.max_age_days,
        "requested_by": "policy", "reason": "retention_policy",
    })
    return req


def apply_due_policies(session, now: datetime | None = None, identity=None) -> list[str]:
    """Turn every policy whose interval has passed into a scope=policy request (a
    ``left_students`` policy: one scope=student request per student identity says left
    before the policy's age; without ``identity`` reachable it waits). Returns request ids."""
    now = now or utcnow()
    due_before = now - timedelta(seconds=settings().retention_policy_interval_seconds)
    created, students = [], []
    for policy in session.scalars(
        select(RetentionPolicy).where(or_(
            RetentionPolicy.last_applied_at.is_(None), RetentionPolicy.last_applied_at <= due_before,
        )).with_for_update(skip_locked=True) if session.bind.dialect.name == "postgresql" else
        select(RetentionPolicy).where(or_(
            RetentionPolicy.last_applied_at.is_(None), RetentionPolicy.last_applied_at <= due_before,
        ))
    ).all():
        if policy.record_kind == "left_students":
            if identity is None:
                continue
            older_than = now - timedelta(days=policy.max_age_days)
            try:
                left = _call(identity.left_students, policy.tenant_id, older_than.isoformat())
            except (Exception, eventlet.Timeout) as exc:  # noqa: BLE001 - stays due, next run retries
                log.warning("left_students of policy %s failed: %r", policy.id, exc)
                continue
            students.extend(r for r in (create_left_student_request(session, policy, s, now) for s in left) if r)
        else:
            created.append(create_policy_request(session, policy, now))
        policy.last_applied_at = now
    session.commit()
    for req in created:
        advance(session, None, req)
    for req in students:
        advance(session, identity, req)
    return [r.id for r in created + students]


def create_policy(session, auth: AuthContext, data: dict) -> dict:
    """An admin sets a policy for their own tenant; an operator for any tenant."""
    auth.require(Role.OPERATOR, *ADMIN_ROLES)
    tenant_id = str(data["tenant_id"]) if data.get("tenant_id") else auth.tenant_id
    if auth.role is not Role.OPERATOR and tenant_id != auth.tenant_id:
        raise Forbidden("Set policies for your own tenant.", code="out_of_scope")
    policy = RetentionPolicy(tenant_id=tenant_id, record_kind=data["record_kind"],
                             max_age_days=data["max_age_days"], created_by=auth.user_id)
    session.add(policy)
    session.flush()
    audit.append(session, "policy_created", None, {
        "policy_id": policy.id, "tenant_id": tenant_id, "record_kind": policy.record_kind,
        "max_age_days": policy.max_age_days, "created_by": auth.user_id,
    })
    report_platform_action(session, auth, tenant_id, "retention_policy_set",
                           f"Set a retention policy: {policy.record_kind} kept {policy.max_age_days} days")
    session.commit()
    return PolicySchema().dump(policy)


def report_platform_action(session, auth: AuthContext, tenant_id: str, action: str, description: str) -> None:
    """Tell identity's access-transparency log that a platform account acted on a tenant.

    Through retention's outbox, in the caller's transaction: the report exists exactly
    when the action committed, and reaches identity even if identity is down now (the
    event is persistent; identity applies it once by its id). An RPC would either be lost
    when identity is down after the commit, or report an action whose commit then failed.
    """
    if auth.role not in (Role.OPERATOR, Role.AUDITOR) or tenant_id == auth.tenant_id:
        return
    outbox_add(session, OutboxMessage, PLATFORM_ACTION, PlatformAction().dump({
        "event_id": new_id(), "tenant_id": tenant_id, "actor_user_id": auth.user_id, "action": action,
        "description": description, "occurred_at": utcnow(),
    }))


# -- reading the record -------------------------------------------------------------

def dump_request(req: DeletionRequest, now: datetime | None = None) -> dict:
    now = now or utcnow()
    data = DeletionRequestSchema().dump({
        **{c.key: getattr(req, c.key) for c in DeletionRequest.__table__.columns if c.key != "subject_id"},
        "overdue": req.status != "completed" and req.due_at < now,
        "confirmations": req.confirmations,
        "missing_services": missing_services(req) if req.status != "completed" else [],
    })
    return data


def _visible(auth: AuthContext):
    """Auditors and operators see every request (none holds personal data); admins their tenant's."""
    auth.require(Role.AUDITOR, Role.OPERATOR, *ADMIN_ROLES)
    if auth.role in (Role.AUDITOR, Role.OPERATOR):
        return None
    return DeletionRequest.tenant_id == auth.tenant_id


def _filtered(auth: AuthContext, query: dict, now: datetime):
    stmt = select(DeletionRequest)
    visible = _visible(auth)
    if visible is not None:
        stmt = stmt.where(visible)
    if query.get("tenant_id"):
        tenant = str(query["tenant_id"])
        stmt = stmt.where(or_(DeletionRequest.tenant_id == tenant))
    if query.get("scope"):
        stmt = stmt.where(DeletionRequest.scope == query["scope"])
    status = query.get("status")
    if status == "open":
        stmt = stmt.where(DeletionRequest.status.in_(OPEN_STATUSES))
    elif status:
        stmt = stmt.where(DeletionRequest.status == status)
    if query.get("overdue") is True:
        stmt = stmt.where(DeletionRequest.status != "completed", DeletionRequest.due_at < now)
    elif query.get("overdue") is False:
        stmt = stmt.where(or_(DeletionRequest.status == "completed", DeletionRequest.due_at >= now))
    if query.get("from_"):
        start = datetime.combine(_as_date(query["from_"]), time.min, tzinfo=timezone.utc)
        stmt = stmt.where(DeletionRequest.created_at >= start)
    if query.get("to"):
        end = datetime.combine(_as_date(query["to"]) + timedelta(days=1), time.min, tzinfo=timezone.utc)
        stmt = stmt.where(DeletionRequest.created_at < end)
    return stmt


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def list_requests(session, auth: AuthContext, query: dict) -> dict:
    now = utcnow()
    stmt = _filtered(auth, query, now)
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    page, per_page = query.get("page", 1), query.get("per_page", 50)
    rows = session.scalars(
        stmt.order_by(DeletionRequest.created_at.desc(), DeletionRequest.id)
        .offset((page - 1) * per_page).limit(per_page)
    ).all()
    return {"items": [dump_request(r, now) for r in rows], "total": total, "page": page, "per_page": per_page}


CSV_COLUMNS = (
    "id", "scope", "tenant_id", "subject_ref", "status", "status_reason", "reason", "note",
    "requested_by", "verified_by", "verification_method", "created_at", "due_at", "dispatched_at",
    "completed_at", "overdue", "attempt", "confirmed_services", "missing_services", "counts",
    # Added later, at the end so that auditors' scripts reading columns by position keep working.
    "tenant_name", "requested_by_name", "requested_by_role", "verified_by_name", "verified_by_role",
)


def requests_csv(session, auth: AuthContext, query: dict, named=lambda rows: rows) -> str:
    """Every matching request (no paging) as CSV, one row per request; ``named`` adds the
    people's and tenants' names to the dumped rows (:func:`services.retention.names.name_requests`)."""
    now = utcnow()
    out = io.StringIO()
    writer = spreadsheets.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    rows = [dump_request(req, now)
            for req in session.scalars(_filtered(auth, query, now).order_by(DeletionRequest.created_at))]
    for row in named(rows):
        row["confirmed_services"] = " ".join(c["service"] for c in row["confirmations"])
        row["missing_services"] = " ".join(row["missing_services"])
        row["counts"] = "; ".join(
            f"{c['service']}: " + ", ".join(f"{k}={v}" for k, v in sorted(c["counts"].items()))
            for c in row["confirmations"]
        )
        writer.writerow(row)  # spreadsheets: a note cannot run as a formula
    return out.getvalue()


def get_request(session, auth: AuthContext, request_id: str) -> dict:
    req = session.get(DeletionRequest, request_id)
    visible = _visible(auth)
    if req is None or (visible is not None and req.tenant_id != auth.tenant_id):
        raise RequestNotFound("No such deletion request.")
    return dump_request(req)


def purge_delivered_outbox(session, older_than_seconds: float = 3600) -> int:
    """Published outbox rows of completed requests are gone already; other published rows go after an hour."""
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    n = session.execute(
        delete(OutboxMessage).where(OutboxMessage.published_at.is_not(None), OutboxMessage.published_at < cutoff)
    ).rowcount
    session.commit()
    return n
