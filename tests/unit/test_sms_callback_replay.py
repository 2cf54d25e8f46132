"""The SMS provider's status callback: a replay changes nothing and is answered as the first
time; what is kept to recognise it names nobody and is purged after a bounded time."""
from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import func, select, update

from services.referrals import sms_callbacks
from services.referrals.models import Delivery, SmsCallbackSeen
from services.referrals.sms import signature, status_callback_url
from tests.unit.referrals_fixtures import db, directory, identity, make_session, svc  # noqa: F401 (fixtures)
from tests.unit.test_referrals_delivery import deliver_due, only_delivery, share, texter  # noqa: F401
from weintervene.db import utcnow


def signed(params):
    return signature(status_callback_url(), params)


def test_a_replayed_callback_changes_nothing_and_answers_as_the_first(svc, make_session, identity, texter,
                                                                      patch_settings):
    patch_settings(sms_token="unit-sms-token")
    share(svc, channel="sms")
    deliver_due(make_session, identity)
    failed = {"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": "30003", "To": "+12025550101"}
    first = svc.sms_status(failed, signed(failed))
    assert first == {"updated": True} and only_delivery(make_session).state == "failed"
    # The delivery is put back to "sent" (as a retry of the send would): the replayed
    # "undelivered" must not fail it again, and the answer is the first one.
    with make_session() as s:
        s.execute(update(Delivery).values(state="sent", last_error=None))
        s.commit()
    assert svc.sms_status(failed, signed(failed)) == first
    assert only_delivery(make_session).state == "sent"
    # Only the hash of the signature is kept: no message id, number or status.
    with make_session() as s:
        [seen] = s.scalars(select(SmsCallbackSeen)).all()
        assert seen.signature_hash == hashlib.sha256(signed(failed).encode()).hexdigest()
        assert "+12025550101" not in repr(vars(seen)) and "SM1" not in repr(vars(seen))


def test_an_unchanging_callback_is_answered_the_same_when_replayed(svc, make_session, identity, texter,
                                                                  patch_settings):
    patch_settings(sms_token="unit-sms-token")
    share(svc, channel="sms")
    deliver_due(make_session, identity)
    delivered = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    assert svc.sms_status(delivered, signed(delivered)) == {"updated": True}
    assert svc.sms_status(delivered, signed(delivered)) == {"updated": True}
    assert only_delivery(make_session).state == "delivered"


def test_callbacks_seen_are_purged_after_the_replay_window(db, patch_settings):
    patch_settings(sms_callback_replay_hours=72)
    db.add_all([SmsCallbackSeen(signature_hash="a" * 64, updated=True, seen_at=utcnow() - timedelta(hours=73)),
                SmsCallbackSeen(signature_hash="b" * 64, updated=False, seen_at=utcnow() - timedelta(hours=1))])
    db.commit()
    assert sms_callbacks.purge_expired(db) == 1
    assert db.scalar(select(func.count()).select_from(SmsCallbackSeen)) == 1
    assert db.scalar(select(SmsCallbackSeen.signature_hash)) == "b" * 64
