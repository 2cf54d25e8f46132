"""Roster CSV import (journey 3): allow-listed columns only, extras stored nowhere,
per-row errors with row numbers, re-import updates, preview stores nothing, and
bad files refused with a reason and nothing half-written."""
from __future__ import annotations

import codecs
from datetime import date

import pytest

from tests.support.identity_db import count_rows, execute, tables_holding
from tests.support.infra import random_suffix
from tests.support.signing import ClusterRpcClient  # signs the contexts it passes, as the gateway does
from tests.support.world import PASSWORD

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rpc(system):
    with ClusterRpcClient(uri=system.settings.amqp_uri, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def operator_auth(rpc):
    email = f"ops.{random_suffix()}@rosters.example"
    rpc.identity.bootstrap_user({"email": email, "display_name": "Ops", "role": "operator", "tenant_id": None}, PASSWORD)
    return rpc.identity.login({"email": email, "password": PASSWORD}, client_ip="rosters")["user"]


class School:
    def __init__(self, system, rpc, operator_auth):
        self.system = system
        suffix = random_suffix()
        self.id = rpc.identity.create_tenant(operator_auth, {"kind": "school", "name": f"Roster School {suffix}"})["id"]
        self.admin_email = f"admin.{suffix}@rosters.example"
        self.teacher_email = f"teacher.{suffix}@rosters.example"
        for email, role in ((self.admin_email, "school_admin"), (self.teacher_email, "teacher")):
            rpc.identity.bootstrap_user({"email": email, "display_name": role, "role": role, "tenant_id": self.id}, PASSWORD)
        self.admin = system.login(self.admin_email, PASSWORD)
        self.teacher = system.login(self.teacher_email, PASSWORD)

    def post(self, path, data: bytes, content_type="text/csv"):
        return self.admin.post(self.system.url(path), data=data, headers={"Content-Type": content_type}, timeout=30)

    def preview(self, text, **kw):
        return self.post("/api/v1/rosters/preview", text.encode("utf-8") if isinstance(text, str) else text, **kw)

    def load(self, text, **kw):
        return self.post("/api/v1/rosters/import", text.encode("utf-8") if isinstance(text, str) else text, **kw)

    def counts(self):
        return tuple(count_rows(self.system, t, "tenant_id = :t", t=self.id)
                     for t in ("student", "family_contact", "serves_link"))

    def students(self):
        r = self.admin.get(self.system.url("/api/v1/students?per_page=200"))
        assert r.status_code == 200, r.text
        return {s["roster_key"]: s for s in r.json()["items"]}


@pytest.fixture
def school(system, rpc, operator_auth):
    return School(system, rpc, operator_auth)


HEADER = "student_key,first_name,last_name,grade,date_of_birth,contact_name,contact_relationship,contact_email,contact_mobile,contact_language,staff_email"


def test_extra_columns_are_dropped_and_stored_nowhere(system, school):
    marker = random_suffix(10)
    text = (
        "Student_Key,First Name,last_name,grade,home_address,ethnicity,iep_flag,contact_name,contact_relationship,contact_email\n"
        f"K1,Diego{marker},Ramos,7,12 Elm Street {marker}A,Hispanic{marker}B,IEP{marker}C,Rosa Ramos,mother,rosa.{marker}@family.example\n"
        f"K2,Lena{marker},Ortiz,8,99 Oak Avenue {marker}D,White{marker}E,no{marker}F,,,\n"
    )
    r = school.load(text)
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["columns_dropped"] == ["home_address", "ethnicity", "iep_flag"]
    assert result["columns_kept"] == ["student_key", "first_name", "last_name", "grade", "contact_name",
                                      "contact_relationship", "contact_email"]
    assert (result["created"], result["applied_rows"], result["errors"]) == (2, [2, 3], [])
    # The scan finds what was kept (so it can find things)...
    assert tables_holding(system, f"Diego{marker}") == ["student.first_name"]
    assert tables_holding(system, f"rosa.{marker}") == ["family_contact.email"]
    # ...and none of the dropped values, in any table or column.
    for suffix in "ABCDEF":
        assert tables_holding(system, f"{marker}{suffix}") == [], suffix
    assert tables_holding(system, "12 Elm Street") == []


def test_preview_reports_the_same_and_stores_nothing(system, school):
    text = HEADER + f"\nP1,Ana,Lopez,5,2015-01-02,Luz Lopez,mother,luz@family.example,,es,{school.teacher_email}\nP2,Bo,Ng,x,,,,,,,\n"
    before = school.counts()
    preview = school.preview(text)
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["preview"] is True
    assert (body["created"], body["applied_rows"], body["skipped_rows"]) == (1, [2], [3])
    assert body["errors"] == [{"row": 3, "column": "grade", "message": "use PK, TK, K or 1 to 12"}]
    assert school.counts() == before == (0, 0, 0)
    imported = school.load(text).json()
    assert {k: v for k, v in imported.items() if k != "preview"} == {k: v for k, v in body.items() if k != "preview"}
    assert school.counts() == (1, 1, 1)


def test_row_errors_have_row_numbers_and_valid_rows_apply(system, school):
    text = (
        HEADER + "\n"
        "R1,Ana,Lopez,5,2015-01-02,Luz Lopez,mother,luz@family.example,,es,\n"     # row 2 ok
        "R2,Bo,,5,,,,,,,\n"                                                         # row 3 no last name
        "R3,Cy,Diaz,5,31/12/2015,,,,,,\n"                                           # row 4 bad date
        "R4,Di,Eng,5,,Ed Eng,father,not-an-email,,,\n"                              # row 5 bad email
        "R5,Ev,Fox,5,,Fay Fox,mother,,,,\n"                                         # row 6 no email or mobile
        "R6,Gil,Ham,5,,,,,,,nobody@elsewhere.example\n"                             # row 7 unknown staff
        "R7,Ivy,Jay,5,,,,,,,,extra cell\n"                                          # row 8 too many cells
        "\n"                                                                        # row 9 blank: ignored
        f"R8,Kai,Lee,K,,Lu Lee,aunt,,(202) 555-0142,xx-yy-zz,\n"                     # row 10 bad language
        f"R9,{'N' * 101},Moe,1,,,,,,,\n"                                             # row 11 too long
        f"R10,Ola,Pim,12,,,,,,,{school.teacher_email}\n"                             # row 12 ok
    )
    r = school.load(text)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["applied_rows"] == [2, 12]
    assert body["skipped_rows"] == [3, 4, 5, 6, 7, 8, 10, 11]
    assert body["rows_total"] == 10
    by_row = {(e["row"], e["column"]) for e in body["errors"]}
    assert by_row == {(3, "last_name"), (4, "date_of_birth"), (5, "contact_email"), (6, "contact_email"),
                      (7, "staff_email"), (8, None), (10, "contact_language"), (11, "first_name")}
    assert set(school.students()) == {"R1", "R10"}
    assert school.counts() == (2, 1, 1)


def test_reimport_updates_instead_of_duplicating(system, school):
    text = HEADER + f"\nU1,Ana,Lopez,5,,Luz Lopez,mother,luz@family.example,,es,{school.teacher_email}\nU1,Ana,Lopez,5,,Tom Lopez,father,,2025550143,en,\nU2,Bo,Ng,6,,,,,,,\n"
    first = school.load(text).json()
    assert (first["created"], first["updated"], first["unchanged"]) == (2, 1, 0)  # row 3 adds U1's second contact
    assert school.counts() == (2, 2, 1)
    again = school.load(text).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 3)
    changed = school.load(text.replace("U2,Bo,Ng,6", "U2,Bo,Ng,7").replace("luz@family.example", "luz.new@family.example")).json()
    assert (changed["created"], changed["updated"], changed["unchanged"]) == (0, 2, 1)
    assert school.counts() == (2, 2, 1)
    students = school.students()
    assert students["U2"]["grade"] == "7"
    detail = school.admin.get(system.url(f"/api/v1/students/{students['U1']['id']}")).json()
    assert {c["name"]: c["email"] for c in detail["contacts"]} == {"Luz Lopez": "luz.new@family.example", "Tom Lopez": None}
    assert {c["name"]: c["mobile"] for c in detail["contacts"]}["Tom Lopez"] == "+12025550143"


