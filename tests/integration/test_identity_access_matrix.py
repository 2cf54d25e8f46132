"""Role-by-endpoint access matrix for identity's endpoints, with other tenants' ids
in paths and bodies (IDOR). Every cell is asserted: each denial with its status and
each allowance with its status (and, where it matters, what came back).

The caller of each role: teacher, school_admin (Lincoln-like S1), district_admin
(D1, over S1 and S2), program_staff/program_admin (P1), operator and auditor
(platform). "Other tenant" ids belong to D2/S3, a district none of them reaches.

Operators (issue 16): they reach every tenant's facts and staff list, but create only a
tenant's first administrator (S1 has one), change no tenant account except to disable it,
and ask for break-glass recoveries that the tenant's administrators approve.
"""
from __future__ import annotations

import itertools

import pytest

from tests.support.world import ROLES, build_world

pytestmark = pytest.mark.integration

_counter = itertools.count()


@pytest.fixture(scope="module")
def world(system):
    return build_world(system)


def _unique_email(world):
    return f"matrix{next(_counter)}.{world.suffix}@world.example"


def _csv(world):
    n = next(_counter)
    return (f"student_key,first_name,last_name,grade\nMX{n},Matrix,Row{n},5\n").encode()


# Each case: (method, path, body factory or None, {role: expected status}).
# A body factory gets the world; "csv" sends a roster file instead of JSON.
T, SA, DA, PS, PA, OP, AU = ROLES

