"""Issue 16, "The platform's staff": an operator account is not a key to a tenant's students.

The break this guards against, step by step through the HTTP API: an operator created a
school-admin account for an existing school, sent its invitation to an address of their
own, set its password, and read that school's students. Now the first step is refused
(``tenant_has_administrator``), no invitation leaves, no password can be set by anyone but
its owner, and no operator request reaches a student. What an operator still does:
create a tenant's first administrator, disable any account (a security response), and ask
for a break-glass recovery that the tenant's administrators (or, with none left, a second
operator) approve. Retention's account removal follows the same line.
"""
from __future__ import annotations

import time

import pytest

from tests.support import identity_db
from tests.support.infra import random_suffix
from tests.support.people import bootstrap
from tests.support.world import build_world

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(system):
    return build_world(system)


@pytest.fixture(scope="module")
def operator(world):
    return world.http("operator")


@pytest.fixture(scope="module")
def second_operator(system):
    return bootstrap(system, "operator")


def _address(tag: str) -> str:
    return f"{tag}.{random_suffix(8)}@attacker.example"


def _code(response) -> str:
    return response.json()["error"]["code"]


def _no_mail_to(smtp_sink, address: str, wait: float = 1.5) -> bool:
    time.sleep(wait)  # an invitation is mailed before the answer; a moment more for the sink
    return not any(address in str(m["To"]) for m in smtp_sink.messages())


def _text_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def _new_school(system, operator, **extra) -> str:
    r = operator.post(system.url("/api/v1/tenants"), json={"kind": "school", "name": f"School {random_suffix()}", **extra})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _break_glass(system, operator, tenant_id, email, reason="The only administrator left; the district called us (ticket 4411)."):
    return operator.post(system.url("/api/v1/break-glass"), json={
        "tenant_id": tenant_id, "email": email, "display_name": "New Administrator", "reason": reason,
    })


# -- the escalation, refused at its first step -------------------------------------

def test_the_escalation_fails_at_its_first_step(system, world, operator, smtp_sink):
    mine = _address("ops-own")
    r = operator.post(system.url("/api/v1/users"), json={
        "tenant_id": world.tenants["S1"], "email": mine, "display_name": "Shadow Admin", "role": "school_admin"})
    assert r.status_code == 403, r.text
    assert _code(r) == "tenant_has_administrator"
    assert "administrator" in r.json()["error"]["message"]
    assert _no_mail_to(smtp_sink, mine)  # no invitation, so no link to set a password with
    # A password is never set by the creator, nor changed by anyone but its owner.
    r = operator.post(system.url("/api/v1/users"), json={
        "tenant_id": world.tenants["S1"], "email": mine, "display_name": "Shadow", "role": "school_admin",
        "password": "operator chosen passphrase"})
    assert r.status_code == 400 and "password" in r.json()["error"]["details"], r.text
    r = operator.patch(system.url(f"/api/v1/users/{world.users['school_admin']['id']}"),
                       json={"password": "operator chosen passphrase"})
    assert r.status_code == 400, r.text
    # The school's own admin is still the only one: nobody signs in with the operator's address.
    r = system.client().post(system.url("/api/v1/sessions"), json={"email": mine, "password": "operator chosen passphrase"})
    assert r.status_code == 401
    _no_student_reachable(system, world, operator)
    _no_tenant_role_for_platform_users(system, world, operator)


def _no_student_reachable(system, world, operator):
    a, b = world.students["A"], world.students["B"]
    for path in ("/api/v1/students", f"/api/v1/students/{a}", f"/api/v1/students/{b}",
                 f"/api/v1/students?tenant_id={world.tenants['S1']}", f"/api/v1/students/{a}/disclosures",
                 "/api/v1/referrals", "/api/v1/referrals?scope=school", "/api/v1/inspection-requests",
                 "/api/v1/exports/" + world.tenants["S1"]):
        r = operator.get(system.url(path))
        assert r.status_code in (403, 404), f"{path}: {r.status_code} {r.text}"
        assert "Alvarez" not in r.text and "family.example" not in r.text, path
    r = operator.post(system.url("/api/v1/exports"), json={"tenant_id": world.tenants["S1"]})
    assert r.status_code == 403, r.text
    r = operator.put(system.url(f"/api/v1/students/{b}/staff"), json={"user_ids": [world.users["operator"]["id"]]})
    assert r.status_code == 403, r.text


# Not a role an operator gives at all (a staff role), or not one the platform tenant has.
REFUSED_ROLES = {(403, "role_not_grantable"), (400, "role_not_in_tenant")}


