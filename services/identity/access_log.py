"""The access-transparency log: every action a platform account takes on a tenant.

Platform accounts are the users of the platform tenant (operators, auditors). Whatever
one of them does to a tenant (creates it, creates or changes its accounts, changes its
settings, removes its data, sets its retention) is recorded here in the same
transaction as the action, and each of the tenant's administrators (and its district's)
is emailed, after the answer, through identity's mail jobs (``mailing``).

* Identity records its own actions (``record``).
* Retention reports an operator's retention policy as a ``platform_action`` event
  through its transactional outbox (``apply_report``, idempotent by event id), and a
  termination or an account removal through the fence it asks for before any deletion
  (``erasure.fence`` with the requester's id), so the notice exists, and goes out,
  before the accounts it is addressed to are deleted.

The tenant's administrators read their log (``list_entries``: a district admin the
district's and its schools') and export it as CSV (``entries_csv``). Rows are exported
with the tenant and deleted with it.

Example::

    >>> record(db, operator_auth, lincoln, "settings_changed", "Changed settings: analytics_consent")
    AccessLogEntry(tenant_id=lincoln.id, actor_role="operator", action="settings_changed", …)
"""
from __future__ import annotations

import io
import logging

from marshmallow import ValidationError
from sqlalchemy import delete, func, select, update

from services.identity import mailing
from services.identity.models import AccessLogEntry, ProcessedEvent, Tenant, User
from weintervene import spreadsheets
from weintervene.auth import AuthContext, Role, TenantKind
from weintervene.contracts import ACCESS_ACTIONS, PlatformAction
from weintervene.messaging import first_deliveries

log = logging.getLogger(__name__)

PLATFORM_ROLES = (Role.OPERATOR, Role.AUDITOR)
LOG_READERS = (Role.SCHOOL_ADMIN, Role.DISTRICT_ADMIN, Role.PROGRAM_ADMIN)
ADMIN_ROLES = tuple(r.value for r in LOG_READERS)
CSV_COLUMNS = ("occurred_at", "tenant_id", "tenant_name", "action", "description", "actor_name", "actor_role",
               "actor_user_id", "source")
# The operators' command line and the demo loader act as an operator without an account.
COMMAND_LINE_ACTOR = "Operators' command line"


def record(db, auth: AuthContext, tenant: Tenant | None, action: str, description: str,
           source: str = "identity") -> AccessLogEntry | None:
    """Record ``action`` on ``tenant`` when ``auth`` is a platform account, and stage the
    notices to the tenant's administrators, in the caller's transaction; else nothing.

    Example: record(db, op, school, "user_created", "Created the school_admin account Ana Ruiz")
    """
    if auth.role not in PLATFORM_ROLES or tenant is None or tenant.kind == TenantKind.PLATFORM.value:
        return None
    return _add(db, tenant, auth.user_id, auth.display_name or _name_of(db, auth.user_id),
                auth.role.value, action, description, source)


def record_provisioning(db, tenant: Tenant, user: User, provider_name: str) -> AccessLogEntry:
    """An account single sign-on created (just-in-time provisioning, which its administrator
    turned on): recorded like a platform action, so the administrators see and are told of it.

    Example: record_provisioning(db, lincoln, ana, "Google Workspace") -> AccessLogEntry(
    action="user_provisioned", actor_name="Single sign-on (Google Workspace)", actor_role="single_sign_on")
    """
    return _add(db, tenant, user.id, f"Single sign-on ({provider_name})", "single_sign_on", "user_provisioned",
                f"Created the {user.role} account {user.display_name} at its first sign-in through {provider_name}",
                "identity")


def forget_actors(db, user_ids: list[str]) -> None:
    """Deleted accounts leave no id in the log; what they did, and their name and role at
    the time, stay the tenant's record.

    Example: forget_actors(db, [ana_id]) -> Ana's entries keep "Ana Ruiz (operator)", not her id
    """
    if user_ids:
        db.execute(update(AccessLogEntry).where(AccessLogEntry.actor_user_id.in_(user_ids)).values(actor_user_id=None))


def record_by_actor_id(db, actor_user_id: str | None, tenant_id: str, action: str, description: str,
                       source: str, occurred_at=None) -> AccessLogEntry | None:
    """``record`` for another service's report, which names the actor by id only:
    recorded when that user is a platform account and the tenant still exists."""
    actor = db.get(User, str(actor_user_id)) if actor_user_id else None
    if actor is None or actor.role not in tuple(r.value for r in PLATFORM_ROLES):
        return None
    tenant = db.get(Tenant, str(tenant_id))
    if tenant is None or tenant.kind == TenantKind.PLATFORM.value:
        return None
    return _add(db, tenant, actor.id, actor.display_name, actor.role, action, description, source, occurred_at)


