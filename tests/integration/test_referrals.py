"""Referrals end to end through the gateway: real RabbitMQ, PostgreSQL, SMTP sink and SMS endpoint.

The students come from a real roster import into the real identity service; the
services are created through the real directory (``POST /api/v1/directory/services``
as an operator, a school admin and a program admin) and referrals reads them with
directory's ``get_service``.
"""
from __future__ import annotations

import contextlib
import time
import uuid
from datetime import date

import pytest
import requests
from kombu import Connection, Exchange, Producer
from sqlalchemy import text

from nameko.amqp.publish import Publisher
from nameko.runners import ServiceRunner
from services.referrals.service import ReferralsService
from tests.support.infra import SmsEndpoint
from tests.support.referrals_system import ANALYTICS_QUEUE, PUBLISH_TO_SCHOOLS, ReferralsSystem
from weintervene.contracts import DELETION_COMPLETED, ReferralClosed, ShareRecorded, queue_name

pytestmark = pytest.mark.integration

CONSENT = {"given_by": "parent", "method": "written", "given_on": "2026-11-20"}


@pytest.fixture(scope="module")
def rs(tmp_path_factory, smtp_sink, sms_endpoint):
    system = ReferralsSystem(tmp_path_factory.mktemp("referrals"), smtp_sink.port, sms_endpoint.base_url)
    yield system
    system.stop()


@pytest.fixture(scope="module")
def world(rs):
    return rs.make_world()


@pytest.fixture(scope="module")
def teacher(rs, world):
    return rs.login(world.emails["teacher"])


@pytest.fixture(scope="module")
def admin(rs, world):
    return rs.login(world.emails["admin"])


