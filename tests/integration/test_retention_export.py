"""The data owner's export holds every row its termination deletes, in every service, and
nothing of another tenant.

Two districts, each with a school, are populated through the gateway with everything a
tenant can have: a roster (students, family contacts, serves links), shares with
deliveries (and their attempts), recipients and status history, saved lists, directory
services the school owns (with location, address, phones, hours, edit history),
analytics counters, and users with sessions, sign-in attempts and a reset link. The
first district downloads its export; the operator terminates it. Every table of every
data service is read (primary keys) before and after: each row that went is in the
archive, in its JSON and its CSV; each row in the archive went (or is a fence, which
a termination keeps on purpose); and no id of the other district appears anywhere in it.
A program's export also holds the referrals schools sent it, as its staff see them.
"""
from __future__ import annotations

import csv
import io
import json
import time
import zipfile

import pytest
from sqlalchemy import MetaData, create_engine, select

from tests.integration.test_retention import completed, wait_for
from tests.support.people import bootstrap
from tests.integration.test_retention_journeys import import_students
from tests.support.infra import random_suffix
from weintervene.contracts import DATA_SERVICES
from weintervene.export import PLUMBING_TABLES

pytestmark = pytest.mark.integration

# Rows a termination keeps on purpose (sealed, not deleted), which the export may hold.
KEPT_BY_TERMINATION = {("identity", "subject_fence")}


def _key(values) -> tuple[str, ...]:
    """A row's primary key as the archive writes it (ISO dates, text)."""
    return tuple(v.isoformat() if hasattr(v, "isoformat") else str(v) for v in values)


def primary_keys(settings) -> dict[tuple[str, str], set[tuple]]:
    """``{(service, table): {primary key}}`` for every table of every data service, as stored."""
    keys = {}
    for service in DATA_SERVICES:
        engine = create_engine(settings.database_url(service))
        try:
            metadata = MetaData()
            metadata.reflect(bind=engine)
            with engine.connect() as conn:
                for table in metadata.sorted_tables:
                    pk = list(table.primary_key.columns)
                    if table.name in PLUMBING_TABLES or not pk:
                        continue
                    keys[(service, table.name)] = {_key(row) for row in conn.execute(select(*pk))}
                    keys[(service, table.name, "pk")] = [c.name for c in pk]
        finally:
            engine.dispose()
    return keys


def archive_keys(archive: zipfile.ZipFile, pk_columns: dict) -> tuple[dict, dict]:
    """``({(service, table): {key}}`` from the JSON files, and the same from the CSV files)."""
    from_json, from_csv = {}, {}
    for name in archive.namelist():
        if name == "manifest.json":
            continue
        service, filename = name.split("/", 1)
        table, kind = filename.rsplit(".", 1)
        columns = pk_columns[(service, table, "pk")]
        if kind == "json":
            rows = json.loads(archive.read(name))
            from_json[(service, table)] = {tuple(str(r[c]) for c in columns) for r in rows}
        else:
            rows = list(csv.DictReader(io.StringIO(archive.read(name).decode())))
            from_csv[(service, table)] = {tuple(r[c] for c in columns) for r in rows}
    return from_json, from_csv


