"""Policy versions, acknowledgements and incident notices through the gateway
(real RabbitMQ, PostgreSQL, identity): roles, reasons for bad input, the cookie
path with CSRF, the public read, and the OpenAPI document."""
from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from tests.support.identity_db import count_rows
from tests.support.world import ROLES, build_world
from weintervene.db import utcnow

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(system):
    return build_world(system)


def current(system, session=None):
    r = (session or requests).get(system.url("/api/v1/notices"), timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["Cache-Control"] == "no-store"
    return r.json()


def test_everyone_reads_the_current_policy_and_notices_even_signed_out(system, world):
    anonymous = current(system)
    assert anonymous["policy"]["last_updated"] and anonymous["acknowledged"] is None
    # An ended or forged session is a visitor here, never a 401 (the sign-in page calls this).
    forged = requests.get(system.url("/api/v1/notices"), headers={"Authorization": "Bearer nope"}, timeout=30)
    assert forged.status_code == 200 and forged.json()["acknowledged"] is None
    for role in ROLES:
        assert current(system, world.http(role))["acknowledged"] in (True, False)


def test_a_user_acknowledges_and_a_new_version_asks_again(system, world):
    teacher = world.http("teacher")
    policy = current(system, teacher)["policy"]
    r = teacher.post(system.url("/api/v1/me/policy-acknowledgement"), json={"version": policy["version"]}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["acknowledged"] is True and r.json()["version"] == policy["version"]
    assert current(system, teacher)["acknowledged"] is True
    assert teacher.get(system.url("/api/v1/me/policy-acknowledgement"), timeout=30).json()["acknowledged"] is True

    ops = world.http("operator")
    today = utcnow().date().isoformat()
    r = ops.post(system.url("/api/v1/policy-versions"), json={"last_updated": today, "summary": "Retention shortened."},
                 timeout=30)
    assert r.status_code == 201, r.text
    new = r.json()
    assert current(system)["policy"] == new
    assert current(system, teacher)["acknowledged"] is False
    stale = teacher.post(system.url("/api/v1/me/policy-acknowledgement"), json={"version": policy["version"]}, timeout=30)
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "policy_version_not_current"
    assert new["version"] in [v["version"] for v in ops.get(system.url("/api/v1/policy-versions"), timeout=30).json()["items"]]


def test_the_browser_path_needs_the_csrf_token(system, world):
    """With the session cookie (the web app), a change without X-CSRF-Token is refused."""
    r = requests.post(system.url("/api/v1/sessions"), json={"email": world.email("school_admin"),
                                                             "password": "world-passphrase-2026"}, timeout=30)
    # The cookies are Secure: requests keeps them off http://, so send them as a browser on localhost does.
    cookie = f"wi_session={r.cookies['wi_session']}; wi_csrf={r.cookies['wi_csrf']}"
    version = current(system)["policy"]["version"]
    url = system.url("/api/v1/me/policy-acknowledgement")
    refused = requests.post(url, json={"version": version}, headers={"Cookie": cookie}, timeout=30)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    ok = requests.post(url, json={"version": version}, headers={"Cookie": cookie, "X-CSRF-Token": r.cookies["wi_csrf"]},
                       timeout=30)
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("role", [r for r in ROLES if r != "operator"])
def test_only_operators_publish(system, world, role):
    session = world.http(role)
    before = count_rows(system, "policy_version"), count_rows(system, "incident_notice")
    for path, body in (("/api/v1/policy-versions", {"last_updated": "2026-11-20", "summary": "x"}),
                       ("/api/v1/incident-notices", {"message": "x"})):
        r = session.post(system.url(path), json=body, timeout=30)
        assert r.status_code == 403 and r.json()["error"]["code"] == "role_forbidden", (role, path, r.text)
        assert session.get(system.url(path), timeout=30).status_code == 403
    assert (count_rows(system, "policy_version"), count_rows(system, "incident_notice")) == before
    assert requests.post(system.url("/api/v1/incident-notices"), json={"message": "x"}, timeout=30).status_code == 401


@pytest.mark.parametrize("path, body, status, code", [
    ("/api/v1/policy-versions", {"last_updated": "2026-10-01", "summary": "Older than the current one"}, 409,
     "policy_version_outdated"),
    ("/api/v1/policy-versions", {"last_updated": "2999-01-01", "summary": "Future"}, 400, "invalid_input"),
    ("/api/v1/policy-versions", {"last_updated": "yesterday", "summary": "x"}, 400, "invalid_input"),
    ("/api/v1/policy-versions", {"summary": "no date"}, 400, "invalid_input"),
    ("/api/v1/policy-versions", {"last_updated": "2026-11-20", "summary": ""}, 400, "invalid_input"),
    ("/api/v1/policy-versions", ["not", "an", "object"], 400, "invalid_input"),
    ("/api/v1/incident-notices", {"message": "   "}, 400, "invalid_input"),
    ("/api/v1/incident-notices", {"message": "ok", "severity": "critical"}, 400, "invalid_input"),
    ("/api/v1/incident-notices", {"message": "ok", "ends_at": "2020-01-01T00:00:00+00:00"}, 400, "invalid_input"),
    ("/api/v1/incident-notices", {"message": "ok", "ends_at": "tomorrow"}, 400, "invalid_input"),
    ("/api/v1/incident-notices", {"message": "x" * 501}, 400, "invalid_input"),
    ("/api/v1/incident-notices/not-a-uuid/end", None, 400, "invalid_id"),
    ("/api/v1/incident-notices/00000000-0000-4000-8000-000000000000/end", None, 404, "notice_not_found"),
])
def test_bad_input_gets_a_reason_and_writes_nothing(system, world, path, body, status, code):
    ops = world.http("operator")
    before = count_rows(system, "policy_version"), count_rows(system, "incident_notice")
    r = ops.post(system.url(path), json=body, timeout=30)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code and r.json()["error"]["message"]
    assert (count_rows(system, "policy_version"), count_rows(system, "incident_notice")) == before


def test_an_incident_notice_is_shown_to_everyone_until_it_ends(system, world):
    ops = world.http("operator")
    ends = (utcnow() + timedelta(hours=1)).isoformat()
    r = ops.post(system.url("/api/v1/incident-notices"),
                 json={"message": "Text messages are delayed; email works.", "ends_at": ends}, timeout=30)
    assert r.status_code == 201, r.text
    notice = r.json()
    try:
        assert notice["id"] in [n["id"] for n in current(system)["incidents"]]
        assert notice["id"] in [n["id"] for n in current(system, world.http("teacher"))["incidents"]]
    finally:
        r = ops.post(system.url(f"/api/v1/incident-notices/{notice['id']}/end"), timeout=30)
    assert r.status_code == 200 and r.json()["active"] is False
    assert notice["id"] not in [n["id"] for n in current(system)["incidents"]]
    again = ops.post(system.url(f"/api/v1/incident-notices/{notice['id']}/end"), timeout=30)
    assert again.status_code == 409 and again.json()["error"]["code"] == "notice_ended"
    listed = ops.get(system.url("/api/v1/incident-notices"), timeout=30).json()["items"]
    assert any(n["id"] == notice["id"] and not n["active"] for n in listed)


def test_openapi_documents_the_notice_endpoints(system):
    paths = requests.get(system.url("/api/v1/openapi.json"), timeout=30).json()["paths"]
    assert set(paths["/api/v1/notices"]) == {"get"}
    assert {"get", "post"} <= set(paths["/api/v1/policy-versions"])
    assert {"get", "post"} <= set(paths["/api/v1/incident-notices"])
    assert "post" in paths["/api/v1/incident-notices/{notice_id}/end"]
    assert {"get", "post"} <= set(paths["/api/v1/me/policy-acknowledgement"])
