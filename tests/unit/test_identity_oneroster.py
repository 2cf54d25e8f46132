"""OneRoster 1.2 CSV packages (services/identity/oneroster.py) through identity's RPCs, with
nameko's worker_factory on a real SQLite database migrated by identity's own chain.

The package is generated (tests/support/oneroster_package.py): a district, two schools,
classes, teachers, students, guardians and demographics.
"""
from __future__ import annotations

import base64

import pytest
from sqlalchemy import MetaData, Text, cast, func, select

from services.identity.exceptions import RosterRejected
from services.identity.models import (
    FamilyContact, RosterImportRecord, ServesLink, SisEnrollment, Student, Tenant, User,
)
from tests.support.oneroster_package import District
from tests.unit.identity_fixtures import PASSWORD, sent, service, session  # noqa: F401  (fixtures)
from weintervene.auth import AuthContext, Role

SCHOOLS = ["North High", "South High"]


@pytest.fixture
def district(service):
    """Riverside District with North High and South High, their admins, and a teacher at each
    school whose email the package's first teacher of that school has."""
    op = AuthContext(user_id="op", tenant_id="platform", role=Role.OPERATOR).to_dict()
    d = service.create_tenant(op, {"kind": "district", "name": "Riverside District"})
    ids = {"district": d["id"]}
    for n, name in enumerate(SCHOOLS):
        ids[n] = service.create_tenant(op, {"kind": "school", "name": name, "parent_id": d["id"]})["id"]
    people = {}
    for key, email, role, tenant in (
        ("district_admin", "da@riverside.example", "district_admin", ids["district"]),
        ("north_admin", "na@north.example", "school_admin", ids[0]),
        ("teacher0", "teacher0.0@sis.example", "teacher", ids[0]),
        ("teacher1", "teacher1.1@sis.example", "teacher", ids[1]),
    ):
        service.bootstrap_user({"email": email, "display_name": key, "role": role, "tenant_id": tenant}, PASSWORD)
        people[key] = service.login({"email": email, "password": PASSWORD}, "127.0.0.1")["user"]
    return {**ids, **people}


def upload(files: dict[str, bytes]) -> dict[str, str]:
    return {name: base64.b64encode(data).decode() for name, data in files.items()}


def zipped(package: District, **kw) -> dict[str, str]:
    return {"package.zip": base64.b64encode(package.zip(**kw)).decode()}


def generated() -> District:
    return District.generate(SCHOOLS, students_per_school=4, classes_per_school=2)


def holding(session, value: str) -> list[str]:
    """Every table.column of identity's database whose text (dates too) contains ``value``."""
    metadata = MetaData()
    metadata.reflect(bind=session.get_bind())
    hits = []
    for table in metadata.sorted_tables:
        for column in table.columns:
            n = session.scalar(select(func.count()).select_from(table).where(cast(column, Text).contains(value)))
            if n:
                hits.append(f"{table.name}.{column.name}")
    return hits


def links(session) -> set[tuple[str, str]]:
    """(staff email, student roster_key) of every serves link."""
    rows = session.execute(select(User.email, Student.roster_key).join(ServesLink, ServesLink.user_id == User.id)
                           .join(Student, Student.id == ServesLink.student_id)).all()
    return {tuple(r) for r in rows}


def test_package_sets_up_both_schools_with_the_serves_links_of_the_enrollments(service, session, district):
    package = generated()
    result = service.import_oneroster(district["district_admin"], zipped(package), {"contacts_authorised": True})
    assert result["errors"] == [] and result["can_import"] is True and result["imported"] is True
    assert result["students"]["created"] == 8 and result["contacts"]["created"] == 8
    for n in (0, 1):
        keys = set(session.scalars(select(Student.roster_key).where(Student.tenant_id == district[n])))
        assert keys == set(package.student_ids(n))
    # Class c-0-0 (teacher t-0-0 = teacher0.0@sis.example) holds students 0 and 2 of North;
    # class c-1-1 (t-1-1 = teacher1.1@) students 1 and 3 of South. No other teacher has an account.
    assert links(session) == {("teacher0.0@sis.example", "s-0-0"), ("teacher0.0@sis.example", "s-0-2"),
                              ("teacher1.1@sis.example", "s-1-1"), ("teacher1.1@sis.example", "s-1-3")}
    assert result["serves_links"] == {"added": 4, "removed": 0, "unchanged": 0}
    assert result["staff"]["matched"] == 2 and result["staff"]["unmatched"] == 2
    # The teacher sees exactly the students the SIS says they teach.
    seen = service.list_students(district["teacher0"], {})["items"]
    assert sorted(s["roster_key"] for s in seen) == ["s-0-0", "s-0-2"]
    # Guardians became contacts of their students, authorised as the administrator confirmed.
    contact = session.scalar(select(FamilyContact).join(Student).where(Student.roster_key == "s-0-1"))
    assert (contact.name, contact.relationship_to_student, contact.email, contact.mobile, contact.authorised) == (
        "Parent1 Family0x1", "parent", "parent0.1@family.example", "+15550000001", True)
    record = session.scalar(select(RosterImportRecord))
    assert (record.kind, record.contacts_authorised, record.actor_user_id) == (
        "oneroster", True, district["district_admin"]["user_id"])
    assert record.package_sha256 == result["package_sha256"]
    # The tenants remember the orgs' sourcedIds.
    assert session.get(Tenant, district[1]).sis_sourced_id == "org-school-1"
    assert session.get(Tenant, district["district"]).sis_sourced_id == "org-district"


