"""OneRoster 1.2 CSV packages end to end: the gateway's API, identity on the real broker and
PostgreSQL. A generated district package sets up two schools' rosters and serves links;
demographics are in no table of identity's database; re-import changes nothing; a delta
applies; a malformed package is refused row by row with nothing written; a left_students
retention policy deletes the students a bulk import marked left."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text

from tests.support.identity_db import count_rows, execute, tables_holding
from tests.support.infra import random_suffix
from tests.support.oneroster_package import District
from tests.support.people import call
from tests.support.signing import ClusterRpcClient
from tests.support.world import PASSWORD

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rpc(system):
    with ClusterRpcClient(uri=system.settings.amqp_uri, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def operator_auth(rpc):
    email = f"ops.{random_suffix()}@oneroster.example"
    rpc.identity.bootstrap_user({"email": email, "display_name": "Ops", "role": "operator", "tenant_id": None}, PASSWORD)
    return rpc.identity.login({"email": email, "password": PASSWORD}, client_ip="oneroster")["user"]


class World:
    """A district with two schools, its administrator, and one teacher account per school."""

    def __init__(self, system, rpc, operator_auth):
        self.system = system
        self.suffix = suffix = random_suffix()
        self.district = rpc.identity.create_tenant(operator_auth, {"kind": "district", "name": f"District {suffix}"})["id"]
        self.names = [f"North {suffix}", f"South {suffix}"]
        self.schools = [rpc.identity.create_tenant(operator_auth, {"kind": "school", "name": n, "parent_id": self.district})["id"]
                        for n in self.names]
        self.teacher_emails = {0: [f"t0.{suffix}@north.example", f"other0.{suffix}@north.example"],
                               1: [f"other1.{suffix}@south.example", f"t1.{suffix}@south.example"]}
        self.admin_email = f"da.{suffix}@district.example"
        rpc.identity.bootstrap_user({"email": self.admin_email, "display_name": "DA", "role": "district_admin",
                                     "tenant_id": self.district}, PASSWORD)
        for n, email in ((0, self.teacher_emails[0][0]), (1, self.teacher_emails[1][1])):
            rpc.identity.bootstrap_user({"email": email, "display_name": f"T{n}", "role": "teacher",
                                         "tenant_id": self.schools[n]}, PASSWORD)
        self.admin = system.login(self.admin_email, PASSWORD)
        self.teachers = [system.login(self.teacher_emails[0][0], PASSWORD), system.login(self.teacher_emails[1][1], PASSWORD)]

    def package(self, **kw) -> District:
        return District.generate(self.names, students_per_school=4, district=f"District {self.suffix}",
                                 teacher_emails=self.teacher_emails, marker=f"Mk{self.suffix}", **kw)

    def post(self, path, data=None, files=None, **params):
        kw = {"files": files} if files else {"data": data, "headers": {"Content-Type": "application/zip"}}
        return self.admin.post(self.system.url(path), params=params, timeout=120, **kw)

    def seen_by(self, n) -> list[str]:
        r = self.teachers[n].get(self.system.url("/api/v1/students?per_page=200"))
        assert r.status_code == 200, r.text
        return sorted(s["roster_key"] for s in r.json()["items"])

    def counts(self):
        return tuple(count_rows(self.system, t, "tenant_id IN (:a, :b)", a=self.schools[0], b=self.schools[1])
                     for t in ("student", "family_contact", "serves_link", "sis_enrollment"))


@pytest.fixture
def world(system, rpc, operator_auth):
    return World(system, rpc, operator_auth)


def test_a_package_sets_up_the_rosters_and_serves_links_and_stores_no_demographics(system, world):
    package = world.package()
    preview = world.post("/api/v1/rosters/oneroster/preview", package.zip())
    assert preview.status_code == 200, preview.text
    assert preview.json()["students"]["created"] == 8 and world.counts() == (0, 0, 0, 0)
    r = world.post("/api/v1/rosters/oneroster/import", package.zip(), contacts_authorised="true")
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["errors"] == [] and result["files_not_read"] == ["demographics.csv"]
    assert world.counts() == (8, 8, 4, 12)
    assert world.seen_by(0) == ["s-0-0", "s-0-2"] and world.seen_by(1) == ["s-1-1", "s-1-3"]
    # Every table and column of identity's database: no demographics, pronouns, passwords, addresses.
    assert tables_holding(system, f"Family0x1") != []
    assert tables_holding(system, package.marker) == []
    assert tables_holding(system, "2012-03-0") == []

    again = world.post("/api/v1/rosters/oneroster/import", package.zip(), contacts_authorised="true").json()
    assert again["students"]["unchanged"] == 8 and again["students"]["created"] == again["students"]["updated"] == 0
    assert again["serves_links"] == {"added": 0, "removed": 0, "unchanged": 4}
    assert world.counts() == (8, 8, 4, 12)


def test_a_delta_sent_as_files_applies_its_changes(system, world):
    world.post("/api/v1/rosters/oneroster/import", world.package().zip())
    delta = District(name="d", schools=[{"sourcedId": f"org-school-{n}", "name": s} for n, s in enumerate(world.names)],
                     users=[{"sourcedId": "s-0-2", "status": "tobedeleted", "givenName": "S", "familyName": "F"}],
                     roles=[], classes=[], demographics=[], mode="delta",
                     enrollments=[{"sourcedId": "e-c-1-1-s-1-3", "status": "tobedeleted", "classSourcedId": "c-1-1",
                                   "schoolSourcedId": "org-school-1", "userSourcedId": "s-1-3", "role": "student"}])
    files = delta.files({"file.classes": "absent", "file.academicSessions": "absent", "file.demographics": "absent",
                         "file.roles": "absent"})
    for name in ("classes.csv", "academicSessions.csv", "demographics.csv", "roles.csv"):
        del files[name]
    r = world.post("/api/v1/rosters/oneroster/import", files=[("files", (n, d, "text/csv")) for n, d in files.items()])
    assert r.status_code == 200, r.text
    assert r.json()["students"]["left"] == 1
    assert world.seen_by(0) == ["s-0-0"] and world.seen_by(1) == ["s-1-1"]
    assert count_rows(system, "student", "tenant_id = :t AND left_at IS NOT NULL", t=world.schools[0]) == 1


def test_a_malformed_package_is_refused_row_by_row_and_nothing_is_written(system, world):
    package = world.package()
    package.users.append(dict(package.users[0]))
    package.enrollments.append({"sourcedId": "e-x", "classSourcedId": "c-0-0", "schoolSourcedId": "org-nowhere",
                                "userSourcedId": "s-0-0", "role": "student"})
    r = world.post("/api/v1/rosters/oneroster/import", package.zip())
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "roster_package_invalid"
    rows = {(e["file"], e["row"], e["column"]) for e in error["details"]["errors"]}
    assert ("users.csv", len(package.users) + 1, "sourcedId") in rows
    assert ("enrollments.csv", len(package.enrollments) + 1, "schoolSourcedId") in rows
    assert world.counts() == (0, 0, 0, 0)
    wrong = world.post("/api/v1/rosters/oneroster/import", package.zip(manifest={"oneroster.version": "1.1"}))
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (400, "wrong_version")
    not_zip = world.post("/api/v1/rosters/oneroster/import", b"not a zip")
    assert (not_zip.status_code, not_zip.json()["error"]["code"]) == (400, "bad_package")
    as_csv = world.admin.post(system.url("/api/v1/rosters/oneroster/import"), data=b"a,b", headers={"Content-Type": "text/csv"})
    assert (as_csv.status_code, as_csv.json()["error"]["code"]) == (400, "unsupported_media_type")


def test_a_teacher_may_not_import(system, world):
    r = world.teachers[0].post(system.url("/api/v1/rosters/oneroster/preview"), data=world.package().zip(),
                               headers={"Content-Type": "application/zip"})
    assert r.status_code == 403


def test_the_roster_csv_reads_the_sis_headers_through_the_saved_mapping(system, rpc, operator_auth):
    suffix = random_suffix()
    school = rpc.identity.create_tenant(operator_auth, {"kind": "school", "name": f"Mapped {suffix}"})["id"]
    email = f"admin.{suffix}@mapped.example"
    rpc.identity.bootstrap_user({"email": email, "display_name": "A", "role": "school_admin", "tenant_id": school}, PASSWORD)
    admin = system.login(email, PASSWORD)
    text = f"Student ID,Given,Surname,Home Address\nM1,Ana{suffix},Lopez,12 Elm {suffix}\n".encode()
    refused = admin.post(system.url("/api/v1/rosters/preview"), data=text, headers={"Content-Type": "text/csv"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "missing_columns"
    saved = admin.put(system.url("/api/v1/rosters/column-mapping"), json={"mapping": {
        "Student ID": "student_key", "Given": "first_name", "Surname": "last_name"}})
    assert saved.status_code == 200, saved.text
    bad = admin.put(system.url("/api/v1/rosters/column-mapping"), json={"mapping": {"Given": "nickname"}})
    assert bad.status_code == 400
    r = admin.post(system.url("/api/v1/rosters/import"), data=text, headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json()["columns_dropped"] == ["Home Address"] and r.json()["created"] == 1
    assert tables_holding(system, f"Ana{suffix}") == ["student.first_name"]
    assert tables_holding(system, f"12 Elm {suffix}") == []
    assert admin.get(system.url("/api/v1/rosters/column-mapping")).json()["mapping"]["Given"] == "first_name"


def test_a_left_students_policy_deletes_the_students_a_bulk_import_marked_left(system, world, auditor):
    """Bulk without a student marks them left; the district's ``left_students`` policy (30 days)
    then deletes them through an ordinary student deletion that every service confirms."""
    package = world.package()
    world.post("/api/v1/rosters/oneroster/import", package.zip())
    package.users = [u for u in package.users if u["sourcedId"] not in ("s-0-1", "g-0-1")]
    package.roles = [r for r in package.roles if r["userSourcedId"] not in ("s-0-1", "g-0-1")]
    package.enrollments = [e for e in package.enrollments if e["userSourcedId"] != "s-0-1"]
    result = world.post("/api/v1/rosters/oneroster/import", package.zip()).json()
    assert result["students"]["left"] == 1
    [(student_id,)] = execute(system, "SELECT id FROM student WHERE tenant_id = :t AND left_at IS NOT NULL", t=world.schools[0])
    # Policy not yet due for this student (left today), then 40 days later.
    r = world.admin.post(system.url("/api/v1/retention-policies"), json={"record_kind": "left_students", "max_age_days": 30})
    assert r.status_code == 201, r.text
    execute(system, "UPDATE student SET left_at = left_at - interval '40 days' WHERE id = :s", s=student_id)
    # Due now even if retention's own timer ran it before the student's date moved.
    engine = create_engine(system.settings.database_url("retention"))
    with engine.begin() as conn:
        conn.execute(text("UPDATE retention_policy SET last_applied_at = NULL WHERE id = :p"), {"p": r.json()["id"]})
    engine.dispose()
    call(system, "retention", "run_due_policies")
    deadline, record = time.monotonic() + 60, None
    while time.monotonic() < deadline:
        items = auditor.get(system.url(f"/api/v1/deletion-requests?tenant_id={world.schools[0]}&scope=student")).json()["items"]
        mine = [i for i in items if i.get("policy_id") == r.json()["id"]]
        if mine and mine[0]["status"] == "completed":
            record = mine[0]
            break
        time.sleep(0.5)
    assert record is not None, items
    assert (record["reason"], record["requested_by"], record["record_kind"]) == ("retention_policy", "policy", "left_students")
    assert count_rows(system, "student", "id = :s", s=student_id) == 0
    assert count_rows(system, "sis_enrollment", "user_sourced_id = 's-0-1' AND tenant_id = :t", t=world.schools[0]) == 0
    assert count_rows(system, "student", "tenant_id = :t", t=world.schools[0]) == 3  # the others stay
