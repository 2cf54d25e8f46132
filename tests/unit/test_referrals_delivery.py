"""Delivery bookkeeping, reminders, messages and deletion (providers and other services mocked)."""
from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from sqlalchemy import func, select

from services.referrals import delivery as delivery_module
from services.referrals.delivery import claim, deliver_due, queue_reminders, recover_interrupted
from services.referrals.messages import render_share, service_facts
from services.referrals.models import (
    Delivery, DeliveryAttempt, Disclosure, OutboxMessage, Referral, SavedList, Share, ShareRecipient, StatusChange,
)
from services.referrals.sms import SmsError
from tests.unit.referrals_fixtures import (  # noqa: F401  (fixtures)
    ADMIN_AUTH, DISTRICT, FATHER, MOTHER, NO_MOBILE, PROGRAM, PROGRAM_AUTH, PROGRAM_SERVICE, SCHOOL, SERVICE, SERVICES,
    STUDENT, TEACHER, TEACHER_AUTH, db, directory, identity, make_session, svc, uid,
)
from weintervene.db import utcnow
from weintervene.mail import MailRefused, MailUnavailable

CONSENT = {"given_by": "parent", "method": "written", "given_on": "2026-11-20"}


@pytest.fixture
def fast_retries(patch_settings):
    patch_settings(delivery_backoff_seconds=0, delivery_max_attempts=3, delivery_stale_seconds=0)


@pytest.fixture
def mailer():
    with mock.patch.object(delivery_module, "send_email", return_value="<m1@x>") as m:
        yield m


@pytest.fixture
def texter():
    with mock.patch.object(delivery_module, "send_sms", return_value="SM1") as m:
        yield m


def share(svc, channel="email", contacts=(MOTHER,), **extra):
    body = {"student_id": STUDENT, "contact_ids": list(contacts), "service_ids": [SERVICE], "channel": channel,
            "note": "Pregunte por Ana"}
    body.update(extra)
    return svc.share(TEACHER_AUTH, body)["items"][0]


def only_delivery(make_session) -> Delivery:
    with make_session() as s:
        d = s.scalars(select(Delivery)).one()
        d.attempt_log  # load
        return d


def test_email_sent_once_in_the_contacts_language(svc, make_session, identity, mailer, fast_retries):
    share(svc)
    assert deliver_due(make_session, identity) == 1
    assert deliver_due(make_session, identity) == 0  # nothing left: never twice
    mailer.assert_called_once()
    to, subject, text, html = mailer.call_args.args
    assert to == "rosa@example.org"
    assert subject == "Un servicio para su familia: Casa Azul Counseling"
    assert "Dirección: 12 Main St, Springfield, IL 62701" in text and "Horario: Mon-Fri 4pm-8pm" in text
    assert "Pregunte por Ana" in text and "Teléfono: 217-555-0100" in text
    d = only_delivery(make_session)
    assert (d.state, d.attempts, d.provider_message_id) == ("sent", 1, "<m1@x>")
    assert [(a.number, a.result) for a in d.attempt_log] == [(1, "sent")]


def test_temporary_failures_retry_with_backoff_then_succeed(svc, make_session, identity, texter, patch_settings):
    patch_settings(delivery_backoff_seconds=60, delivery_max_attempts=5)
    share(svc, channel="sms")
    texter.side_effect = [SmsError("503", permanent=False), "SM2"]
    before = utcnow()
    deliver_due(make_session, identity)
    d = only_delivery(make_session)
    assert d.state == "queued" and d.attempts == 1 and "503" in d.last_error
    assert d.next_attempt_at >= before + timedelta(seconds=59)
    assert deliver_due(make_session, identity) == 0  # not due yet
    with make_session() as s:
        s.get(Delivery, d.id).next_attempt_at = utcnow()
        s.commit()
    deliver_due(make_session, identity)
    d = only_delivery(make_session)
    assert (d.state, d.attempts, d.provider_message_id) == ("sent", 2, "SM2")
    assert [(a.number, a.result) for a in d.attempt_log] == [(1, "failed"), (2, "sent")]
    # The same idempotency key on every attempt: the provider can drop a duplicate.
    keys = {c.kwargs["idempotency_key"] for c in texter.call_args_list}
    assert keys == {d.id}
    assert texter.call_args.args[0] == "+15551230001"