def test_demographics_and_dropped_columns_are_stored_nowhere(service, session, district):
    package = generated()
    result = service.import_oneroster(district["district_admin"], zipped(package))
    assert result["files_not_read"] == ["demographics.csv"]
    assert "demographics.csv" not in result["files_read"]
    dropped = {(d["file"], d["column"]): d["values"] for d in result["columns_dropped"]}
    assert dropped[("users.csv", "pronouns")] == 12 and dropped[("users.csv", "password")] == 12
    assert dropped[("users.csv", "metadata.homeAddress")] == 16
    assert all(isinstance(d["values"], int) for d in result["columns_dropped"])  # counts, never values
    assert holding(session, "Family0x1") != []  # the scan finds what was kept...
    marker = package.marker
    assert holding(session, marker) == []  # ...and nothing of demographics, pronouns, passwords, addresses
    assert holding(session, "2012-03-0") == []  # no birth date was asked for
    assert holding(session, "students.example") == []  # a minor's own email is not kept
    assert session.scalar(select(func.count()).select_from(Student).where(Student.date_of_birth.is_not(None))) == 0


def test_birth_dates_only_when_the_school_asks(service, session, district):
    result = service.import_oneroster(district["district_admin"], zipped(generated()), {"birth_dates": True})
    assert "demographics.csv" in result["files_read"]
    assert {d["column"] for d in result["columns_dropped"] if d["file"] == "demographics.csv"} >= {
        "sex", "hispanicOrLatinoEthnicity", "cityOfBirth"}
    assert session.scalar(select(Student.date_of_birth).where(Student.roster_key == "s-0-2")).isoformat() == "2012-03-03"
    assert holding(session, generated().marker) == []


def test_reimporting_the_same_package_changes_nothing(service, session, district):
    package = generated()
    service.import_oneroster(district["district_admin"], zipped(package), {"contacts_authorised": True})
    before = [session.scalar(select(func.count()).select_from(m)) for m in (Student, FamilyContact, ServesLink, SisEnrollment)]
    again = service.import_oneroster(district["district_admin"], zipped(package), {"contacts_authorised": True})
    assert again["students"] == {"created": 0, "updated": 0, "unchanged": 8, "left": 0, "returned": 0}
    assert again["contacts"] == {"created": 0, "updated": 0, "unchanged": 8, "removed": 0}
    assert again["serves_links"] == {"added": 0, "removed": 0, "unchanged": 4}
    assert before == [session.scalar(select(func.count()).select_from(m)) for m in (Student, FamilyContact, ServesLink, SisEnrollment)]


def test_bulk_marks_missing_students_left_and_their_links_go(service, session, district):
    package = generated()
    service.import_oneroster(district["district_admin"], zipped(package))
    package.users = [u for u in package.users if u["sourcedId"] not in ("s-0-0", "g-0-0")]
    package.roles = [r for r in package.roles if r["userSourcedId"] not in ("s-0-0", "g-0-0")]
    package.enrollments = [e for e in package.enrollments if e["userSourcedId"] != "s-0-0"]
    package.demographics = [d for d in package.demographics if d["sourcedId"] != "s-0-0"]
    result = service.import_oneroster(district["district_admin"], zipped(package))
    assert result["errors"] == []
    assert result["students"]["left"] == 1 and result["serves_links"]["removed"] == 1
    left = session.scalar(select(Student).where(Student.roster_key == "s-0-0"))
    assert left is not None and left.left_at is not None  # marked, not deleted
    assert ("teacher0.0@sis.example", "s-0-0") not in links(session)


