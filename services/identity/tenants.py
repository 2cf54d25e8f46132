"""Tenants and their users: who may see and manage which.

Scope rules (tenant isolation):

- operators reach every tenant (tenant facts and staff accounts, never students), and
  within it only what ``staff_rules`` allows them (a first administrator, a disable);
- auditors read every tenant's facts, nothing else;
- district admins reach their district and its schools;
- everyone else reaches only their own tenant.

Out-of-scope tenants and users are reported as not found, so ids of other
tenants reveal nothing.

Example::

    >>> visible_tenant_ids(db, AuthContext(user_id="u", tenant_id=district, role=Role.DISTRICT_ADMIN))
    {district, lincoln_middle, washington_high}
"""
from __future__ import annotations

import logging
from html import escape
from typing import NamedTuple

from sqlalchemy import bindparam, func, or_, select, update

from services.identity import access_log, accounts, conflicts, mailing, staff_rules
from services.identity.exceptions import OutOfScope
from services.identity.models import Student, Tenant, User
from services.identity.passwords import check_policy
from weintervene import mail
from weintervene.auth import AuthContext, Role, TenantKind
from weintervene.errors import BadRequest, Conflict, NotFound

log = logging.getLogger(__name__)

# Which roles a user of each kind of tenant may hold.
ROLES_BY_TENANT_KIND = {
    TenantKind.DISTRICT.value: {Role.DISTRICT_ADMIN},
    TenantKind.SCHOOL.value: {Role.TEACHER, Role.SCHOOL_ADMIN},
    TenantKind.PROGRAM.value: {Role.PROGRAM_STAFF, Role.PROGRAM_ADMIN},
    TenantKind.PLATFORM.value: {Role.OPERATOR, Role.AUDITOR},
}

# Which roles each manager may give (within the tenant-kind rule). An operator gives the
# platform's roles and a tenant's first administrator only (staff_rules); never a staff role.
GRANTABLE_ROLES = {
    Role.OPERATOR: {Role.OPERATOR, Role.AUDITOR, *staff_rules.ADMIN_ROLE_BY_TENANT_KIND.values()},
    Role.DISTRICT_ADMIN: {Role.DISTRICT_ADMIN, Role.SCHOOL_ADMIN, Role.TEACHER},
    Role.SCHOOL_ADMIN: {Role.SCHOOL_ADMIN, Role.TEACHER},
    Role.PROGRAM_ADMIN: {Role.PROGRAM_ADMIN, Role.PROGRAM_STAFF},
}

USER_MANAGERS = tuple(GRANTABLE_ROLES)
SETTINGS_MANAGERS = (Role.OPERATOR, Role.DISTRICT_ADMIN, Role.SCHOOL_ADMIN, Role.PROGRAM_ADMIN)


def tenant_info(tenant: Tenant | TenantInfoFacts) -> dict:
    """The facts other services may know about a tenant (no personal data)."""
    return {
        "id": tenant.id,
        "kind": tenant.kind,
        "name": tenant.name,
        "parent_id": tenant.parent_id,
        "district_id": tenant.id if tenant.kind == TenantKind.DISTRICT.value else tenant.parent_id,
        "postcode": tenant.postcode,
        "latitude": tenant.latitude,
        "longitude": tenant.longitude,
        "timezone": tenant.timezone,
        "student_ids_enabled": tenant.student_ids_enabled,
        "analytics_consent": tenant.analytics_consent,
        "suppression_threshold": tenant.suppression_threshold,
        "status": tenant.status,
    }


class TenantInfoFacts(NamedTuple):
    """A tenant as :func:`tenant_info` reads it (Tenant's attribute names), for callers
    that read plain columns rather than load ORM entities.

    Example: ``TenantInfoFacts("p1", "program", "Bright Futures", None, None, None, None,
    "America/New_York", True, False, 10, "active")``
    """

    id: str
    kind: str
    name: str
    parent_id: str | None
    postcode: str | None
    latitude: float | None
    longitude: float | None
    timezone: str
    student_ids_enabled: bool
    analytics_consent: bool
    suppression_threshold: int
    status: str