CASES = {
    "me": ("GET", "/api/v1/me", None, dict.fromkeys(ROLES, 200)),
    "tenants_list": ("GET", "/api/v1/tenants", None, dict.fromkeys(ROLES, 200)),
    # Every role may change its own password: a wrong current password shows the
    # request got past every role gate to the password check itself.
    "my_password_wrong_current": ("POST", "/api/v1/me/password",
                                  lambda w: {"current_password": "not the password", "new_password": "a new passphrase"},
                                  dict.fromkeys(ROLES, 400)),
    "password_reset_request": ("POST", "/api/v1/password-resets", lambda w: {"email": _unique_email(w)},
                               dict.fromkeys(ROLES, 202)),
    "tenant_get_own_school": ("GET", "/api/v1/tenants/{S1}", None,
                              {T: 200, SA: 200, DA: 200, PS: 404, PA: 404, OP: 200, AU: 200}),
    "tenant_get_other_district_school": ("GET", "/api/v1/tenants/{S3}", None,
                                         {T: 404, SA: 404, DA: 404, PS: 404, PA: 404, OP: 200, AU: 200}),
    "tenant_get_program": ("GET", "/api/v1/tenants/{P1}", None,
                           {T: 404, SA: 404, DA: 404, PS: 200, PA: 200, OP: 200, AU: 200}),
    "tenant_create": ("POST", "/api/v1/tenants", lambda w: {"kind": "program", "name": "Matrix program"},
                      {T: 403, SA: 403, DA: 403, PS: 403, PA: 403, OP: 201, AU: 403}),
    "settings_s1": ("PATCH", "/api/v1/tenants/{S1}/settings", lambda w: {"analytics_consent": True},
                    {T: 403, SA: 200, DA: 200, PS: 403, PA: 404, OP: 200, AU: 403}),
    "settings_other_tenant": ("PATCH", "/api/v1/tenants/{S3}/settings", lambda w: {"analytics_consent": True},
                              {T: 403, SA: 404, DA: 404, PS: 403, PA: 404, OP: 200, AU: 403}),
    "users_list": ("GET", "/api/v1/users", None,
                   {T: 403, SA: 200, DA: 200, PS: 403, PA: 200, OP: 200, AU: 403}),
    "users_list_other_tenant": ("GET", "/api/v1/users?tenant_id={S3}", None,
                                {T: 403, SA: 404, DA: 404, PS: 403, PA: 404, OP: 200, AU: 403}),
    "user_create_in_s1": ("POST", "/api/v1/users",
                          lambda w: {"tenant_id": w.tenants["S1"], "email": _unique_email(w), "display_name": "New", "role": "teacher"},
                          {T: 403, SA: 201, DA: 201, PS: 403, PA: 404, OP: 403, AU: 403}),
    "user_create_second_admin_in_s1": ("POST", "/api/v1/users",
                                       lambda w: {"tenant_id": w.tenants["S1"], "email": _unique_email(w), "display_name": "Admin", "role": "school_admin"},
                                       {T: 403, SA: 201, DA: 201, PS: 403, PA: 404, OP: 403, AU: 403}),
    "user_create_in_other_tenant": ("POST", "/api/v1/users",
                                    lambda w: {"tenant_id": w.tenants["S3"], "email": _unique_email(w), "display_name": "New", "role": "teacher"},
                                    {T: 403, SA: 404, DA: 404, PS: 403, PA: 404, OP: 403, AU: 403}),
    "user_create_operator_escalation": ("POST", "/api/v1/users",
                                        lambda w: {"tenant_id": w.tenants["S1"], "email": _unique_email(w), "display_name": "Up", "role": "operator"},
                                        {T: 403, SA: 403, DA: 403, PS: 403, PA: 404, OP: 403, AU: 403}),
    "user_update_s1_teacher": ("PATCH", "/api/v1/users/{teacher2}", lambda w: {"display_name": "Teacher Two"},
                               {T: 403, SA: 200, DA: 200, PS: 403, PA: 404, OP: 403, AU: 403}),
    "user_role_s1_teacher": ("PATCH", "/api/v1/users/{teacher2}", lambda w: {"role": "teacher"},
                             {T: 403, SA: 200, DA: 200, PS: 403, PA: 404, OP: 403, AU: 403}),
    "user_reenable_s1_teacher": ("PATCH", "/api/v1/users/{teacher2}", lambda w: {"is_active": True},
                                 {T: 403, SA: 200, DA: 200, PS: 403, PA: 404, OP: 403, AU: 403}),
    "user_update_other_tenant": ("PATCH", "/api/v1/users/{s3_teacher}", lambda w: {"display_name": "Other"},
                                 {T: 403, SA: 404, DA: 404, PS: 403, PA: 404, OP: 403, AU: 403}),
    "break_glass_request_s1": ("POST", "/api/v1/break-glass",
                               lambda w: {"tenant_id": w.tenants["S1"], "email": _unique_email(w), "display_name": "New",
                                          "reason": "The principal left; the district asked by phone."},
                               {T: 403, SA: 403, DA: 403, PS: 403, PA: 403, OP: 201, AU: 403}),
    "break_glass_list": ("GET", "/api/v1/break-glass", None,
                         {T: 403, SA: 200, DA: 200, PS: 403, PA: 200, OP: 200, AU: 403}),
    "break_glass_approve_unknown": ("POST", "/api/v1/break-glass/0b9e6a1c-5d3f-4e2a-9c71-2f8d4b6a1e00/approve", lambda w: {},
                                    {T: 403, SA: 404, DA: 404, PS: 403, PA: 404, OP: 404, AU: 403}),
    "roster_preview": ("POST", "/api/v1/rosters/preview", "csv",
                       {T: 403, SA: 200, DA: 403, PS: 403, PA: 200, OP: 403, AU: 403}),
    "roster_import": ("POST", "/api/v1/rosters/import", "csv",
                      {T: 403, SA: 200, DA: 403, PS: 403, PA: 200, OP: 403, AU: 403}),
    "students_list": ("GET", "/api/v1/students", None,
                      {T: 200, SA: 200, DA: 200, PS: 200, PA: 200, OP: 403, AU: 403}),
    "student_served_by_teacher": ("GET", "/api/v1/students/{A}", None,
                                  {T: 200, SA: 200, DA: 200, PS: 404, PA: 404, OP: 403, AU: 403}),
    "student_served_by_nobody": ("GET", "/api/v1/students/{B}", None,
                                 {T: 404, SA: 200, DA: 200, PS: 404, PA: 404, OP: 403, AU: 403}),
    "student_of_sister_school": ("GET", "/api/v1/students/{C}", None,
                                 {T: 404, SA: 404, DA: 200, PS: 404, PA: 404, OP: 403, AU: 403}),
    "student_of_other_district": ("GET", "/api/v1/students/{X}", None,
                                  {T: 404, SA: 404, DA: 404, PS: 404, PA: 404, OP: 403, AU: 403}),
    "program_participant": ("GET", "/api/v1/students/{Q}", None,
                            {T: 404, SA: 404, DA: 404, PS: 200, PA: 200, OP: 403, AU: 403}),
    "staff_set_own_student": ("PUT", "/api/v1/students/{B}/staff", lambda w: {"user_ids": [w.users["teacher2"]["id"]]},
                              {T: 403, SA: 200, DA: 200, PS: 403, PA: 404, OP: 403, AU: 403}),
    "staff_set_other_tenant_student": ("PUT", "/api/v1/students/{X}/staff", lambda w: {"user_ids": [w.users["s3_teacher"]["id"]]},
                                       {T: 403, SA: 404, DA: 404, PS: 403, PA: 404, OP: 403, AU: 403}),
    "staff_set_other_tenant_user_in_body": ("PUT", "/api/v1/students/{B}/staff", lambda w: {"user_ids": [w.users["s3_teacher"]["id"]]},
                                            {T: 403, SA: 400, DA: 400, PS: 403, PA: 404, OP: 403, AU: 403}),
}