def test_delta_applies_its_changes_only(service, session, district):
    service.import_oneroster(district["district_admin"], zipped(generated()))
    delta = District(name="Riverside District", schools=[{"sourcedId": f"org-school-{n}", "name": s} for n, s in enumerate(SCHOOLS)],
                     users=[{"sourcedId": "s-0-2", "givenName": "Renamed", "familyName": "Family0x2", "grades": "05"},
                            {"sourcedId": "s-1-1", "status": "tobedeleted", "givenName": "Student1", "familyName": "Family1x1"},
                            {"sourcedId": "s-0-9", "givenName": "Newcomer", "familyName": "Family0x9", "grades": "03"}],
                     roles=[{"sourcedId": "r-s-0-9", "userSourcedId": "s-0-9", "roleType": "primary", "role": "student",
                             "orgSourcedId": "org-school-0"}],
                     classes=[],
                     enrollments=[{"sourcedId": "e-c-0-0-s-0-9", "classSourcedId": "c-0-0", "schoolSourcedId": "org-school-0",
                                   "userSourcedId": "s-0-9", "role": "student"},
                                  {"sourcedId": "e-c-0-0-s-0-2", "status": "tobedeleted", "classSourcedId": "c-0-0",
                                   "schoolSourcedId": "org-school-0", "userSourcedId": "s-0-2", "role": "student"}],
                     demographics=[], mode="delta")
    files = delta.files({"file.classes": "absent", "file.academicSessions": "absent", "file.demographics": "absent"})
    del files["classes.csv"], files["demographics.csv"]
    result = service.import_oneroster(district["district_admin"], upload(files))
    assert result["errors"] == [], result["errors"]
    assert result["students"]["created"] == 1 and result["students"]["updated"] == 1 and result["students"]["left"] == 1
    assert session.scalar(select(Student.first_name).where(Student.roster_key == "s-0-2")) == "Renamed"
    assert session.scalar(select(Student.left_at).where(Student.roster_key == "s-1-1")) is not None
    # s-0-0 was not in the delta: untouched, and its link stays; s-0-2 left class c-0-0, s-0-9 joined it.
    assert session.scalar(select(Student.left_at).where(Student.roster_key == "s-0-0")) is None
    assert {pair for pair in links(session) if pair[1].startswith("s-0-")} == {
        ("teacher0.0@sis.example", "s-0-0"), ("teacher0.0@sis.example", "s-0-9")}
    # Students the delta does not name keep their contacts.
    assert session.scalar(select(func.count()).select_from(FamilyContact)) == 8


def test_a_school_admin_imports_only_their_school_and_the_rest_is_reported(service, session, district):
    result = service.import_oneroster(district["north_admin"], zipped(generated()))
    assert result["students"]["created"] == 4
    assert set(session.scalars(select(Student.tenant_id))) == {district[0]}
    skipped = {s["org_sourced_id"]: s for s in result["skipped"]}
    assert skipped["org-school-1"]["users"] == 6 and skipped["org-school-1"]["enrollments"] == 6
    assert skipped["org-school-1"]["classes"] == 2 and skipped["org-school-1"]["reason"] == "not a school you manage"


def test_contacts_are_not_authorised_unless_the_administrator_confirms(service, session, district):
    service.import_oneroster(district["district_admin"], zipped(generated()))
    assert set(session.scalars(select(FamilyContact.authorised))) == {False}
    assert session.scalar(select(RosterImportRecord.contacts_authorised)) is False


def test_student_numbers_only_where_the_school_has_ids_on(service, session, district):
    service.update_tenant_settings(district["district_admin"], district[1], {"student_ids_enabled": False})
    service.import_oneroster(district["district_admin"], zipped(generated()))
    numbers = dict(session.execute(select(Student.roster_key, Student.student_number)).all())
    assert numbers["s-0-1"] == "ID0000001" and numbers["s-1-1"] is None


def test_preview_stores_nothing(service, session, district):
    result = service.preview_oneroster(district["district_admin"], zipped(generated()))
    assert result["preview"] is True and result["students"]["created"] == 8
    assert session.scalar(select(func.count()).select_from(Student)) == 0
    assert session.scalar(select(func.count()).select_from(RosterImportRecord)) == 0
    assert session.get(Tenant, district[0]).sis_sourced_id is None


@pytest.mark.parametrize("manifest, code", [({"oneroster.version": "1.1"}, "wrong_version"),
                                            ({"oneroster.version": ""}, "wrong_version")])
def test_wrong_version_is_refused(service, district, manifest, code):
    with pytest.raises(RosterRejected) as refused:
        service.preview_oneroster(district["district_admin"], zipped(generated(), manifest=manifest))
    assert refused.value.code == code