def test_backoff_is_exponential_and_capped(patch_settings):
    patch_settings(delivery_backoff_seconds=10, delivery_backoff_max_seconds=50)
    assert [delivery_module.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 40, 50]


def test_permanent_failure_is_not_retried(svc, make_session, identity, mailer, fast_retries):
    share(svc)
    mailer.side_effect = MailRefused("The mail server refused the recipient: 550 no such user")
    deliver_due(make_session, identity)
    deliver_due(make_session, identity)
    d = only_delivery(make_session)
    assert d.state == "failed" and "550" in d.last_error and d.attempts == 1
    assert mailer.call_count == 1


def test_gives_up_after_max_attempts(svc, make_session, identity, mailer, fast_retries):
    share(svc)
    mailer.side_effect = MailUnavailable("SMTP unavailable")
    for _ in range(5):
        deliver_due(make_session, identity)
    d = only_delivery(make_session)
    assert d.state == "failed" and d.attempts == 3 and "gave up after 3 attempts" in d.last_error


def test_contact_no_longer_authorised_at_send_time_fails_without_sending(svc, make_session, identity, mailer):
    share(svc)
    identity.contacts[STUDENT].discard(MOTHER)
    deliver_due(make_session, identity)
    d = only_delivery(make_session)
    assert d.state == "failed" and "contact_forbidden" in d.last_error
    mailer.assert_not_called()


def test_identity_down_is_temporary(svc, make_session, identity, mailer, fast_retries):
    share(svc)
    identity.delivery_contacts.side_effect = RuntimeError("no reply")
    deliver_due(make_session, identity)
    d = only_delivery(make_session)
    assert d.state == "queued" and "identity unavailable" in d.last_error
    mailer.assert_not_called()


def test_only_one_worker_claims_a_delivery(svc, make_session):
    share(svc)
    d = only_delivery(make_session)
    with make_session() as a, make_session() as b:
        assert claim(a, d.id) is not None
        assert claim(b, d.id) is None
    d = only_delivery(make_session)
    assert d.state == "sending" and d.attempts == 1


def test_interrupted_sms_is_retried_with_same_key_but_email_is_not_resent(svc, make_session, fast_retries):
    share(svc, channel="sms")
    share(svc, channel="email")
    with make_session() as s:
        for d in s.scalars(select(Delivery)).all():
            claim(s, d.id)  # then "the process dies"
    with make_session() as s:
        assert recover_interrupted(s) == 2
        states = {d.channel: (d.state, d.last_error) for d in s.scalars(select(Delivery))}
    assert states["sms"][0] == "queued"
    assert states["email"][0] == "failed" and "never receives it twice" in states["email"][1]


def test_walk_in_address_erased_when_delivery_ends(svc, make_session, identity, mailer):
    svc.share(TEACHER_AUTH, {"service_ids": [SERVICE], "channel": "email", "recipient_email": "fam@example.org"})
    deliver_due(make_session, identity)
    assert mailer.call_args.args[0] == "fam@example.org"
    d = only_delivery(make_session)
    assert d.state == "sent" and d.transient_address is None


def test_reminder_to_sharer_after_days_without_update(svc, make_session, identity, mailer, patch_settings):
    patch_settings(referral_reminder_days=0)
    item = share(svc, channel="print", contacts=())
    with make_session() as s:
        assert queue_reminders(s) == 1
        assert queue_reminders(s) == 0  # once per period without update
    deliver_due(make_session, identity)
    to, subject, text, _ = mailer.call_args.args
    assert to == "rivera@lincoln.example" and subject == "Follow up: Casa Azul Counseling"
    assert '"requested"' in text
    svc.update_status(TEACHER_AUTH, item["id"], {"status": "in-progress"})
    with make_session() as s:
        assert queue_reminders(s) == 1  # still no news after the new period
    svc.update_status(TEACHER_AUTH, item["id"], {"status": "completed", "outcome": "connected"})
    with make_session() as s:
        assert queue_reminders(s) == 0  # closed: nothing to follow