def _path(world, template):
    ids = {**world.tenants, **world.students, **{name: u["id"] for name, u in world.users.items()}}
    return template.format(**ids)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_access_matrix(system, world, case, role):
    method, template, body, expected = CASES[case]
    client = world.http(role)
    kwargs = {"timeout": 30}
    if body == "csv":
        kwargs.update(data=_csv(world), headers={"Content-Type": "text/csv"})
    elif body is not None:
        kwargs["json"] = body(world)
    r = client.request(method, system.url(_path(world, template)), **kwargs)
    assert r.status_code == expected[role], f"{case} as {role}: {r.status_code} {r.text}"
    if r.status_code >= 400:
        error = r.json()["error"]
        assert error["message"], r.text
        if r.status_code == 403:
            assert error["code"] in ("role_forbidden", "student_forbidden", "role_not_grantable", "tenant_has_administrator",
                                     "tenant_accounts_are_the_tenants", "operator_disable_only"), r.text
        if r.status_code == 404:
            assert error["code"].endswith("_not_found"), r.text
    if case == "my_password_wrong_current":
        assert r.json()["error"]["code"] == "wrong_current_password"


# -- what allowed lists contain (tenant isolation inside a 200) ---------------

def _ids(response):
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


def test_tenant_lists_are_scoped(system, world):
    t = world.tenants
    assert _ids(world.http("teacher").get(system.url("/api/v1/tenants"))) == {t["S1"]}
    assert _ids(world.http("district_admin").get(system.url("/api/v1/tenants"))) == {t["D1"], t["S1"], t["S2"]}
    assert _ids(world.http("program_admin").get(system.url("/api/v1/tenants"))) == {t["P1"]}
    everything = _ids(world.http("operator").get(system.url("/api/v1/tenants?per_page=200&kind=school")))
    assert {t["S1"], t["S2"], t["S3"], t["S4"]} <= everything


def test_user_lists_are_scoped(system, world):
    u = {name: v["id"] for name, v in world.users.items()}
    school = _ids(world.http("school_admin").get(system.url("/api/v1/users?per_page=200")))
    assert {u["teacher"], u["teacher2"], u["school_admin"]} <= school
    assert not school & {u["s2_teacher"], u["s3_teacher"], u["district_admin"], u["program_staff"], u["operator"]}
    district = _ids(world.http("district_admin").get(system.url("/api/v1/users?per_page=200")))
    assert {u["teacher"], u["s2_teacher"], u["district_admin"]} <= district
    assert not district & {u["s3_teacher"], u["d2_admin"], u["program_staff"], u["operator"]}
    program = _ids(world.http("program_admin").get(system.url("/api/v1/users?per_page=200")))
    assert program == {u["program_staff"], u["program_admin"]}


def test_student_lists_are_scoped(system, world):
    s = world.students
    assert _ids(world.http("teacher").get(system.url("/api/v1/students"))) == {s["A"], s["M"]}
    admin = _ids(world.http("school_admin").get(system.url("/api/v1/students?per_page=200")))
    assert {s["A"], s["B"], s["M"]} <= admin and not admin & {s["C"], s["X"], s["Q"]}
    district = _ids(world.http("district_admin").get(system.url("/api/v1/students?per_page=200")))
    assert {s["A"], s["B"], s["M"], s["C"]} <= district and not district & {s["X"], s["Q"]}
    assert _ids(world.http("program_staff").get(system.url("/api/v1/students"))) == {s["Q"]}
    # Another tenant's id as a filter yields nothing, never that tenant's students.
    other = world.http("school_admin").get(system.url(f"/api/v1/students?tenant_id={world.tenants['S3']}"))
    assert _ids(other) == set()
    other = world.http("district_admin").get(system.url(f"/api/v1/students?tenant_id={world.tenants['S3']}"))
    assert _ids(other) == set()


def test_student_detail_shows_only_its_own_contacts(system, world):
    r = world.http("teacher").get(system.url(f"/api/v1/students/{world.students['A']}"))
    assert r.status_code == 200
    names = {c["name"] for c in r.json()["contacts"]}
    assert names == {"Maria Alvarez", "Tio Alvarez"}
    staff = {s["id"] for s in r.json()["staff"]}
    assert staff == {world.users["teacher"]["id"]}


PUBLIC_CASES = {"password_reset_request"}


def test_no_endpoint_answers_without_a_session(system, world):
    for case, (method, template, body, _expected) in CASES.items():
        if case in PUBLIC_CASES:
            continue
        r = system.client().request(method, system.url(_path(world, template)), json={}, timeout=10)
        assert r.status_code == 401, f"{case}: {r.status_code}"
