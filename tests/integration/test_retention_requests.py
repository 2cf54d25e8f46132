"""Retention's other requests end to end with every real service, through the gateway:
a user account's removal, a tenant's closed-referrals policy, and a parent's inspection
(the student's records from every service, child tables included) and amendment
(recorded with its outcome).
"""
from __future__ import annotations

import io
import json
import uuid
import zipfile
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, text

from tests.integration.test_retention import completed, wait_for
from tests.support.people import PASSWORD, call
from tests.integration.test_retention_journeys import import_students, make_directory_service, make_school, share
from tests.support.scanner import scan_for
from weintervene.config import SERVICES
from weintervene.contracts import DATA_SERVICES
from weintervene.db import utcnow

pytestmark = pytest.mark.integration



def _referrals_sql(system, sql: str, **params):
    engine = create_engine(system.settings.database_url("referrals"))
    try:
        with engine.begin() as conn:
            return conn.execute(text(sql), params)
    finally:
        engine.dispose()


def test_a_removed_user_account_leaves_no_trace_and_the_school_keeps_its_referrals(system, operator, auditor):
    tenant_id, admin, teacher = make_school(system, operator)
    [student] = import_students(system, admin, teacher, 1)
    service_id = make_directory_service(system, operator)
    r = share(system, teacher, student, service_id)
    assert r.status_code == 201, r.text
    referral_id = r.json()["items"][0]["id"]
    assert teacher.post(system.url(f"/api/v1/referrals/{referral_id}/status"),
                        json={"status": "in-progress", "note": "Called the family"}).status_code == 200
    assert teacher.post(system.url("/api/v1/lists"), json={"name": "Mine", "service_ids": [service_id]}).status_code == 201
    teacher_id, email = teacher.user["id"], teacher.user["email"]
    assert scan_for(system.settings, teacher_id, services=DATA_SERVICES) != []  # the scan can see it

    r = admin.post(system.url("/api/v1/deletion-requests"),
                   json={"scope": "user", "subject_id": teacher_id, "reason": "account_closed"})
    assert r.status_code == 202, r.text
    # Fenced at once: the account is signed out and cannot sign in again.
    assert teacher.get(system.url("/api/v1/me")).status_code == 401
    record = wait_for(system, auditor, r.json()["id"], completed)
    assert sorted(c["service"] for c in record["confirmations"]) == sorted(DATA_SERVICES)
    counts = {c["service"]: c["counts"] for c in record["confirmations"]}
    assert counts["identity"]["users"] == 1 and counts["referrals"]["saved_lists"] == 1
    r = system.client().post(system.url("/api/v1/sessions"), json={"email": email, "password": PASSWORD})
    assert r.status_code == 401, r.text
    # Nothing anywhere names the user, retention's own record included.
    assert scan_for(system.settings, teacher_id, services=SERVICES) == []
    assert scan_for(system.settings, email, services=SERVICES) == []
    # The school's referral stays, its history without the author.
    kept = admin.get(system.url(f"/api/v1/referrals/{referral_id}"))
    assert kept.status_code == 200, kept.text
    assert [h["status"] for h in kept.json()["history"]][-1] == "in-progress"
    # Repeating the removal is harmless: identity no longer knows the user.
    again = admin.post(system.url("/api/v1/deletion-requests"),
                       json={"scope": "user", "subject_id": teacher_id, "reason": "account_closed"})
    assert again.status_code == 404, again.text


def test_a_closed_referrals_policy_expires_only_old_closed_referrals_of_its_tenant(system, operator, auditor):
    tenant_id, admin, teacher = make_school(system, operator)
    other_tenant, other_admin, other_teacher = make_school(system, operator)
    students = import_students(system, admin, teacher, 3)
    [other_student] = import_students(system, other_admin, other_teacher, 1)
    service_id = make_directory_service(system, operator)
    old_closed, old_open, new_closed = (share(system, teacher, s, service_id).json()["items"][0]["id"] for s in students)
    others_old_closed = share(system, other_teacher, other_student, service_id).json()["items"][0]["id"]
    for rid, who in ((old_closed, teacher), (new_closed, teacher), (others_old_closed, other_teacher)):
        r = who.post(system.url(f"/api/v1/referrals/{rid}/status"), json={"status": "completed", "outcome": "connected"})
        assert r.status_code == 200, r.text
    three_years_ago = utcnow() - timedelta(days=3 * 365)
    for rid in (old_closed, old_open, others_old_closed):  # the past, set in the database
        _referrals_sql(system, "UPDATE share SET created_at = :at WHERE id = (SELECT share_id FROM referral WHERE id = :r)",
                       at=three_years_ago, r=rid)
    r = admin.post(system.url("/api/v1/retention-policies"), json={"record_kind": "closed_referrals", "max_age_days": 730})
    assert r.status_code == 201, r.text
    policy_id = r.json()["id"]
    # What the policy timer runs every minute.
    ids = call(system, "retention", "run_due_policies")
    [request_id] = [i for i in ids if wait_for(system, auditor, i, lambda rec: True)["policy_id"] == policy_id]
    record = wait_for(system, auditor, request_id, completed)
    assert record["scope"] == "policy" and record["tenant_id"] == tenant_id
    assert {c["service"]: c["counts"] for c in record["confirmations"]}["referrals"]["shares"] == 1
    assert admin.get(system.url(f"/api/v1/referrals/{old_closed}")).status_code == 404
    for rid in (old_open, new_closed):
        assert admin.get(system.url(f"/api/v1/referrals/{rid}")).status_code == 200, rid
    assert other_admin.get(system.url(f"/api/v1/referrals/{others_old_closed}")).status_code == 200
    # Applied once per interval: running again now creates no second request for it.
    again = call(system, "retention", "run_due_policies")
    assert all(wait_for(system, auditor, i, lambda rec: True)["policy_id"] != policy_id for i in again)