def test_no_reminder_before_the_configured_days(svc, make_session, patch_settings):
    patch_settings(referral_reminder_days=14)
    share(svc, channel="print", contacts=())
    with make_session() as s:
        assert queue_reminders(s) == 0



def test_one_chunk_of_mixed_outcomes_records_each_delivery_exactly(svc, make_session, identity, mailer,
                                                                    patch_settings):
    # The chunk's outcomes are written together (one statement per table for the sent rows);
    # each row must still get its own state, provider id, error, next attempt and log.
    patch_settings(delivery_backoff_seconds=60, delivery_max_attempts=3)
    share(svc, contacts=(MOTHER, FATHER, NO_MOBILE))  # rosa@ sent, luis@ busy, ana@ refused
    for address in ("sent@family.example", "last-try@family.example", "busy@family.example"):
        svc.share(TEACHER_AUTH, {"service_ids": [SERVICE], "channel": "email", "recipient_email": address})
    with make_session() as s:
        last_try = s.scalars(select(Delivery).where(Delivery.transient_address == "last-try@family.example")).one()
        last_try.attempts = 2  # its coming attempt is the last one allowed
        s.commit()
        last_try_id = last_try.id

    def provider(to, *args, **kwargs):
        if to == "ana@example.org":
            raise MailRefused("The mail server refused the recipient: 550 no such user")
        if to in ("luis@example.org", "last-try@family.example", "busy@family.example"):
            raise MailUnavailable(f"421 busy for {to}")
        return f"<id-of-{to}>"

    mailer.side_effect = provider
    before = utcnow()
    assert deliver_due(make_session, identity) == 6
    with make_session() as s:
        rows = {d.recipient_id or d.id: d for d in s.scalars(select(Delivery))}
        logs = {key: [(a.number, a.result, a.reason) for a in d.attempt_log] for key, d in rows.items()}
    walk_in = {d.transient_address or d.id: d for d in rows.values() if d.recipient_kind == "walk_in"}
    sent = [d for d in rows.values() if d.state == "sent"]
    assert sorted(d.provider_message_id for d in sent) == ["<id-of-rosa@example.org>", "<id-of-sent@family.example>"]
    assert all(d.provider_message_id == "<id-of-rosa@example.org>" for d in sent if d.recipient_id == MOTHER)
    assert all(d.sent_at >= before and d.last_error is None and d.transient_address is None for d in sent)
    assert logs[MOTHER] == [(1, "sent", None)]

    father = rows[FATHER]
    assert (father.state, father.attempts, father.last_error) == ("queued", 1, "421 busy for luis@example.org")
    assert father.next_attempt_at >= before + timedelta(seconds=59) and father.sent_at is None
    assert logs[FATHER] == [(1, "failed", "421 busy for luis@example.org")]

    refused = rows[NO_MOBILE]
    assert (refused.state, refused.attempts) == ("failed", 1) and "550" in refused.last_error
    assert logs[NO_MOBILE] == [(1, "failed", refused.last_error)]

    busy = walk_in["busy@family.example"]  # will be retried: its typed address is still needed
    assert (busy.state, busy.attempts, busy.last_error) == ("queued", 1, "421 busy for busy@family.example")
    assert busy.transient_address == "busy@family.example"
    gave_up = rows[last_try_id]  # the last attempt: failed, and the typed address erased
    assert (gave_up.state, gave_up.attempts, gave_up.transient_address) == ("failed", 3, None)
    assert gave_up.last_error == "gave up after 3 attempts: 421 busy for last-try@family.example"
    assert logs[last_try_id] == [(3, "failed", "421 busy for last-try@family.example")]
    assert mailer.call_count == 6


def test_a_share_to_both_parents_is_rendered_once_per_language(svc, make_session, identity, mailer):
    share(svc, contacts=(MOTHER, FATHER))  # each in their own language: Spanish, English
    share(svc, contacts=(MOTHER, FATHER), language="es")  # both in Spanish
    with mock.patch.object(delivery_module, "render_share", wraps=delivery_module.render_share) as render:
        assert deliver_due(make_session, identity) == 4
    assert render.call_count == 3
    subjects = sorted((c.args[0], c.args[1].split(":")[0]) for c in mailer.call_args_list)
    assert subjects == [("luis@example.org", "A service for your family"),
                        ("luis@example.org", "Un servicio para su familia"),
                        ("rosa@example.org", "Un servicio para su familia"),
                        ("rosa@example.org", "Un servicio para su familia")]