TENANT_INFO_COLUMNS = [Tenant.__table__.c[name] for name in TenantInfoFacts._fields]
_TENANT_INFOS = (select(*TENANT_INFO_COLUMNS)
                 .where(Tenant.__table__.c.id.in_(bindparam("tenant_ids", expanding=True)))
                 .order_by(Tenant.__table__.c.id))


def tenant_infos(db, tenant_ids) -> dict[str, dict]:
    """``{id: tenant_info}`` of the tenants with these ids, in id order, in one query of
    plain columns (no ORM entities); unknown and empty ids are left out.

    Example: tenant_infos(db, [program_id, "no-such-tenant"]) -> {program_id: {"kind": "program", …}}
    """
    wanted = sorted({str(t) for t in tenant_ids if t})
    if not wanted:
        return {}
    rows = db.execute(_TENANT_INFOS, {"tenant_ids": wanted})
    return {row[0]: tenant_info(TenantInfoFacts._make(row)) for row in rows}


def get_tenant_or_404(db, tenant_id: str) -> Tenant:
    tenant = db.get(Tenant, str(tenant_id)) if tenant_id else None
    if tenant is None:
        raise NotFound("No such tenant.", code="tenant_not_found")
    return tenant


def get_tenants(db, tenant_ids: list[str]) -> list[Tenant]:
    """The tenants with these ids, in one query (unknown ids are left out)."""
    ids = sorted({str(t) for t in tenant_ids})
    return list(db.scalars(select(Tenant).where(Tenant.id.in_(ids)).order_by(Tenant.id))) if ids else []


def tenants_in(db, tenant_id: str) -> list[Tenant]:
    """A district and its schools; any other tenant alone."""
    tenant = get_tenant_or_404(db, tenant_id)
    if tenant.kind != TenantKind.DISTRICT.value:
        return [tenant]
    schools = db.scalars(select(Tenant).where(Tenant.parent_id == tenant.id).order_by(Tenant.name)).all()
    return [tenant, *schools]


def reaches_all_tenants(auth: AuthContext) -> bool:
    return auth.role in (Role.OPERATOR, Role.AUDITOR)


def in_scope(auth: AuthContext, tenant: Tenant) -> bool:
    if reaches_all_tenants(auth):
        return True
    return auth.in_scope(tenant.id, tenant.parent_id)


def scoped_tenant(db, auth: AuthContext, tenant_id: str) -> Tenant:
    """The tenant if the caller reaches it; NotFound otherwise (no existence leak)."""
    tenant = db.get(Tenant, str(tenant_id))
    if tenant is None or not in_scope(auth, tenant):
        raise NotFound("No such tenant.", code="tenant_not_found")
    return tenant


def list_tenants(db, auth: AuthContext, kind: str | None = None, page: int = 1, per_page: int = 50) -> dict:
    query = select(Tenant)
    if not reaches_all_tenants(auth):
        query = query.where(or_(Tenant.id == auth.tenant_id, Tenant.parent_id == auth.tenant_id)
                            if auth.role is Role.DISTRICT_ADMIN else Tenant.id == auth.tenant_id)
    if kind:
        query = query.where(Tenant.kind == kind)
    return paginate(db, query.order_by(Tenant.kind, Tenant.name), page, per_page, tenant_info)


def update_settings(db, auth: AuthContext, tenant_id: str, values: dict) -> dict:
    """Change a tenant's settings. Turning student IDs off erases the stored numbers."""
    auth.require(*SETTINGS_MANAGERS)
    tenant = scoped_tenant(db, auth, tenant_id)
    if tenant.kind == TenantKind.PLATFORM.value:
        raise BadRequest("The platform tenant has no such settings.", code="invalid_input")
    for name, value in values.items():
        setattr(tenant, name, value)
    if values.get("student_ids_enabled") is False:
        # Data minimisation: numbers the school no longer uses are not kept.
        db.execute(update(Student).where(Student.tenant_id == tenant.id).values(student_number=None))
    access_log.record(db, auth, tenant, "settings_changed",
                      "Changed settings: " + ", ".join(f"{k} = {v}" for k, v in sorted(values.items())))
    db.commit()
    return tenant_info(tenant)


