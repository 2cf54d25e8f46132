"""Identity after a deletion (DESIGN invariant 5): nothing in identity's database holds
the deleted student's or terminated tenant's id, and the fence still refuses them.

Deletions go the real way: through retention's API, fence first, then
``deletion_requested`` to every service; the check is retention's own scanner
over every table of identity's database. Policy runs (login records) too.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlalchemy import create_engine, text

from services.identity.accounts import account_key
from tests.integration.test_retention import policy_deletion, wait_for
from tests.support.people import PASSWORD
from tests.integration.test_retention_journeys import import_students, make_school, roster_csv
from tests.support.infra import random_suffix
from tests.support.scanner import scan_for
from weintervene.db import utcnow

pytestmark = pytest.mark.integration

IDENTITY = ("identity",)


@pytest.fixture(scope="module")
def identity_db(system):
    engine = create_engine(system.settings.database_url("identity"))
    yield engine
    engine.dispose()


def identity_confirmed(record) -> bool:
    """Identity's part is done (the other services' parts are their own tests' business)."""
    return any(c["service"] == "identity" for c in record["confirmations"])


def identity_confirmation(record) -> dict:
    [confirmation] = [c for c in record["confirmations"] if c["service"] == "identity"]
    return confirmation["counts"]


def test_a_deleted_student_leaves_no_id_in_identity_and_stays_fenced(system, operator, auditor, identity_db):
    _school_id, admin, teacher = make_school(system, operator)
    ana, ben = import_students(system, admin, teacher, 2)
    assert scan_for(system.settings, ana["id"], services=IDENTITY) != []  # the scan does see her beforehand
    r = admin.post(system.url("/api/v1/deletion-requests"), json={
        "scope": "student", "subject_id": ana["id"], "reason": "parent_opt_out",
        "verification": {"method": "in_person_photo_id", "verified_by": teacher.user["id"]},
    })
    assert r.status_code == 202, r.text
    record = wait_for(system, auditor, r.json()["id"], identity_confirmed)
    assert identity_confirmation(record)["students"] == 1
    for value in (ana["id"], *ana["contact_ids"]):
        assert scan_for(system.settings, value, services=IDENTITY) == [], value
    with identity_db.connect() as conn:
        raw_left = conn.scalar(text("SELECT count(*) FROM subject_fence WHERE subject_id = :id"), {"id": ana["id"]})
    assert raw_left == 0
    # The fence works by hash: her roster row is refused, her classmate's re-import is fine.
    r = admin.post(system.url("/api/v1/rosters/import"), data=roster_csv(teacher.user["email"], [ana, ben]),
                   headers={"Content-Type": "text/csv"})
    assert r.status_code in (200, 201), r.text
    result = r.json()
    assert [e["column"] for e in result["errors"]] == ["student_key"] and result["created"] == 0
    names = [s["first_name"] for s in admin.get(system.url("/api/v1/students?per_page=100")).json()["items"]]
    assert names == [ben["first"]]
    assert admin.get(system.url(f"/api/v1/students/{ana['id']}")).status_code in (404, 409)
    assert scan_for(system.settings, ana["id"], services=IDENTITY) == []


def test_a_terminated_tenant_leaves_no_id_in_identity(system, operator, auditor):
    r = operator.post(system.url("/api/v1/tenants"), json={"kind": "district", "name": f"District {random_suffix()}"})
    assert r.status_code == 201, r.text
    district_id = r.json()["id"]
    school_id, admin, teacher = make_school(system, operator, parent_id=district_id)
    students = import_students(system, admin, teacher, 2)
    # One student's own deletion was requested earlier: its fence sits inside the tenant.
    r = admin.post(system.url("/api/v1/deletion-requests"), json={
        "scope": "student", "subject_id": students[0]["id"], "reason": "parent_opt_out",
        "verification": {"method": "in_person_photo_id", "verified_by": teacher.user["id"]},
    })
    assert r.status_code == 202, r.text
    wait_for(system, auditor, r.json()["id"], identity_confirmed)
    r = operator.post(system.url("/api/v1/deletion-requests"), json={
        "scope": "tenant", "subject_id": district_id, "reason": "contract_ended",
    })
    assert r.status_code == 202, r.text
    record = wait_for(system, auditor, r.json()["id"], identity_confirmed, timeout=30)
    counts = identity_confirmation(record)
    assert counts["tenants"] == 2 and counts["users"] == 2 and counts["students"] == 1
    values = [district_id, school_id, admin.user["id"], teacher.user["id"]]
    for student in students:
        values += [student["id"], *student["contact_ids"]]
    for value in values:
        assert scan_for(system.settings, value, services=IDENTITY) == [], value
    # Still fenced: nobody of the tenant signs in, and nothing can be created in it.
    r = requests.post(system.url("/api/v1/sessions"), json={"email": admin.user["email"], "password": PASSWORD}, timeout=30)
    assert r.status_code == 401, r.text
    assert admin.get(system.url("/api/v1/me")).status_code == 401
    r = operator.post(system.url("/api/v1/users"), json={
        "tenant_id": school_id, "email": f"late-{random_suffix()}@x.example", "display_name": "Late", "role": "teacher"})
    assert 400 <= r.status_code < 500, r.text


def test_a_login_records_policy_expires_old_sign_ins_of_its_tenant(system, operator, auditor, identity_db):
    school_id, admin, teacher = make_school(system, operator)
    # The teacher's sign-in is 400 days old (sessions and attempts); the admin's is from today.
    then = utcnow() - timedelta(days=400)
    with identity_db.begin() as conn:
        conn.execute(text("UPDATE user_session SET created_at = :t, last_seen_at = :t, expires_at = :t "
                          "WHERE user_id = :u"), {"t": then, "u": teacher.user["id"]})
        conn.execute(text("UPDATE login_attempt SET at = :t WHERE account_key = :k"),
                     {"t": then, "k": account_key(teacher.user["email"])})
    request_id = policy_deletion(system, admin)
    record = wait_for(system, auditor, request_id, identity_confirmed)
    assert identity_confirmation(record) == {"sessions": 1, "login_attempts": 1, "password_resets": 0}
    with identity_db.connect() as conn:
        left = conn.scalar(text("SELECT count(*) FROM user_session WHERE user_id = :u"), {"u": teacher.user["id"]})
    assert left == 0
    assert admin.get(system.url("/api/v1/me")).status_code == 200  # today's session: untouched