def test_a_chunk_of_ten_emails_goes_out_on_two_smtp_connections_side_by_side(svc, make_session, identity, mailer):
    for _ in range(5):
        share(svc, contacts=(MOTHER, FATHER))
    assert deliver_due(make_session, identity) == 10
    by_connection = {}
    for call in mailer.call_args_list:
        by_connection.setdefault(id(call.kwargs["connection"]), []).append(call.args[0])
    assert sorted(len(sent) for sent in by_connection.values()) == [5, 5]
    assert sorted(sum(by_connection.values(), [])) == ["luis@example.org"] * 5 + ["rosa@example.org"] * 5
    with make_session() as s:
        assert {d.state for d in s.scalars(select(Delivery))} == {"sent"}

# -- messages ---------------------------------------------------------------------------

def test_english_and_spanish_messages_escape_html():
    facts = service_facts(SERVICES[SERVICE])
    en = render_share("en", [facts], note="<b>Ask</b> for Ana")
    es = render_share("es", [facts], note=None)
    assert en["subject"] == "A service for your family: Casa Azul Counseling"
    assert "&lt;b&gt;Ask&lt;/b&gt;" in en["html"] and "<b>Ask</b>" in en["text"]
    assert "Horario" in es["text"] and "Su escuela" in es["sms"]
    assert "Casa Azul Counseling, 12 Main St" in en["sms"]


# -- deletion ---------------------------------------------------------------------------

def count(s, model):
    return s.scalar(select(func.count()).select_from(model))


def request(scope, subject, tenants=(SCHOOL,)):
    return {"request_id": uid(), "scope": scope, "tenant_id": tenants[0], "subject_id": subject,
            "tenant_ids": list(tenants), "older_than": None}


def test_delete_student_removes_every_record_and_is_idempotent(svc, db, make_session, identity, mailer):
    share(svc)
    share(svc, service_ids=[PROGRAM_SERVICE], consent=CONSENT)
    deliver_due(make_session, identity)
    counts = svc.delete_for(request("student", STUDENT))
    db.commit()
    assert counts == {"shares": 2, "disclosures": 1}
    for model in (Share, Referral, StatusChange, Delivery, DeliveryAttempt, ShareRecipient, Disclosure):
        assert count(db, model) == 0, model
    assert count(db, OutboxMessage) == 2  # the de-identified events stay (analytics counts)
    assert svc.delete_for(request("student", STUDENT)) == {"shares": 0, "disclosures": 0}


def test_delete_contact_keeps_the_schools_referral(svc, db):
    item = share(svc, contacts=(MOTHER, FATHER))
    counts = svc.delete_for(request("contact", MOTHER))
    db.commit()
    assert counts == {"deliveries": 1, "share_recipients": 1}
    assert svc.get_referral(TEACHER_AUTH, item["id"])["contact_ids"] == [FATHER]


def test_delete_user_unlinks_shares_and_drops_lists(svc, db):
    item = share(svc)
    svc.create_list(TEACHER_AUTH, {"name": "Mine"})
    counts = svc.delete_for(request("user", TEACHER))
    db.commit()
    assert counts["saved_lists"] == 1 and counts["shares_unlinked"] == 1 and counts["status_changes_unlinked"] == 1
    seen = svc.get_referral(ADMIN_AUTH, item["id"])
    assert seen["sharer_id"] is None and seen["history"][0]["changed_by"] is None


def test_delete_tenant_removes_everything_of_the_tenant(svc, db):
    share(svc, service_ids=[PROGRAM_SERVICE], consent=CONSENT)
    svc.create_list(TEACHER_AUTH, {"name": "Mine"})
    counts = svc.delete_for(request("tenant", SCHOOL, (DISTRICT, SCHOOL)))
    db.commit()
    assert counts["shares"] == 1 and counts["saved_lists"] == 1 and counts["disclosures"] == 1
    assert counts["share_events"] == 1
    assert count(db, Share) == count(db, SavedList) == count(db, Disclosure) == count(db, OutboxMessage) == 0