def wait_until(predicate, timeout=15.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def post_share(rs, session, **body):
    return session.post(rs.url("/api/v1/referrals"), json=body, timeout=30)


def delivery_of(rs, session, referral_id, state="sent"):
    def done():
        r = session.get(rs.url(f"/api/v1/referrals/{referral_id}"), timeout=30)
        assert r.status_code == 200, r.text
        deliveries = r.json()["deliveries"]
        return deliveries if deliveries and all(d["state"] == state for d in deliveries) else None
    return wait_until(done)


# -- journey 1: a teacher gets help to a family -------------------------------------------

def test_sms_in_spanish_to_the_mother_then_reminder_then_completed(rs, world, teacher, patch_settings, smtp_sink,
                                                                   sms_endpoint):
    patch_settings(referral_reminder_days=0)
    mobile = world.contacts[world.mother]["mobile"]
    r = post_share(rs, teacher, student_id=world.student, contact_ids=[world.mother],
                   service_ids=[world.services["counseling"]], channel="sms", note="Pregunte por Ana")
    assert r.status_code == 201, r.text
    [item] = r.json()["items"]
    assert item["status"] == "requested" and item["language"] == "es"
    [delivery] = delivery_of(rs, teacher, item["id"])
    sms = wait_until(lambda: [m for m in sms_endpoint.messages() if m["form"]["To"] == mobile])
    assert len(sms) == 1
    body = sms[0]["form"]["Body"]
    assert "Su escuela le compartió un servicio" in body
    assert "Casa Azul Counseling, 12 Main St, Springfield, IL 62701" in body
    assert "217-555-0100" in body and "Horario: lun–vie 16:00–20:00" in body and "Pregunte por Ana" in body
    assert sms[0]["idempotency_key"] == delivery["id"]
    assert sms[0]["authorization"].startswith("Basic ")
    assert sms[0]["path"] == f"/2010-04-01/Accounts/{rs.settings.sms_account}/Messages.json"
    # It shows "requested" in her list, and she is reminded to follow up.
    mine = teacher.get(rs.url("/api/v1/referrals?scope=mine&status=requested"), timeout=30).json()
    assert item["id"] in [i["id"] for i in mine["items"]]
    reminder = smtp_sink.wait_for(lambda m: m["To"] == world.emails["teacher"]
                                  and "Casa Azul Counseling" in m["Subject"], timeout=15)
    assert reminder["Subject"] == "Follow up: Casa Azul Counseling"
    r = teacher.post(rs.url(f"/api/v1/referrals/{item['id']}/status"),
                     json={"status": "completed", "outcome": "connected", "note": "Family enrolled"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed" and r.json()["outcome"] == "connected"
    assert [h["status"] for h in r.json()["history"]] == ["requested", "completed"]
    # The provider then reports the SMS delivered, through its signed status callback.
    callback = sms[0]["form"]["StatusCallback"]
    assert callback == rs.url("/api/v1/deliveries/sms-status")
    params = {"MessageSid": sms[0]["sid"], "MessageStatus": "delivered", "AccountSid": rs.settings.sms_account}
    forged = requests.post(callback, data=params, headers={"X-Twilio-Signature": "forged"}, timeout=30)
    assert forged.status_code == 403
    r = requests.post(callback, data=params, headers={"X-Twilio-Signature": provider_signature(callback, params,
                                                                                         rs.settings.sms_token)},
                      timeout=30)
    assert r.status_code == 204, r.text
    [delivery] = delivery_of(rs, teacher, item["id"], state="delivered")
    assert delivery["attempts"] == 1


def provider_signature(url, params, token):
    """Twilio's request signature, computed here independently of the service's code."""
    import base64
    import hashlib
    import hmac

    payload = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


def test_email_in_the_contacts_language_with_text_and_html(rs, world, teacher, smtp_sink):
    r = post_share(rs, teacher, student_id=world.student, contact_ids=[world.mother, world.father],
                   service_ids=[world.services["counseling"]], channel="email", note="<b>Llame</b> a Ana")
    assert r.status_code == 201, r.text
    rosa = world.contacts[world.mother]["email"]
    luis = world.contacts[world.father]["email"]
    es = smtp_sink.wait_for(lambda m: m["X-Envelope-To"] == rosa)
    en = smtp_sink.wait_for(lambda m: m["X-Envelope-To"] == luis)
    assert es["Subject"] == "Un servicio para su familia: Casa Azul Counseling"
    assert en["Subject"] == "A service for your family: Casa Azul Counseling"
    text_part = es.get_body(("plain",)).get_content()
    html_part = es.get_body(("html",)).get_content()
    assert "Dirección: 12 Main St" in text_part and "Horario: lun–vie 16:00–20:00" in text_part
    assert "Quién puede usarlo: Families with children 5-18" in text_part
    assert "&lt;b&gt;Llame&lt;/b&gt;" in html_part and "<b>Llame</b>" not in html_part
    assert "Address: 12 Main St" in en.get_body(("plain",)).get_content()
    assert len([m for m in smtp_sink.messages() if m["X-Envelope-To"] == rosa]) == 1


def test_a_chunk_of_emails_travels_on_one_smtp_connection(rs, world, teacher, smtp_sink):
    r = post_share(rs, teacher, student_id=world.student, contact_ids=[world.mother, world.father],
                   service_ids=[world.services["pantry2"]], channel="email", note="one connection")
    assert r.status_code == 201, r.text
    # Both deliveries were committed with the share, so one delivery chunk claims them.
    rosa, luis = world.contacts[world.mother]["email"], world.contacts[world.father]["email"]
    sent = [smtp_sink.wait_for(lambda m, to=to: m["X-Envelope-To"] == to and "Eastside" in m["Subject"])
            for to in (rosa, luis)]
    assert sent[0]["X-Sink-Connection"] == sent[1]["X-Sink-Connection"]
    assert sent[0]["Message-ID"] != sent[1]["Message-ID"]


def test_provider_outage_then_recovery_delivers_exactly_once(rs, world, teacher, patch_settings):
    flaky = SmsEndpoint(fail_first=2)
    try:
        patch_settings(sms_base_url=flaky.base_url, delivery_backoff_seconds=0.2)
        r = post_share(rs, teacher, student_id=world.adult_student, contact_ids=[world.adult_student],
                       service_ids=[world.services["pantry1"]], channel="sms")
        assert r.status_code == 201, r.text
        [item] = r.json()["items"]
        [delivery] = delivery_of(rs, teacher, item["id"])
        assert delivery["attempts"] == 3
        assert [a["result"] for a in delivery["attempt_log"]] == ["failed", "failed", "sent"]
        assert "503" in delivery["attempt_log"][0]["reason"]
        time.sleep(1.5)  # a few more relay/delivery ticks: nothing more may be sent
        messages = flaky.messages()
        assert len(messages) == 1
        assert messages[0]["form"]["To"] == world.contacts[world.adult_student]["mobile"] and messages[0]["idempotency_key"] == delivery["id"]
    finally:
        flaky.stop()


# -- journey 2: a walk-in family ------------------------------------------------------------

def test_walk_in_print_of_three_pantries_keeps_nothing_about_the_family(rs, world, rs_db):
    counsellor = rs.login(world.emails["teacher2"])
    pantries = [world.services[k] for k in ("pantry1", "pantry2", "pantry3")]
    r = post_share(rs, counsellor, service_ids=pantries, channel="print")
    assert r.status_code == 201, r.text
    items = r.json()["items"]
    assert len(items) == 3 and all(i["student_id"] is None and i["contact_ids"] == [] for i in items)
    page = counsellor.get(rs.url(f"/api/v1/referrals/{items[0]['id']}/print"), timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    for name in ("Northside Food Pantry", "Eastside Food Pantry", "Westside Food Pantry"):
        assert name in page.text
    pdf = counsellor.get(rs.url(f"/api/v1/referrals/{items[0]['id']}/print.pdf"), timeout=30)
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    share_id = items[0]["share_id"]
    with rs_db.connect() as conn:
        assert conn.scalar(text("SELECT student_id FROM share WHERE id = :i"), {"i": share_id}) is None
        assert conn.scalar(text("SELECT count(*) FROM share_recipient WHERE share_id = :i"), {"i": share_id}) == 0
        assert conn.scalar(text("SELECT count(*) FROM delivery WHERE share_id = :i"), {"i": share_id}) == 0


def test_walk_in_email_to_a_typed_address_is_sent_then_forgotten(rs, world, teacher, smtp_sink, rs_db):
    address = f"walkin-{uuid.uuid4().hex[:6]}@family.example"
    r = post_share(rs, teacher, service_ids=[world.services["pantry2"]], channel="email", recipient_email=address,
                   language="es")
    assert r.status_code == 201, r.text
    message = smtp_sink.wait_for(lambda m: m["X-Envelope-To"] == address)
    assert "Eastside Food Pantry" in message["Subject"]
    share_id = r.json()["items"][0]["share_id"]
    wait_until(lambda: _scalar(rs_db, "SELECT state FROM delivery WHERE share_id = :i", share_id) == "sent")
    with rs_db.connect() as conn:
        dump = " ".join(str(row) for row in conn.execute(text("SELECT * FROM delivery WHERE share_id = :i"),
                                                        {"i": share_id}))
    assert address not in dump


def test_shared_link_shows_services_only_and_unknown_links_are_404(rs, world, teacher):
    r = post_share(rs, teacher, student_id=world.student, service_ids=[world.services["counseling"]],
                   channel="link", note="Diego needs help after school")
    assert r.status_code == 201, r.text
    link = r.json()["items"][0]["link_url"]
    page = requests.get(link, timeout=30)  # no sign-in
    assert page.status_code == 200 and "Casa Azul Counseling" in page.text
    assert "Diego" not in page.text and world.student not in page.text
    assert page.headers["Cache-Control"] == "no-store"
    missing = requests.get(rs.url("/r/" + "x" * 43), headers={"Accept-Language": "es-MX,es;q=0.9"}, timeout=30)
    assert missing.status_code == 404 and "text/html" in missing.headers["Content-Type"]
    assert '<html lang="es"' in missing.text and "Este enlace ha vencido" in missing.text
    assert requests.get(rs.url("/static/family.css"), timeout=30).status_code == 200



def test_an_expired_link_answers_in_its_language_and_names_the_school(rs, world, teacher, rs_db):
    r = post_share(rs, teacher, student_id=world.student, service_ids=[world.services["counseling"]],
                   channel="link", language="ar", note="expires-" + uuid.uuid4().hex)
    assert r.status_code == 201, r.text
    link = r.json()["items"][0]["link_url"]
    page = requests.get(link, timeout=30)
    assert page.status_code == 200 and '<html lang="ar" dir="rtl">' in page.text and "ساعات العمل" in page.text
    with rs_db.begin() as conn:
        conn.execute(text("UPDATE share SET link_expires_at = created_at WHERE link_token_hash IS NOT NULL "
                          "AND language = 'ar'"))
    gone = requests.get(link, headers={"Accept-Language": "es"}, timeout=30)  # the link's language wins
    assert gone.status_code == 404 and '<html lang="ar" dir="rtl">' in gone.text
    assert "انتهت صلاحية هذا الرابط" in gone.text and "Lincoln Middle" in gone.text  # identity's real tenant name
    assert "Diego" not in gone.text and world.student not in gone.text

# -- access rules ---------------------------------------------------------------------------

def test_access_rules_through_the_gateway(rs, world, teacher):
    counseling = world.services["counseling"]
    share = dict(student_id=world.student, contact_ids=[world.mother], service_ids=[counseling], channel="email")
    # A teacher who does not serve the student.
    r = post_share(rs, rs.login(world.emails["teacher2"]), **share)
    assert r.status_code == 404 and r.json()["error"]["code"] == "student_not_found"
    r = post_share(rs, teacher, **{**share, "student_id": world.unserved_student})
    assert r.status_code == 404
    # Another tenant's staff: identity does not even confirm the student exists.
    r = post_share(rs, rs.login(world.emails["other_teacher"]), **share)
    assert r.status_code == 404 and r.json()["error"]["code"] == "student_not_found"
    # A contact who is not authorised, or not the student's.
    for contact in (world.unauthorised_contact, str(uuid.uuid4())):
        r = post_share(rs, teacher, **{**share, "contact_ids": [contact]})
        assert r.status_code == 403 and r.json()["error"]["code"] == "contact_forbidden"
    # Another school's own service.
    r = post_share(rs, teacher, service_ids=[world.services["other_school_club"]], channel="print")
    assert r.status_code == 404
    # Operators and auditors see no student data at all.
    for role in ("operator", "auditor"):
        session = rs.login(world.emails[role])
        assert post_share(rs, session, **share).status_code == 403
        assert session.get(rs.url("/api/v1/referrals"), timeout=30).status_code == 403
    # Bad input is a 400 with the field, never a 500.
    r = post_share(rs, teacher, **{**share, "channel": "pigeon", "extra": 1})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input"
    assert {"channel", "extra"} <= set(r.json()["error"]["details"])
    # Someone else's referral is simply not found; a malformed id is a 400.
    [item] = post_share(rs, teacher, **share).json()["items"]
    for other in ("teacher2", "other_admin", "other_teacher"):
        r = rs.login(world.emails[other]).get(rs.url(f"/api/v1/referrals/{item['id']}"), timeout=30)
        assert r.status_code == 404, other
    assert teacher.get(rs.url("/api/v1/referrals/not-a-uuid"), timeout=30).status_code == 400
    # The school admin sees the school's referrals; the other school's admin sees none of them.
    admin = rs.login(world.emails["admin"])
    assert admin.get(rs.url(f"/api/v1/referrals/{item['id']}"), timeout=30).status_code == 200
    school = admin.get(rs.url("/api/v1/referrals?scope=school"), timeout=30).json()
    assert item["id"] in [i["id"] for i in school["items"]]
    other_school = rs.login(world.emails["other_admin"]).get(rs.url("/api/v1/referrals?scope=school"), timeout=30)
    assert item["id"] not in [i["id"] for i in other_school.json()["items"]]
    assert teacher.get(rs.url("/api/v1/referrals?scope=school"), timeout=30).status_code == 403


def test_fenced_student_is_refused_with_409(rs, world, teacher):
    with rs.rpc() as rpc:  # as retention does before dispatching a deletion
        rpc.identity.fence_subject(str(uuid.uuid4()), "student", world.school, world.spare_student)
    r = post_share(rs, teacher, student_id=world.spare_student, service_ids=[world.services["counseling"]],
                   channel="print")
    assert r.status_code == 409 and r.json()["error"]["code"] == "subject_fenced"


# -- journey 7: a provider program closes the loop --------------------------------------------

def test_program_receives_accepts_and_completes_with_consent_and_disclosure(rs, world, teacher, admin):
    mentoring = world.services["mentoring"]
    share = dict(student_id=world.student, contact_ids=[world.father], service_ids=[mentoring], channel="email")
    # Until the program publishes it, its service is the program's own: a school cannot share it.
    r = post_share(rs, teacher, **share, consent=CONSENT)
    assert r.status_code == 404 and r.json()["error"]["code"] == "service_not_found"
    program_admin = rs.login(world.emails["program_admin"])
    r = program_admin.patch(rs.url(f"/api/v1/directory/services/{mentoring}"), json=PUBLISH_TO_SCHOOLS, timeout=30)
    assert r.status_code == 200, r.text
    r = post_share(rs, teacher, **share)
    assert r.status_code == 400 and r.json()["error"]["code"] == "consent_required"
    r = post_share(rs, teacher, **share, consent=CONSENT)
    assert r.status_code == 201, r.text
    [item] = r.json()["items"]
    program = rs.login(world.emails["program_staff"])
    incoming = program.get(rs.url("/api/v1/referrals?scope=incoming"), timeout=30).json()
    [seen] = [i for i in incoming["items"] if i["id"] == item["id"]]
    assert seen["student_id"] is None and seen["contact_ids"] == [] and seen["note"] is None
    assert seen["disclosed"] == {"student_first_name": "Diego"}
    for body in ({"status": "accepted"}, {"status": "in-progress"},
                 {"status": "completed", "outcome": "connected", "note": "Matched with a mentor"}):
        r = program.post(rs.url(f"/api/v1/referrals/{item['id']}/status"), json=body, timeout=30)
        assert r.status_code == 200, r.text
    mine = teacher.get(rs.url(f"/api/v1/referrals/{item['id']}"), timeout=30).json()
    assert [h["status"] for h in mine["history"]] == ["requested", "accepted", "in-progress", "completed"]
    log = admin.get(rs.url(f"/api/v1/students/{world.student}/disclosures"), timeout=30)
    assert log.status_code == 200, log.text
    [entry] = [d for d in log.json()["items"] if d["referral_id"] == item["id"]]
    assert entry["basis"] == "consent" and entry["recipient_tenant_id"] == world.program
    assert entry["consent"]["given_by"] == "parent" and entry["information"] == ["student_first_name"]
    assert teacher.get(rs.url(f"/api/v1/students/{world.student}/disclosures"), timeout=30).status_code == 403
    other = rs.login(world.emails["other_admin"]).get(rs.url(f"/api/v1/students/{world.student}/disclosures"),
                                                       timeout=30)
    assert other.status_code == 404  # another school's admin: no such student for them


# -- saved lists -----------------------------------------------------------------------------

def test_saved_list_shared_within_the_school_and_shared_with_a_family(rs, world, teacher):
    r = teacher.post(rs.url("/api/v1/lists"), json={"name": "Food", "shared": True,
                                                    "service_ids": [world.services["pantry1"]]}, timeout=30)
    assert r.status_code == 201, r.text
    list_id = r.json()["id"]
    r = teacher.post(rs.url(f"/api/v1/lists/{list_id}/items"), json={"service_id": world.services["pantry2"]},
                     timeout=30)
    assert r.status_code == 201 and len(r.json()["items"]) == 2
    colleague = rs.login(world.emails["teacher2"])
    assert list_id in [l["id"] for l in colleague.get(rs.url("/api/v1/lists"), timeout=30).json()["items"]]
    other = rs.login(world.emails["other_teacher"])
    assert list_id not in [l["id"] for l in other.get(rs.url("/api/v1/lists"), timeout=30).json()["items"]]
    r = post_share(rs, colleague, list_id=list_id, channel="print")
    assert r.status_code == 201 and len(r.json()["items"]) == 2
    assert post_share(rs, other, list_id=list_id, channel="print").status_code == 404


# -- events ---------------------------------------------------------------------------------

@pytest.fixture
def rs_db(rs):
    return rs.referrals_engine()


def _scalar(engine, sql, value):
    with engine.connect() as conn:
        return conn.scalar(text(sql), {"i": value})


def outbox_relayed(engine):
    return _scalar(engine, "SELECT count(*) FROM outbox_message WHERE published_at IS NULL AND attempts >= :i", 0) == 0


def test_share_events_carry_exactly_the_contract_and_reach_analytics_once(rs, world, teacher, rs_db):
    wait_until(lambda: outbox_relayed(rs_db))  # earlier tests' events are out of the way
    tap = rs.tap("referrals")
    rs.drain(ANALYTICS_QUEUE)
    r = post_share(rs, teacher, student_id=world.student, contact_ids=[world.father],
                   service_ids=[world.services["counseling"], world.services["pantry3"]], channel="email",
                   note="Diego Diaz, grade 7, rosa@family.example")
    assert r.status_code == 201
    events = wait_until(lambda: [e for e in rs.drain(tap) if e.get("service_id")] or None)
    time.sleep(1.0)
    events += [e for e in rs.drain(tap) if e.get("service_id")]
    assert len(events) == 2
    for event in events:
        assert set(event) == set(ShareRecorded().fields)
        loaded = ShareRecorded().load(event)  # unknown=RAISE
        assert str(loaded["tenant_id"]) == world.school and str(loaded["district_id"]) == world.district
        assert [str(t) for t in loaded["taxonomy_term_ids"]] == [world.term]
        assert loaded["channel"] == "email" and loaded["occurred_on"] == date.today()
        flat = str(event)
        for secret in (world.student, world.father, world.users["teacher"], "Diego", "rosa@"):
            assert secret not in flat
    analytics = rs.drain(ANALYTICS_QUEUE)
    assert sorted(e["event_id"] for e in analytics) == sorted(e["event_id"] for e in events)


def test_a_closed_referral_reaches_analytics_as_exactly_its_contract(rs, world, teacher, rs_db):
    wait_until(lambda: outbox_relayed(rs_db))
    r = post_share(rs, teacher, student_id=world.student, contact_ids=[world.father],
                   service_ids=[world.services["counseling"]], channel="print")
    assert r.status_code == 201, r.text
    item = r.json()["items"][0]
    wait_until(lambda: outbox_relayed(rs_db))
    tap = rs.tap("referrals")
    r = teacher.post(rs.url(f"/api/v1/referrals/{item['id']}/status"),
                     json={"status": "completed", "outcome": "could_not_contact", "note": "Diego's father unreachable"},
                     timeout=30)
    assert r.status_code == 200, r.text
    events = wait_until(lambda: [e for e in rs.drain(tap) if "outcome" in e] or None)
    [event] = events
    assert set(event) == set(ReferralClosed().fields)
    loaded = ReferralClosed().load(event)  # unknown=RAISE
    assert (str(loaded["tenant_id"]), str(loaded["service_id"])) == (world.school, world.services["counseling"])
    assert loaded["outcome"] == "could_not_contact" and loaded["days_open"] == 0
    assert [str(t) for t in loaded["taxonomy_term_ids"]] == [world.term]
    flat = str(event)
    for secret in (world.student, world.father, world.users["teacher"], item["id"], "Diego", "father"):
        assert secret not in flat


def test_broker_unreachable_delays_but_loses_nothing_and_sends_once(rs, world, teacher, rs_db):
    publisher = next(d for d in rs.container("referrals").dependencies if type(d).__name__ == "ReliablePublisher")
    healthy = publisher.amqp_uri
    rs.drain(ANALYTICS_QUEUE)
    wait_until(lambda: outbox_relayed(rs_db))
    # The relay now talks to a port where no broker listens: a real connection failure.
    publisher.amqp_uri = "amqp://guest:guest@127.0.0.1:1/"
    publisher.close()
    try:
        share_ids, services = [], [world.services[k] for k in ("pantry1", "pantry2", "pantry3")]
        for service in services:  # three shares of two services: six events wait in the outbox
            r = post_share(rs, teacher, service_ids=[service, world.services["counseling"]], channel="print")
            assert r.status_code == 201, r.text  # the share commits; its events wait in the outbox
            share_ids.append(r.json()["items"][0]["share_id"])
        wait_until(lambda: _scalar(rs_db, "SELECT count(*) FROM outbox_message WHERE published_at IS NULL "
                                          "AND attempts >= :i", 2) == 6)
        assert rs.drain(ANALYTICS_QUEUE) == []
    finally:
        publisher.amqp_uri = healthy
        publisher.close()
    events = []
    wait_until(lambda: events.extend(rs.drain(ANALYTICS_QUEUE)) or len(events) >= 6, timeout=20)
    time.sleep(1.5)  # a few more relay runs: nothing may be sent twice
    events += rs.drain(ANALYTICS_QUEUE)
    assert len(events) == 6 and len({e["event_id"] for e in events}) == 6
    assert sorted(e["service_id"] for e in events) == sorted(services + [world.services["counseling"]] * 3)
    assert outbox_relayed(rs_db) and share_ids


# -- retries with an Idempotency-Key --------------------------------------------------------

def share_with_key(rs, session, key, body):
    return session.post(rs.url("/api/v1/referrals"), json=body, headers={"Idempotency-Key": key}, timeout=30)


def retry_body(world, tag):
    """An email share to the father whose note marks its messages (``tag``)."""
    return {"student_id": world.student, "contact_ids": [world.father], "service_ids": [world.services["pantry1"]],
            "channel": "email", "note": f"Ask for Ana ({tag})"}


def family_emails(smtp_sink, world, tag):
    luis = world.contacts[world.father]["email"]
    return [m for m in smtp_sink.messages()
            if m["X-Envelope-To"] == luis and f"({tag})" in m.get_body(("plain",)).get_content()]


def reached_the_family_once(rs, world, teacher, smtp_sink, rs_db, tap, referral_id, tag):
    """One delivery, sent (final: no later message can come of it), one email, one event."""
    [delivery] = delivery_of(rs, teacher, referral_id)
    assert delivery["attempts"] == 1
    assert len(family_emails(smtp_sink, world, tag)) == 1
    wait_until(lambda: outbox_relayed(rs_db))  # every event of the share is out (confirmed, so in the tap)
    events = [e for e in rs.drain(tap) if e.get("service_id") == world.services["pantry1"]]
    assert len(events) == 1, events
    return _scalar(rs_db, "SELECT count(*) FROM share WHERE note = :i", f"Ask for Ana ({tag})")


def quiet_outbox(rs, rs_db):
    wait_until(lambda: outbox_relayed(rs_db))  # earlier tests' events are out of the way
    return rs.tap("referrals")


def test_a_share_sent_twice_with_one_idempotency_key_reaches_the_family_once(rs, world, teacher, smtp_sink, rs_db):
    tap = quiet_outbox(rs, rs_db)
    key, tag = str(uuid.uuid4()), uuid.uuid4().hex[:8]
    first = share_with_key(rs, teacher, key, retry_body(world, tag))
    again = share_with_key(rs, teacher, key, retry_body(world, tag))
    assert first.status_code == 201 and again.status_code == 201, (first.text, again.text)
    assert [i["id"] for i in again.json()["items"]] == [i["id"] for i in first.json()["items"]]
    assert again.headers.get("Idempotent-Replayed") == "true" and "Idempotent-Replayed" not in first.headers
    assert reached_the_family_once(rs, world, teacher, smtp_sink, rs_db, tap, first.json()["items"][0]["id"], tag) == 1
    # The same key with another body is refused; without a key the same body is a new share.
    other = share_with_key(rs, teacher, key, {**retry_body(world, tag), "note": "another note"})
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    bad = share_with_key(rs, teacher, "", retry_body(world, tag))
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_header"
    assert _scalar(rs_db, "SELECT count(*) FROM share WHERE note = :i", f"Ask for Ana ({tag})") == 1


def on_postgresql(rs):
    if rs.databases is None:
        pytest.skip("PostgreSQL locks; on SQLite the service would wait on the test's own lock in this process")


def waiting_on_a_lock(rs_db) -> int:
    return _scalar(rs_db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                          "AND wait_event_type = 'Lock' AND backend_type = :i", "client backend")


def test_a_retry_after_a_504_gets_the_share_that_went_through(rs, world, teacher, smtp_sink, rs_db, patch_settings):
    """The 504 of journey 1's worry: referrals is slow (a lock holds its INSERT), the gateway
    gives up and answers 504, the share commits afterwards; the browser retries with its key."""
    on_postgresql(rs)
    tap = quiet_outbox(rs, rs_db)
    key, tag = str(uuid.uuid4()), uuid.uuid4().hex[:8]
    patch_settings(gateway_request_timeout_seconds=1)
    with rs_db.connect() as blocker:
        blocker.execute(text("LOCK TABLE share IN EXCLUSIVE MODE"))  # reads go on, the INSERT waits
        timed_out = share_with_key(rs, teacher, key, retry_body(world, tag))
        assert timed_out.status_code == 504 and timed_out.json()["error"]["code"] == "service_timeout"
        wait_until(lambda: waiting_on_a_lock(rs_db) >= 1)
        blocker.rollback()
    wait_until(lambda: _scalar(rs_db, "SELECT count(*) FROM share WHERE note = :i", f"Ask for Ana ({tag})"))
    retried = share_with_key(rs, teacher, key, retry_body(world, tag))
    assert retried.status_code == 201, retried.text
    assert retried.headers.get("Idempotent-Replayed") == "true"
    [item] = retried.json()["items"]
    assert reached_the_family_once(rs, world, teacher, smtp_sink, rs_db, tap, item["id"], tag) == 1


@contextlib.contextmanager
def a_second_referrals_instance():
    """Another referrals instance on the same queue and database, as deployed (two replicas):
    the broker hands consecutive requests to the two in turn."""
    runner = ServiceRunner()
    runner.add_service(ReferralsService)
    runner.start()
    try:
        yield
    finally:
        runner.stop()


def test_two_requests_with_one_key_at_once_make_one_share_on_postgresql(rs, world, teacher, smtp_sink, rs_db):
    """A double click reaching both referrals instances: both requests find no key, both
    insert their share and key in one statement and wait (a lock holds the key table);
    then one INSERT waits for the other's transaction and fails on its committed key;
    that request rolls back, writes alone, finds the key (ON CONFLICT DO NOTHING) and
    answers with the other's share. (Twins reaching one instance: test_referrals_batching.)"""
    on_postgresql(rs)
    import eventlet

    tap = quiet_outbox(rs, rs_db)
    key, tag = str(uuid.uuid4()), uuid.uuid4().hex[:8]
    with a_second_referrals_instance(), rs_db.connect() as blocker:
        blocker.execute(text("LOCK TABLE idempotency_key IN EXCLUSIVE MODE"))
        clicks = [eventlet.spawn(share_with_key, rs, teacher, key, retry_body(world, tag)) for _ in range(2)]
        try:
            wait_until(lambda: waiting_on_a_lock(rs_db) >= 2)  # both at their INSERT, one per instance
        finally:
            blocker.rollback()
        answers = [click.wait() for click in clicks]
    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
    assert answers[0].json()["items"] == answers[1].json()["items"]
    assert sorted(a.headers.get("Idempotent-Replayed", "") for a in answers) == ["", "true"]
    item = answers[0].json()["items"][0]
    assert reached_the_family_once(rs, world, teacher, smtp_sink, rs_db, tap, item["id"], tag) == 1


# -- deletion -------------------------------------------------------------------------------

def test_deletion_request_for_a_student_removes_shares_and_confirms(rs, world, teacher, rs_db):
    r = post_share(rs, teacher, student_id=world.adult_student, contact_ids=[world.adult_student],
                   service_ids=[world.services["pantry3"]], channel="print")
    assert r.status_code == 201
    share_id = r.json()["items"][0]["share_id"]
    confirmations = queue_name("referrals", DELETION_COMPLETED, "retention", "on_referrals_deletion_completed")
    rs.drain(confirmations)
    request_id = str(uuid.uuid4())
    # Published exactly as retention does: retention.events, routing key deletion_requested.
    with Connection(rs.settings.amqp_uri) as conn:
        Producer(conn.channel()).publish(
            {"request_id": request_id, "scope": "student", "tenant_id": world.school,
             "subject_id": world.adult_student, "tenant_ids": [world.school], "older_than": None, "attempt": 1},
            exchange=Exchange("retention.events", type="topic", durable=True), routing_key="deletion_requested",
            serializer="json", delivery_mode=2, declare=[Exchange("retention.events", type="topic", durable=True)],
        )
    [done] = wait_until(lambda: rs.drain(confirmations) or None)
    assert done["request_id"] == request_id and done["service"] == "referrals"
    assert done["counts"]["shares"] >= 1
    assert _scalar(rs_db, "SELECT count(*) FROM share WHERE student_id = :i", world.adult_student) == 0
    assert _scalar(rs_db, "SELECT count(*) FROM share WHERE id = :i", share_id) == 0
