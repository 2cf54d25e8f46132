"""Deletion on request: fence the subject first, then delete everything about it.

Retention calls ``fence_subject`` synchronously before it dispatches
``deletion_requested``; from then on identity refuses new data about the
subject (access checks raise ``subject_fenced``, roster imports skip the
student). ``delete_for`` runs when the request arrives and is idempotent: a
second delivery deletes nothing more and reports zeros.

Once a deletion is applied, the fence keeps only keyed hashes (DESIGN invariant 5:
nothing in identity's database holds the deleted subject's id): the raw
``subject_id`` is cleared, and a terminated tenant's id too. The fence still works,
because it is checked by ``subject_hash``.

Every table whose deleted (or cleared) rows held personal data is marked for the
rewrite after the commit (``weintervene.remnants``): the deleted rows' bytes leave the
database files too. Sign-in attempts expired by a policy are not (hashed keys and
client addresses, expired daily: see docs/SECURITY.md, "Deleted from the files").

Retention policies (scope ``policy``) expire ``login_records`` older than
``older_than`` for the tenants named; other record kinds are not identity's.

Example::

    >>> fence(db, request_id, "student", school_id, diego_id)
    {"fenced": True}
    >>> delete_for(db, {"scope": "student", "subject_id": diego_id, "tenant_id": school_id, ...})
    {"students": 1, "family_contacts": 2, "serves_links": 1}
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, or_, select, update

from services.identity import access_log, accounts, break_glass, conflicts, mailing, single_sign_on
from services.identity.models import (
    FamilyContact, LoginAttempt, PasswordReset, PolicyAcknowledgement, RosterColumnMapping, RosterImportRecord, ServesLink,
    SisEnrollment, SisStaffLink, Student, SubjectFence, Tenant, User, UserSession,
)
from services.identity.rosters import roster_key_hash
from services.identity.students import subject_hash, subject_hashes
from weintervene.config import settings
from weintervene.db import utcnow
from weintervene.errors import BadRequest
from weintervene.remnants import mark_for_scrub

FENCE_SCOPES = ("tenant", "student", "user", "contact")


def find_fence(db, scope: str, subject_id: str) -> SubjectFence | None:
    return db.scalar(select(SubjectFence).where(
        SubjectFence.scope == scope, SubjectFence.subject_hash.in_(subject_hashes(scope, subject_id))
    ))


def _new_fence(db, request_id: str, scope: str, tenant_id: str | None, subject_id: str) -> SubjectFence:
    key_hash = None
    if scope == "student":
        student = db.get(Student, subject_id)
        if student is not None:
            key_hash = roster_key_hash(student.tenant_id, student.roster_key)
    fence_row = SubjectFence(request_id=str(request_id), scope=scope, tenant_id=tenant_id, subject_id=subject_id,
                             subject_hash=subject_hash(scope, subject_id), roster_key_hash=key_hash)
    db.add(fence_row)
    db.flush()
    return fence_row


def fence(db, request_id: str, scope: str, tenant_id: str, subject_id: str, requested_by: str | None = None) -> dict:
    """Record that ``subject_id`` is being deleted; idempotent.

    A termination or an account removal that a platform account asked for
    (``requested_by``) goes into the tenant's access log with the new fence: before any
    service is asked to delete, so its notice reaches the admins before their accounts go.
    """
    if scope not in FENCE_SCOPES:
        raise BadRequest(f"Unknown scope {scope}.", code="invalid_scope")
    subject_id, tenant_id = str(subject_id), str(tenant_id)
    if find_fence(db, scope, subject_id) is None:
        _new_fence(db, request_id, scope, tenant_id, subject_id)
        if scope in ("tenant", "user"):
            access_log.record_by_actor_id(
                db, requested_by, tenant_id, "deletion_requested",
                "Asked for the termination of this tenant: every record of it will be deleted"
                if scope == "tenant" else "Asked for the removal of a user account", "retention")
    if scope == "tenant":
        # No one signs in to a tenant being terminated, nor to its schools.
        ids = [subject_id] + list(db.scalars(select(Tenant.id).where(Tenant.parent_id == subject_id)))
        db.execute(update(Tenant).where(Tenant.id.in_(ids)).values(status="terminated"))
        users = db.scalars(select(User.id).where(User.tenant_id.in_(ids))).all()
        for user_id in users:
            accounts.revoke_sessions(db, user_id, "tenant_terminated", announce=False)
        accounts.announce_sessions_ended(db, "tenant_terminated", tenant_ids=ids)
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
    if scope == "policy":
        return delete_by_policy(db, request)
    if scope == "tenant":
        return delete_tenants(db, request["tenant_ids"] or [request["tenant_id"]], request)
    if scope not in FENCE_SCOPES:
        return {}
    subject_id = str(request["subject_id"])
    # A fence must outlive the data (a late roster import is refused), even if
    # retention's synchronous fence call never reached identity.
    fence_row = find_fence(db, scope, subject_id) or _new_fence(
        db, request["request_id"], scope, request.get("tenant_id"), subject_id)
    if scope == "student":
        counts = delete_students(db, [subject_id])
    elif scope == "user":
        counts = delete_users(db, [subject_id])
    else:
        counts = {"family_contacts": _count(db.execute(delete(FamilyContact).where(FamilyContact.id == subject_id)))}
        if counts["family_contacts"]:
            mark_for_scrub(db, "family_contact")
    _seal(db, fence_row)
    return counts


def _seal(db, fence_row: SubjectFence, clear_tenant: bool = False) -> None:
    """The deletion is applied: the fence keeps its hashes only (the old row version,
    with the raw ids, is rewritten out of the files after the commit)."""
    if fence_row.subject_id is not None or (clear_tenant and fence_row.tenant_id is not None):
        mark_for_scrub(db, "subject_fence")
    fence_row.subject_id = None
    if clear_tenant:
        fence_row.tenant_id = None
    if fence_row.applied_at is None:
        fence_row.applied_at = utcnow()


def delete_students(db, student_ids: list[str]) -> dict:
    # Their OneRoster enrollments (SIS ids: which class they were in) go with them.
    keys = db.execute(select(Student.tenant_id, Student.roster_key).where(Student.id.in_(student_ids))).all()
    enrollments = sum(_count(db.execute(delete(SisEnrollment).where(
        SisEnrollment.tenant_id == tenant_id, SisEnrollment.user_sourced_id == key))) for tenant_id, key in keys)
    counts = {
        "serves_links": _count(db.execute(delete(ServesLink).where(ServesLink.student_id.in_(student_ids)))),
        "family_contacts": _count(db.execute(delete(FamilyContact).where(FamilyContact.student_id.in_(student_ids)))),
        "students": _count(db.execute(delete(Student).where(Student.id.in_(student_ids)))),
    }
    if counts["family_contacts"]:
        mark_for_scrub(db, "family_contact")
    if counts["students"]:
        mark_for_scrub(db, "student")
    if enrollments:  # reported only when any (older confirmations never had the kind)
        counts["sis_enrollments"] = enrollments
        mark_for_scrub(db, "sis_enrollment")  # the student's SIS id (their roster key)
    return counts


# The tables behind the kinds a deletion counts, where a deletion marks them for scrubbing.
TABLE_OF_KIND = {"mail_jobs": "mail_job", "account_conflicts": "account_conflict",
                 "access_log_entries": "access_log_entry"}


def delete_users(db, user_ids: list[str]) -> dict:
    # Their sign-in attempts are keyed by a hash of the address: gone with them.
    keys = [accounts.account_key(email) for email in db.scalars(select(User.email).where(User.id.in_(user_ids)))]
    staff_links = _count(db.execute(delete(SisStaffLink).where(SisStaffLink.user_id.in_(user_ids))))
    counts = {
        "serves_links": _count(db.execute(delete(ServesLink).where(ServesLink.user_id.in_(user_ids)))),
        "sessions": _count(db.execute(delete(UserSession).where(UserSession.user_id.in_(user_ids)))),
        "password_resets": _count(db.execute(delete(PasswordReset).where(PasswordReset.user_id.in_(user_ids)))),
        "login_attempts": _count(db.execute(delete(LoginAttempt).where(LoginAttempt.account_key.in_(keys)))),
    }
    # Which policy versions they acknowledged: reported only when there were any
    # (the kind came later than the confirmations other tests and readers expect).
    acknowledgements = _count(db.execute(delete(PolicyAcknowledgement).where(PolicyAcknowledgement.user_id.in_(user_ids))))
    if acknowledgements:
        counts["policy_acknowledgements"] = acknowledgements
    if staff_links:  # their match to a OneRoster teacher
        counts["sis_staff_links"] = staff_links
    sso_links = single_sign_on.forget_users(db, user_ids)
    if sso_links:  # reported only when any, like the acknowledgements
        counts["sso_links"] = sso_links
        mark_for_scrub(db, "sso_link")  # the provider's subject id names the person there
    emails = list(db.scalars(select(User.email).where(User.id.in_(user_ids))))
    break_glass.forget_users(db, user_ids)  # the requests stay their tenant's record, without them
    access_log.forget_actors(db, user_ids)  # likewise the access log's entries
    # Mail waiting for them, and the operators' conflicts about their addresses (only when any).
    for kind, n in (("mail_jobs", mailing.forget_jobs(db, user_ids=user_ids, emails=emails)),
                    ("account_conflicts", conflicts.forget(db, user_ids=user_ids, emails=emails))):
        if n:
            counts[kind] = n
            mark_for_scrub(db, TABLE_OF_KIND[kind])  # both hold addresses
    if emails:
        mark_for_scrub(db, "break_glass_request")  # an invitee's address and name, redacted above
    counts["users"] = _count(db.execute(delete(User).where(User.id.in_(user_ids))))
    if counts["users"]:
        mark_for_scrub(db, "user_account")  # names, addresses (and the unique index on them)
    if counts["login_attempts"]:
        mark_for_scrub(db, "login_attempt")  # client addresses
    # The events that told the gateways their sessions ended (reported only when any).
    notices = accounts.forget_session_notices(db, naming=user_ids)
    if notices:
        counts["session_notices"] = notices
    return counts


def delete_tenants(db, tenant_ids: list[str], request: dict | None = None) -> dict:
    """Everything of the tenants (a district and its schools): rosters, users, the tenants.

    Afterwards every fence about them or inside them holds hashes only: the
    tenants' fences are checked by hash, their students' and users' fences lose
    their raw ids (the subjects are gone).
    """
    ids = set(map(str, tenant_ids))
    # A district's schools go with it even if the request listed only the district.
    ids |= set(db.scalars(select(Tenant.id).where(Tenant.parent_id.in_(ids))))
    ids = sorted(ids)
    student_ids = list(db.scalars(select(Student.id).where(Student.tenant_id.in_(ids))))
    user_ids = list(db.scalars(select(User.id).where(User.tenant_id.in_(ids))))
    counts = {}
    # A termination's access notice goes out before its recipients' accounts do.
    mailing.send_pending_notices(db, user_ids, ids)
    for kind, n in (("access_log_entries", access_log.forget_tenants(db, ids)),
                     ("account_conflicts", conflicts.forget(db, tenant_ids=ids)),
                     ("mail_jobs", mailing.forget_jobs(db, tenant_ids=ids))):
        if n:
            counts[kind] = n
            mark_for_scrub(db, TABLE_OF_KIND[kind])  # names and addresses
    for kind, n in delete_students(db, student_ids).items():
        counts[kind] = counts.get(kind, 0) + n
    for kind, n in delete_users(db, user_ids).items():
        counts[kind] = counts.get(kind, 0) + n
    # What OneRoster imports left (SIS ids, saved mappings, import records): reported when any.
    for kind, model in (("sis_enrollments", SisEnrollment), ("sis_staff_links", SisStaffLink),
                        ("roster_column_mappings", RosterColumnMapping), ("roster_import_records", RosterImportRecord)):
        n = _count(db.execute(delete(model).where(model.tenant_id.in_(ids))))
        if n:
            counts[kind] = counts.get(kind, 0) + n
    sso_configurations = single_sign_on.delete_for_tenants(db, ids)
    if sso_configurations:
        counts["sso_configurations"] = sso_configurations
    recoveries = break_glass.delete_for_tenants(db, ids)
    if recoveries:  # reported only when any, like the acknowledgements
        counts["break_glass_requests"] = recoveries
        mark_for_scrub(db, "break_glass_request")
    notices = accounts.forget_session_notices(db, naming=ids)  # "the tenants' sessions ended"
    if notices:
        counts["session_notices"] = counts.get("session_notices", 0) + notices
    # Schools first, then districts (parent rows last).
    schools = _count(db.execute(delete(Tenant).where(Tenant.id.in_(ids), Tenant.parent_id.is_not(None))))
    others = _count(db.execute(delete(Tenant).where(Tenant.id.in_(ids))))
    counts["tenants"] = schools + others
    request_id = (request or {}).get("request_id") or "tenant-termination"
    for tenant_id in ids:
        if find_fence(db, "tenant", tenant_id) is None:
            _new_fence(db, request_id, "tenant", None, tenant_id)
    tenant_hashes = [h for t in ids for h in subject_hashes("tenant", t)]
    for fence_row in db.scalars(select(SubjectFence).where(or_(
        SubjectFence.tenant_id.in_(ids),
        SubjectFence.subject_id.in_(ids),
        (SubjectFence.scope == "tenant") & SubjectFence.subject_hash.in_(tenant_hashes),
    ))):
        _seal(db, fence_row, clear_tenant=True)
    return counts


# -- retention policies -------------------------------------------------------

def delete_by_policy(db, request: dict) -> dict:
    """A tenant's retention policy: expire identity's records of ``record_kind``."""
    if request.get("record_kind") != "login_records" or request.get("older_than") is None:
        return {}  # closed referrals, delivery logs: not identity's records
    return delete_login_records(db, request["tenant_ids"] or [request["tenant_id"]], request["older_than"])


def delete_login_records(db, tenant_ids: list[str], older_than) -> dict:
    """Sign-in records of the tenants' users older than ``older_than``.

    Sessions go only once they have ended (revoked, expired, or idle past the
    limit) and were last used before ``older_than``: a policy expires records,
    it does not sign anyone out. Sign-in attempts are matched by their hashed
    account key; reset links once expired before ``older_than``.
    """
    now = utcnow()
    cutoff = min(older_than, now)
    users = db.execute(select(User.id, User.email).where(User.tenant_id.in_([str(t) for t in tenant_ids]))).all()
    user_ids = [u.id for u in users]
    keys = [accounts.account_key(u.email) for u in users]
    idle_since = now - timedelta(seconds=settings().session_idle_seconds)
    ended = or_(UserSession.revoked_at.is_not(None), UserSession.expires_at <= now,
                UserSession.last_seen_at <= idle_since)
    return {
        "sessions": _count(db.execute(delete(UserSession).where(
            UserSession.user_id.in_(user_ids), UserSession.last_seen_at < cutoff, ended))),
        "login_attempts": _count(db.execute(delete(LoginAttempt).where(
            LoginAttempt.account_key.in_(keys), LoginAttempt.at < cutoff))),
        "password_resets": _count(db.execute(delete(PasswordReset).where(
            PasswordReset.user_id.in_(user_ids), PasswordReset.expires_at < cutoff))),
    }
