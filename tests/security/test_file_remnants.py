"""Deleted means gone from the database files too (issue 16).

A parent's verified opt-out through the API, then a scan of the raw database files for
the student's name, the contact's email and mobile: none found. On PostgreSQL (the
shared ``system``) every file of each service's database directory, read after a
``CHECKPOINT`` (``pg_ls_dir`` / ``pg_read_binary_file``: no reading as another OS user);
on SQLite (a system of this module's own, in a subprocess) every file of its data folder,
the ``-wal`` and ``-shm`` included. Before the opt-out the same scan must find them:
the scan can see what it looks for.

What the product does about it: ``weintervene.remnants`` (docs/SECURITY.md, "Deleted
from the files").
"""
from __future__ import annotations

import random
import time

import pytest

from tests.integration.test_retention import completed, wait_for
from tests.integration.test_retention_broker_restart import settings_environment, wait_healthy
from tests.support.db_files import postgres_database_files, sqlite_folder_files
from tests.conftest import _test_settings
from tests.support.infra import RunningSystem, ServiceProcess, Vhost, random_suffix
from tests.support.people import bootstrap
from weintervene.config import SERVICES
from weintervene.contracts import DATA_SERVICES

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


# -- the subject ----------------------------------------------------------------------

def a_subject() -> dict:
    """Strings found nowhere else: the student's names, the contact's email and mobile."""
    tag = random_suffix(6)
    return {
        "key": f"K{random_suffix(8)}",
        "first": f"Quillamina{tag}", "last": f"Vortigern{tag}",
        "contact": f"Ottoline{tag} Brackwater",
        "email": f"ottoline.{tag}@remnant-family.example",
        "mobile": "+1555" + "".join(random.choice("0123456789") for _ in range(7)),
    }


def needles(subject: dict) -> dict[str, list[bytes]]:
    """What must not be in any file, per value, in every encoding it could be stored in:
    UTF-8 (SQLite's and PostgreSQL's text), UTF-16 both ways (a SQLite database may be
    UTF-16), matched case-blind; the mobile also without its "+1". ``subject["staff"]``
    (a termination): the school's users' emails too."""
    values = {
        "first name": subject["first"], "last name": subject["last"], "contact name": subject["contact"],
        "email": subject["email"], "mobile": subject["mobile"], "mobile digits": subject["mobile"][2:],
        **subject.get("staff", {}),
    }
    return {label: [value.lower().encode(e) for e in ("utf-8", "utf-16-le", "utf-16-be")]
            for label, value in values.items()}


def found_in(files: dict[str, bytes], subject: dict) -> list[tuple[str, str]]:
    """``[(file, what)]`` for every file holding one of the subject's values."""
    hits = []
    wanted = needles(subject)
    for name, data in files.items():
        lowered = data.lower()
        for label, encodings in wanted.items():
            if any(needle in lowered for needle in encodings):
                hits.append((name, label))
    return hits


# -- the files ------------------------------------------------------------------------

def postgres_files(system) -> dict[str, bytes]:
    return {f"{service}:{name}": data for service in SERVICES
            for name, data in postgres_database_files(system.databases.url(service)).items()}


def database_files(system) -> dict[str, bytes]:
    return postgres_files(system) if system.databases is not None else sqlite_folder_files(system.settings.data_dir)


# -- the journey ----------------------------------------------------------------------

def roster_csv(teacher_email: str, s: dict) -> bytes:
    return ("student_key,first_name,last_name,grade,contact_name,contact_relationship,contact_email,"
            "contact_mobile,contact_language,contact_authorised,staff_email\n"
            f"{s['key']},{s['first']},{s['last']},7,{s['contact']},mother,{s['email']},{s['mobile']},en,yes,"
            f"{teacher_email}\n").encode()