def _name_of(db, user_id: str) -> str:
    user = db.get(User, user_id) if user_id else None
    return user.display_name if user is not None else COMMAND_LINE_ACTOR


def _add(db, tenant: Tenant, actor_id, actor_name, actor_role, action, description, source,
         occurred_at=None) -> AccessLogEntry:
    if action not in ACCESS_ACTIONS:
        raise ValueError(f"unknown access-log action {action!r}")
    entry = AccessLogEntry(tenant_id=tenant.id, actor_user_id=str(actor_id), actor_name=actor_name[:200],
                           actor_role=actor_role, action=action, description=description[:300], source=source)
    if occurred_at is not None:
        entry.occurred_at = occurred_at
    db.add(entry)
    db.flush()
    for admin in administrators(db, tenant):
        if admin.id != actor_id:
            mailing.stage_access_notice(db, entry, admin)
    return entry


def administrators(db, tenant: Tenant) -> list[User]:
    """The active admins who read ``tenant``'s log: its own, and its district's."""
    tenant_ids = [tenant.id] + ([tenant.parent_id] if tenant.parent_id else [])
    return list(db.scalars(select(User).where(
        User.tenant_id.in_(tenant_ids), User.role.in_(ADMIN_ROLES), User.is_active.is_(True)).order_by(User.id)))


def apply_report(db, payload: dict, source: str) -> str:
    """Apply one ``platform_action`` event; idempotent (the event id is recorded with the
    entry). Returns recorded | duplicate | ignored | rejected."""
    try:
        data = PlatformAction().load(payload)
    except ValidationError as exc:
        log.error("platform_action from %s outside the contract: %s", source, exc.messages)
        return "rejected"
    if not first_deliveries(db, ProcessedEvent, [data["event_id"]]):
        db.rollback()
        return "duplicate"
    entry = record_by_actor_id(db, str(data["actor_user_id"]), str(data["tenant_id"]), data["action"],
                               data["description"], source, data["occurred_at"])
    db.commit()
    return "recorded" if entry is not None else "ignored"


# -- reading ------------------------------------------------------------------------

def readable_tenant_ids(db, auth: AuthContext) -> list[str]:
    """Whose log the caller reads: their tenant; a district admin's district and its schools."""
    auth.require(*LOG_READERS)
    if auth.role is Role.DISTRICT_ADMIN:
        return [auth.tenant_id, *db.scalars(select(Tenant.id).where(Tenant.parent_id == auth.tenant_id))]
    return [auth.tenant_id]


def _query(db, auth: AuthContext, tenant_id: str | None, action: str | None):
    ids = readable_tenant_ids(db, auth)
    if tenant_id:
        ids = [t for t in ids if t == str(tenant_id)]  # another tenant's id: an empty log, as unknown
    query = (select(AccessLogEntry, Tenant.name).join(Tenant, Tenant.id == AccessLogEntry.tenant_id)
             .where(AccessLogEntry.tenant_id.in_(ids)))
    if action:
        query = query.where(AccessLogEntry.action == action)
    return query.order_by(AccessLogEntry.occurred_at.desc(), AccessLogEntry.id)


def entry_dict(entry: AccessLogEntry, tenant_name: str) -> dict:
    return {"id": entry.id, "tenant_id": entry.tenant_id, "tenant_name": tenant_name, "action": entry.action,
            "description": entry.description, "actor_user_id": entry.actor_user_id,
            "actor_name": entry.actor_name, "actor_role": entry.actor_role, "source": entry.source,
            "occurred_at": entry.occurred_at.isoformat()}


def list_entries(db, auth: AuthContext, tenant_id=None, action=None, page: int = 1, per_page: int = 50) -> dict:
    """``{"items": [entry…], "page", "per_page", "total"}``, newest first."""
    query = _query(db, auth, tenant_id, action)
    total = db.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = db.execute(query.limit(per_page).offset((page - 1) * per_page)).all()
    return {"items": [entry_dict(e, name) for e, name in rows], "page": page, "per_page": per_page, "total": total}


def entries_csv(db, auth: AuthContext, tenant_id=None, action=None) -> str:
    """The same entries as CSV text (``weintervene.spreadsheets``: no cell starts a formula)."""
    out = io.StringIO()
    writer = spreadsheets.writer(out)
    writer.writerow(CSV_COLUMNS)
    for entry, name in db.execute(_query(db, auth, tenant_id, action)):
        row = entry_dict(entry, name)
        writer.writerow([row[c] for c in CSV_COLUMNS])
    return out.getvalue()


# -- deletion -----------------------------------------------------------------------

def forget_tenants(db, tenant_ids: list[str]) -> int:
    """Delete the log of these tenants (a termination); how many rows."""
    return max(db.execute(delete(AccessLogEntry).where(AccessLogEntry.tenant_id.in_(list(tenant_ids)))).rowcount or 0, 0)

