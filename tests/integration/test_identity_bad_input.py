"""Bad input on identity's JSON endpoints: a 4xx with a reason, never a 500, and
nothing half-written (row counts and values unchanged)."""
from __future__ import annotations

import pytest

from tests.support.identity_db import count_rows, execute
from tests.support.world import build_world

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(system):
    return build_world(system)


def _snapshot(system, world):
    tenant = execute(system, "SELECT name, student_ids_enabled, analytics_consent, suppression_threshold, status "
                             "FROM tenant WHERE id = :t", t=world.tenants["S1"])[0]
    teacher = execute(system, "SELECT display_name, role, is_active FROM user_account WHERE id = :u",
                      u=world.users["teacher2"]["id"])[0]
    return (
        tuple(tenant), tuple(teacher),
        count_rows(system, "user_account"), count_rows(system, "tenant"),
        count_rows(system, "serves_link", "student_id = :s", s=world.students["B"]),
        count_rows(system, "password_reset"),
    )


# (who, method, path, raw body, content type, status, error code)
CASES = [
    ("school_admin", "PATCH", "/api/v1/tenants/{S1}/settings", b"{not json", "application/json", 400, "malformed_json"),
    ("school_admin", "PATCH", "/api/v1/tenants/{S1}/settings", b'{"analytics_consent": "maybe"}', "application/json", 400, "invalid_input"),
    ("school_admin", "PATCH", "/api/v1/tenants/{S1}/settings", b'{"status": "terminated"}', "application/json", 400, "invalid_input"),
    ("school_admin", "PATCH", "/api/v1/tenants/{S1}/settings", b'{"student_ids_enabled": false, "name": "Renamed"}', "application/json", 400, "invalid_input"),
    ("school_admin", "PATCH", "/api/v1/tenants/{S1}/settings", b"{}", "application/json", 400, "invalid_input"),
    ("school_admin", "PATCH", "/api/v1/tenants/{S1}/settings", b'{"suppression_threshold": 2}', "application/json", 400, "invalid_input"),
    ("school_admin", "PATCH", "/api/v1/tenants/{S1}/settings", b'{"suppression_threshold": 1e400}', "application/json", 400, "malformed_json"),  # infinite: refused as read
    ("school_admin", "PATCH", "/api/v1/tenants/{S1}/settings", b'[{"analytics_consent": true}]', "application/json", 400, "invalid_input"),
    ("school_admin", "PATCH", "/api/v1/tenants/{S1}/settings", b'analytics_consent=true', "application/x-www-form-urlencoded", 400, "unsupported_media_type"),
    ("school_admin", "PATCH", "/api/v1/tenants/not-a-uuid/settings", b'{"analytics_consent": true}', "application/json", 400, "invalid_id"),
    ("school_admin", "POST", "/api/v1/users", b'{"tenant_id": "{S1}", "email": "n@x.org", "display_name": "N", "role": 5}', "application/json", 400, "invalid_input"),
    ("school_admin", "POST", "/api/v1/users", b'{"tenant_id": "{S1}", "email": "n@x.org", "display_name": "N", "role": "teacher", "password": "letmein123"}', "application/json", 400, "invalid_input"),
    ("school_admin", "POST", "/api/v1/users", b'{"tenant_id": "{S1}", "email": "n@x.org", "display_name": "N", "role": "teacher", "is_active": false}', "application/json", 400, "invalid_input"),
    ("school_admin", "POST", "/api/v1/users", b'{"tenant_id": "{S1}", "email": "not an email", "display_name": "N", "role": "teacher"}', "application/json", 400, "invalid_input"),
    ("school_admin", "POST", "/api/v1/users", b'{"tenant_id": "S1", "email": "n@x.org", "display_name": "N", "role": "teacher"}', "application/json", 400, "invalid_input"),
    ("school_admin", "POST", "/api/v1/users", b'{"tenant_id": "{S1}", "email": "n@x.org", "display_name": "' + b"N" * 201 + b'", "role": "teacher"}', "application/json", 400, "invalid_input"),
    ("school_admin", "POST", "/api/v1/users", b'{"tenant_id": "{S1}", "email": "' + b"n" * 300 + b'@x.org", "display_name": "N", "role": "teacher"}', "application/json", 400, "invalid_input"),
    ("school_admin", "POST", "/api/v1/users", b'{"tenant_id": "{S1}", "email": "n@x.org", "display_name": "", "role": "teacher"}', "application/json", 400, "invalid_input"),
    ("school_admin", "POST", "/api/v1/users", b'{"tenant_id": "{S1}", "email": "{teacher_email}", "display_name": "Dup", "role": "teacher"}', "application/json", 409, "email_taken"),
    ("school_admin", "PATCH", "/api/v1/users/{teacher2}", b'{"role": "emperor"}', "application/json", 400, "invalid_input"),
    ("school_admin", "PATCH", "/api/v1/users/{teacher2}", b'{"tenant_id": "{S3}"}', "application/json", 400, "invalid_input"),
    ("school_admin", "PATCH", "/api/v1/users/{teacher2}", b'{"role": "district_admin"}', "application/json", 403, "role_not_grantable"),
    ("school_admin", "PATCH", "/api/v1/users/{teacher2}", b'{"is_active": "no"}', "application/json", 400, "invalid_input"),
    ("school_admin", "PATCH", "/api/v1/users/{teacher2}", b'{"display_name": null}', "application/json", 400, "invalid_input"),
    ("school_admin", "PUT", "/api/v1/students/{B}/staff", b'{"user_ids": "{teacher2}"}', "application/json", 400, "invalid_input"),
    ("school_admin", "PUT", "/api/v1/students/{B}/staff", b'{"user_ids": ["{teacher2}", "{operator}"]}', "application/json", 400, "invalid_staff"),
    ("school_admin", "PUT", "/api/v1/students/{B}/staff", b'{"user_ids": ["{teacher2}"], "note": "x"}', "application/json", 400, "invalid_input"),
    ("school_admin", "PUT", "/api/v1/students/{B}/staff", b'{"user_ids": [' + b", ".join([b'"00000000-0000-4000-8000-000000000000"'] * 201) + b"]}", "application/json", 400, "invalid_input"),
    ("school_admin", "POST", "/api/v1/password-resets", b'{"email": "nope"}', "application/json", 400, "invalid_input"),
    ("school_admin", "POST", "/api/v1/password-resets", b'{"email": ["{teacher_email}"]}', "application/json", 400, "invalid_input"),
    ("school_admin", "POST", "/api/v1/password-resets/complete", b'{"token": "short", "new_password": "whatever it is"}', "application/json", 400, "invalid_input"),
    ("school_admin", "POST", "/api/v1/password-resets/complete", b'{"token": "' + b"t" * 40 + b'", "new_password": "whatever it is"}', "application/json", 400, "invalid_reset_token"),
    ("school_admin", "POST", "/api/v1/me/password", b'{"current_password": 1, "new_password": 2}', "application/json", 400, "invalid_input"),
    ("school_admin", "GET", "/api/v1/students?page=0", b"", None, 400, "invalid_input"),
    ("school_admin", "GET", "/api/v1/students?per_page=abc", b"", None, 400, "invalid_input"),
    ("school_admin", "GET", "/api/v1/students?search=" + "x" * 101, b"", None, 400, "invalid_input"),
    ("school_admin", "GET", "/api/v1/users?tenant_id=nope", b"", None, 400, "invalid_input"),
    ("school_admin", "GET", "/api/v1/tenants?kind=galaxy", b"", None, 400, "invalid_input"),
    ("operator", "POST", "/api/v1/tenants", b'{"kind": "program", "name": "P", "parent_id": "{D1}"}', "application/json", 400, "invalid_input"),
    ("operator", "POST", "/api/v1/tenants", b'{"kind": "school", "name": "S", "parent_id": "{S1}"}', "application/json", 404, "district_not_found"),
    ("operator", "POST", "/api/v1/tenants", b'{"kind": "school", "name": "S", "postcode": "ABCDE"}', "application/json", 400, "invalid_input"),
    ("operator", "POST", "/api/v1/tenants", b'{"kind": "school", "name": "S", "latitude": 200}', "application/json", 400, "invalid_input"),
    ("operator", "POST", "/api/v1/tenants", b'{"kind": "school", "name": "' + b"S" * 201 + b'"}', "application/json", 400, "invalid_input"),
]