def _no_tenant_role_for_platform_users(system, world, operator):
    auditor_id = world.users["auditor"]["id"]
    for role in ("school_admin", "teacher", "district_admin", "program_admin"):
        r = operator.patch(system.url(f"/api/v1/users/{auditor_id}"), json={"role": role})
        assert (r.status_code, _code(r)) in REFUSED_ROLES, r.text
        r = operator.post(system.url("/api/v1/users"), json={
            "tenant_id": world.auth("operator")["tenant_id"], "email": _address("platform"),
            "display_name": "Platform", "role": role})
        assert (r.status_code, _code(r)) in REFUSED_ROLES, r.text
    # No request names another tenant for an existing user: the field does not exist.
    for who, user in (("operator", "teacher"), ("district_admin", "teacher"), ("operator", "operator")):
        r = world.http(who).patch(system.url(f"/api/v1/users/{world.users[user]['id']}"),
                                  json={"tenant_id": world.tenants["S3"]})
        assert r.status_code == 400 and "tenant_id" in r.json()["error"]["details"], r.text
    # An operator still signs in as an operator (of the platform tenant), nothing else.
    me = operator.get(system.url("/api/v1/me")).json()
    assert me["role"] == "operator" and me["tenant_id"] not in world.tenants.values()


# -- first administrator only ---------------------------------------------------------

def test_an_operator_invites_only_a_first_administrator(system, world, operator, smtp_sink):
    school = _new_school(system, operator)
    r = operator.post(system.url("/api/v1/users"), json={
        "tenant_id": school, "email": _address("teacher"), "display_name": "Teacher", "role": "teacher"})
    assert r.status_code == 403 and _code(r) == "tenant_accounts_are_the_tenants", r.text
    first = _address("first-admin")
    r = operator.post(system.url("/api/v1/users"), json={
        "tenant_id": school, "email": first, "display_name": "First Admin", "role": "school_admin"})
    assert r.status_code == 201 and r.json()["invited"] is True, r.text
    smtp_sink.wait_for(lambda m: first in str(m["To"]))
    # Now the school has an administrator: a second one is theirs to invite, not the operator's.
    r = operator.post(system.url("/api/v1/users"), json={
        "tenant_id": school, "email": _address("second-admin"), "display_name": "Second", "role": "school_admin"})
    assert r.status_code == 403 and _code(r) == "tenant_has_administrator", r.text
    # A new school of a district with an active district admin has an administrator already.
    in_district = _new_school(system, operator, parent_id=world.tenants["D1"])
    r = operator.post(system.url("/api/v1/users"), json={
        "tenant_id": in_district, "email": _address("d1-school"), "display_name": "D1 School", "role": "school_admin"})
    assert r.status_code == 403 and _code(r) == "tenant_has_administrator", r.text
    r = world.http("district_admin").post(system.url("/api/v1/users"), json={
        "tenant_id": in_district, "email": _address("d1-school"), "display_name": "D1 School", "role": "school_admin"})
    assert r.status_code == 201, r.text


def test_an_operator_changes_no_tenant_account_but_may_disable_one(system, world, operator):
    teacher = bootstrap(system, "teacher", world.tenants["S1"])
    path = system.url(f"/api/v1/users/{teacher.user['id']}")
    for body in ({"display_name": "Renamed"}, {"role": "school_admin"}, {"role": "teacher"},
                 {"is_active": False, "display_name": "Both"}, {"is_active": True}):
        r = operator.patch(path, json=body)
        assert r.status_code == 403 and _code(r) == "operator_disable_only", f"{body}: {r.text}"
    assert teacher.get(system.url("/api/v1/me")).status_code == 200
    r = operator.patch(path, json={"is_active": False})
    assert r.status_code == 200 and r.json()["is_active"] is False, r.text
    assert teacher.get(system.url("/api/v1/me")).status_code == 401  # its sessions ended at once
    # Re-enabling is the school's decision.
    r = operator.patch(path, json={"is_active": True})
    assert r.status_code == 403 and _code(r) == "operator_disable_only", r.text
    r = world.http("school_admin").patch(path, json={"is_active": True})
    assert r.status_code == 200 and r.json()["is_active"] is True, r.text
    # Platform accounts stay the operators' own.
    auditor = bootstrap(system, "auditor")
    r = operator.patch(system.url(f"/api/v1/users/{auditor.user['id']}"), json={"display_name": "Renamed Auditor"})
    assert r.status_code == 200, r.text


# -- break-glass recovery -------------------------------------------------------------

