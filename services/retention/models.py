"""retention's own tables.

Nothing here names a person. A subject (student, user) is kept as an opaque
reference (an HMAC of its id under the platform secret); its raw id is kept only
while the deletion is in flight (``subject_id``, needed to re-send) and erased
when every service has confirmed.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from weintervene.db import JSONType, UTCDateTime, new_id, utcnow
from weintervene.messaging import make_outbox_model, make_processed_event_model


class Base(DeclarativeBase):
    pass


class DeletionRequest(Base):
    """One deletion: a student opt-out, a tenant termination, a user removal or a policy run."""

    __tablename__ = "deletion_request"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    scope: Mapped[str] = mapped_column(String(16), index=True)  # student|tenant|user|policy
    tenant_id: Mapped[str] = mapped_column(String(36), index=True)
    tenant_ids: Mapped[list] = mapped_column(JSONType, default=list)
    # HMAC-SHA256 of the subject id: lets an auditor who knows an id check it
    # was deleted, without the record naming anyone. "<key id>:<64 hex>"
    # (weintervene.hashing): the id of the key it was made with.
    subject_ref: Mapped[str] = mapped_column(String(96), index=True)
    # The raw id, only until completion (re-sends need it); then NULL.
    subject_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    older_than: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    record_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    policy_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    export_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    requested_by: Mapped[str] = mapped_column(String(36))  # a user id, or "policy"
    verified_by: Mapped[str | None] = mapped_column(String(36), nullable=True)  # a user id
    verification_method: Mapped[str | None] = mapped_column(String(40), nullable=True)
    reason: Mapped[str] = mapped_column(String(40))  # a code from schemas.REASONS
    note: Mapped[str | None] = mapped_column(String(200), nullable=True)  # checked: no emails/phones
    # pending (not fenced yet) | waiting_ferpa_inspection | dispatched | completed
    status: Mapped[str] = mapped_column(String(32), index=True, default="pending")
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fenced_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_try_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    confirmations: Mapped[list["DeletionConfirmation"]] = relationship(
        back_populates="request", lazy="selectin", order_by="DeletionConfirmation.service"
    )


class DeletionConfirmation(Base):
    """A service's confirmation of one request, with what it deleted (its receipt's totals:
    a later confirmation counting more replaces the counts, recorded in the audit chain)."""

    __tablename__ = "deletion_confirmation"
    request_id: Mapped[str] = mapped_column(ForeignKey("deletion_request.id"), primary_key=True)
    service: Mapped[str] = mapped_column(String(32), primary_key=True)
    counts: Mapped[dict] = mapped_column(JSONType, default=dict)
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime)  # as the service reported
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempt: Mapped[int] = mapped_column(Integer)  # the request's attempt when it arrived

    request: Mapped[DeletionRequest] = relationship(back_populates="confirmations")


class RetentionPolicy(Base):
    """A tenant's rule: records of ``record_kind`` older than ``max_age_days`` expire."""

    __tablename__ = "retention_policy"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(36), index=True)
    record_kind: Mapped[str] = mapped_column(String(32))
    max_age_days: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class InspectionRequest(Base):
    """A parent's request (through the school) to inspect or amend a student's records.

    While an inspection is open the student's deletion waits (FERPA). The
    student id is erased once that student's deletion completes.
    """

    __tablename__ = "inspection_request"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))  # inspection | amendment
    tenant_id: Mapped[str] = mapped_column(String(36), index=True)
    student_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    subject_ref: Mapped[str] = mapped_column(String(96), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)  # open | closed
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    note: Mapped[str | None] = mapped_column(String(200), nullable=True)
    opened_by: Mapped[str] = mapped_column(String(36))
    closed_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DataExport(Base):
    """A data owner's export: who asked, for which tenants. The archive itself is
    assembled from the services when downloaded and never stored here."""

    __tablename__ = "data_export"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(36), index=True)
    tenant_ids: Mapped[list] = mapped_column(JSONType, default=list)
    requested_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    downloaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditEntry(Base):
    """Append-only, hash-chained: ``hash = sha256(prev_hash + canonical JSON of the entry)``."""

    __tablename__ = "audit_entry"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    event: Mapped[str] = mapped_column(String(40))
    request_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    data: Mapped[dict] = mapped_column(JSONType, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


OutboxMessage = make_outbox_model(Base)
ProcessedEvent = make_processed_event_model(Base)

Index("ix_deletion_request_status_next_try", DeletionRequest.status, DeletionRequest.next_try_at)