def test_journey_3_fix_two_rows_and_import_again(system, school):
    broken = HEADER + "\nJ1,Ana,Lopez,5,,,,,,,\nJ2,Bo,Ng,55,,,,,,,\nJ3,Cy,Diaz,5,,Cora Diaz,mother,cora@@x,,,\n"
    preview = school.preview(broken).json()
    assert preview["skipped_rows"] == [3, 4]
    first = school.load(broken).json()
    assert first["applied_rows"] == [2]
    fixed = broken.replace("J2,Bo,Ng,55", "J2,Bo,Ng,5").replace("cora@@x", "cora@family.example")
    second = school.load(fixed).json()
    assert (second["created"], second["unchanged"], second["skipped_rows"]) == (2, 1, [])
    assert sorted(school.students()) == ["J1", "J2", "J3"]
    assert school.counts()[0] == 3


def test_student_numbers_follow_the_school_setting(system, school):
    text = "student_key,first_name,last_name,student_number\nN1,Ana,Lopez,SIS-0001\n"
    assert school.load(text).status_code == 200
    assert school.students()["N1"]["student_number"] == "SIS-0001"
    r = school.admin.patch(system.url(f"/api/v1/tenants/{school.id}/settings"), json={"student_ids_enabled": False})
    assert r.status_code == 200 and r.json()["student_ids_enabled"] is False
    assert school.students()["N1"]["student_number"] is None
    assert tables_holding(system, "SIS-0001") == []  # erased, not merely hidden
    result = school.load(text).json()
    assert "student_number" in result["columns_dropped"]
    assert tables_holding(system, "SIS-0001") == []


