"""Journey 7 end to end with every real service, through the gateway: a provider program closes the loop.

A youth program on the platform adds its own service and publishes it to every
school; a teacher finds it in search and shares it for a student she serves,
with the family's consent recorded; the program's staff see the referral
incoming (without the student's identity), accept it, mark it in progress,
then completed; the teacher sees each change; the school admin reads the
disclosure log entry.
"""
from __future__ import annotations

import pytest
import requests

from tests.support.people import bootstrap
from tests.integration.test_retention_journeys import import_students, make_school
from tests.support.infra import random_suffix

pytestmark = pytest.mark.integration

CONSENT = {"given_by": "parent", "method": "written", "given_on": "2026-11-20"}


def make_program(system, operator):
    r = operator.post(system.url("/api/v1/tenants"), json={"kind": "program", "name": f"Youth Program {random_suffix()}"})
    assert r.status_code == 201, r.text
    tenant_id = r.json()["id"]
    return tenant_id, bootstrap(system, "program_admin", tenant_id), bootstrap(system, "program_staff", tenant_id)


def search(system, session, q):
    r = session.get(system.url("/api/v1/directory/services"), params={"q": q})
    assert r.status_code == 200, r.text
    return r.json()


def test_journey_7_a_provider_program_closes_the_loop(system, operator):
    program_id, program_admin, program_staff = make_program(system, operator)
    _, other_program_admin, _ = make_program(system, operator)
    school_id, school_admin, teacher = make_school(system, operator)
    [student] = import_students(system, school_admin, teacher, 1)
    word = f"Kestrel{random_suffix(6)}".lower()

    # The program adds its own mentoring service; unpublished, only the program sees it.
    r = program_admin.post(system.url("/api/v1/directory/services"), json={
        "name": f"{word.title()} Mentoring Circle", "description": "Weekly mentoring for middle-school students.",
        "organization_name": "Kestrel Youth", "minimum_age": 11, "maximum_age": 15, "cost": "free", "languages": ["en", "es"],
        "schedules": [{"days": ["TU", "TH"], "opens_at": "16:00", "closes_at": "18:00"}],
        "location": {"name": "Youth Center", "latitude": 38.91, "longitude": -77.02,
                     "address": {"address_1": "9 Park Rd", "city": "Washington", "state_province": "DC", "postal_code": "20010"}},
    })
    assert r.status_code == 201, r.text
    service = r.json()
    assert service["owner_tenant_id"] == program_id and service["published_to"] == "tenant"
    assert search(system, teacher, word)["total"] == 0
    assert teacher.get(system.url(f"/api/v1/directory/services/{service['id']}")).status_code == 404
    # A program has no district to publish to, and only programs publish to every school.
    assert program_admin.patch(system.url(f"/api/v1/directory/services/{service['id']}"),
                               json={"published_to": "district"}).status_code == 400
    assert school_admin.post(system.url("/api/v1/directory/services"),
                             json={"name": "Our club", "published_to": "schools"}).status_code == 400

    # Published to every school: the teacher finds it; another program and the public still do not.
    r = program_admin.patch(system.url(f"/api/v1/directory/services/{service['id']}"), json={"published_to": "schools"})
    assert r.status_code == 200 and r.json()["published_to"] == "schools", r.text
    found = search(system, teacher, word)
    assert [i["id"] for i in found["items"]] == [service["id"]]
    card = found["items"][0]
    assert card["organization_name"] == "Kestrel Youth" and card["address"] == "9 Park Rd, Washington"
    assert search(system, other_program_admin, word)["total"] == 0
    assert other_program_admin.get(system.url(f"/api/v1/directory/services/{service['id']}")).status_code == 404
    assert requests.get(system.url(f"/hsds/services/{service['id']}"), timeout=20).status_code == 404
    detail = teacher.get(system.url(f"/api/v1/directory/services/{service['id']}"))
    assert detail.status_code == 200 and detail.json()["hours_text"]
    assert teacher.get(system.url(f"/hsds/services/{service['id']}")).status_code == 200

    # She shares it for her student; a program outside the school needs the family's consent.
    share = {"student_id": student["id"], "contact_ids": student["contact_ids"][:1], "service_ids": [service["id"]],
             "channel": "email"}
    r = teacher.post(system.url("/api/v1/referrals"), json=share)
    assert r.status_code == 400 and r.json()["error"]["code"] == "consent_required", r.text
    r = teacher.post(system.url("/api/v1/referrals"), json={**share, "consent": CONSENT})
    assert r.status_code == 201, r.text
    [referral] = r.json()["items"]
    assert referral["status"] == "requested" and referral["receiving_tenant_id"] == program_id

    # The program's staff see it incoming, without the student's identity.
    incoming = program_staff.get(system.url("/api/v1/referrals"), params={"scope": "incoming"}).json()["items"]
    [seen] = [i for i in incoming if i["id"] == referral["id"]]
    assert seen["incoming"] is True and seen["student_id"] is None and seen["contact_ids"] == [] and seen["note"] is None
    assert seen["service_id"] == service["id"]
    others = other_program_admin.get(system.url("/api/v1/referrals"), params={"scope": "incoming"}).json()["items"]
    assert referral["id"] not in [i["id"] for i in others]

    # Accepted, in progress, completed: the teacher sees each change.
    expected = ["requested"]
    for body in ({"status": "accepted"}, {"status": "in-progress"},
                 {"status": "completed", "outcome": "connected", "note": "Matched with a mentor"}):
        r = program_staff.post(system.url(f"/api/v1/referrals/{referral['id']}/status"), json=body)
        assert r.status_code == 200, r.text
        expected.append(body["status"])
        mine = teacher.get(system.url(f"/api/v1/referrals/{referral['id']}"))
        assert mine.status_code == 200, mine.text
        assert mine.json()["status"] == body["status"]
        assert [h["status"] for h in mine.json()["history"]] == expected
        listed = teacher.get(system.url("/api/v1/referrals"), params={"scope": "mine"}).json()["items"]
        assert [i["status"] for i in listed if i["id"] == referral["id"]] == [body["status"]]
    assert mine.json()["outcome"] == "connected"

    # The school admin reads the disclosure: to whom, on what basis, what was disclosed.
    log = school_admin.get(system.url(f"/api/v1/students/{student['id']}/disclosures"))
    assert log.status_code == 200, log.text
    [entry] = [d for d in log.json()["items"] if d["referral_id"] == referral["id"]]
    assert entry["recipient_tenant_id"] == program_id and entry["basis"] == "consent"
    assert entry["consent"]["given_by"] == "parent" and entry["consent"]["method"] == "written"
    assert entry["information"]
    assert teacher.get(system.url(f"/api/v1/students/{student['id']}/disclosures")).status_code == 403