# -- users ------------------------------------------------------------------

def names_for_audit(db, user_ids, tenant_ids) -> dict:
    """Names and roles of these staff accounts and names of these tenants, in two queries.

    Example: names_for_audit(db, ["u1"], ["t1"]) -> {"users": {"u1": {"display_name": "Ms. Patel",
    "role": "school_admin"}}, "tenants": {"t1": "Lincoln Middle"}}
    """
    users = sorted({str(u) for u in user_ids or () if u})[:500]
    wanted_tenants = sorted({str(t) for t in tenant_ids or () if t})[:500]
    named_users = {
        row.id: {"display_name": row.display_name, "role": row.role}
        for row in db.execute(select(User.id, User.display_name, User.role).where(User.id.in_(users)))
    } if users else {}
    named_tenants = dict(db.execute(select(Tenant.id, Tenant.name).where(Tenant.id.in_(wanted_tenants))).all()) \
        if wanted_tenants else {}
    return {"users": named_users, "tenants": named_tenants}


def user_dict(user: User) -> dict:
    return {
        "id": user.id,
        "tenant_id": user.tenant_id,
        "email": user.email,
        "display_name": user.display_name,
        "role": user.role,
        "is_active": user.is_active,
    }


def scoped_user(db, auth: AuthContext, user_id: str) -> User:
    user = db.get(User, str(user_id))
    if user is None or not (auth.role is Role.OPERATOR or auth.in_scope(user.tenant_id, user.tenant.parent_id)):
        raise NotFound("No such user.", code="user_not_found")
    return user


def check_role_grant(auth: AuthContext, tenant: Tenant, role: Role, trusted: bool = False) -> None:
    if not trusted and role not in GRANTABLE_ROLES.get(auth.role, set()):
        raise OutOfScope(f"You may not give the role {role.value}.", code="role_not_grantable")
    if role not in ROLES_BY_TENANT_KIND.get(tenant.kind, set()):
        raise BadRequest(
            f"A {tenant.kind} tenant has no {role.value} users.", code="role_not_in_tenant",
            details={"role": [f"Allowed here: {sorted(r.value for r in ROLES_BY_TENANT_KIND[tenant.kind])}"]},
        )


def list_users(db, auth: AuthContext, tenant_id: str | None, search: str | None, page: int, per_page: int) -> dict:
    auth.require(*USER_MANAGERS)
    query = select(User).join(Tenant, User.tenant_id == Tenant.id)
    if tenant_id:
        tenant = scoped_tenant(db, auth, tenant_id)
        query = query.where(User.tenant_id == tenant.id)
    elif auth.role is Role.DISTRICT_ADMIN:
        query = query.where(or_(Tenant.id == auth.tenant_id, Tenant.parent_id == auth.tenant_id))
    elif auth.role is not Role.OPERATOR:
        query = query.where(User.tenant_id == auth.tenant_id)
    if search:
        pattern = f"%{search.lower()}%"
        query = query.where(or_(func.lower(User.display_name).like(pattern), User.email.like(pattern)))
    return paginate(db, query.order_by(User.display_name, User.id), page, per_page, user_dict)