def test_contact_details_of_minors_are_not_kept_but_adults_are(system, school):
    marker = random_suffix()
    adult = date(date.today().year - 20, 5, 5).isoformat()
    text = ("student_key,first_name,last_name,date_of_birth,student_email\n"
            f"A1,Ada,Adult,{adult},ada.{marker}@student.example\n"
            f"M1,Mo,Minor,2014-05-05,mo.{marker}@student.example\n")
    body = school.load(text).json()
    assert body["applied_rows"] == [2, 3]
    assert body["warnings"] == [{"row": 3, "column": "student_email", "message": "kept only for students 18 or older; not stored"}]
    assert tables_holding(system, f"mo.{marker}") == []
    assert tables_holding(system, f"ada.{marker}") == ["student.email"]
    students = school.students()
    assert students["A1"]["is_adult"] is True and students["M1"]["is_adult"] is False
    detail = school.admin.get(system.url(f"/api/v1/students/{students['A1']['id']}")).json()
    assert detail["contacts"][0] == {"id": students["A1"]["id"], "name": "Ada Adult", "relationship": "self",
                                     "email": f"ada.{marker}@student.example", "mobile": None,
                                     "preferred_language": "en", "authorised": True}


def test_utf8_with_byte_order_mark_is_read(system, school):
    text = codecs.BOM_UTF8 + "student_key,first_name,last_name\nB1,José,Muñoz\n".encode("utf-8")
    r = school.load(text)
    assert r.status_code == 200, r.text
    assert r.json()["columns_kept"] == ["student_key", "first_name", "last_name"]
    assert school.students()["B1"]["first_name"] == "José"