def test_terminated_program_keeps_nothing_it_was_sent(svc, db):
    item = share(svc, service_ids=[PROGRAM_SERVICE], consent=CONSENT)
    svc.update_status(PROGRAM_AUTH, item["id"], {"status": "accepted", "note": "Diego starts Monday"})
    counts = svc.delete_for(request("tenant", PROGRAM, (PROGRAM,)))
    db.commit()
    assert counts["received_referrals"] == 1
    referral = db.get(Referral, item["id"])
    assert referral.disclosed is None and referral.receiving_tenant_id is None
    assert all(h.note is None for h in referral.history if h.changed_by_tenant_id == PROGRAM)


# -- provider status callbacks -------------------------------------------------------------

def test_signed_provider_callback_marks_delivered_or_failed(svc, make_session, identity, texter, patch_settings):
    patch_settings(sms_token="unit-sms-token")  # never the published default (refused)
    from services.referrals.exceptions import BadSignature
    from services.referrals.sms import signature, status_callback_url

    share(svc, channel="sms")
    texter.return_value = "SM42"
    deliver_due(make_session, identity)
    params = {"MessageSid": "SM42", "MessageStatus": "delivered", "AccountSid": "AC-demo"}
    with pytest.raises(BadSignature):
        svc.sms_status(params, "forged")
    with pytest.raises(BadSignature):
        svc.sms_status({**params, "MessageSid": "SM43"}, signature(status_callback_url(), params))
    assert svc.sms_status({**params, "MessageStatus": "sent"},
                          signature(status_callback_url(), {**params, "MessageStatus": "sent"})) == {"updated": False}
    assert svc.sms_status(params, signature(status_callback_url(), params)) == {"updated": True}
    assert only_delivery(make_session).state == "delivered"
    # A late "undelivered" cannot undo a final state, and an unknown id changes nothing.
    late = {**params, "MessageStatus": "undelivered"}
    assert svc.sms_status(late, signature(status_callback_url(), late)) == {"updated": False}
    unknown = {**params, "MessageSid": "SM-unknown"}
    assert svc.sms_status(unknown, signature(status_callback_url(), unknown)) == {"updated": False}


def test_provider_reports_undelivered(svc, make_session, identity, texter, patch_settings):
    patch_settings(sms_token="unit-sms-token")  # never the published default (refused)
    from services.referrals.sms import signature, status_callback_url

    share(svc, channel="sms")
    deliver_due(make_session, identity)
    params = {"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": "30003"}
    assert svc.sms_status(params, signature(status_callback_url(), params)) == {"updated": True}
    d = only_delivery(make_session)
    assert d.state == "failed" and "30003" in d.last_error


def test_retention_policies_expire_only_their_record_kind(svc, db, make_session, identity, mailer):
    closed, still_open, recent = share(svc), share(svc), share(svc)
    svc.update_status(TEACHER_AUTH, closed["id"], {"status": "completed", "outcome": "connected"})
    svc.update_status(TEACHER_AUTH, recent["id"], {"status": "cancelled"})
    deliver_due(make_session, identity)
    for item in (closed, still_open):
        db.get(Share, item["share_id"]).created_at = utcnow() - timedelta(days=400)
        for d in db.get(Share, item["share_id"]).deliveries:
            d.created_at = utcnow() - timedelta(days=400)
    db.commit()
    base = {**request("policy", SCHOOL), "older_than": utcnow() - timedelta(days=365)}
    assert svc.delete_for({**base, "record_kind": "login_records"}) == {}
    db.commit()
    assert count(db, Share) == 3
    assert svc.delete_for({**base, "record_kind": "delivery_logs"}) == {"deliveries": 2}
    db.commit()
    assert count(db, Share) == 3 and count(db, Delivery) == 1
    assert svc.delete_for({**base, "record_kind": "closed_referrals"}) == {"shares": 1}
    db.commit()
    assert db.get(Share, closed["share_id"]) is None
    assert db.get(Share, still_open["share_id"]) is not None and db.get(Share, recent["share_id"]) is not None
    assert svc.delete_for({**base, "record_kind": "closed_referrals", "tenant_ids": [uid()]}) == {"shares": 0}