def create_user(db, auth: AuthContext, values: dict, password: str | None = None,
                trusted: bool = False) -> tuple[User, bool]:
    """Create a user in a tenant the caller manages; (user, invited).

    Without a password the user is invited: an emailed one-time link lets them
    choose one (valid for a week). Only ``trusted`` callers (the bootstrap RPC of the CLI
    and demo loader, an approved break-glass recovery) set a password or skip the
    caller's own grant rules; a tenant's kind still decides which roles it has.
    """
    auth.require(*USER_MANAGERS)
    tenant = db.get(Tenant, str(values["tenant_id"]))
    if tenant is None or not (auth.role is Role.OPERATOR or auth.in_scope(tenant.id, tenant.parent_id)):
        raise NotFound("No such tenant.", code="tenant_not_found")
    role = Role(values["role"])
    if not trusted:
        staff_rules.check_operator_creates(db, auth, tenant, role)
    check_role_grant(auth, tenant, role, trusted=trusted)
    if not trusted:
        if password is not None:
            raise BadRequest("A password is chosen by its owner, through the invitation.", code="password_not_settable")
    email = accounts.normalise_email(values["email"])
    # Taken by an account the caller cannot see: answered as any unusable address.
    conflicts.check_address(db, auth, tenant, email, role)
    user = User(tenant_id=tenant.id, email=email, display_name=values["display_name"].strip(), role=role.value)
    if password is not None:
        check_policy(password, email=email)
        accounts.set_password(user, password)
    db.add(user)
    db.flush()
    if password is None:
        # Sent after the answer (services.identity.mailing): the answer never waits for SMTP.
        mailing.stage_invitation(db, user)
    access_log.record(db, auth, tenant, "user_created", f"Created the {role.value} account {user.display_name}")
    db.commit()
    return user, password is None


def send_invitation(user: User, token: str) -> None:
    link = accounts.reset_link(token)
    text = (
        f"Hello {user.display_name},\n\nAn account on WeIntervene was created for you ({user.tenant.name}).\n"
        f"Choose your password with this link (valid for 7 days, once):\n\n{link}\n"
    )
    html = (
        f"<p>Hello {escape(user.display_name)},</p><p>An account on WeIntervene was created for you "
        f"({escape(user.tenant.name)}). Choose your password with this link (valid for 7 days, once):</p>"
        f'<p><a href="{escape(link)}">{escape(link)}</a></p>'
    )
    mail.send(user.email, "Your WeIntervene account", text, html)


def update_user(db, auth: AuthContext, user_id: str, values: dict) -> User:
    """Change a user's role, name or active flag; disabling ends their sessions."""
    auth.require(*USER_MANAGERS)
    user = scoped_user(db, auth, user_id)
    # An operator's security disable is allowed here and recorded below, like every platform action.
    if not staff_rules.operator_security_disable(auth, user, values) and Role(user.role) not in GRANTABLE_ROLES[auth.role]:
        raise OutOfScope("You may not manage this user.", code="role_not_grantable")
    if user.id == auth.user_id and ("role" in values or values.get("is_active") is False):
        raise Conflict("You cannot change your own role or disable yourself.", code="self_change")
    role_changed = False
    if "role" in values:
        role = Role(values["role"])
        check_role_grant(auth, user.tenant, role)
        role_changed = user.role != role.value
        user.role = role.value
    if "display_name" in values:
        user.display_name = values["display_name"].strip()
    if "is_active" in values:
        user.is_active = values["is_active"]
        if not user.is_active:
            accounts.revoke_sessions(db, user.id, "disabled")
    if role_changed:
        # A role change takes effect now, not at the next sign-in.
        accounts.revoke_sessions(db, user.id, "role_changed")
    disabled = values.get("is_active") is False
    access_log.record(db, auth, user.tenant, "user_disabled" if disabled else "user_changed",
                      f"Disabled the {user.role} account {user.display_name}" if disabled else
                      f"Changed the {user.role} account {user.display_name} ({', '.join(sorted(values))})")
    db.commit()
    return user


def paginate(db, query, page: int, per_page: int, dump) -> dict:
    total = db.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = db.scalars(query.limit(per_page).offset((page - 1) * per_page)).unique().all()
    return {"items": [dump(r) for r in rows], "total": total, "page": page, "per_page": per_page}
