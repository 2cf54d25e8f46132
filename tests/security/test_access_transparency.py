"""Access transparency: what a platform account does to a tenant is in that tenant's log,
readable and exportable (CSV) by its admins only, and emailed to them.

The operator creates a school and its first admin, disables a teacher, changes a school's
settings, sets its retention policy (retention reports it by event) and terminates a
school (retention reports it with the fence, before the deletion). Operators never
export a tenant's data (exports are the data owner's, with student data), so no export
by a platform account exists to be logged; a tenant admin's own export is not a platform
action. Directory imports and edits by operators touch the global directory only
(operators neither see nor edit a tenant's services), so they name no tenant.
"""
from __future__ import annotations

import csv
import io
import time

import pytest
import requests

from tests.integration.test_retention import completed, wait_for
from tests.support.identity_db import execute
from tests.support.infra import random_suffix
from tests.support.world import build_world

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(system):
    return build_world(system)


def log_of(system, world, who, **params):
    r = world.http(who).get(system.url("/api/v1/access-log"), params={"per_page": 200, **params}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def wait_for_entry(system, world, who, predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = log_of(system, world, who)["items"]
        hits = [e for e in items if predicate(e)]
        if hits:
            return hits[0]
        time.sleep(0.1)
    raise AssertionError(f"no such entry in {who}'s access log: {items}")


def test_an_operators_actions_reach_the_tenants_log_csv_and_inbox(system, world):
    op = world.http("operator")
    s1, admin_email = world.tenants["S1"], world.email("school_admin")

    # A teacher the school's admin creates (not a platform action: not in the log).
    teacher_email = f"t.{random_suffix()}@transparency.example"
    r = world.http("school_admin").post(system.url("/api/v1/users"), json={
        "tenant_id": s1, "email": teacher_email, "display_name": "Tess Teacher", "role": "teacher"}, timeout=10)
    assert r.status_code == 201, r.text
    teacher_id = r.json()["id"]
    assert not [e for e in log_of(system, world, "school_admin")["items"] if "Tess" in e["description"]]

    # The operator disables her, changes the school's settings and sets its retention.
    assert op.patch(system.url(f"/api/v1/users/{teacher_id}"), json={"is_active": False}, timeout=10).status_code == 200
    r = op.patch(system.url(f"/api/v1/tenants/{s1}/settings"), json={"analytics_consent": True}, timeout=10)
    assert r.status_code == 200, r.text
    r = op.post(system.url("/api/v1/retention-policies"),
                json={"tenant_id": s1, "record_kind": "login_records", "max_age_days": 400}, timeout=10)
    assert r.status_code == 201, r.text

    disabled = wait_for_entry(system, world, "school_admin", lambda e: e["action"] == "user_disabled")
    assert "Tess Teacher" in disabled["description"] and disabled["actor_role"] == "operator"
    assert disabled["actor_name"] == world.users["operator"]["auth"]["display_name"]
    assert disabled["tenant_id"] == s1
    settings = wait_for_entry(system, world, "school_admin", lambda e: e["action"] == "settings_changed")
    assert "analytics_consent" in settings["description"]
    policy = wait_for_entry(system, world, "school_admin", lambda e: e["action"] == "retention_policy_set")
    assert policy["source"] == "retention" and "login_records" in policy["description"]

    # The district's admin reads its schools' logs too; nobody else reads them.
    assert {e["id"] for e in log_of(system, world, "district_admin", tenant_id=s1)["items"]} >= {
        disabled["id"], settings["id"], policy["id"]}
    for other in ("s3_admin", "d2_admin", "program_admin"):
        assert not [e for e in log_of(system, world, other)["items"] if e["tenant_id"] == s1]
    assert log_of(system, world, "s3_admin", tenant_id=s1)["items"] == []
    for not_admin in ("teacher", "program_staff", "auditor", "operator"):
        assert world.http(not_admin).get(system.url("/api/v1/access-log"), timeout=10).status_code == 403

    # The CSV holds the same entries.
    r = world.http("school_admin").get(system.url("/api/v1/access-log/csv"), timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {disabled["id"], settings["id"], policy["id"]} <= {
        e["id"] for e in log_of(system, world, "school_admin")["items"]}
    assert {("user_disabled", disabled["description"]), ("settings_changed", settings["description"]),
            ("retention_policy_set", policy["description"])} <= {(row["action"], row["description"]) for row in rows}
    assert world.http("teacher").get(system.url("/api/v1/access-log/csv"), timeout=10).status_code == 403

    # Each action was emailed to the school's admin (and the district's), after the answer.
    for description in (disabled["description"], settings["description"], policy["description"]):
        for to in (admin_email, world.email("district_admin")):
            system.smtp.wait_for(lambda m: m["To"] == to and "access notice" in m["Subject"]
                                 and description in m.get_body(("plain",)).get_content())
    assert not [m for m in system.smtp.messages()
                if m["To"] == world.email("s3_admin") and disabled["description"] in m.get_body(("plain",)).get_content()]


def test_a_new_tenant_and_its_first_admin_are_in_its_log_and_the_csv_defuses_formulas(system, world):
    op = world.http("operator")
    name = f"=HYPERLINK(\"http://evil.example\") Academy {random_suffix(4)}"
    r = op.post(system.url("/api/v1/tenants"), json={"kind": "school", "name": name}, timeout=10)
    assert r.status_code == 201, r.text
    school = r.json()["id"]
    admin_email = f"first.admin.{random_suffix()}@transparency.example"
    r = op.post(system.url("/api/v1/users"), json={
        "tenant_id": school, "email": admin_email, "display_name": "First Admin", "role": "school_admin"}, timeout=10)
    assert r.status_code == 201 and r.json()["invited"] is True
    invitation = system.smtp.wait_for(lambda m: m["To"] == admin_email and "token=" in m.get_body(("plain",)).get_content())
    token = invitation.get_body(("plain",)).get_content().split("token=", 1)[1].split()[0]
    done = requests.post(system.url("/api/v1/password-resets/complete"),
                         json={"token": token, "new_password": "first admin passphrase 1"}, timeout=10)
    assert done.status_code == 200
    admin = system.login(admin_email, "first admin passphrase 1")

    items = admin.get(system.url("/api/v1/access-log"), timeout=10).json()["items"]
    assert {(e["action"], e["actor_role"]) for e in items} >= {("tenant_created", "operator"), ("user_created", "operator")}
    assert [e for e in items if e["action"] == "user_created" and "First Admin" in e["description"]]
    # Their own account's creation was emailed to them too (after the answer).
    system.smtp.wait_for(lambda m: m["To"] == admin_email and "access notice" in m["Subject"])

    text = admin.get(system.url("/api/v1/access-log/csv"), timeout=10).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and all(not row["tenant_name"].startswith(("=", "+", "-", "@")) for row in rows)
    assert all(row["tenant_name"].lstrip("'") == name for row in rows)


def test_a_termination_is_emailed_before_the_tenant_goes_and_its_log_goes_with_it(system, world):
    op = world.http("operator")
    r = op.post(system.url("/api/v1/tenants"), json={"kind": "program", "name": f"Ending {random_suffix(4)}"}, timeout=10)
    program = r.json()["id"]
    admin_email = f"ending.admin.{random_suffix()}@transparency.example"
    r = op.post(system.url("/api/v1/users"), json={
        "tenant_id": program, "email": admin_email, "display_name": "Ending Admin", "role": "program_admin"}, timeout=10)
    assert r.status_code == 201, r.text
    r = op.post(system.url("/api/v1/deletion-requests"),
                json={"scope": "tenant", "subject_id": program, "reason": "contract_ended"}, timeout=20)
    assert r.status_code == 202, r.text
    wait_for(system, world.http("auditor"), r.json()["id"], completed, timeout=30)
    system.smtp.wait_for(lambda m: m["To"] == admin_email and "access notice" in m["Subject"]
                         and "termination" in m.get_body(("plain",)).get_content())
    # The log named the tenant: it went with it (as did the admin's account).
    assert execute(system, "SELECT count(*) FROM access_log_entry WHERE tenant_id = :t", t=program)[0][0] == 0
    assert execute(system, "SELECT count(*) FROM mail_job WHERE tenant_id = :t", t=program)[0][0] == 0