def test_break_glass_takes_effect_when_the_tenants_admin_approves(system, world, operator, second_operator, smtp_sink):
    new_admin = _address("recovered")
    r = _break_glass(system, operator, world.tenants["S1"], new_admin)
    assert r.status_code == 201, r.text
    request = r.json()
    assert request["status"] == "pending" and request["approvers"] == "tenant_administrator"
    assert request["requested_by"] == world.users["operator"]["id"] and "ticket 4411" in request["reason"]
    # The school's administrators are asked (its own admin, and its district's).
    notice = smtp_sink.wait_for(lambda m: world.email("school_admin") in str(m["To"]) and new_admin in _text_of(m))
    assert "ticket 4411" in _text_of(notice)
    smtp_sink.wait_for(lambda m: world.email("district_admin") in str(m["To"]) and new_admin in _text_of(m))
    assert _no_mail_to(smtp_sink, new_admin, wait=0.5)  # nothing happens before an approval
    # Operators do not approve while the school has an administrator; other tenants do not see it.
    for who in (operator, second_operator):
        r = who.post(system.url(f"/api/v1/break-glass/{request['id']}/approve"), json={})
        assert r.status_code == 403 and _code(r) == "tenant_administrator_must_approve", r.text
    for role, status in (("teacher", 403), ("auditor", 403), ("s3_admin", 404), ("d2_admin", 404), ("program_admin", 404)):
        r = world.http(role).post(system.url(f"/api/v1/break-glass/{request['id']}/approve"), json={})
        assert r.status_code == status, f"{role}: {r.text}"
    listed = world.http("s3_admin").get(system.url("/api/v1/break-glass")).json()["items"]
    assert request["id"] not in {i["id"] for i in listed}
    listed = world.http("school_admin").get(system.url("/api/v1/break-glass?status=pending")).json()["items"]
    assert request["id"] in {i["id"] for i in listed}

    r = world.http("school_admin").post(system.url(f"/api/v1/break-glass/{request['id']}/approve"),
                                        json={"note": "Confirmed with the superintendent"})
    assert r.status_code == 200, r.text
    approved = r.json()
    assert approved["status"] == "approved" and approved["approval"] == "tenant_administrator"
    assert approved["decided_by"] == world.users["school_admin"]["id"] and approved["decided_at"]
    assert approved["decision_note"] == "Confirmed with the superintendent" and approved["created_user_id"]
    invitation = smtp_sink.wait_for(lambda m: new_admin in str(m["To"]))
    assert "reset-password#token=" in _text_of(invitation)
    users = world.http("school_admin").get(system.url(f"/api/v1/users?per_page=200&search={new_admin.split('@')[0]}"))
    [created] = users.json()["items"]
    assert created["id"] == approved["created_user_id"] and created["role"] == "school_admin"
    # Decided once: approving or refusing again changes nothing.
    r = world.http("district_admin").post(system.url(f"/api/v1/break-glass/{request['id']}/refuse"), json={})
    assert r.status_code == 409 and _code(r) == "break_glass_decided", r.text
    # Only operators ask.
    r = _break_glass(system, world.http("school_admin"), world.tenants["S1"], _address("self-asked"))
    assert r.status_code == 403, r.text


def test_break_glass_with_no_administrator_left_needs_a_second_operator(system, world, operator, second_operator, smtp_sink):
    school = _new_school(system, operator)
    admin = bootstrap(system, "school_admin", school)
    # The last administrator is disabled (a security response): the school has none left.
    assert operator.patch(system.url(f"/api/v1/users/{admin.user['id']}"), json={"is_active": False}).status_code == 200
    # Disable-then-invite is no way in: a school that had an administrator is not the
    # operator's to staff again directly, not even with "the first" administrator.
    mine = _address("takeover")
    r = operator.post(system.url("/api/v1/users"), json={
        "tenant_id": school, "email": mine, "display_name": "Shadow Admin", "role": "school_admin"})
    assert r.status_code == 403 and _code(r) == "tenant_needs_break_glass", r.text
    new_admin = _address("second-op")
    r = _break_glass(system, operator, school, new_admin)
    assert r.status_code == 201 and r.json()["approvers"] == "second_operator", r.text
    request_id = r.json()["id"]
    r = operator.post(system.url(f"/api/v1/break-glass/{request_id}/approve"), json={})
    assert r.status_code == 403 and _code(r) == "break_glass_own_request", r.text
    assert _no_mail_to(smtp_sink, new_admin, wait=0.5)
    r = second_operator.post(system.url(f"/api/v1/break-glass/{request_id}/approve"), json={"note": "Checked by phone"})
    assert r.status_code == 200, r.text
    assert r.json()["approval"] == "second_operator" and r.json()["decided_by"] == second_operator.user["id"]
    smtp_sink.wait_for(lambda m: new_admin in str(m["To"]))
    # The recorded history says who asked and who approved, for operators to read.
    [listed] = [i for i in operator.get(system.url(f"/api/v1/break-glass?tenant_id={school}")).json()["items"]]
    assert listed["requested_by"] == world.users["operator"]["id"] and listed["status"] == "approved"
    assert listed["decided_by"] == second_operator.user["id"]


