"""The SMS provider's status callbacks, each applied once: a replay changes nothing.

A callback's signature (Twilio's scheme, checked by :func:`sms.valid_signature`) proves
it came from the provider, but not that it is new: anyone who captured one could send it
again. So each callback applied is remembered by the SHA-256 of its signature (the
provider's HMAC over the callback URL and every field: the same callback, the same
signature), with the answer it got. A callback seen before is answered exactly as the
first time and changes nothing. The record holds no message id, number or status, and
is purged after ``sms_callback_replay_hours`` (72): the provider retries a callback for
minutes, not days, and a replay older than that still cannot move a delivery, since a
delivery leaves ``sent`` once and a callback applies only to a delivery in ``sent``.

Example::

    >>> receive(db, {"MessageSid": "SM1", "MessageStatus": "delivered"}, "q1w2…=")
    {"updated": True}
    >>> receive(db, {"MessageSid": "SM1", "MessageStatus": "delivered"}, "q1w2…=")   # replayed
    {"updated": True}     # the first answer; nothing changed
"""
from __future__ import annotations

import hashlib
import logging
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from services.referrals import delivery
from services.referrals.models import SmsCallbackSeen
from weintervene.config import settings
from weintervene.db import utcnow

log = logging.getLogger(__name__)


def signature_hash(signature: str) -> str:
    return hashlib.sha256(signature.encode()).hexdigest()


def receive(session, params: dict, signature: str) -> dict:
    """Apply a callback whose signature was checked, once; a repeat gets the first answer."""
    key = signature_hash(signature)
    seen = session.get(SmsCallbackSeen, key, populate_existing=True)
    if seen is not None:
        answer = {"updated": seen.updated}
        session.rollback()
        log.info("referrals: SMS status callback replayed (seen %s); nothing changed", seen.seen_at)
        return answer
    updated = delivery.apply_provider_status(session, params, commit=False)
    session.add(SmsCallbackSeen(signature_hash=key, updated=updated, seen_at=utcnow()))
    try:
        session.commit()
    except IntegrityError:
        # The same callback, twice at once: the other copy committed first; this one's
        # change is rolled back and it gets that copy's answer.
        session.rollback()
        seen = session.get(SmsCallbackSeen, key, populate_existing=True)
        answer = {"updated": seen.updated if seen is not None else False}
        session.rollback()
        return answer
    return {"updated": updated}


def purge_expired(session, older_than: timedelta | None = None) -> int:
    """Forget callbacks seen more than ``sms_callback_replay_hours`` ago; returns how many.

    Example: purge_expired(db) -> 31
    """
    if older_than is None:
        older_than = timedelta(hours=settings().sms_callback_replay_hours)
    n = session.execute(delete(SmsCallbackSeen).where(SmsCallbackSeen.seen_at < utcnow() - older_than)).rowcount
    session.commit()
    return max(n or 0, 0)