def make_shares_for(system, subject: dict):
    """An operator, a school with its admin and teacher, the subject on its roster, and two
    shares with a note naming the student, one by email and one by SMS, both delivered.
    Returns (operator, school id, admin, teacher, auditor)."""
    operator, auditor = bootstrap(system, "operator"), bootstrap(system, "auditor")
    r = operator.post(system.url("/api/v1/tenants"), json={"kind": "school", "name": f"School {random_suffix()}"})
    assert r.status_code == 201, r.text
    school = r.json()["id"]
    admin, teacher = bootstrap(system, "school_admin", school), bootstrap(system, "teacher", school)
    r = admin.post(system.url("/api/v1/rosters/import"), data=roster_csv(teacher.user["email"], subject),
                   headers={"Content-Type": "text/csv"})
    assert r.status_code in (200, 201), r.text
    [student] = [s for s in admin.get(system.url("/api/v1/students?per_page=100")).json()["items"]
                 if s["first_name"] == subject["first"]]
    subject["id"] = student["id"]
    contacts = admin.get(system.url(f"/api/v1/students/{student['id']}")).json()["contacts"]
    assert [c["mobile"] for c in contacts] == [subject["mobile"]], contacts
    r = operator.post(system.url("/api/v1/directory/services"), json={
        "name": f"Homework Club {random_suffix()}", "organization_name": "Library",
        "description": "After-school tutoring", "cost": "free", "languages": ["en"],
    })
    assert r.status_code == 201, r.text
    service_id = r.json()["id"]
    for channel in ("email", "sms"):
        r = teacher.post(system.url("/api/v1/referrals"), json={
            "student_id": student["id"], "contact_ids": [contacts[0]["id"]], "service_ids": [service_id],
            "channel": channel, "note": f"{subject['first']} {subject['last']} asked about tutoring",
        })
        assert r.status_code == 201, r.text
    system.smtp.wait_for(lambda m: subject["email"] in str(m["To"]), timeout=20)
    deadline = time.monotonic() + 20
    while not any(m["form"].get("To") == subject["mobile"] for m in system.sms.messages()):
        assert time.monotonic() < deadline, "the SMS did not arrive"
        time.sleep(0.1)
    return operator, school, admin, teacher, auditor


def completed_deletion(system, requester, auditor, body: dict) -> dict:
    r = requester.post(system.url("/api/v1/deletion-requests"), json=body)
    assert r.status_code == 202, r.text
    # The scrub waits for every transaction older than the deletion on the whole server
    # (weintervene.remnants): on a shared server, others' long transactions too.
    record = wait_for(system, auditor, r.json()["id"], completed, timeout=120)
    assert sorted(c["service"] for c in record["confirmations"]) == sorted(DATA_SERVICES)
    return record


def check_an_opt_out_leaves_nothing_in_the_files(system):
    subject = a_subject()
    _operator, _school, admin, teacher, auditor = make_shares_for(system, subject)
    before = {what for _file, what in found_in(database_files(system), subject)}
    # The scan sees them while they are stored (the mobile is stored with its "+1").
    assert before >= {"first name", "last name", "contact name", "email", "mobile"}, before
    completed_deletion(system, admin, auditor, {
        "scope": "student", "subject_id": subject["id"], "reason": "parent_opt_out",
        "verification": {"method": "in_person_photo_id", "verified_by": teacher.user["id"]},
    })
    left = found_in(database_files(system), subject)
    assert left == [], "\n".join(f"{what} in {name}" for name, what in left)


# -- PostgreSQL (the shared system: SQLite only where no PostgreSQL is reachable) ----------

def test_an_opt_out_leaves_nothing_in_the_database_files(system):
    check_an_opt_out_leaves_nothing_in_the_files(system)


def test_a_termination_leaves_nothing_in_the_database_files(system):
    """The school ends its contract: its students, contacts and users (their emails, in
    identity's unique index too) are gone from the files."""
    subject = a_subject()
    operator, school, admin, teacher, auditor = make_shares_for(system, subject)
    subject["staff"] = {"admin's email": admin.user["email"], "teacher's email": teacher.user["email"]}
    before = {what for _file, what in found_in(database_files(system), subject)}
    assert before >= {"first name", "email", "mobile", "admin's email", "teacher's email"}, before
    completed_deletion(system, operator, auditor, {"scope": "tenant", "subject_id": school, "reason": "contract_ended"})
    left = found_in(database_files(system), subject)
    assert left == [], "\n".join(f"{what} in {name}" for name, what in left)


# -- SQLite (a system of this module's own) ---------------------------------------------

@pytest.fixture(scope="module")
def sqlite_system(smtp_sink, sms_endpoint, tmp_path_factory):
    """Every service and the gateway in one ``weintervene run`` process on SQLite files."""
    folder = tmp_path_factory.mktemp("sqlite_system")
    vhost = Vhost()
    # The suite's own settings for a system (tests/conftest.py), on SQLite under data/.
    settings = _test_settings(folder / "data", vhost.uri, smtp_sink.port, sms_endpoint.base_url, "")
    process = ServiceProcess(list(SERVICES) + ["gateway"], settings_environment(settings), folder)
    system = RunningSystem(base_url=settings.public_base_url, settings=settings, vhost=vhost, smtp=smtp_sink,
                           sms=sms_endpoint, runner=process, databases=None)
    try:
        process.start()
        wait_healthy(system, timeout=60)
        yield system
    finally:
        process.stop()
        vhost.delete()


def test_an_opt_out_leaves_nothing_in_the_sqlite_files_or_their_wal(sqlite_system):
    check_an_opt_out_leaves_nothing_in_the_files(sqlite_system)
