"""Sharing rules with identity and directory mocked (worker_factory, real SQLite session)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from services.referrals.exceptions import (
    ConsentRequired, ContactUnreachable, InvalidTransition, LinkNotFound, ListNotFound, NotYourReferral,
    ReferralNotFound,
)
from services.referrals.models import (
    Delivery, Disclosure, OutboxMessage, Referral, Share, ShareRecipient, StatusChange,
)
from services.referrals.sharing import token_hash
from tests.unit.referrals_fixtures import (  # noqa: F401  (fixtures)
    ADMIN_AUTH, ADULT_STUDENT, AUDITOR_AUTH, FATHER, MOTHER, NO_MOBILE, OPERATOR_AUTH, OTHER_ADMIN_AUTH,
    OTHER_TEACHER_AUTH, OTHER_TENANT_SERVICE, PROGRAM, PROGRAM_AUTH, PROGRAM_SERVICE, SCHOOL, SERVICE,
    SERVICE_2, SERVICE_3, STUDENT, TEACHER, TEACHER_AUTH, TERM, UNAUTHORISED, UNSERVED_STUDENT, db, directory,
    identity, make_session, svc, uid,
)
from weintervene.contracts import ShareRecorded
from weintervene.errors import BadRequest, Conflict, Forbidden, NotFound

CONSENT = {"given_by": "parent", "method": "written", "given_on": "2026-11-20"}


def count(db, model):
    return db.scalar(select(func.count()).select_from(model))


def nothing_written(db):
    return all(count(db, m) == 0 for m in (Share, Referral, Delivery, OutboxMessage, Disclosure))


def share_email(svc, **extra):
    body = {"student_id": STUDENT, "contact_ids": [MOTHER], "service_ids": [SERVICE], "channel": "email",
            "note": "Pregunte por Ana"}
    body.update(extra)
    return svc.share(TEACHER_AUTH, body)["items"]


# -- sharing with a student ------------------------------------------------------

def test_share_commits_referral_history_delivery_and_contract_event_together(svc, db):
    [item] = share_email(svc)
    assert item["status"] == "requested" and item["student_id"] == STUDENT and item["contact_ids"] == [MOTHER]
    assert item["language"] == "es"  # the mother's preferred language
    assert item["service"]["name"] == "Casa Azul Counseling" and item["service"]["hours"] == "Mon-Fri 4pm-8pm"
    referral = db.get(Referral, item["id"])
    assert [h.status for h in referral.history] == ["requested"]
    [delivery] = db.scalars(select(Delivery)).all()
    assert (delivery.state, delivery.recipient_kind, delivery.recipient_id, delivery.language) == (
        "queued", "contact", MOTHER, "es")
    assert delivery.transient_address is None
    [event] = db.scalars(select(OutboxMessage)).all()
    assert event.event_type == "share_recorded"
    assert set(event.payload) == set(ShareRecorded().fields)
    loaded = ShareRecorded().load(event.payload)  # RAISE on anything extra
    assert str(loaded["service_id"]) == SERVICE and [str(t) for t in loaded["taxonomy_term_ids"]] == [TERM]
    assert str(loaded["tenant_id"]) == SCHOOL and loaded["channel"] == "email"


def test_no_contact_address_or_name_is_stored(svc, db, make_session):
    share_email(svc, contact_ids=[MOTHER, FATHER])
    engine = db.get_bind()
    with engine.connect() as conn:
        dump = "\n".join(str(line) for line in conn.connection.iterdump())
    for secret in ("rosa@example.org", "+15551230001", "Rosa Diaz", "luis@example.org", "Diego"):
        assert secret not in dump


def test_each_contact_gets_a_delivery_in_their_own_language(svc, db):
    share_email(svc, contact_ids=[MOTHER, FATHER], note=None)
    langs = {d.recipient_id: d.language for d in db.scalars(select(Delivery))}
    assert langs == {MOTHER: "es", FATHER: "en"}


def test_explicit_language_wins(svc, db):
    [item] = share_email(svc, language="en")
    assert item["language"] == "en"
    assert db.scalar(select(Delivery.language)) == "en"


def test_adult_student_receives_directly(svc, db):
    [item] = svc.share(TEACHER_AUTH, {"student_id": ADULT_STUDENT, "contact_ids": [ADULT_STUDENT],
                                      "service_ids": [SERVICE], "channel": "sms"})["items"]
    assert db.scalar(select(Delivery.recipient_id)) == ADULT_STUDENT


def test_several_services_one_share_one_event_each(svc, db):
    items = svc.share(TEACHER_AUTH, {"student_id": STUDENT, "contact_ids": [FATHER],
                                     "service_ids": [SERVICE, SERVICE_2, SERVICE_3], "channel": "email"})["items"]
    assert len(items) == 3 and len({i["share_id"] for i in items}) == 1
    assert count(db, OutboxMessage) == 3
    assert count(db, Delivery) == 1  # one message listing the three


# -- walk-in families -------------------------------------------------------------

def test_walk_in_print_keeps_no_family_data(svc, db):
    items = svc.share(TEACHER_AUTH, {"service_ids": [SERVICE, SERVICE_2, SERVICE_3], "channel": "print"})["items"]
    assert len(items) == 3
    assert all(i["student_id"] is None and i["contact_ids"] == [] and i["follow_up_on"] is None for i in items)
    assert count(db, ShareRecipient) == 0 and count(db, Delivery) == 0
    assert count(db, OutboxMessage) == 3
    page = svc.print_share(TEACHER_AUTH, items[0]["id"], "html")["html"]
    assert "Northside Food Pantry" in page and "Eastside Food Pantry" in page


def test_walk_in_email_address_kept_only_until_sent(svc, db):
    svc.share(TEACHER_AUTH, {"service_ids": [SERVICE], "channel": "email", "recipient_email": "fam@example.org"})
    delivery = db.scalar(select(Delivery))
    assert delivery.recipient_kind == "walk_in" and delivery.transient_address == "fam@example.org"
    assert db.scalar(select(Share.student_id)) is None


@pytest.mark.parametrize("body, field", [
    ({"service_ids": [SERVICE], "channel": "email"}, "recipient_email"),
    ({"service_ids": [SERVICE], "channel": "sms", "recipient_mobile": "555-1234"}, "recipient_mobile"),
    ({"service_ids": [SERVICE], "channel": "print", "contact_ids": [MOTHER]}, "contact_ids"),
    ({"student_id": STUDENT, "service_ids": [SERVICE], "channel": "email"}, "contact_ids"),
    ({"student_id": STUDENT, "contact_ids": [MOTHER], "service_ids": [SERVICE], "channel": "email",
      "recipient_email": "x@example.org"}, "recipient_email"),
    ({"channel": "print"}, "service_ids"),
    ({"service_ids": [SERVICE], "channel": "fax"}, "channel"),
    ({"service_ids": [SERVICE], "channel": "print", "note": "x" * 1001}, "note"),
    ({"service_ids": [SERVICE], "channel": "print", "language": "fr"}, "language"),
    ({"service_ids": [SERVICE], "channel": "print", "student_id": "not-a-uuid"}, "student_id"),
])
def test_bad_share_requests_are_400_with_reason(svc, db, body, field):
    with pytest.raises(BadRequest) as err:
        svc.share(TEACHER_AUTH, body)
    assert field in err.value.details
    assert nothing_written(db)


# -- access rules -------------------------------------------------------------------

@pytest.mark.parametrize("auth", [OPERATOR_AUTH, AUDITOR_AUTH])
def test_operators_and_auditors_cannot_share(svc, db, auth):
    with pytest.raises(Forbidden):
        svc.share(auth, {"service_ids": [SERVICE], "channel": "print"})
    assert nothing_written(db)


def test_teacher_cannot_share_for_a_student_they_do_not_serve(svc, db):
    with pytest.raises(NotFound) as err:
        svc.share(TEACHER_AUTH, {"student_id": UNSERVED_STUDENT, "service_ids": [SERVICE], "channel": "print"})
    assert err.value.code == "student_not_found"
    with pytest.raises(NotFound):
        svc.share(OTHER_TEACHER_AUTH, {"student_id": STUDENT, "service_ids": [SERVICE], "channel": "print"})
    assert nothing_written(db)


def test_school_admin_may_share_for_any_student_of_the_school(svc):
    [item] = svc.share(ADMIN_AUTH, {"student_id": UNSERVED_STUDENT, "service_ids": [SERVICE], "channel": "print"})["items"]
    assert item["student_id"] == UNSERVED_STUDENT


def test_unknown_student_is_404(svc, db):
    with pytest.raises(NotFound):
        svc.share(TEACHER_AUTH, {"student_id": uid(), "service_ids": [SERVICE], "channel": "print"})
    assert nothing_written(db)


def test_fenced_student_is_refused_with_409(svc, db, identity):
    identity.fenced.add(STUDENT)
    with pytest.raises(Conflict) as err:
        share_email(svc)
    assert err.value.code == "subject_fenced"
    assert nothing_written(db)


@pytest.mark.parametrize("contact", [UNAUTHORISED, uid()])
def test_only_authorised_contacts_of_the_student(svc, db, contact):
    with pytest.raises(Forbidden) as err:
        share_email(svc, contact_ids=[MOTHER, contact])
    assert err.value.code == "contact_forbidden"
    assert nothing_written(db)


def test_contact_marked_unauthorised_by_identity_is_refused_even_if_returned(svc, db, identity):
    def unauthorised(a, s, ids, tenants=()):
        context = identity._share_context(a, s, ids, tenants)
        return {**context, "contacts": [{**context["contacts"][0], "authorised": False}]}
    identity.share_context.side_effect = unauthorised
    with pytest.raises(Forbidden):
        share_email(svc)
    assert nothing_written(db)


def test_sms_to_a_contact_without_mobile_is_400(svc, db):
    with pytest.raises(ContactUnreachable):
        svc.share(TEACHER_AUTH, {"student_id": STUDENT, "contact_ids": [NO_MOBILE], "service_ids": [SERVICE],
                                 "channel": "sms"})
    assert nothing_written(db)


def test_another_tenants_service_is_not_found(svc, db):
    with pytest.raises(NotFound):
        svc.share(TEACHER_AUTH, {"service_ids": [OTHER_TENANT_SERVICE], "channel": "print"})
    assert nothing_written(db)


# -- programs on the platform: consent and disclosure ------------------------------

def test_program_service_needs_consent_for_student_information(svc, db):
    with pytest.raises(ConsentRequired):
        share_email(svc, service_ids=[PROGRAM_SERVICE])
    assert nothing_written(db)


def test_program_referral_with_consent_is_disclosed_and_logged(svc, db):
    [item] = share_email(svc, service_ids=[PROGRAM_SERVICE], consent=CONSENT)
    assert item["receiving_tenant_id"] == PROGRAM
    [disclosure] = db.scalars(select(Disclosure)).all()
    assert (disclosure.student_id, disclosure.recipient_tenant_id, disclosure.basis) == (STUDENT, PROGRAM, "consent")
    assert disclosure.consent["given_by"] == "parent" and disclosure.disclosed_by == TEACHER
    log = svc.list_disclosures(ADMIN_AUTH, STUDENT)["items"]
    assert [d["recipient_name"] for d in log] == ["Bright Futures Inc."]
    with pytest.raises(Forbidden):
        svc.list_disclosures(TEACHER_AUTH, STUDENT)
    with pytest.raises(NotFound):  # another tenant's admin: as if unknown
        svc.list_disclosures(OTHER_ADMIN_AUTH, STUDENT)


def test_program_staff_see_incoming_referral_with_only_what_was_disclosed(svc):
    [item] = share_email(svc, service_ids=[PROGRAM_SERVICE], consent=CONSENT)
    incoming = svc.list_referrals(PROGRAM_AUTH, {"scope": "incoming"})
    assert incoming["total"] == 1
    seen = incoming["items"][0]
    assert seen["incoming"] is True and seen["student_id"] is None and seen["contact_ids"] == []
    assert seen["note"] is None and seen["disclosed"] == {"student_first_name": "Diego"}
    detail = svc.get_referral(PROGRAM_AUTH, item["id"])
    assert "deliveries" not in detail or not detail["deliveries"]
    # The loop closes: the program accepts, works, completes; the teacher sees every step.
    for status in ("received", "accepted", "in-progress"):
        svc.update_status(PROGRAM_AUTH, item["id"], {"status": status})
    svc.update_status(PROGRAM_AUTH, item["id"], {"status": "completed", "outcome": "connected"})
    mine = svc.get_referral(TEACHER_AUTH, item["id"])
    assert [h["status"] for h in mine["history"]] == ["requested", "received", "accepted", "in-progress", "completed"]
    assert mine["outcome"] == "connected"


def test_program_decisions_belong_to_the_program(svc):
    [item] = share_email(svc, service_ids=[PROGRAM_SERVICE], consent=CONSENT)
    with pytest.raises(NotYourReferral):
        svc.update_status(TEACHER_AUTH, item["id"], {"status": "accepted"})
    with pytest.raises(NotYourReferral):
        svc.update_status(PROGRAM_AUTH, item["id"], {"status": "cancelled"})


def test_program_staff_do_not_see_ordinary_referrals(svc):
    [item] = share_email(svc)
    with pytest.raises(ReferralNotFound):
        svc.get_referral(PROGRAM_AUTH, item["id"])
    assert svc.list_referrals(PROGRAM_AUTH, {"scope": "incoming"})["total"] == 0


# -- following up --------------------------------------------------------------------

def test_status_history_who_when_note(svc):
    [item] = share_email(svc)
    svc.update_status(TEACHER_AUTH, item["id"], {"status": "in-progress", "note": "Called the mother"})
    result = svc.update_status(TEACHER_AUTH, item["id"], {"status": "completed", "outcome": "connected"})
    assert result["status"] == "completed" and result["outcome"] == "connected"
    assert [(h["status"], h["changed_by"]) for h in result["history"]] == [
        ("requested", TEACHER), ("in-progress", TEACHER), ("completed", TEACHER)]
    assert result["history"][1]["note"] == "Called the mother"
    with pytest.raises(InvalidTransition):
        svc.update_status(TEACHER_AUTH, item["id"], {"status": "in-progress"})


@pytest.mark.parametrize("body", [
    {"status": "completed"},
    {"status": "in-progress", "outcome": "connected"},
    {"status": "done"},
    {"status": "failed", "outcome": "maybe"},
])
def test_bad_status_updates_are_400(svc, body):
    [item] = share_email(svc)
    with pytest.raises(BadRequest):
        svc.update_status(TEACHER_AUTH, item["id"], body)


def test_walk_in_cannot_be_followed(svc):
    [item] = svc.share(TEACHER_AUTH, {"service_ids": [SERVICE], "channel": "print"})["items"]
    with pytest.raises(InvalidTransition):
        svc.update_status(TEACHER_AUTH, item["id"], {"status": "completed", "outcome": "connected"})


def test_visibility_of_referrals(svc):
    [item] = share_email(svc)
    assert svc.get_referral(TEACHER_AUTH, item["id"])["id"] == item["id"]
    assert svc.get_referral(ADMIN_AUTH, item["id"])["id"] == item["id"]
    for other in (OTHER_TEACHER_AUTH, OTHER_ADMIN_AUTH):
        with pytest.raises(ReferralNotFound):
            svc.get_referral(other, item["id"])
        with pytest.raises(ReferralNotFound):
            svc.update_status(other, item["id"], {"status": "cancelled"})
        with pytest.raises(ReferralNotFound):
            svc.print_share(other, item["id"], "html")
    for auth in (OPERATOR_AUTH, AUDITOR_AUTH):
        with pytest.raises(Forbidden):
            svc.get_referral(auth, item["id"])
        with pytest.raises(Forbidden):
            svc.list_referrals(auth, {"scope": "school"})
    with pytest.raises(ReferralNotFound):
        svc.get_referral(TEACHER_AUTH, uid())


def test_lists_mine_school_and_filters(svc, patch_settings):
    patch_settings(referral_reminder_days=0)
    [a] = share_email(svc)
    [b] = svc.share(TEACHER_AUTH, {"student_id": STUDENT, "contact_ids": [FATHER], "service_ids": [SERVICE_2],
                                   "channel": "sms"})["items"]
    svc.update_status(TEACHER_AUTH, b["id"], {"status": "completed", "outcome": "connected"})
    assert svc.list_referrals(TEACHER_AUTH, {"scope": "mine"})["total"] == 2
    assert svc.list_referrals(OTHER_TEACHER_AUTH, {"scope": "mine"})["total"] == 0
    with pytest.raises(Forbidden):
        svc.list_referrals(TEACHER_AUTH, {"scope": "school"})
    school = svc.list_referrals(ADMIN_AUTH, {"scope": "school"})
    assert school["total"] == 2 and school["page"] == 1
    assert svc.list_referrals(OTHER_ADMIN_AUTH, {"scope": "school"})["total"] == 0
    assert [i["id"] for i in svc.list_referrals(TEACHER_AUTH, {"status": "completed"})["items"]] == [b["id"]]
    assert [i["id"] for i in svc.list_referrals(TEACHER_AUTH, {"due": "true"})["items"]] == [a["id"]]
    with pytest.raises(Forbidden):
        svc.list_referrals(TEACHER_AUTH, {"scope": "incoming"})
    with pytest.raises(BadRequest):
        svc.list_referrals(TEACHER_AUTH, {"scope": "everyone"})


# -- links and print -------------------------------------------------------------------

def test_link_is_unguessable_hashed_expiring_and_shows_no_student_data(svc, db, patch_settings):
    [item] = share_email(svc, contact_ids=[], channel="link", note="Diego struggles with reading")
    token = item["link_url"].rsplit("/", 1)[1]
    assert len(token) >= 43
    share = db.scalar(select(Share))
    assert share.link_token_hash == token_hash(token) and token not in (share.link_token_hash or "")
    page = svc.open_link(token)["html"]
    assert "Casa Azul Counseling" in page and "217-555-0100" in page
    assert "Diego" not in page and STUDENT not in page
    with pytest.raises(LinkNotFound):
        svc.open_link(token[:-1] + ("A" if token[-1] != "A" else "B"))
    share.link_expires_at = share.created_at - timedelta(seconds=1)
    db.commit()
    with pytest.raises(LinkNotFound):
        svc.open_link(token)
    assert svc.get_referral(TEACHER_AUTH, item["id"])["link_url"] is None  # shown once, at creation


def test_print_pdf_and_html_escape_the_note(svc):
    [item] = share_email(svc, channel="print", contact_ids=[], note="<script>alert(1)</script> Llame a Ana")
    html = svc.print_share(TEACHER_AUTH, item["id"], "html")["html"]
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    import base64
    pdf = base64.b64decode(svc.print_share(TEACHER_AUTH, item["id"], "pdf")["pdf_base64"])
    assert pdf.startswith(b"%PDF-")


# -- saved lists -----------------------------------------------------------------------------

def test_saved_lists_private_shared_and_shareable(svc):
    private = svc.create_list(TEACHER_AUTH, {"name": "Mine", "service_ids": [SERVICE]})
    shared = svc.create_list(TEACHER_AUTH, {"name": "Food", "shared": True, "service_ids": [SERVICE_2]})
    svc.add_list_item(TEACHER_AUTH, shared["id"], {"service_id": SERVICE_3})
    assert {l["name"] for l in svc.get_lists(TEACHER_AUTH)["items"]} == {"Mine", "Food"}
    assert {l["name"] for l in svc.get_lists(OTHER_TEACHER_AUTH)["items"]} == {"Food"}
    assert svc.get_lists(OTHER_ADMIN_AUTH)["items"] == []
    with pytest.raises(Forbidden):
        svc.add_list_item(OTHER_TEACHER_AUTH, shared["id"], {"service_id": SERVICE})
    with pytest.raises(ListNotFound):
        svc.add_list_item(OTHER_TEACHER_AUTH, private["id"], {"service_id": SERVICE})
    with pytest.raises(NotFound):
        svc.add_list_item(TEACHER_AUTH, private["id"], {"service_id": OTHER_TENANT_SERVICE})
    items = svc.share(OTHER_TEACHER_AUTH, {"list_id": shared["id"], "channel": "print"})["items"]
    assert [i["service"]["name"] for i in items] == ["Northside Food Pantry", "Eastside Food Pantry"]
    with pytest.raises(ListNotFound):
        svc.share(OTHER_TEACHER_AUTH, {"list_id": private["id"], "channel": "print"})
    with pytest.raises(Forbidden):
        svc.create_list(OPERATOR_AUTH, {"name": "x"})



def test_saved_lists_lose_a_service_or_go_away_by_their_owner_only(svc):
    food = svc.create_list(TEACHER_AUTH, {"name": "Food", "shared": True, "service_ids": [SERVICE, SERVICE_2]})
    with pytest.raises(Forbidden):
        svc.remove_list_item(OTHER_TEACHER_AUTH, food["id"], SERVICE)  # sees the shared list, does not own it
    with pytest.raises(Forbidden):
        svc.delete_list(OTHER_TEACHER_AUTH, food["id"])
    with pytest.raises(ListNotFound):
        svc.delete_list(OTHER_ADMIN_AUTH, food["id"])  # another school does not even see it
    left = svc.remove_list_item(TEACHER_AUTH, food["id"], SERVICE)
    assert [i["service_id"] for i in left["items"]] == [SERVICE_2]
    assert svc.remove_list_item(TEACHER_AUTH, food["id"], SERVICE)["items"] == left["items"]  # again: harmless
    svc.delete_list(TEACHER_AUTH, food["id"])
    assert svc.get_lists(TEACHER_AUTH)["items"] == [] and svc.get_lists(OTHER_TEACHER_AUTH)["items"] == []
    with pytest.raises(ListNotFound):
        svc.delete_list(TEACHER_AUTH, food["id"])
