"""analytics's own tables: de-identified counters, and nothing else about people.

Every table is keyed by tenant (a school or program), day, and an opaque
directory id or channel. No column can hold a user, student, contact or message
identifier (``tests/unit/test_analytics_schema.py`` inspects the schema), and
the counters are pre-aggregated, so a report reads as many rows as there are
distinct (day, service, channel) keys in its period, however many shares were
counted.

Each share increments, in one transaction with its ``ProcessedEvent`` row:

- one ``ServiceShareCount`` row (top services),
- one ``TermSetShareCount`` row for its set of taxonomy terms (top categories, unmet need),
- one ``DailyShareCount`` row (the per tenant-day rollup behind trends, channels, schools).

Each closed referral (``referral_closed``) increments one ``OutcomeCount`` row.
"""
from datetime import date

from sqlalchemy import Date, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from weintervene.db import UTCDateTime, utcnow
from weintervene.deletion import make_deletion_receipt_model
from weintervene.messaging import make_outbox_model, make_processed_event_model


class Base(DeclarativeBase):
    pass


OutboxMessage = make_outbox_model(Base)
ProcessedEvent = make_processed_event_model(Base)
# What this service deleted per deletion request, totalled over every run (no personal data).
DeletionReceipt = make_deletion_receipt_model(Base)


class ServiceShareCount(Base):
    """How many times a directory service was shared, per tenant, local day and channel."""

    __tablename__ = "service_share_count"
    tenant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    service_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    # The district the tenant belonged to when the share happened (None: none).
    district_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


# A share carries at most 50 terms (the contract), each a 36-character id.
TERM_SET_LENGTH = 50 * 37


class TermSetShareCount(Base):
    """How many shares carried exactly this set of taxonomy terms, per tenant, local day and channel.

    A set, not a row per term: categories are rolled up to their top level when a
    report is built (the taxonomy belongs to directory and may change), and a
    share carrying two terms of one top-level category (Counselling and Anxiety,
    both Mental health) is one request for that category, not two. Per-term rows
    cannot tell those apart from two shares; the set can. A service's shares
    carry the same few terms, so the sets stay few.
    """

    __tablename__ = "term_set_share_count"
    tenant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    # The distinct term ids, sorted, joined by commas, e.g. "0b6e…,9f1c…".
    taxonomy_term_ids: Mapped[str] = mapped_column(String(TERM_SET_LENGTH), primary_key=True)
    district_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class DailyShareCount(Base):
    """Rollup: shares per tenant, local day and channel (trends, channel mix, schools)."""

    __tablename__ = "daily_share_count"
    tenant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    district_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class DeletedTenant(Base):
    """A terminated tenant: its counters were deleted, and late events for it are dropped.

    A share committed just before a termination may still be in the referrals
    outbox; without this fence it would recreate the tenant's counters.
    """

    __tablename__ = "deleted_tenant"
    tenant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    deleted_at = mapped_column(UTCDateTime, default=utcnow)


class OutcomeCount(Base):
    """Referrals that closed, per tenant, local day of closing, set of taxonomy terms, outcome
    and whole days from share to close (the connected rate and median days to connect by
    category; reasons not connected). Counted from ``referral_closed`` events."""

    __tablename__ = "outcome_count"
    tenant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    taxonomy_term_ids: Mapped[str] = mapped_column(String(TERM_SET_LENGTH), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(32), primary_key=True)
    days_open: Mapped[int] = mapped_column(Integer, primary_key=True)
    district_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


COUNTER_MODELS = (ServiceShareCount, TermSetShareCount, DailyShareCount, OutcomeCount)