def test_identity_silent_is_temporary_and_bounded(svc, make_session, identity, mailer, patch_settings):
    import eventlet

    patch_settings(rpc_timeout_seconds=0.2, delivery_backoff_seconds=0)
    share(svc)
    identity.delivery_contacts.side_effect = lambda *a: eventlet.sleep(5)
    deliver_due(make_session, identity)
    d = only_delivery(make_session)
    assert d.state == "queued" and "did not answer in time" in d.last_error
    mailer.assert_not_called()


def test_a_batch_asks_identity_once_per_sharer_and_student(svc, make_session, identity, mailer):
    for _ in range(3):
        share(svc, contacts=(MOTHER, FATHER))
    identity.delivery_contacts.reset_mock()
    assert deliver_due(make_session, identity) == 6
    assert identity.delivery_contacts.call_count == 1
    assert sorted(c.args[0] for c in mailer.call_args_list) == ["luis@example.org"] * 3 + ["rosa@example.org"] * 3


def test_a_refusal_in_a_batch_lands_only_on_its_own_delivery(svc, make_session, identity, mailer):
    share(svc, contacts=(MOTHER,))
    share(svc, contacts=(FATHER,))
    identity.contacts[STUDENT].discard(MOTHER)  # identity now refuses the batch call as a whole
    assert deliver_due(make_session, identity) == 2
    with make_session() as s:
        states = {d.recipient_id: (d.state, d.last_error) for d in s.scalars(select(Delivery))}
    assert states[FATHER] == ("sent", None)
    assert states[MOTHER][0] == "failed" and "contact_forbidden" in states[MOTHER][1]
    assert [c.args[0] for c in mailer.call_args_list] == ["luis@example.org"]


def test_a_delivery_deleted_while_its_chunk_is_sent_leaves_the_others_recorded(
        svc, db, make_session, identity, mailer):
    # A parent's contact is deleted (an opt-out, a termination) while the worker sends the
    # share to both parents: the other parent's delivery is still recorded as sent, once.
    share(svc, contacts=(MOTHER, FATHER))
    deleted = []

    def send_while_the_father_is_deleted(to, *args, **kwargs):
        if not deleted:
            deleted.append(svc.delete_for(request("contact", FATHER)))
            db.commit()
        return f"<{to}>"

    mailer.side_effect = send_while_the_father_is_deleted
    deliver_due(make_session, identity)
    assert deleted == [{"deliveries": 1, "share_recipients": 1}]
    with make_session() as s:
        rows = [(d.recipient_id, d.state, [(a.number, a.result) for a in d.attempt_log])
                for d in s.scalars(select(Delivery))]
        assert s.scalar(select(func.count()).select_from(DeliveryAttempt)) == 1
    assert rows == [(MOTHER, "sent", [(1, "sent")])]
    assert deliver_due(make_session, identity) == 0  # nothing left "sending" to be sent again


def test_a_referral_closing_with_an_outcome_tells_analytics_and_nothing_about_anyone(svc, make_session):
    from tests.unit.referrals_fixtures import TERM
    from weintervene.contracts import REFERRAL_CLOSED, ReferralClosed
    item = share(svc, channel="print", contacts=())
    svc.update_status(TEACHER_AUTH, item["id"], {"status": "in-progress"})
    svc.update_status(TEACHER_AUTH, item["id"], {"status": "completed", "outcome": "connected",
                                                 "note": "Mother called, Diego starts Monday"})
    with make_session() as s:
        [closed] = s.scalars(select(OutboxMessage).where(OutboxMessage.event_type == REFERRAL_CLOSED)).all()
        payload = closed.payload
    assert ReferralClosed().load(payload)  # exactly the contract, nothing beyond it
    assert (payload["tenant_id"], payload["service_id"], payload["outcome"]) == (SCHOOL, SERVICE, "connected")
    assert payload["taxonomy_term_ids"] == [TERM] and payload["days_open"] == 0
    text = str(payload)
    for secret in (STUDENT, TEACHER, item["id"], "Diego", "Mother"):
        assert secret not in text