@pytest.mark.parametrize("name, data, status, code", [
    ("latin-1", "student_key,first_name,last_name\nL1,José,Muñoz\n".encode("cp1252"), 400, "bad_encoding"),
    ("utf-16", "student_key,first_name,last_name\nL1,José,Muñoz\n".encode("utf-16"), 400, "bad_encoding"),
    ("nul bytes", b"student_key,first_name,last_name\nL1,Jo\x00se,Mu\n", 400, "bad_encoding"),
    ("empty", b"", 400, "empty_file"),
    ("blank", b"  \n\n", 400, "empty_file"),
    ("header only", b"student_key,first_name,last_name\n", 400, "empty_file"),
    ("missing columns", b"first_name,surname\nAna,Lopez\n", 400, "missing_columns"),
    ("duplicate column", b"student_key,first_name,last_name,first_name\nL1,A,B,C\n", 400, "duplicate_column"),
    ("field over csv limit", b"student_key,first_name,last_name\nL1,\"" + b"a" * 140000 + b"\",B\n", 400, "malformed_csv"),
    ("binary", bytes(range(256)) * 4, 400, "bad_encoding"),
])
def test_unusable_files_are_refused_with_a_reason_and_store_nothing(system, school, name, data, status, code):
    before = school.counts()
    for path in ("/api/v1/rosters/preview", "/api/v1/rosters/import"):
        r = school.post(path, data)
        assert r.status_code == status, f"{name}: {r.text}"
        assert r.json()["error"]["code"] == code
        assert r.json()["error"]["message"]
    assert school.counts() == before


def test_missing_columns_are_named(system, school):
    r = school.load("first_name,surname\nAna,Lopez\n")
    assert r.json()["error"]["details"]["missing"] == ["student_key", "last_name"]


def test_file_over_the_size_limit_is_413(system, school, patch_settings):
    patch_settings(roster_max_bytes=2000)
    big = "student_key,first_name,last_name\n" + "".join(f"H{i},Ana,Lopez\n" for i in range(200))
    r = school.load(big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert school.counts() == (0, 0, 0)


def test_too_many_rows_is_413(system, school, patch_settings):
    patch_settings(roster_max_rows=3)
    r = school.load("student_key,first_name,last_name\n" + "".join(f"H{i},Ana,Lopez\n" for i in range(4)))
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_many_rows"
    assert school.counts() == (0, 0, 0)


def test_roster_must_be_sent_as_csv(system, school):
    r = school.post("/api/v1/rosters/import", b'{"student_key": "x"}', content_type="application/json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_media_type"


def test_staff_assignment_replaces_the_list(system, school, rpc):
    school.load("student_key,first_name,last_name\nS1,Ana,Lopez\n")
    student = school.students()["S1"]["id"]
    teacher_id = school.teacher.get(system.url("/api/v1/me")).json()["user_id"]
    assert school.teacher.get(system.url(f"/api/v1/students/{student}")).status_code == 404
    r = school.admin.put(system.url(f"/api/v1/students/{student}/staff"), json={"user_ids": [teacher_id]})
    assert r.status_code == 200 and [s["id"] for s in r.json()["staff"]] == [teacher_id]
    assert school.teacher.get(system.url(f"/api/v1/students/{student}")).status_code == 200
    r = school.admin.put(system.url(f"/api/v1/students/{student}/staff"), json={"user_ids": []})
    assert r.status_code == 200 and r.json()["staff"] == []
    assert school.teacher.get(system.url(f"/api/v1/students/{student}")).status_code == 404
    r = school.admin.put(system.url(f"/api/v1/students/{student}/staff"), json={"user_ids": ["not-a-uuid"]})
    assert r.status_code == 400 and "user_ids" in r.json()["error"]["details"]


def test_search_and_paging(system, school):
    school.load("student_key,first_name,last_name\n" + "".join(f"G{i},Name{i},Family{i:02d}\n" for i in range(12)))
    page = school.admin.get(system.url("/api/v1/students?per_page=5&page=3")).json()
    assert (page["total"], page["page"], page["per_page"], len(page["items"])) == (12, 3, 5, 2)
    found = school.admin.get(system.url("/api/v1/students?search=family03")).json()
    assert [s["roster_key"] for s in found["items"]] == ["G3"]
    found = school.admin.get(system.url("/api/v1/students?search=NAME7%20family07")).json()
    assert [s["roster_key"] for s in found["items"]] == ["G7"]
    bad = school.admin.get(system.url("/api/v1/students?per_page=1000"))
    assert bad.status_code == 400 and "per_page" in bad.json()["error"]["details"]
