"""Break-glass recovery: an operator's recorded request that takes effect only when approved.

A tenant whose administrators cannot act (they left, lost access) is recovered without an
operator ever holding the keys alone:

1. an operator asks (``request_recovery``): "invite a new administrator <email> because
   <reason>"; the request is recorded and the tenant's active administrators are emailed;
2. one of the tenant's administrators (a district admin for its schools) approves it, or —
   when the tenant has no active administrator left — a *second, different* operator does;
3. only then is the invitation created and mailed (the admin role of that kind of tenant);
4. anyone who may approve may refuse instead (the asking operator may withdraw it), and a
   request not decided within ``REQUEST_TTL`` expires.

Every request is its own record (``break_glass_request``): who asked, why, who approved or
refused, how and when. It is never deleted except with its tenant (termination).

Example::

    >>> request_recovery(db, ops_ana, {"tenant_id": lincoln_id, "action": "invite_administrator",
    ...     "email": "new.principal@lincoln.example", "display_name": "New Principal",
    ...     "reason": "The principal left; the district asked us by phone (ticket 4411)."})
    {"id": …, "status": "pending", "approvers": "tenant_administrator", …}
    >>> approve(db, district_admin, request_id, None)["status"]
    'approved'
"""
from __future__ import annotations

import logging
from datetime import timedelta
from html import escape

from sqlalchemy import delete, func, or_, select, update

from services.identity import access_log, accounts, staff_rules, tenants
from services.identity.exceptions import BreakGlassClosed, BreakGlassNotFound, BreakGlassRefused
from services.identity.models import BreakGlassRequest, Tenant, User
from weintervene import mail
from weintervene.auth import AuthContext, Role
from weintervene.config import settings
from weintervene.db import utcnow
from weintervene.errors import BadRequest, Conflict

log = logging.getLogger(__name__)

REQUEST_TTL = timedelta(hours=72)
APPROVERS = (Role.OPERATOR, Role.SCHOOL_ADMIN, Role.DISTRICT_ADMIN, Role.PROGRAM_ADMIN)


def _names(db, user_ids) -> dict[str, str]:
    ids = sorted({u for u in user_ids if u})
    if not ids:
        return {}
    return dict(db.execute(select(User.id, User.display_name).where(User.id.in_(ids))).all())


def request_dict(db, req: BreakGlassRequest, names: dict | None = None) -> dict:
    names = names if names is not None else _names(db, [req.requested_by, req.decided_by])
    return {
        "id": req.id, "tenant_id": req.tenant_id, "tenant_name": req.tenant.name, "action": req.action,
        "email": req.email, "display_name": req.display_name, "reason": req.reason, "status": req.status,
        "requested_by": req.requested_by, "requested_by_name": names.get(req.requested_by),
        "requested_at": req.requested_at.isoformat(), "expires_at": req.expires_at.isoformat(),
        "decided_by": req.decided_by, "decided_by_name": names.get(req.decided_by),
        "decided_at": req.decided_at.isoformat() if req.decided_at else None,
        "approval": req.approval, "decision_note": req.decision_note, "created_user_id": req.created_user_id,
        "approvers": "tenant_administrator" if staff_rules.has_administrator(db, req.tenant) else "second_operator",
    }


def _expire_due(db) -> None:
    """Pending requests past their time become ``expired`` (kept, like every decision)."""
    db.execute(update(BreakGlassRequest)
               .where(BreakGlassRequest.status == "pending", BreakGlassRequest.expires_at <= utcnow())
               .values(status="expired"))


# -- asking -------------------------------------------------------------------------

