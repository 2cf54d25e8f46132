"""Identity's own tables. Nothing here is read by another service directly."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from weintervene.db import JSONType, UTCDateTime, new_id, utcnow
from weintervene.deletion import make_deletion_receipt_model
from weintervene.export import Via, declare_ownership, ownership
from weintervene.messaging import make_outbox_model, make_processed_event_model


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    """A district, a school (in a district or independent), a program, or the platform."""

    __tablename__ = "tenant"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    # A school's district; None for districts, independent schools, programs.
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), nullable=True, index=True)
    postcode: Mapped[str | None] = mapped_column(String(10), nullable=True)
    latitude: Mapped[float | None] = mapped_column(nullable=True)
    longitude: Mapped[float | None] = mapped_column(nullable=True)
    timezone: Mapped[str] = mapped_column(String(64), default="America/New_York")
    # Per-school settings.
    student_ids_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    analytics_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    suppression_threshold: Mapped[int] = mapped_column(Integer, default=10)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | terminated
    # The org's ``sourcedId`` in the SIS's OneRoster exports (``oneroster.py``): re-imports find it by this.
    sis_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    __tablename__ = "user_account"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-case
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    tenant: Mapped[Tenant] = relationship(lazy="joined")


class UserSession(Base):
    """A signed-in session; only the SHA-256 of its token is stored."""

    __tablename__ = "user_session"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Set when the session came from single sign-on: sign-out offers that provider's end-session.
    sso_configuration_id: Mapped[str | None] = mapped_column(
        ForeignKey("sso_configuration.id", ondelete="SET NULL"), nullable=True)


class SsoConfiguration(Base):
    """A district's or independent school's/program's OpenID Connect provider
    (``services.identity.single_sign_on``); a district's covers its schools' users.

    ``client_secret_sealed`` is the client secret encrypted under the versioned keyring
    (``weintervene.sealing``; re-sealed by ``weintervene rotate-key``). ``allowed_domains``:
    the email domains it may sign in, comma-separated, lower-case. ``jit_role`` (teacher or
    program_staff; None = off): an unknown verified address of an allowed domain gets an
    account with that role in ``jit_tenant_id``, recorded in the access log.
    """

    __tablename__ = "sso_configuration"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), unique=True)
    preset: Mapped[str] = mapped_column(String(16))  # google | entra | clever | classlink | generic
    issuer_url: Mapped[str] = mapped_column(String(500))
    provider_tenant: Mapped[str | None] = mapped_column(String(100), nullable=True)  # Entra ID's tenant id
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret_sealed: Mapped[str] = mapped_column(String(1000))
    allowed_domains: Mapped[str] = mapped_column(String(1000))
    password_sign_in_allowed: Mapped[bool] = mapped_column(Boolean, default=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    jit_role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    jit_tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenant.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    tenant: Mapped[Tenant] = relationship(lazy="joined", foreign_keys=[tenant_id])


class SsoLink(Base):
    """Which provider account (issuer's ``sub``) signs in as a user: set at the first SSO
    sign-in, so a different provider account that later carries the same address is refused."""

    __tablename__ = "sso_link"
    __table_args__ = (UniqueConstraint("configuration_id", "subject"),)
    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    configuration_id: Mapped[str] = mapped_column(ForeignKey("sso_configuration.id", ondelete="CASCADE"), index=True)
    subject: Mapped[str] = mapped_column(String(255))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoginAttempt(Base):
    """Failed sign-ins, kept one hour for throttling (the account key is a hash)."""

    __tablename__ = "login_attempt"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_key: Mapped[str] = mapped_column(String(64), index=True)
    client_ip: Mapped[str] = mapped_column(String(64), index=True)
    succeeded: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class PasswordReset(Base):
    __tablename__ = "password_reset"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Student(Base):
    __tablename__ = "student"
    __table_args__ = (UniqueConstraint("tenant_id", "roster_key"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    # Stable key from the student information system, used to update on re-import.
    roster_key: Mapped[str] = mapped_column(String(64))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    grade: Mapped[str | None] = mapped_column(String(4), nullable=True)
    date_of_birth: Mapped[date | None] = mapped_column(Date, nullable=True)
    student_number: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Only for students 18 or older, who receive information themselves.
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    mobile: Mapped[str | None] = mapped_column(String(20), nullable=True)
    preferred_language: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    # When a bulk OneRoster import no longer listed the student: kept until the tenant's
    # ``left_students`` retention policy deletes them; None while on the roster.
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    tenant: Mapped[Tenant] = relationship(lazy="joined")
    contacts: Mapped[list["FamilyContact"]] = relationship(
        back_populates="student", cascade="all, delete-orphan", passive_deletes=True
    )


class FamilyContact(Base):
    """A person the parents authorised to receive information about the student."""

    __tablename__ = "family_contact"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    student_id: Mapped[str] = mapped_column(ForeignKey("student.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    relationship_to_student: Mapped[str] = mapped_column(String(50))
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    mobile: Mapped[str | None] = mapped_column(String(20), nullable=True)
    preferred_language: Mapped[str] = mapped_column(String(8), default="en")
    authorised: Mapped[bool] = mapped_column(Boolean, default=True)
    # The guardian's ``sourcedId`` when the contact came from a OneRoster import.
    sis_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)

    student: Mapped[Student] = relationship(back_populates="contacts")


class ServesLink(Base):
    """Staff member (teacher, counsellor, program staff) serves a student."""

    __tablename__ = "serves_link"
    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    student_id: Mapped[str] = mapped_column(ForeignKey("student.id", ondelete="CASCADE"), primary_key=True, index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    # "oneroster" when the SIS's enrollments made it (re-imports add and remove those only);
    # None when an administrator or a roster CSV did.
    source: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SisStaffLink(Base):
    """A OneRoster teacher's ``sourcedId`` -> the staff account matched by email (never created)."""

    __tablename__ = "sis_staff_link"
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), primary_key=True)
    sourced_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)