def _fill(world, raw: bytes) -> bytes:
    values = {**world.tenants, **world.students, **{k: v["id"] for k, v in world.users.items()},
              "teacher_email": world.email("teacher")}
    text = raw.decode("utf-8")
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text.encode("utf-8")


@pytest.mark.parametrize("who, method, path, raw, content_type, status, code", CASES,
                         ids=[f"{c[1]} {c[2][:40]} {c[6]} #{i}" for i, c in enumerate(CASES)])
def test_bad_input_is_refused_and_nothing_changes(system, world, who, method, path, raw, content_type, status, code):
    before = _snapshot(system, world)
    headers = {"Content-Type": content_type} if content_type else {}
    r = world.http(who).request(method, system.url(_fill(world, path.encode()).decode()), data=_fill(world, raw) or None,
                                headers=headers, timeout=30)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and error["message"]
    if code == "invalid_input" and method != "GET" and raw.startswith(b"{"):
        assert error.get("details"), "field-level reasons are given"
    assert _snapshot(system, world) == before


def test_huge_json_body_is_413(system, world):
    body = b'{"display_name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    r = world.http("school_admin").patch(system.url(f"/api/v1/users/{world.users['teacher2']['id']}"), data=body,
                                         headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


def test_a_refused_user_creation_sends_no_invitation(system, world):
    email = f"refused.{world.suffix}@world.example"
    r = world.http("school_admin").post(system.url("/api/v1/users"), json={
        "tenant_id": world.tenants["S1"], "email": email, "display_name": "R", "role": "school_admin", "extra": 1})
    assert r.status_code == 400
    assert not [m for m in system.smtp.messages() if m["To"] == email]
    assert count_rows(system, "user_account", "email = :e", e=email) == 0