def test_missing_manifest_is_refused(service, district):
    files = generated().files()
    del files["manifest.csv"]
    with pytest.raises(RosterRejected) as refused:
        service.import_oneroster(district["district_admin"], upload(files))
    assert refused.value.code == "bad_package" and "manifest.csv" in refused.value.message


def test_broken_references_and_duplicates_are_reported_by_row_and_nothing_is_applied(service, session, district):
    package = generated()
    package.enrollments.append({"sourcedId": "e-broken", "classSourcedId": "c-nowhere", "schoolSourcedId": "org-school-0",
                                "userSourcedId": "s-0-0", "role": "student"})
    package.users.append(dict(package.users[-1]))  # a duplicate sourcedId
    package.roles.append({"sourcedId": "r-ghost", "userSourcedId": "ghost", "roleType": "primary", "role": "student",
                          "orgSourcedId": "org-school-0"})
    files = package.files()
    preview = service.preview_oneroster(district["district_admin"], upload(files))
    assert preview["can_import"] is False
    found = {(e["file"], e["row"], e["column"]) for e in preview["errors"]}
    users_rows = len(package.users) + 1  # the header is row 1
    assert ("users.csv", users_rows, "sourcedId") in found
    assert ("enrollments.csv", len(package.enrollments) + 1, "classSourcedId") in found
    assert ("roles.csv", len(package.roles) + 1, "userSourcedId") in found
    refused = service.import_oneroster(district["district_admin"], upload(files))
    assert (refused["imported"], refused["can_import"]) == (False, False)
    assert refused["errors"] == preview["errors"]
    for model in (Student, FamilyContact, ServesLink, SisEnrollment, RosterImportRecord):
        assert session.scalar(select(func.count()).select_from(model)) == 0, model
    assert session.get(Tenant, district[0]).sis_sourced_id is None


def test_a_file_the_manifest_declares_but_the_package_lacks(service, district):
    files = generated().files()
    del files["enrollments.csv"]
    preview = service.preview_oneroster(district["district_admin"], upload(files))
    assert {"file": "enrollments.csv", "row": None, "column": None,
            "message": "the manifest declares it bulk but the package has no enrollments.csv"} in preview["errors"]


def test_teachers_cannot_import(service, district):
    from weintervene.errors import Forbidden

    with pytest.raises(Forbidden):
        service.preview_oneroster(district["teacher0"], zipped(generated()))


# -- the roster CSV's column mapping -----------------------------------------

SIS_CSV = "Student ID,Given,Surname,Grade Level,Home Address\nA1,Ana,Lopez,5,12 Elm Street\n"


def test_a_saved_mapping_reads_the_sis_headers(service, session, district):
    admin = district["north_admin"]
    with pytest.raises(RosterRejected) as refused:
        service.preview_roster(admin, base64.b64encode(SIS_CSV.encode()).decode())
    assert refused.value.code == "missing_columns"
    assert [h["header"] for h in refused.value.details["headers"]] == ["Student ID", "Given", "Surname", "Grade Level", "Home Address"]
    saved = service.save_roster_column_mapping(admin, {"mapping": {
        "Student ID": "student_key", "Given": "first_name", "Surname": "last_name", "Grade Level": "grade"}})
    assert service.roster_column_mapping(admin)["mapping"] == saved["mapping"]
    result = service.import_roster(admin, base64.b64encode(SIS_CSV.encode()).decode())
    assert result["columns_kept"] == ["student_key", "first_name", "last_name", "grade"]
    assert result["columns_dropped"] == ["Home Address"]
    assert {"header": "Student ID", "field": "student_key"} in result["headers"]
    assert session.scalar(select(Student.first_name).where(Student.roster_key == "A1")) == "Ana"
    assert holding(session, "12 Elm Street") == []


def test_a_mapping_may_drop_a_column_and_may_not_map_two_headers_to_one_field(service, district):
    from weintervene.errors import BadRequest

    admin = district["north_admin"]
    with pytest.raises(BadRequest) as refused:
        service.save_roster_column_mapping(admin, {"mapping": {"Given": "first_name", "Nick": "first_name"}})
    assert refused.value.code == "invalid_input"
    service.save_roster_column_mapping(admin, {"mapping": {"grade": None}})
    text = "student_key,first_name,last_name,grade\nB1,Bo,Ng,5\n"
    result = service.preview_roster(admin, base64.b64encode(text.encode()).decode())
    assert result["columns_dropped"] == ["grade"]
    with pytest.raises(BadRequest):
        service.save_roster_column_mapping(admin, {"mapping": {"Given": "home_address"}})
    # Mappings are per school: another school's admin does not read North's.
    assert service.roster_column_mapping(admin)["mapping"] == {"grade": None}


