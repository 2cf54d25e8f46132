"""What referrals deletes for each deletion scope (called by the DeletionParticipant mixin).

* tenant: every share, list and disclosure of the tenants, and what was
  disclosed to a terminated program;
* student: every share about the student (referrals, history, deliveries cascade)
  and the student's disclosure log;
* contact: the contact's recipient rows and deliveries (the share stays the school's);
* user: the user's saved lists, reminder deliveries and idempotency keys; shares stay
  the school's but lose the link to the person (sharer, status authors, disclosing user);
* policy: by ``record_kind``, closed referrals (whole shares) or ended delivery
  logs of the tenants older than ``older_than``; other kinds are not held here.

Idempotent: a second run finds nothing and reports zeros.

Tables whose deleted (or cleared) rows held free text or an address are marked for the
rewrite after the commit (``weintervene.remnants``): a share's note, a status note, what
was disclosed to a program, a walk-in's address or a provider's error. A share table of
100,000 rows is not rewritten for a deletion whose shares carried none of these.

Example::

    >>> delete_for(db, {"scope": "student", "subject_id": s, "tenant_ids": [t], …})
    {"shares": 2, "disclosures": 1}
"""
from __future__ import annotations

from sqlalchemy import delete, or_, select, update

from weintervene.contracts import SHARE_RECORDED
from weintervene.remnants import mark_for_scrub

from services.referrals.models import (
    CLOSED_STATUSES, Delivery, OutboxMessage, DeliveryAttempt, Disclosure, IdempotencyKey, Referral, SavedList,
    SavedListItem, Share, ShareRecipient, StatusChange,
)


def _delete_shares(db, *where, scrub: bool = True) -> int:
    """Delete the shares matching ``where`` and everything under them. ``scrub``: mark the
    tables that held personal text for the rewrite (not for a retention policy's daily
    expiry, which would rewrite the tables every day: docs/SECURITY.md)."""
    # The shares as a subquery, not a list of ids: a termination's 100,000 ids
    # would be 100,000 bound parameters in every statement below.
    ids = select(Share.id).where(*where)
    if db.scalar(select(ids.exists())) is not True:
        return 0
    # Children first, explicitly: SQLite runs without ON DELETE CASCADE unless told.
    referral_ids = select(Referral.id).where(Referral.share_id.in_(ids))
    delivery_ids = select(Delivery.id).where(Delivery.share_id.in_(ids))
    if scrub:
        _mark_if_any(db, "share", *where, Share.note.is_not(None))
        _mark_if_any(db, "referral", Referral.share_id.in_(ids), Referral.disclosed.is_not(None))
        _mark_if_any(db, "status_change", StatusChange.referral_id.in_(referral_ids), StatusChange.note.is_not(None))
        _mark_deliveries(db, Delivery.share_id.in_(ids))
    db.execute(delete(StatusChange).where(StatusChange.referral_id.in_(referral_ids)))
    db.execute(delete(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(delivery_ids)))
    db.execute(delete(Delivery).where(Delivery.share_id.in_(ids)))
    db.execute(delete(Referral).where(Referral.share_id.in_(ids)))
    db.execute(delete(ShareRecipient).where(ShareRecipient.share_id.in_(ids)))
    db.execute(delete(IdempotencyKey).where(IdempotencyKey.share_id.in_(ids)))
    return db.execute(delete(Share).where(*where)).rowcount


def _mark_if_any(db, table: str, *where) -> None:
    """Mark ``table`` for the rewrite if a row matching ``where`` exists (one indexed probe)."""
    model = {"share": Share, "referral": Referral, "status_change": StatusChange,
             "delivery": Delivery, "delivery_attempt": DeliveryAttempt}[table]
    if db.scalar(select(select(model).where(*where).exists())):
        mark_for_scrub(db, table)


def _mark_deliveries(db, *where) -> None:
    """Deliveries (and their attempts) about to go that hold an address or a provider's
    answer (which may quote the address)."""
    _mark_if_any(db, "delivery", *where, or_(Delivery.transient_address.is_not(None), Delivery.last_error.is_not(None)))
    _mark_if_any(db, "delivery_attempt", DeliveryAttempt.delivery_id.in_(select(Delivery.id).where(*where)),
                 DeliveryAttempt.reason.is_not(None))


