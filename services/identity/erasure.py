"""Deletion on request: fence the subject first, then delete everything about it.

Retention calls ``fence_subject`` synchronously before it dispatches
``deletion_requested``; from then on identity refuses new data about the
subject (access checks raise ``subject_fenced``, roster imports skip the
student). ``delete_for`` runs when the request arrives and is idempotent: a
second delivery deletes nothing more and reports zeros.

Example::

    >>> fence(db, request_id, "student", school_id, diego_id)
    {"fenced": True}
    >>> delete_for(db, {"scope": "student", "subject_id": diego_id, "tenant_id": school_id, ...})
    {"students": 1, "family_contacts": 2, "serves_links": 1}
"""
from __future__ import annotations

from sqlalchemy import delete, select, update

from services.identity import accounts
from services.identity.models import (
    FamilyContact, PasswordReset, ServesLink, Student, SubjectFence, Tenant, User, UserSession,
)
from services.identity.rosters import roster_key_hash
from weintervene.db import utcnow
from weintervene.errors import BadRequest

FENCE_SCOPES = ("tenant", "student", "user", "contact")


def fence(db, request_id: str, scope: str, tenant_id: str, subject_id: str) -> dict:
    """Record that ``subject_id`` is being deleted; idempotent."""
    if scope not in FENCE_SCOPES:
        raise BadRequest(f"Unknown scope {scope}.", code="invalid_scope")
    subject_id, tenant_id = str(subject_id), str(tenant_id)
    existing = db.scalar(select(SubjectFence).where(SubjectFence.scope == scope, SubjectFence.subject_id == subject_id))
    if existing is None:
        key_hash = None
        if scope == "student":
            student = db.get(Student, subject_id)
            if student is not None:
                key_hash = roster_key_hash(student.tenant_id, student.roster_key)
        db.add(SubjectFence(request_id=str(request_id), scope=scope, tenant_id=tenant_id,
                            subject_id=subject_id, roster_key_hash=key_hash))
    if scope == "tenant":
        # No one signs in to a tenant being terminated, nor to its schools.
        ids = [subject_id] + list(db.scalars(select(Tenant.id).where(Tenant.parent_id == subject_id)))
        db.execute(update(Tenant).where(Tenant.id.in_(ids)).values(status="terminated"))
        users = db.scalars(select(User.id).where(User.tenant_id.in_(ids))).all()
        for user_id in users:
            accounts.revoke_sessions(db, user_id, "tenant_terminated")
    elif scope == "user":
        user = db.get(User, subject_id)
        if user is not None:
            user.is_active = False
            accounts.revoke_sessions(db, user.id, "deletion_requested")
    db.commit()
    return {"fenced": True}


def _count(result) -> int:
    return max(result.rowcount or 0, 0)


def delete_for(db, request: dict) -> dict:
    """Delete what ``request`` names; returns {kind: rows deleted}. The caller commits."""
    scope = request["scope"]
    if scope == "tenant":
        return delete_tenants(db, request["tenant_ids"] or [request["tenant_id"]])
    if scope == "student":
        return delete_students(db, [request["subject_id"]])
    if scope == "user":
        return delete_users(db, [request["subject_id"]])
    if scope == "contact":
        return {"family_contacts": _count(db.execute(delete(FamilyContact).where(FamilyContact.id == request["subject_id"])))}
    return {}


def delete_students(db, student_ids: list[str]) -> dict:
    return {
        "serves_links": _count(db.execute(delete(ServesLink).where(ServesLink.student_id.in_(student_ids)))),
        "family_contacts": _count(db.execute(delete(FamilyContact).where(FamilyContact.student_id.in_(student_ids)))),
        "students": _count(db.execute(delete(Student).where(Student.id.in_(student_ids)))),
    }


def delete_users(db, user_ids: list[str]) -> dict:
    return {
        "serves_links": _count(db.execute(delete(ServesLink).where(ServesLink.user_id.in_(user_ids)))),
        "sessions": _count(db.execute(delete(UserSession).where(UserSession.user_id.in_(user_ids)))),
        "password_resets": _count(db.execute(delete(PasswordReset).where(PasswordReset.user_id.in_(user_ids)))),
        "users": _count(db.execute(delete(User).where(User.id.in_(user_ids)))),
    }


def delete_tenants(db, tenant_ids: list[str]) -> dict:
    """Everything of the tenants (a district and its schools): rosters, users, the tenants."""
    ids = set(map(str, tenant_ids))
    # A district's schools go with it even if the request listed only the district.
    ids |= set(db.scalars(select(Tenant.id).where(Tenant.parent_id.in_(ids))))
    ids = sorted(ids)
    student_ids = list(db.scalars(select(Student.id).where(Student.tenant_id.in_(ids))))
    user_ids = list(db.scalars(select(User.id).where(User.tenant_id.in_(ids))))
    counts = {}
    for kind, n in delete_students(db, student_ids).items():
        counts[kind] = counts.get(kind, 0) + n
    for kind, n in delete_users(db, user_ids).items():
        counts[kind] = counts.get(kind, 0) + n
    # Schools first, then districts (parent rows last).
    schools = _count(db.execute(delete(Tenant).where(Tenant.id.in_(ids), Tenant.parent_id.is_not(None))))
    others = _count(db.execute(delete(Tenant).where(Tenant.id.in_(ids))))
    counts["tenants"] = schools + others
    return counts