def test_break_glass_requests_expire(system, world, operator):
    r = _break_glass(system, operator, world.tenants["S1"], _address("expiring"))
    assert r.status_code == 201, r.text
    request_id = r.json()["id"]
    identity_db.execute(system, "UPDATE break_glass_request SET expires_at = requested_at WHERE id = :id", id=request_id)
    r = world.http("school_admin").post(system.url(f"/api/v1/break-glass/{request_id}/approve"), json={})
    assert r.status_code == 409 and _code(r) == "break_glass_expired", r.text
    [listed] = [i for i in operator.get(system.url("/api/v1/break-glass?status=expired&per_page=200")).json()["items"]
                if i["id"] == request_id]
    assert listed["created_user_id"] is None and listed["decided_by"] is None


def test_break_glass_can_be_refused(system, world, operator, smtp_sink):
    email = _address("refused")
    r = _break_glass(system, operator, world.tenants["S1"], email)
    request_id = r.json()["id"]
    r = world.http("district_admin").post(system.url(f"/api/v1/break-glass/{request_id}/refuse"),
                                          json={"note": "We did not ask for this"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "refused" and r.json()["decided_by"] == world.users["district_admin"]["id"]
    assert r.json()["decision_note"] == "We did not ask for this"
    r = world.http("school_admin").post(system.url(f"/api/v1/break-glass/{request_id}/approve"), json={})
    assert r.status_code == 409 and _code(r) == "break_glass_decided", r.text
    assert _no_mail_to(smtp_sink, email, wait=0.5)


def test_bad_break_glass_requests_are_400_with_the_field(system, world, operator):
    for body, field in (({"email": "x@y.example", "display_name": "X", "reason": "long enough reason"}, "tenant_id"),
                        ({"tenant_id": world.tenants["S1"], "email": "x@y.example", "display_name": "X", "reason": "short"}, "reason"),
                        ({"tenant_id": world.tenants["S1"], "email": "nope", "display_name": "X", "reason": "long enough reason"}, "email"),
                        ({"tenant_id": world.tenants["S1"], "email": "x@y.example", "display_name": "X",
                          "reason": "long enough reason", "action": "make_me_admin"}, "action")):
        r = operator.post(system.url("/api/v1/break-glass"), json=body)
        assert r.status_code == 400 and field in r.json()["error"]["details"], r.text
    r = _break_glass(system, operator, world.tenants["S1"], world.email("teacher"))
    assert r.status_code == 409 and _code(r) == "email_taken", r.text
    r = _break_glass(system, operator, world.auth("operator")["tenant_id"], _address("platform"))
    assert r.status_code == 400 and _code(r) == "break_glass_not_for_tenant", r.text


# -- retention's account removal ------------------------------------------------------

def _remove(session, system, user_id):
    return session.post(system.url("/api/v1/deletion-requests"),
                        json={"scope": "user", "subject_id": user_id, "reason": "account_closed"})


def test_account_removal_is_the_tenants_or_for_platform_accounts_an_operators(system, world, operator):
    teacher = bootstrap(system, "teacher", world.tenants["S2"])
    r = _remove(operator, system, teacher.user["id"])
    assert r.status_code == 403 and _code(r) == "tenant_user_not_operators", r.text
    assert teacher.get(system.url("/api/v1/me")).status_code == 200  # not even fenced
    r = _remove(world.http("s3_admin"), system, teacher.user["id"])
    assert r.status_code == 403, r.text
    r = _remove(world.http("district_admin"), system, teacher.user["id"])  # the district's school
    assert r.status_code == 202, r.text
    assert teacher.get(system.url("/api/v1/me")).status_code == 401
    own = bootstrap(system, "teacher", world.tenants["S1"])
    assert _remove(world.http("school_admin"), system, own.user["id"]).status_code == 202
    platform_account = bootstrap(system, "auditor")
    r = _remove(operator, system, platform_account.user["id"])
    assert r.status_code == 202, r.text
    assert platform_account.get(system.url("/api/v1/me")).status_code == 401
