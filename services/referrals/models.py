"""referrals's own tables.

A *share* is one act of sharing (who, for which student if any, which channel);
it holds one *referral* per directory service shared, each followed through its
own status history (modelled on FHIR Task). Deliveries are the email/SMS jobs a
share creates, one per recipient, each with its attempts.

Data minimisation: a contact is kept as identity's opaque ``contact_id`` only;
its email or mobile number is asked from identity at send time. A walk-in share
has no student and no contact; an address typed for a walk-in family lives in
its delivery row only until that delivery ends, then is erased.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from weintervene.contracts import OUTCOMES as CONTRACT_OUTCOMES
from weintervene.db import JSONType, UTCDateTime, new_id, partial_index, utcnow
from weintervene.deletion import make_deletion_receipt_model
from weintervene.messaging import make_outbox_model, make_processed_event_model


class Base(DeclarativeBase):
    pass


# FHIR Task statuses used for referrals, and the ones that close a referral.
STATUSES = (
    "requested", "received", "accepted", "rejected", "in-progress",
    "on-hold", "completed", "cancelled", "failed",
)
CLOSED_STATUSES = frozenset({"rejected", "completed", "cancelled", "failed"})
OUTCOMES = CONTRACT_OUTCOMES  # how a referral ended: the contract's list, so analytics counts each
# Delivery states: queued -> sending -> sent (or delivered, when the provider
# confirms), or back to queued with a later next_attempt_at, or failed.
DELIVERY_STATES = ("queued", "sending", "sent", "delivered", "failed")


class Share(Base):
    __tablename__ = "share"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(36), index=True)
    district_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    # The sharer; None once that user's data was deleted (the school keeps the share).
    sharer_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    sharer_role: Mapped[str] = mapped_column(String(32))
    # None for a walk-in family: then nothing about the family is kept at all.
    student_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    channel: Mapped[str] = mapped_column(String(8))
    language: Mapped[str] = mapped_column(String(8), default="en")
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    list_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # Link channel: only the SHA-256 of the token is stored.
    link_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    link_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    referrals: Mapped[list["Referral"]] = relationship(
        back_populates="share", cascade="all, delete-orphan", passive_deletes=True, order_by="Referral.position")
    recipients: Mapped[list["ShareRecipient"]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True)
    deliveries: Mapped[list["Delivery"]] = relationship(
        back_populates="share", cascade="all, delete-orphan", passive_deletes=True, order_by="Delivery.created_at")


class ShareRecipient(Base):
    """An authorised contact of the student (or the adult student) the share went to."""

    __tablename__ = "share_recipient"
    share_id: Mapped[str] = mapped_column(ForeignKey("share.id", ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)


class Referral(Base):
    """One directory service shared, followed until the family is connected."""

    __tablename__ = "referral"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    share_id: Mapped[str] = mapped_column(ForeignKey("share.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    tenant_id: Mapped[str] = mapped_column(String(36), index=True)
    service_id: Mapped[str] = mapped_column(String(36), index=True)
    # Public directory facts printed in the message (name, address, phone, hours,
    # eligibility): a snapshot, so a later directory edit does not rewrite what was sent.
    service_info: Mapped[dict] = mapped_column(JSONType)
    # The program tenant owning the service when it is itself on the platform:
    # its staff receive the referral ("incoming") and close the loop.
    # Indexed where set only (ix_referral_receiving_tenant_id below): most services are not on
    # the platform, and every query on it compares it to a tenant, which implies IS NOT NULL.
    receiving_tenant_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # What was disclosed to that program (student's first name), under consent.
    disclosed: Mapped[dict | None] = mapped_column(JSONType, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="requested", index=True)
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    follow_up_on: Mapped[date | None] = mapped_column(Date, nullable=True, index=True)
    last_update_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    share: Mapped[Share] = relationship(back_populates="referrals", lazy="joined")
    history: Mapped[list["StatusChange"]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="StatusChange.at")

    __table_args__ = (
        partial_index("ix_referral_receiving_tenant_id", "receiving_tenant_id", where="receiving_tenant_id IS NOT NULL"),
    )


class StatusChange(Base):
    __tablename__ = "status_change"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    referral_id: Mapped[str] = mapped_column(ForeignKey("referral.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    changed_by: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    # Indexed: a termination clears the notes its tenant wrote on referrals it received.
    changed_by_tenant_id: Mapped[str] = mapped_column(String(36), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Delivery(Base):
    """One email or SMS to send, retried with backoff, sent at most once.

    ``recipient_kind``: ``contact`` (identity gives the address at send time),
    ``walk_in`` (the typed address is in ``transient_address`` until the
    delivery ends) or ``sharer`` (a follow-up reminder to a user).
    """

    __tablename__ = "delivery"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    share_id: Mapped[str] = mapped_column(ForeignKey("share.id", ondelete="CASCADE"), index=True)
    # Indexed (ix_delivery_referral_id below): deleting a referral looks up its deliveries
    # (ON DELETE CASCADE); without the index a termination scans every delivery once per referral.
    referral_id: Mapped[str | None] = mapped_column(ForeignKey("referral.id", ondelete="CASCADE"), nullable=True)
    purpose: Mapped[str] = mapped_column(String(16), default="share")  # share | reminder
    channel: Mapped[str] = mapped_column(String(8))
    recipient_kind: Mapped[str] = mapped_column(String(16))
    recipient_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    transient_address: Mapped[str | None] = mapped_column(String(254), nullable=True)
    language: Mapped[str] = mapped_column(String(8), default="en")
    state: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    share: Mapped[Share] = relationship(back_populates="deliveries")
    attempt_log: Mapped[list["DeliveryAttempt"]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="DeliveryAttempt.number")

    # Partial indexes: a delivery is in ix_delivery_due while it waits ("queued": the
    # sender's due select) and in ix_delivery_sending while it is sent (``recover_interrupted``),
    # then in neither. Only reminders have a referral: a share's deliveries are left
    # out of ix_delivery_referral_id (every "referral_id = ?" implies IS NOT NULL). Each
    # delivery is updated twice (claimed, then sent), neither update HOT, so each index a
    # row version stays out of is an entry PostgreSQL no longer writes.
    __table_args__ = (
        partial_index("ix_delivery_due", "next_attempt_at", where="state = 'queued'"),
        partial_index("ix_delivery_sending", "claimed_at", where="state = 'sending'"),
        partial_index("ix_delivery_referral_id", "referral_id", where="referral_id IS NOT NULL"),
        # The SMS provider's status callback finds its delivery by the provider's message id
        # (``apply_provider_status``); emails, most deliveries, are left out of the index.
        partial_index("ix_delivery_sms_provider_message_id", "provider_message_id", where="channel = 'sms'"),
    )


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempt"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("delivery.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    result: Mapped[str] = mapped_column(String(16), default="sending")  # sending | sent | failed
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class SavedList(Base):
    """A user's favourite services; ``shared`` makes it visible to their school."""

    __tablename__ = "saved_list"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(36), index=True)
    owner_id: Mapped[str] = mapped_column(String(36), index=True)
    name: Mapped[str] = mapped_column(String(200))
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    items: Mapped[list["SavedListItem"]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="SavedListItem.added_at", lazy="selectin")