def delete_for(db, request: dict) -> dict:
    scope, subject, tenants = request["scope"], request["subject_id"], request["tenant_ids"]
    counts: dict[str, int] = {}
    if scope == "tenant":
        counts["shares"] = _delete_shares(db, Share.tenant_id.in_(tenants))
        list_ids = db.scalars(select(SavedList.id).where(SavedList.tenant_id.in_(tenants))).all()
        db.execute(delete(SavedListItem).where(SavedListItem.list_id.in_(list_ids)))
        counts["saved_lists"] = db.execute(delete(SavedList).where(SavedList.id.in_(list_ids))).rowcount
        counts["disclosures"] = db.execute(delete(Disclosure).where(Disclosure.tenant_id.in_(tenants))).rowcount
        # A terminated program keeps nothing it was sent; the schools keep their referral.
        _mark_if_any(db, "referral", Referral.receiving_tenant_id.in_(tenants), Referral.disclosed.is_not(None))
        _mark_if_any(db, "status_change", StatusChange.changed_by_tenant_id.in_(tenants), StatusChange.note.is_not(None))
        counts["received_referrals"] = db.execute(
            update(Referral).where(Referral.receiving_tenant_id.in_(tenants))
            .values(receiving_tenant_id=None, disclosed=None)
        ).rowcount
        db.execute(update(StatusChange).where(StatusChange.changed_by_tenant_id.in_(tenants))
                   .values(changed_by=None, note=None))
        # The tenant's share events, relayed or not: analytics forgets the tenant too.
        # Selected by the database (published events stay in the outbox for outbox_retention_days).
        counts["share_events"] = db.execute(delete(OutboxMessage).where(
            OutboxMessage.event_type == SHARE_RECORDED,
            OutboxMessage.payload["tenant_id"].as_string().in_(tenants)
            | OutboxMessage.payload["district_id"].as_string().in_(tenants),
        )).rowcount
    elif scope == "student":
        # Student ids are identity's UUIDs, unique across tenants: every share about the
        # student goes, including one a district admin made under the district's tenant.
        counts["shares"] = _delete_shares(db, Share.student_id == subject)
        counts["disclosures"] = db.execute(delete(Disclosure).where(Disclosure.student_id == subject)).rowcount
    elif scope == "contact":
        delivery_ids = select(Delivery.id).where(Delivery.recipient_kind == "contact", Delivery.recipient_id == subject)
        _mark_deliveries(db, Delivery.recipient_kind == "contact", Delivery.recipient_id == subject)
        db.execute(delete(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(delivery_ids)))
        counts["deliveries"] = db.execute(
            delete(Delivery).where(Delivery.recipient_kind == "contact", Delivery.recipient_id == subject)
        ).rowcount
        counts["share_recipients"] = db.execute(
            delete(ShareRecipient).where(ShareRecipient.contact_id == subject)
        ).rowcount
    elif scope == "user":
        list_ids = db.scalars(select(SavedList.id).where(SavedList.owner_id == subject)).all()
        db.execute(delete(SavedListItem).where(SavedListItem.list_id.in_(list_ids)))
        counts["saved_lists"] = db.execute(delete(SavedList).where(SavedList.id.in_(list_ids))).rowcount
        # Attempts before their deliveries, as everywhere here: the delivery worker records a
        # chunk's outcomes in that order too, so the two wait for each other, never deadlock.
        reminder_ids = select(Delivery.id).where(Delivery.recipient_kind == "sharer", Delivery.recipient_id == subject)
        db.execute(delete(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(reminder_ids)))
        counts["reminders"] = db.execute(
            delete(Delivery).where(Delivery.recipient_kind == "sharer", Delivery.recipient_id == subject)
        ).rowcount
        # A key row ties the user to a share: it goes with the user.
        counts["idempotency_keys"] = db.execute(
            delete(IdempotencyKey).where(IdempotencyKey.user_id == subject)).rowcount
        counts["shares_unlinked"] = db.execute(
            update(Share).where(Share.sharer_id == subject).values(sharer_id=None)
        ).rowcount
        counts["status_changes_unlinked"] = db.execute(
            update(StatusChange).where(StatusChange.changed_by == subject).values(changed_by=None)
        ).rowcount
        db.execute(update(Disclosure).where(Disclosure.disclosed_by == subject).values(disclosed_by=None))
    elif scope == "policy" and request.get("older_than") is not None:
        older = request["older_than"]
        kind = request.get("record_kind")
        if kind == "closed_referrals":
            # Shares whose every referral is closed (walk-ins are never followed, so count as closed).
            still_open = select(Referral.share_id).where(Referral.status.not_in(CLOSED_STATUSES))
            counts["shares"] = _delete_shares(
                db, Share.tenant_id.in_(tenants), Share.created_at < older,
                (Share.student_id.is_(None)) | Share.id.not_in(still_open), scrub=False,
            )
        elif kind == "delivery_logs":
            ended = select(Delivery.id).join(Share).where(
                Share.tenant_id.in_(tenants), Delivery.created_at < older,
                Delivery.state.in_(("sent", "delivered", "failed")),
            )
            ids = db.scalars(ended).all()
            db.execute(delete(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(ids)))
            counts["deliveries"] = db.execute(delete(Delivery).where(Delivery.id.in_(ids))).rowcount
        # Other record kinds (login records…) are not held here: confirmed with no counts.
    # Bulk statements bypass the session's identity map: forget what it holds.
    db.expire_all()
    return counts