def request_recovery(db, auth: AuthContext, values: dict) -> dict:
    """An operator asks to invite a new administrator to a tenant; nothing happens until approved."""
    auth.require(Role.OPERATOR)
    tenant = tenants.get_tenant_or_404(db, str(values["tenant_id"]))
    if staff_rules.is_platform(tenant) or tenant.status != "active":
        raise BadRequest("Only an active school, district or program is recovered this way.",
                         code="break_glass_not_for_tenant")
    email = accounts.normalise_email(values["email"])
    if db.scalar(select(User.id).where(User.email == email)):
        raise Conflict("A user with that email exists.", code="email_taken")
    now = utcnow()
    req = BreakGlassRequest(
        tenant_id=tenant.id, action=values["action"], email=email, display_name=values["display_name"].strip(),
        reason=values["reason"].strip(), status="pending", requested_by=auth.user_id, requested_at=now,
        expires_at=now + REQUEST_TTL,
    )
    db.add(req)
    db.flush()
    access_log.record(db, auth, tenant, "break_glass_requested",
                      f"Asked to {req.action.replace('_', ' ')} {req.display_name}: {req.reason}")
    db.commit()
    _ask_administrators(db, req)
    return request_dict(db, req)


def _ask_administrators(db, req: BreakGlassRequest) -> None:
    """Email the tenant's active administrators that a recovery waits for them."""
    link = f"{settings().public_base_url.rstrip('/')}/break-glass"
    for admin in staff_rules.tenant_administrators(db, req.tenant):
        text = (f"Hello {admin.display_name},\n\nA WeIntervene operator asks to invite {req.display_name} "
                f"<{req.email}> as an administrator of {req.tenant.name}.\nTheir reason: {req.reason}\n\n"
                f"Nothing happens unless you or another administrator approves it within 72 hours. "
                f"Approve or refuse it here:\n\n{link}\n")
        html = (f"<p>Hello {escape(admin.display_name)},</p><p>A WeIntervene operator asks to invite "
                f"{escape(req.display_name)} &lt;{escape(req.email)}&gt; as an administrator of "
                f"{escape(req.tenant.name)}.</p><p>Their reason: {escape(req.reason)}</p><p>Nothing happens "
                f"unless you or another administrator approves it within 72 hours. "
                f'<a href="{escape(link)}">Approve or refuse it</a>.</p>')
        try:
            mail.send(admin.email, "An operator asks to recover your WeIntervene account", text, html)
        except mail.MailUnavailable as exc:  # the request stands; the page shows it anyway
            log.error("break-glass notice to user %s failed: %s", admin.id, exc)


# -- reading ------------------------------------------------------------------------

def _visible(auth: AuthContext):
    """The requests the caller sees: every one for an operator, its tenants' for an admin."""
    if auth.role is Role.OPERATOR:
        return select(BreakGlassRequest).join(Tenant, BreakGlassRequest.tenant_id == Tenant.id)
    query = select(BreakGlassRequest).join(Tenant, BreakGlassRequest.tenant_id == Tenant.id)
    if auth.role is Role.DISTRICT_ADMIN:
        return query.where(or_(Tenant.id == auth.tenant_id, Tenant.parent_id == auth.tenant_id))
    admin_kind = {Role.SCHOOL_ADMIN: "school", Role.PROGRAM_ADMIN: "program"}[auth.role]
    return query.where(Tenant.id == auth.tenant_id, Tenant.kind == admin_kind)


def list_requests(db, auth: AuthContext, status: str | None, tenant_id: str | None, page: int, per_page: int) -> dict:
    auth.require(*APPROVERS)
    _expire_due(db)
    db.commit()
    query = _visible(auth)
    if status:
        query = query.where(BreakGlassRequest.status == status)
    if tenant_id:
        query = query.where(BreakGlassRequest.tenant_id == str(tenant_id))
    query = query.order_by(BreakGlassRequest.requested_at.desc(), BreakGlassRequest.id)
    total = db.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = db.scalars(query.limit(per_page).offset((page - 1) * per_page)).unique().all()
    names = _names(db, [u for r in rows for u in (r.requested_by, r.decided_by)])
    return {"items": [request_dict(db, r, names) for r in rows], "total": total, "page": page, "per_page": per_page}


def _scoped(db, auth: AuthContext, request_id: str) -> BreakGlassRequest:
    auth.require(*APPROVERS)
    req = db.get(BreakGlassRequest, str(request_id))
    if req is None or not (auth.role is Role.OPERATOR or staff_rules.administers(auth, req.tenant)):
        raise BreakGlassNotFound("No such break-glass request.", code="break_glass_not_found")
    return req