class SavedListItem(Base):
    __tablename__ = "saved_list_item"
    list_id: Mapped[str] = mapped_column(ForeignKey("saved_list.id", ondelete="CASCADE"), primary_key=True)
    service_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    service_name: Mapped[str] = mapped_column(String(300))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Disclosure(Base):
    """FERPA 34 CFR 99.32 record: student information given to an outside party."""

    __tablename__ = "disclosure"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(36), index=True)  # the school that disclosed
    student_id: Mapped[str] = mapped_column(String(36), index=True)
    referral_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    recipient_tenant_id: Mapped[str] = mapped_column(String(36), index=True)
    recipient_name: Mapped[str] = mapped_column(String(300))
    disclosed_by: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    disclosed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    information: Mapped[list] = mapped_column(JSONType)  # which fields, e.g. ["first_name", "note"]
    basis: Mapped[str] = mapped_column(String(32))  # consent | legitimate_interest
    consent: Mapped[dict | None] = mapped_column(JSONType, nullable=True)  # given_by, method, date


class IdempotencyKey(Base):
    """A client's ``Idempotency-Key`` on a share: a repeat of the request gets this share
    back instead of making a second one (``services.referrals.idempotency``).

    Scoped to the caller: the primary key (tenant, user, key) is the unique constraint
    that lets exactly one of two concurrent requests with the same key commit its share.
    Hashes only, of the client's key and of the request: no note, student or address;
    purged hourly once ``idempotency_key_ttl_hours`` old.
    """

    __tablename__ = "idempotency_key"
    tenant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    # Indexed: deleting shares (a termination: 100,000) looks their keys up by it.
    share_id: Mapped[str] = mapped_column(ForeignKey("share.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class SmsCallbackSeen(Base):
    """A signed SMS status callback already applied, so a replay changes nothing and gets
    the same answer (``services.referrals.sms_callbacks``).

    Only the SHA-256 of the callback's signature (the provider's HMAC over the callback
    URL and every field) and the first answer: no message id, number or status. Purged
    once ``sms_callback_replay_hours`` old.
    """

    __tablename__ = "sms_callback_seen"
    signature_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    updated: Mapped[bool] = mapped_column(Boolean)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


OutboxMessage = make_outbox_model(Base)
ProcessedEvent = make_processed_event_model(Base)
# What this service deleted per deletion request, totalled over every run (no personal data).
DeletionReceipt = make_deletion_receipt_model(Base)