def populate(system, operator) -> dict:
    """A district and its school with every kind of record; returns the people and ids."""
    r = operator.post(system.url("/api/v1/tenants"), json={"kind": "district", "name": f"District {random_suffix()}"})
    assert r.status_code == 201, r.text
    district_id = r.json()["id"]
    district_admin = bootstrap(system, "district_admin", district_id)
    r = operator.post(system.url("/api/v1/tenants"), json={
        "kind": "school", "name": f"School {random_suffix()}", "parent_id": district_id})
    assert r.status_code == 201, r.text
    school_id = r.json()["id"]
    admin = bootstrap(system, "school_admin", school_id)
    teacher = bootstrap(system, "teacher", school_id)
    students = import_students(system, admin, teacher, 3)
    # A failed sign-in and a reset link: identity's records of the users.
    assert system.client().post(system.url("/api/v1/sessions"), json={
        "email": teacher.user["email"], "password": "not the password at all"}).status_code == 401
    assert system.client().post(system.url("/api/v1/password-resets"),
                                 json={"email": admin.user["email"]}).status_code == 202
    # The school's own service, with everything under it.
    r = admin.post(system.url("/api/v1/directory/services"), json={
        "name": f"Study Hall {random_suffix()}", "organization_name": f"School PTA {random_suffix()}",
        "description": "Homework help", "cost": "free", "languages": ["en", "es"], "phones": ["202-555-0142"],
        "location": {"name": "Room 12", "address": {"address_1": "1 School St", "city": "Washington",
                                                    "state_province": "DC", "postal_code": "20001"},
                     "latitude": 38.9, "longitude": -77.0},
        "schedules": [{"days": ["MO", "WE"], "opens_at": "15:00", "closes_at": "17:00"}],
    })
    assert r.status_code == 201, r.text
    service_id = r.json()["id"]
    assert admin.patch(system.url(f"/api/v1/directory/services/{service_id}"),
                       json={"description": "Homework help, grades 6-8"}).status_code == 200
    referral_ids = []
    for student in students:
        r = teacher.post(system.url("/api/v1/referrals"), json={
            "student_id": student["id"], "contact_ids": student["contact_ids"][:1], "service_ids": [service_id],
            "channel": "email", "note": "Ask for the coordinator"})
        assert r.status_code == 201, r.text
        referral_ids += [item["id"] for item in r.json()["items"]]
    r = teacher.post(system.url(f"/api/v1/referrals/{referral_ids[0]}/status"),
                     json={"status": "completed", "outcome": "connected", "note": "Enrolled"})
    assert r.status_code == 200, r.text
    # An operator's break-glass recovery request for the school: the school's record too.
    r = operator.post(system.url("/api/v1/break-glass"), json={
        "tenant_id": school_id, "email": f"new-head-{random_suffix()}@school.example", "display_name": "New Head",
        "reason": "The principal left; the district asked us by phone."})
    assert r.status_code == 201, r.text
    r = teacher.post(system.url("/api/v1/lists"), json={"name": "After school", "shared": True,
                                                        "service_ids": [service_id]})
    assert r.status_code == 201, r.text
    return {"district_id": district_id, "school_id": school_id, "district_admin": district_admin,
            "admin": admin, "teacher": teacher, "students": students, "service_id": service_id,
            "referral_ids": referral_ids, "list_id": r.json()["id"]}


def settled(system, tenant) -> None:
    """Wait until the shares' emails went out and analytics counted them (no row appears later)."""
    deadline = time.monotonic() + 30
    while True:
        states = [d["state"] for rid in tenant["referral_ids"]
                  for d in tenant["teacher"].get(system.url(f"/api/v1/referrals/{rid}")).json().get("deliveries", [])]
        counted = _count_rows(system, "analytics", "daily_share_count", tenant["school_id"])
        if states and all(s in ("sent", "delivered", "failed") for s in states) and counted:
            return
        assert time.monotonic() < deadline, (states, counted)
        time.sleep(0.2)


def _count_rows(system, service, table, tenant_id) -> int:
    engine = create_engine(system.settings.database_url(service))
    try:
        metadata = MetaData()
        metadata.reflect(bind=engine, only=[table])
        t = metadata.tables[table]
        with engine.connect() as conn:
            return len(conn.execute(select(t).where(t.c.tenant_id == tenant_id)).all())
    finally:
        engine.dispose()


def test_the_export_holds_every_row_the_termination_deletes_and_nothing_of_another_tenant(
        system, operator, auditor):
    leaving, staying = populate(system, operator), populate(system, operator)
    settled(system, leaving)
    settled(system, staying)
    admin = leaving["district_admin"]
    r = admin.post(system.url("/api/v1/exports"), json={"tenant_id": leaving["district_id"]})
    assert r.status_code == 201, r.text
    export_id = r.json()["id"]
    r = admin.get(system.url(f"/api/v1/exports/{export_id}"))
    assert r.status_code == 200, r.text
    archive = zipfile.ZipFile(io.BytesIO(r.content))

    before = primary_keys(system.settings)
    r = operator.post(system.url("/api/v1/deletion-requests"), json={
        "scope": "tenant", "subject_id": leaving["district_id"], "reason": "contract_ended", "export_id": export_id})
    assert r.status_code == 202, r.text
    record = wait_for(system, auditor, r.json()["id"], completed, timeout=30)
    after = primary_keys(system.settings)

    deleted = {table: before[table] - after.get(table, set()) for table in before if len(table) == 2}
    from_json, from_csv = archive_keys(archive, before)
    # The child tables the export used to leave out are there, and everything else deleted.
    for table in [("referrals", "status_change"), ("referrals", "delivery"), ("referrals", "delivery_attempt"),
                  ("referrals", "share_recipient"), ("referrals", "saved_list_item"), ("identity", "user_session"),
                  ("identity", "login_attempt"), ("identity", "password_reset"), ("directory", "address"),
                  ("directory", "phone"), ("directory", "schedule"), ("directory", "metadata"),
                  ("analytics", "daily_share_count"), ("identity", "break_glass_request")]:
        assert deleted.get(table), f"the scenario deletes no {table} row: it proves nothing about it"
    for table, keys in deleted.items():
        assert keys <= from_json.get(table, set()), (table, keys - from_json.get(table, set()))
        assert keys <= from_csv.get(table, set()), (table, keys - from_csv.get(table, set()))
    # Nothing more: every exported row was the tenant's (it went), or is a fence kept on purpose.
    for table, keys in from_json.items():
        if table not in KEPT_BY_TERMINATION:
            assert keys <= deleted.get(table, set()), (table, keys - deleted.get(table, set()))
        assert from_csv[table] == keys, table
    everything = b"".join(archive.read(n) for n in archive.namelist())
    other = [staying["district_id"], staying["school_id"], staying["service_id"], staying["list_id"],
             *staying["referral_ids"], staying["teacher"].user["id"], staying["admin"].user["email"],
             *(s["id"] for s in staying["students"]), *(c for s in staying["students"] for c in s["contact_ids"])]
    assert [value for value in other if value.encode() in everything] == []
    # The manifest counts what the archive holds, and the record counts what went.
    manifest = json.loads(archive.read("manifest.json"))
    assert {(svc, t): n for svc, tables in manifest["tables"].items() for t, n in tables.items()} == {
        table: len(keys) for table, keys in from_json.items()}
    assert sorted(c["service"] for c in record["confirmations"]) == sorted(DATA_SERVICES)
    # The other district kept everything.
    for table, keys in deleted.items():
        assert all(staying["school_id"] not in key for key in keys), table
    assert staying["admin"].get(system.url(f"/api/v1/students/{staying['students'][0]['id']}")).status_code == 200


