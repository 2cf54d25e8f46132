"""An address already taken by an account the asking admin cannot see.

Telling a school admin "that email is taken" would tell them that the person has an
account in another tenant (another school, a program, the platform). So an admin who
cannot see the existing account is answered exactly as for any address that cannot be
used (:class:`EmailUnavailable`, the same code and text), and the conflict goes to the
operators' queue instead (``account_conflict``: what the admin typed and who asked,
not where the other account is). An admin who can see that account (their tenant, their
district's schools) and operators are told ``email_taken`` as before.

Example::

    >>> refuse_taken_address(db, school_admin_auth, lincoln, "ana@elsewhere.example", Role.TEACHER)
    Traceback (most recent call last):
    EmailUnavailable: This address cannot be used for a new account. …
"""
from __future__ import annotations

from email.utils import parseaddr

from sqlalchemy import delete, select

from services.identity.exceptions import EmailUnavailable
from services.identity.models import AccountConflict, Tenant, User
from weintervene.auth import AuthContext, Role
from weintervene.config import settings
from weintervene.errors import Conflict

UNAVAILABLE_MESSAGE = "This address cannot be used for a new account. Check it, or ask the person for another one."


def unavailable() -> EmailUnavailable:
    return EmailUnavailable(UNAVAILABLE_MESSAGE, code="email_unavailable",
                            details={"email": ["This address cannot be used for a new account."]})


def check_address(db, auth: AuthContext, tenant: Tenant, email: str, role: Role) -> None:
    """Refuse an address no new account may have; returns when it is free.

    Example: check_address(db, admin, lincoln, "new.teacher@lincoln.example", Role.TEACHER) -> None
    """
    if email == parseaddr(settings().smtp_sender)[1].lower():
        raise unavailable()  # the platform's own sender
    existing = db.scalar(select(User).where(User.email == email))
    if existing is None:
        return
    if auth.role is Role.OPERATOR or auth.in_scope(existing.tenant_id, existing.tenant.parent_id):
        raise Conflict("A user with that email exists.", code="email_taken")
    db.add(AccountConflict(tenant_id=tenant.id, requested_by=auth.user_id, email=email, role=role.value))
    db.commit()
    raise unavailable()


def list_conflicts(db, auth: AuthContext, page: int = 1, per_page: int = 50) -> dict:
    """Operators' queue, newest first: ``{"items": [{id, tenant_id, tenant_name, requested_by,
    email, role, created_at}], "page", "per_page", "total"}``."""
    auth.require(Role.OPERATOR)
    from sqlalchemy import func

    query = (select(AccountConflict, Tenant.name).join(Tenant, Tenant.id == AccountConflict.tenant_id)
             .order_by(AccountConflict.created_at.desc(), AccountConflict.id))
    total = db.scalar(select(func.count()).select_from(AccountConflict))
    rows = db.execute(query.limit(per_page).offset((page - 1) * per_page)).all()
    items = [{"id": c.id, "tenant_id": c.tenant_id, "tenant_name": name, "requested_by": c.requested_by,
              "email": c.email, "role": c.role, "created_at": c.created_at.isoformat()} for c, name in rows]
    return {"items": items, "page": page, "per_page": per_page, "total": total}


def forget(db, *, tenant_ids=(), user_ids=(), emails=()) -> int:
    """Delete the conflicts of these tenants, asked by these users or naming these
    addresses (a deletion: the asker or the account went); how many."""
    n = 0
    for column, values in ((AccountConflict.tenant_id, tenant_ids), (AccountConflict.requested_by, user_ids),
                           (AccountConflict.email, emails)):
        if values:
            n += max(db.execute(delete(AccountConflict).where(column.in_(list(values)))).rowcount or 0, 0)
    return n