def _check_open(db, req: BreakGlassRequest) -> None:
    if req.status == "pending" and req.expires_at <= utcnow():
        req.status = "expired"
        db.commit()
    if req.status != "pending":
        code = "break_glass_expired" if req.status == "expired" else "break_glass_decided"
        raise BreakGlassClosed(f"This request is {req.status}: nothing more happens to it.", code=code,
                               details={"status": [req.status]})


# -- deciding -----------------------------------------------------------------------

def approve(db, auth: AuthContext, request_id: str, note: str | None) -> dict:
    """Approve a pending request; its invitation is created and mailed now.

    A tenant administrator approves for their tenant; an operator only when the tenant has no
    active administrator, and never their own request.
    """
    req = _scoped(db, auth, request_id)
    _check_open(db, req)
    tenant = req.tenant
    if tenant.status != "active":  # being terminated: nobody new joins it
        raise BreakGlassClosed(f"{tenant.name} is {tenant.status}.", code="tenant_not_active")
    if auth.role is Role.OPERATOR:
        if staff_rules.has_administrator(db, tenant):
            raise BreakGlassRefused(f"{tenant.name} has an administrator: they approve this, not an operator.",
                                    code="tenant_administrator_must_approve")
        if auth.user_id == req.requested_by:
            raise BreakGlassRefused("A second operator, not the one who asked, approves this.",
                                    code="break_glass_own_request")
        approval = "second_operator"
    else:
        approval = "tenant_administrator"
    if db.scalar(select(User.id).where(User.email == req.email)):
        raise Conflict("A user with that email exists now; refuse this request and ask again.", code="email_taken")
    req.status, req.decided_by, req.decided_at = "approved", auth.user_id, utcnow()
    req.approval, req.decision_note = approval, (note or "").strip() or None
    access_log.record(db, auth, tenant, "break_glass_approved", f"Approved the recovery asked on {req.requested_at:%Y-%m-%d}")
    role = staff_rules.ADMIN_ROLE_BY_TENANT_KIND[tenant.kind]
    # Trusted: the approval is the grant. create_user commits the decision with the user.
    user, _invited = tenants.create_user(db, auth, {
        "tenant_id": tenant.id, "email": req.email, "display_name": req.display_name, "role": role.value,
    }, trusted=True)
    req.created_user_id = user.id
    db.commit()
    return request_dict(db, req)


def refuse(db, auth: AuthContext, request_id: str, note: str | None) -> dict:
    """Refuse (or, by the operator who asked, withdraw) a pending request; nothing takes effect."""
    req = _scoped(db, auth, request_id)
    _check_open(db, req)
    req.status, req.decided_by, req.decided_at = "refused", auth.user_id, utcnow()
    req.decision_note = (note or "").strip() or None
    access_log.record(db, auth, req.tenant, "break_glass_refused", f"Refused or withdrew the recovery asked on {req.requested_at:%Y-%m-%d}")
    db.commit()
    return request_dict(db, req)


# -- deletion -----------------------------------------------------------------------

def delete_for_tenants(db, tenant_ids: list[str]) -> int:
    """A terminated tenant's requests go with it (they are its records: the export holds them)."""
    result = db.execute(delete(BreakGlassRequest).where(BreakGlassRequest.tenant_id.in_(tenant_ids)))
    return max(result.rowcount or 0, 0)


def forget_users(db, user_ids: list[str]) -> None:
    """Deleted users leave no id, email or name in the requests that name them; the request
    (what was asked, why, when, decided how) stays its tenant's record."""
    if not user_ids:
        return
    emails = list(db.scalars(select(User.email).where(User.id.in_(user_ids))))
    table = BreakGlassRequest
    db.execute(update(table).where(or_(table.created_user_id.in_(user_ids), table.email.in_(emails)))
               .values(email=None, display_name=None, created_user_id=None))
    db.execute(update(table).where(table.requested_by.in_(user_ids)).values(requested_by=None))
    db.execute(update(table).where(table.decided_by.in_(user_ids)).values(decided_by=None))