def test_a_programs_export_holds_the_referrals_it_received_as_its_staff_see_them(system, operator):
    from tests.integration.test_journey_7 import CONSENT, make_program
    from tests.integration.test_retention_journeys import make_school

    program_id, program_admin, program_staff = make_program(system, operator)
    _other_id, other_program_admin, _ = make_program(system, operator)
    _school_id, school_admin, teacher = make_school(system, operator)
    [student] = import_students(system, school_admin, teacher, 1)
    r = program_admin.post(system.url("/api/v1/directory/services"), json={
        "name": f"Mentoring {random_suffix()}", "organization_name": "Kestrel Youth", "published_to": "schools"})
    assert r.status_code == 201, r.text
    secret_note = f"Call the aunt {random_suffix()}"
    r = teacher.post(system.url("/api/v1/referrals"), json={
        "student_id": student["id"], "contact_ids": student["contact_ids"][:1], "service_ids": [r.json()["id"]],
        "channel": "email", "consent": CONSENT, "note": secret_note})
    assert r.status_code == 201, r.text
    [referral] = r.json()["items"]
    r = program_staff.post(system.url(f"/api/v1/referrals/{referral['id']}/status"),
                           json={"status": "accepted", "note": "Mentor found"})
    assert r.status_code == 200, r.text
    seen_in_app = program_staff.get(system.url(f"/api/v1/referrals/{referral['id']}")).json()

    def archive_of(admin, tenant_id):
        r = admin.post(system.url("/api/v1/exports"), json={"tenant_id": tenant_id})
        assert r.status_code == 201, r.text
        r = admin.get(system.url(f"/api/v1/exports/{r.json()['id']}"))
        assert r.status_code == 200, r.text
        return zipfile.ZipFile(io.BytesIO(r.content))

    archive = archive_of(program_admin, program_id)
    [exported] = json.loads(archive.read("referrals/received_referral.json"))
    # Exactly what the program's staff see in the app, but the app's own addresses.
    expected = {k: v for k, v in seen_in_app.items() if k not in ("print_url", "link_url", "link_expires_at")}
    assert exported == expected
    assert exported["student_id"] is None and exported["contact_ids"] == [] and exported["note"] is None
    assert [h["status"] for h in exported["history"]] == ["requested", "accepted"]
    assert exported["disclosed"] == seen_in_app["disclosed"]
    rows = list(csv.DictReader(io.StringIO(archive.read("referrals/received_referral.csv").decode())))
    assert [row["id"] for row in rows] == [referral["id"]]
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["tables"]["referrals"]["received_referral"] == 1
    # Nothing the school kept from the program: the student's identity, contacts, the sharer's note.
    everything = b"".join(archive.read(n) for n in archive.namelist())
    for value in (student["id"], student["last"], student["email"], *student["contact_ids"], secret_note):
        assert value.encode() not in everything, value
    # Another program received nothing.
    assert "referrals/received_referral.json" not in archive_of(other_program_admin, _other_id).namelist()
