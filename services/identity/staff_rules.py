"""What the platform's own staff (operators) may do to a tenant's accounts.

The tenant owns its people: once it has an administrator, only its own
administrators (a district's for its schools) create and change its accounts.
An operator

- creates a tenant and may invite its **first** administrator (the admin role of
  that kind of tenant) while the tenant has no active administrator and is not
  established (never had an administrator account, holds no students: see
  ``is_established`` for why a disabled administrator still counts);
- may **disable** any account (``{"is_active": false}``, nothing else) as a
  security response: that ends its sessions;
- never creates a teacher or staff account in a tenant, never changes a tenant
  user's role or name, never re-enables one, never sets a password;
- starts a break-glass recovery (``break_glass.py``) for anything more, which the
  tenant's administrators (or, with none left, a second operator) approve.

Platform accounts (operators, auditors: the platform tenant) stay the operators'
own business. No platform role sees student data, and no platform user can hold a
tenant role (``tenants.ROLES_BY_TENANT_KIND``), so an operator never reaches
students however accounts are shuffled.

Example::

    >>> check_operator_creates(db, operator_auth, lincoln, Role.SCHOOL_ADMIN)
    OperatorRefused: Lincoln Middle has an administrator ... (code tenant_has_administrator)
"""
from __future__ import annotations


from sqlalchemy import or_, select

from services.identity.exceptions import OperatorRefused
from services.identity.models import Student, Tenant, User
from weintervene.auth import STUDENT_DATA_ROLES, AuthContext, Role, TenantKind

PLATFORM_ROLES = frozenset({Role.OPERATOR, Role.AUDITOR})
# The promise, checked where it is made: no platform role is one that sees students.
assert not PLATFORM_ROLES & STUDENT_DATA_ROLES

# The one administrator role of each kind of tenant (a school's district admins count too).
ADMIN_ROLE_BY_TENANT_KIND = {
    TenantKind.DISTRICT.value: Role.DISTRICT_ADMIN,
    TenantKind.SCHOOL.value: Role.SCHOOL_ADMIN,
    TenantKind.PROGRAM.value: Role.PROGRAM_ADMIN,
}

# What an operator may ask of a tenant's account: exactly this, nothing more.
OPERATOR_DISABLE = {"is_active": False}


def is_platform(tenant: Tenant) -> bool:
    return tenant.kind == TenantKind.PLATFORM.value


def _administrator_accounts(tenant: Tenant):
    """Who counts as an administrator of ``tenant``: its own admins and, for a school in a
    district, the district's admins (a SQL condition; None for the platform)."""
    admin_role = ADMIN_ROLE_BY_TENANT_KIND.get(tenant.kind)
    if admin_role is None:
        return None
    who = (User.tenant_id == tenant.id) & (User.role == admin_role.value)
    if tenant.kind == TenantKind.SCHOOL.value and tenant.parent_id:
        who = or_(who, (User.tenant_id == tenant.parent_id) & (User.role == Role.DISTRICT_ADMIN.value))
    return who


def tenant_administrators(db, tenant: Tenant) -> list[User]:
    """The active administrators of ``tenant``: its own admins and, for a school in a
    district, the district's admins.

    Example: tenant_administrators(db, lincoln) -> [principal, district_admin]
    """
    who = _administrator_accounts(tenant)
    if who is None:
        return []
    return list(db.scalars(select(User).where(who, User.is_active.is_(True)).order_by(User.id)))


def is_established(db, tenant: Tenant) -> bool:
    """Whether ``tenant`` ever had an administrator (an account of theirs, active or disabled)
    or holds students: then it is no longer an operator's to staff directly.

    Disabled administrators count on purpose: an operator may disable any account, so
    "no *active* administrator" alone would let an operator disable a school's admins and
    then invite an address of their own. Past this point a recovery is break-glass, which
    with no active administrator takes a second operator.
    """
    who = _administrator_accounts(tenant)
    if who is not None and db.scalar(select(User.id).where(who).limit(1)) is not None:
        return True
    return db.scalar(select(Student.id).where(Student.tenant_id == tenant.id).limit(1)) is not None


def has_administrator(db, tenant: Tenant) -> bool:
    return bool(tenant_administrators(db, tenant))


def administers(auth: AuthContext, tenant: Tenant) -> bool:
    """Whether the caller is an administrator of ``tenant`` (a district admin of its district too)."""
    admin_role = ADMIN_ROLE_BY_TENANT_KIND.get(tenant.kind)
    if admin_role is not None and auth.role is admin_role and auth.tenant_id == tenant.id:
        return True
    return (auth.role is Role.DISTRICT_ADMIN and tenant.kind == TenantKind.SCHOOL.value
            and tenant.parent_id is not None and tenant.parent_id == auth.tenant_id)


def check_operator_creates(db, auth: AuthContext, tenant: Tenant, role: Role) -> None:
    """An operator creates a tenant's first administrator only; OperatorRefused otherwise.

    Other callers are not this rule's business (``tenants.check_role_grant`` applies).
    """
    if auth.role is not Role.OPERATOR or is_platform(tenant):
        return
    admin_role = ADMIN_ROLE_BY_TENANT_KIND.get(tenant.kind)
    if role is not admin_role:
        raise OperatorRefused(
            "Operators do not create a tenant's staff accounts; its administrators do.",
            code="tenant_accounts_are_the_tenants",
        )
    if has_administrator(db, tenant):
        raise OperatorRefused(
            f"{tenant.name} has an administrator: only its administrators create its accounts. "
            "Start a break-glass recovery if they can no longer act.",
            code="tenant_has_administrator",
        )
    if is_established(db, tenant):
        raise OperatorRefused(
            f"{tenant.name} has had an administrator (or holds students): a new one is invited "
            "through a break-glass recovery, which a second operator approves.",
            code="tenant_needs_break_glass",
        )


def operator_security_disable(auth: AuthContext, user: User, values: dict) -> bool:
    """True when this is an operator disabling a tenant's account (allowed, whatever its role);
    OperatorRefused when an operator asks anything else of a tenant's account; False when the
    rule does not apply (not an operator, or a platform account).

    Example: operator_security_disable(op, rivera, {"is_active": False}) -> True;
    operator_security_disable(op, rivera, {"display_name": "X"}) -> OperatorRefused
    """
    if auth.role is not Role.OPERATOR or is_platform(user.tenant):
        return False
    if values != OPERATOR_DISABLE:
        raise OperatorRefused(
            "Operators may only disable a tenant's account ({\"is_active\": false}); "
            "its administrators change it.",
            code="operator_disable_only",
        )
    return True