class SisEnrollment(Base):
    """One OneRoster enrollment (ids only: which user is in which class, as what). The
    "serves" links are derived from these: a class's teachers serve its students."""

    __tablename__ = "sis_enrollment"
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), primary_key=True)
    sourced_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    class_sourced_id: Mapped[str] = mapped_column(String(255), index=True)
    user_sourced_id: Mapped[str] = mapped_column(String(255), index=True)
    role: Mapped[str] = mapped_column(String(16))  # student | teacher


class RosterColumnMapping(Base):
    """A school's saved mapping of its SIS's CSV headers to the roster's fields."""

    __tablename__ = "roster_column_mapping"
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), primary_key=True)
    mapping: Mapped[dict] = mapped_column(JSONType, default=dict)  # {"Student ID": "student_key", ...}
    updated_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class RosterImportRecord(Base):
    """One applied roster import: who, when, what kind, the package's SHA-256 and the
    counts; ``contacts_authorised`` records the administrator's confirmation that the
    package's family contacts are authorised by the school's records. No personal data."""

    __tablename__ = "roster_import_record"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    actor_user_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))  # oneroster
    package_sha256: Mapped[str] = mapped_column(String(64))
    contacts_authorised: Mapped[bool] = mapped_column(Boolean, default=False)
    counts: Mapped[dict] = mapped_column(JSONType, default=dict)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class SubjectFence(Base):
    """A subject whose deletion was requested: identity takes no new data about it.

    ``subject_hash`` (a keyed hash of scope and id, see :func:`students.subject_hash`)
    is what the fence is checked by. The raw ``subject_id`` is kept only while the
    deletion is pending (the student list hides fenced students by it) and cleared
    once the deletion is applied, so nothing here names a deleted subject; a
    terminated tenant's ``tenant_id`` is cleared the same way. ``roster_key_hash``
    (keyed hash of tenant id and roster key) lets a later roster import recognise
    the student without keeping the key.
    """

    __tablename__ = "subject_fence"
    __table_args__ = (
        UniqueConstraint("scope", "subject_id"),
        UniqueConstraint("scope", "subject_hash", name="uq_subject_fence_scope_subject_hash"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    request_id: Mapped[str] = mapped_column(String(36), index=True)
    scope: Mapped[str] = mapped_column(String(16))
    tenant_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    subject_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    # "<key id>:<64 hex>" (weintervene.hashing): the id of the key it was made with.
    subject_hash: Mapped[str] = mapped_column(String(96))
    roster_key_hash: Mapped[str | None] = mapped_column(String(96), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the deletion was applied here (the raw ids were cleared then).
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)



class PolicyVersion(Base):
    """A published version of the privacy policy; the last published is the current policy.

    ``last_updated`` is the date the policy page shows ("Last Updated"); ``summary``
    is the one line the banner shows about what changed. The id is the version
    users acknowledge (two versions may share a date: a same-day correction).
    """

    __tablename__ = "policy_version"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    last_updated: Mapped[date] = mapped_column(Date)
    summary: Mapped[str] = mapped_column(String(500))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class PolicyAcknowledgement(Base):
    """A user read a policy version (the banner's "I have read it"). Goes with the user."""

    __tablename__ = "policy_acknowledgement"
    __table_args__ = (UniqueConstraint("user_id", "policy_version_id"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    policy_version_id: Mapped[str] = mapped_column(ForeignKey("policy_version.id", ondelete="CASCADE"))
    acknowledged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IncidentNotice(Base):
    """An operator's notice shown to everyone (signed in or not) until it ends.

    Text only, written by an operator for the public: never personal data.
    """

    __tablename__ = "incident_notice"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    message: Mapped[str] = mapped_column(String(500))
    severity: Mapped[str] = mapped_column(String(16), default="warning")  # info | warning
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

class BreakGlassRequest(Base):
    """An operator's recorded recovery of a tenant (``break_glass.py``): what was asked, by whom,
    why, and who approved or refused it, when. It takes effect only when approved: by one of
    the tenant's administrators, or (the tenant having none left) by a second operator.

    ``status``: pending | approved | refused | expired. ``approval``: tenant_administrator |
    second_operator (how it was approved). Goes with its tenant on termination; a deleted
    user's email and name are redacted here (``forget_users``).
    """

    __tablename__ = "break_glass_request"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(32))  # invite_administrator
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)  # whom to invite
    display_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reason: Mapped[str] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    requested_by: Mapped[str | None] = mapped_column(String(36), nullable=True)  # an operator's user id
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    approval: Mapped[str | None] = mapped_column(String(32), nullable=True)
    decision_note: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    created_user_id: Mapped[str | None] = mapped_column(String(36), nullable=True)

    tenant: Mapped[Tenant] = relationship(lazy="joined")


class AccessLogEntry(Base):
    """One action a platform account (operator, auditor) took on a tenant: what the
    tenant's administrators read and export (``services.identity.access_log``).

    The actor's name and role are copied at the time (an operator account may go
    later; the record stays true). ``description`` is a short sentence written by
    the code that acted, never with student data.
    """

    __tablename__ = "access_log_entry"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    # None once that account is deleted: its name and role stay, its id goes with it.
    actor_user_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    actor_name: Mapped[str] = mapped_column(String(200))
    actor_role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(String(300))
    # Which service did it (identity records its own; others report by event or fence).
    source: Mapped[str] = mapped_column(String(16), default="identity")
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class MailJob(Base):
    """A message identity will send after it has answered (``services.identity.mailing``).

    Staged in the request's transaction, sent by identity's mail worker, deleted once
    sent (or given up): nothing personal is kept after sending. A reset request keeps
    the address as typed (``email``) only until the worker has looked it up; an
    invitation or an access notice names its recipient by ``user_id``.
    """

    __tablename__ = "mail_job"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(24))  # password_reset | invitation | access_notice
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    tenant_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    entry_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AccountConflict(Base):
    """A tenant admin asked for an account whose address already has one they cannot see.

    The admin was answered as for any unusable address; this row is the operators'
    queue. It holds what the admin typed (the address, the role) and who asked, not
    where the other account is: exported and deleted with the asking tenant.
    """

    __tablename__ = "account_conflict"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    requested_by: Mapped[str] = mapped_column(String(36))
    email: Mapped[str] = mapped_column(String(254), index=True)
    role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


OutboxMessage = make_outbox_model(Base)
ProcessedEvent = make_processed_event_model(Base)
# What this service deleted per deletion request, totalled over every run (no personal data).
DeletionReceipt = make_deletion_receipt_model(Base)

Index("ix_login_attempt_account_at", LoginAttempt.account_key, LoginAttempt.at)


def _account_key(email: str) -> str:
    from services.identity.accounts import account_key  # late: accounts imports these models

    return account_key(email)


# Exports (weintervene.export): foreign keys lead to users' sessions and resets;
# these say what the columns cannot.
declare_ownership(
    Base,
    tenant=ownership(tenant="id"),
    student=ownership(student="id"),
    login_attempt=ownership(via=[Via("account_key", "user_account.email", transform=_account_key)]),
)