def test_left_students_are_what_the_retention_policy_deletes_and_their_enrollments_go_with_them(service, session, district):
    from datetime import timedelta

    from weintervene.contracts import DeletionRequested
    from weintervene.db import utcnow

    package = generated()
    service.import_oneroster(district["district_admin"], zipped(package))
    package.users = [u for u in package.users if u["sourcedId"] not in ("s-0-0", "g-0-0")]
    package.roles = [r for r in package.roles if r["userSourcedId"] not in ("s-0-0", "g-0-0")]
    package.enrollments = [e for e in package.enrollments if e["userSourcedId"] != "s-0-0"]
    service.import_oneroster(district["district_admin"], zipped(package))
    left = session.scalar(select(Student).where(Student.roster_key == "s-0-0"))
    assert service.left_students(district["district"], (utcnow() - timedelta(days=30)).isoformat()) == []
    found = service.left_students(district["district"], (utcnow() + timedelta(seconds=1)).isoformat())
    assert found == [{"id": left.id, "tenant_id": district[0]}]
    # The student's deletion (what retention then sends) takes their SIS enrollment rows too.
    session.add(SisEnrollment(tenant_id=district[0], sourced_id="e-old", class_sourced_id="c-0-0",
                              user_sourced_id="s-0-0", role="student"))
    session.commit()
    request = DeletionRequested().dump({"request_id": "00000000-0000-4000-8000-000000000001", "scope": "student",
                                        "tenant_id": district[0], "subject_id": left.id})
    service.fence_subject(request["request_id"], "student", district[0], left.id)
    counts = service.delete_for(DeletionRequested().load(request))
    assert counts["students"] == 1 and counts["sis_enrollments"] == 1
    assert session.scalar(select(func.count()).select_from(SisEnrollment).where(SisEnrollment.user_sourced_id == "s-0-0")) == 0
    with pytest.raises(Exception):
        service.left_students(district["district"], "yesterday")


def test_a_zip_bomb_is_refused_before_inflating(service, district):
    import io
    import zipfile

    from weintervene.errors import PayloadTooLarge

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.csv", generated().files()["manifest.csv"])
        archive.writestr("users.csv", b"," * (40 << 20))  # 40 MiB of commas: ~40 KiB zipped
    with pytest.raises(PayloadTooLarge) as refused:
        service.preview_oneroster(district["district_admin"], {"p.zip": base64.b64encode(out.getvalue()).decode()})
    assert "times its compressed size" in refused.value.message
    with pytest.raises(RosterRejected) as not_zip:
        service.preview_oneroster(district["district_admin"], {"p.zip": base64.b64encode(b"PK\x03\x04 not really").decode()})
    assert not_zip.value.code == "bad_package"


def test_a_delta_updates_and_removes_guardians_of_students_it_does_not_list(service, session, district):
    service.import_oneroster(district["district_admin"], zipped(generated()))
    delta = District(name="Riverside District", schools=[{"sourcedId": f"org-school-{n}", "name": s} for n, s in enumerate(SCHOOLS)],
                     users=[{"sourcedId": "g-0-1", "givenName": "Parent1", "familyName": "Family0x1",
                             "email": "new.address@family.example"},
                            {"sourcedId": "g-0-2", "status": "tobedeleted", "givenName": "Parent2", "familyName": "Family0x2"}],
                     roles=[], classes=[], enrollments=[], demographics=[], mode="delta")
    files = delta.files({f"file.{n}": "absent" for n in ("classes", "academicSessions", "demographics", "roles", "enrollments")})
    for name in ("classes.csv", "academicSessions.csv", "demographics.csv", "roles.csv", "enrollments.csv"):
        del files[name]
    result = service.import_oneroster(district["district_admin"], upload(files))
    assert result["errors"] == [], result["errors"]
    assert result["contacts"]["updated"] == 1 and result["contacts"]["removed"] == 1
    assert session.scalar(select(FamilyContact.email).where(FamilyContact.sis_sourced_id == "g-0-1")) == "new.address@family.example"
    assert session.scalar(select(func.count()).select_from(FamilyContact).where(FamilyContact.sis_sourced_id == "g-0-2")) == 0
    assert session.scalar(select(func.count()).select_from(Student).where(Student.left_at.is_not(None))) == 0
    # A delta row with tobedeleted in a bulk file is refused.
    bulk = generated()
    bulk.users[0]["status"] = "tobedeleted"
    preview = service.preview_oneroster(district["district_admin"], zipped(bulk))
    assert {"file": "users.csv", "row": 2, "column": "status",
            "message": "tobedeleted belongs in a delta file, not a bulk one"} in preview["errors"]