def test_a_parent_inspects_through_the_school_and_an_amendment_is_recorded_with_its_outcome(
        system, operator, auditor):
    tenant_id, admin, teacher = make_school(system, operator)
    ana, ben = import_students(system, admin, teacher, 2)
    service_id = make_directory_service(system, operator)
    for student in (ana, ben):
        assert share(system, teacher, student, service_id).status_code == 201
    # Teachers cannot open one; the school admin does, for the parent.
    assert teacher.post(system.url("/api/v1/inspection-requests"),
                        json={"student_id": ana["id"], "kind": "inspection"}).status_code == 403
    r = admin.post(system.url("/api/v1/inspection-requests"), json={"student_id": ana["id"], "kind": "inspection"})
    assert r.status_code == 201, r.text
    inspection_id = r.json()["id"]
    r = admin.get(system.url(f"/api/v1/inspection-requests/{inspection_id}/records"))
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/zip", r.text
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    names = set(archive.namelist())
    # Her records in every service, the child tables of her shares included, as JSON and CSV.
    for table in ("identity/student", "identity/family_contact", "identity/serves_link", "referrals/share",
                  "referrals/referral", "referrals/status_change", "referrals/delivery", "referrals/share_recipient"):
        assert {f"{table}.json", f"{table}.csv"} <= names, table
    assert [s["id"] for s in json.loads(archive.read("identity/student.json"))] == [ana["id"]]
    everything = b"".join(archive.read(n) for n in names)
    assert ben["id"].encode() not in everything and ben["first"].encode() not in everything
    assert b"password" not in everything
    # Another school's admin sees neither the request nor the records.
    _other, other_admin, _t = make_school(system, operator)
    assert other_admin.get(system.url(f"/api/v1/inspection-requests/{inspection_id}/records")).status_code == 404
    r = admin.post(system.url(f"/api/v1/inspection-requests/{inspection_id}/close"), json={"outcome": "provided"})
    assert r.status_code == 200 and r.json()["outcome"] == "provided", r.text
    assert admin.get(system.url(f"/api/v1/inspection-requests/{inspection_id}/records")).status_code in (403, 404, 409)

    r = admin.post(system.url("/api/v1/inspection-requests"),
                   json={"student_id": ana["id"], "kind": "amendment", "note": "Grade recorded wrongly"})
    assert r.status_code == 201, r.text
    amendment_id = r.json()["id"]
    r = admin.post(system.url(f"/api/v1/inspection-requests/{amendment_id}/close"),
                   json={"outcome": "refused", "note": "Grade confirmed by the registrar"})
    assert r.status_code == 200, r.text
    listed = {i["id"]: i for i in admin.get(system.url("/api/v1/inspection-requests")).json()["items"]}
    assert listed[amendment_id]["kind"] == "amendment" and listed[amendment_id]["status"] == "closed"
    assert listed[amendment_id]["outcome"] == "refused" and listed[amendment_id]["closed_by"] == admin.user["id"]
    assert admin.post(system.url(f"/api/v1/inspection-requests/{amendment_id}/close"),
                      json={"outcome": "amended"}).status_code == 409
    # The audit record has both, with no student id, and the chain holds.
    assert auditor.get(system.url("/api/v1/audit/verify")).json()["ok"] is True
    assert scan_for(system.settings, ana["id"], services=["retention"]) == [("retention", "inspection_request",
                                                                            "student_id", 2)]


def test_a_copy_of_a_deletion_arriving_while_it_is_carried_out_is_skipped(system):
    """A re-send during a long termination must not start the same deletion twice."""
    from sqlalchemy.orm import sessionmaker

    from weintervene.deletion import claim_request

    engine = create_engine(system.settings.database_url("referrals"))
    Session = sessionmaker(engine)
    first, second = Session(), Session()
    try:
        request_id = str(uuid.uuid4())
        assert claim_request(first, "referrals", request_id) is True
        assert claim_request(second, "referrals", request_id) is False  # the re-sent copy
        assert claim_request(second, "referrals", str(uuid.uuid4())) is True  # another request
        assert claim_request(second, "analytics", request_id) is True  # another service
        second.rollback()
        first.commit()  # the deletion committed: a later copy runs (and deletes nothing more)
        assert claim_request(second, "referrals", request_id) is True
    finally:
        first.close()
        second.close()
        engine.dispose()
