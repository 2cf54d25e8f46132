"""GET /api/v1/analytics/{report} through the gateway, with real identity.

The journey test needs identity.tenant_info / list_tenants_in / update_tenant_settings
(the identity team's branch): it runs as soon as those RPCs exist in the tree.
"""
import csv
import io
import time
import uuid

import pytest
import requests
from kombu import Connection, Producer

from services.analytics.models import DailyShareCount
from tests.support.analytics import share_event
from weintervene.contracts import SHARE_RECORDED
from weintervene.db import make_engine
from weintervene.messaging import event_exchange

pytestmark = pytest.mark.integration

PASSWORD = "a long analytics passphrase"


@pytest.fixture(scope="module")
def rpc(system):
    from tests.support.signing import ClusterRpcClient  # signs the contexts it passes, as the gateway does

    with ClusterRpcClient(uri=system.settings.amqp_uri) as client:
        yield client


OPERATOR_AUTH = {"user_id": "analytics-tests", "tenant_id": str(uuid.uuid4()), "role": "operator"}


def new_tenant(rpc, kind, name, parent_id=None):
    data = {"kind": kind, "name": f"{name} {uuid.uuid4().hex[:6]}", "parent_id": parent_id}
    return rpc.identity.create_tenant(OPERATOR_AUTH, data)


def new_user(system, rpc, tenant_id, role):
    email = f"{role}-{uuid.uuid4().hex[:8]}@analytics.example"
    rpc.identity.bootstrap_user(
        {"email": email, "display_name": role, "role": role, "tenant_id": tenant_id}, PASSWORD)
    return system.login(email, PASSWORD)


@pytest.fixture(scope="module")
def school(rpc):
    return new_tenant(rpc, "school", "Analytics Gateway School")


def test_reports_need_a_session_and_a_leaders_role(system, rpc, school):
    assert requests.get(system.url("/api/v1/analytics/top-services"), timeout=10).status_code == 401
    teacher = new_user(system, rpc, school["id"], "teacher")
    r = teacher.get(system.url("/api/v1/analytics/top-services"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "role_forbidden"


@pytest.mark.parametrize("path, status, code", [
    ("/api/v1/analytics/everything", 404, "report_not_found"),
    ("/api/v1/analytics/top-services?period=decade", 400, "invalid_input"),
    ("/api/v1/analytics/top-services?period=custom&from=2026-13-01&to=2026-12-01", 400, "invalid_input"),
    ("/api/v1/analytics/top-services?tenant_id=lincoln", 400, "invalid_input"),
    ("/api/v1/analytics/top-services?format=xlsx", 400, "invalid_input"),
    ("/api/v1/analytics/top-services?student_id=abc", 400, "invalid_input"),
])
def test_bad_report_requests_are_4xx_with_a_reason(system, rpc, school, path, status, code):
    principal = new_user(system, rpc, school["id"], "school_admin")
    r = principal.get(system.url(path))
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


def test_openapi_documents_the_report_endpoint(system):
    document = requests.get(system.url("/api/v1/openapi.json"), timeout=10).json()
    operation = document["paths"]["/api/v1/analytics/{report}"]["get"]
    names = {p.get("name") for p in operation["parameters"]}
    assert {"report", "period", "from", "to", "tenant_id", "format"} <= names
    dashboard = document["paths"]["/api/v1/analytics/dashboard"]["get"]
    assert {p.get("name") for p in dashboard["parameters"]} == {"period", "from", "to", "tenant_id", "category_level"}
    assert dashboard["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Dashboard")
    schema = document["components"]["schemas"]["Dashboard"]
    assert {"period", "previous_period", "scope", "reports"} <= set(schema["properties"])


def test_the_dashboard_needs_a_leader_and_a_valid_query(system, rpc, school):
    assert requests.get(system.url("/api/v1/analytics/dashboard"), timeout=10).status_code == 401
    teacher = new_user(system, rpc, school["id"], "teacher")
    r = teacher.get(system.url("/api/v1/analytics/dashboard"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "role_forbidden"
    principal = new_user(system, rpc, school["id"], "school_admin")
    for query, code in (("?period=decade", "invalid_input"), ("?format=csv", "invalid_input"),
                        ("?tenant_id=lincoln", "invalid_input"), ("?student_id=abc", "invalid_input")):
        r = principal.get(system.url("/api/v1/analytics/dashboard" + query))
        assert r.status_code == 400 and r.json()["error"]["code"] == code, (query, r.text)
    other = new_tenant(rpc, "school", "Elsewhere")
    r = principal.get(system.url(f"/api/v1/analytics/dashboard?tenant_id={other['id']}"))
    assert r.status_code == 403


def publish_shares(system, payloads):
    with Connection(system.settings.amqp_uri) as conn:
        producer = Producer(conn.channel(), exchange=event_exchange("referrals"), serializer="json")
        for payload in payloads:
            producer.publish(payload, routing_key=SHARE_RECORDED, delivery_mode=2)


def wait_for_total(system, tenant_ids, expected, timeout=60):
    from sqlalchemy import func, select

    engine = make_engine(system.settings.database_url("analytics"))
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                total = conn.scalar(select(func.coalesce(func.sum(DailyShareCount.count), 0))
                                    .where(DailyShareCount.tenant_id.in_(tenant_ids)))
            if total == expected:
                return
            time.sleep(0.1)
        raise AssertionError(f"counted {total}, expected {expected}")
    finally:
        engine.dispose()


def test_journey_principal_district_admin_and_operator(system, rpc):
    district = new_tenant(rpc, "district", "Analytics USD")
    lincoln = new_tenant(rpc, "school", "Lincoln", district["id"])
    adams = new_tenant(rpc, "school", "Adams", district["id"])
    tutoring = str(uuid.uuid4())
    publish_shares(system, [share_event(lincoln["id"], tutoring, day="2026-11-10", district_id=district["id"])
                            for _ in range(12)]
                   + [share_event(adams["id"], tutoring, day="2026-11-12", district_id=district["id"])
                      for _ in range(3)]
                   + [share_event(lincoln["id"], tutoring, day="2026-10-20") for _ in range(10)])
    wait_for_total(system, [lincoln["id"], adams["id"]], 25)
    query = "?period=month&to=2026-11-10"

    principal = new_user(system, rpc, lincoln["id"], "school_admin")
    r = principal.get(system.url("/api/v1/analytics/top-services" + query))
    assert r.status_code == 200, r.text
    [row] = r.json()["rows"]
    assert (row["service_id"], row["count"], row["previous_count"], row["change_pct"]) == (tutoring, 12, 10, 20.0)
    r = principal.get(system.url("/api/v1/analytics/top-services" + query + "&format=csv"))
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in r.headers["Content-Disposition"]
    assert [line["count"] for line in csv.DictReader(io.StringIO(r.text))] == ["12"]
    r = principal.get(system.url(f"/api/v1/analytics/schools{query}&tenant_id={adams['id']}"))
    assert r.status_code == 403

    leader = new_user(system, rpc, district["id"], "district_admin")
    r = leader.get(system.url("/api/v1/analytics/schools" + query))
    assert r.status_code == 200, r.text
    figures = {(row["tenant_id"], row["level"]): (row["count"], row["count_suppressed"]) for row in r.json()["rows"]}
    # Adams' 3 is hidden, and Lincoln's 12 with it (the district total 15 would reveal it).
    assert figures[(adams["id"], "school")] == (None, True)
    assert figures[(lincoln["id"], "school")] == (None, True)
    assert figures[(district["id"], "district")] == (15, False)
    assert figures[(district["id"], "district_office")] == (0, False)

    operator = new_user(system, rpc, None, "operator")
    r = operator.get(system.url(f"/api/v1/analytics/schools{query}&tenant_id={district['id']}"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "analytics_consent_missing"
    rpc.identity.update_tenant_settings(OPERATOR_AUTH, lincoln["id"], {"analytics_consent": True})
    r = operator.get(system.url(f"/api/v1/analytics/schools{query}&tenant_id={district['id']}"))
    assert r.status_code == 200, r.text
    assert {row["tenant_id"] for row in r.json()["rows"]} == {lincoln["id"], None}
    assert adams["id"] not in r.text

    # The dashboard: every report of each leader's view in one answer, exactly as each report says.
    for leader, names in ((principal, ["top-categories", "top-services", "trends", "channels", "unmet-need",
                                       "outcomes"]),
                          (leader, ["top-categories", "top-services", "trends", "channels", "unmet-need", "outcomes",
                                    "schools"])):
        r = leader.get(system.url("/api/v1/analytics/dashboard" + query))
        assert r.status_code == 200, r.text
        board = r.json()
        assert list(board["reports"]) == names
        for name in names:
            assert board["reports"][name] == leader.get(system.url(f"/api/v1/analytics/{name}{query}")).json(), name
    board = leader.get(system.url("/api/v1/analytics/dashboard" + query)).json()
    schools = {(row["tenant_id"], row["level"]): row["count"] for row in board["reports"]["schools"]["rows"]}
    assert schools[(adams["id"], "school")] is None and schools[(district["id"], "district")] == 15
    r = operator.get(system.url(f"/api/v1/analytics/dashboard{query}&tenant_id={district['id']}"))
    assert r.status_code == 200 and adams["id"] not in r.text

    metrics = requests.get(system.url("/metrics"), timeout=10).text
    assert 'weintervene_feature_uses_total{feature="analytics.top-services.csv"}' in metrics
    assert 'weintervene_feature_uses_total{feature="analytics.dashboard"}' in metrics


def test_a_referral_closed_through_the_gateway_is_counted_by_outcome(system, rpc, school):
    # The teacher shares (a walk-in print cannot be followed up, so a roster student), closes it
    # as connected; the school admin's outcomes report counts it, once, under its category.
    admin = new_user(system, rpc, school["id"], "school_admin")
    teacher_email = f"teacher-{uuid.uuid4().hex[:8]}@analytics.example"
    rpc.identity.bootstrap_user({"email": teacher_email, "display_name": "T", "role": "teacher",
                                 "tenant_id": school["id"]}, PASSWORD)
    key = uuid.uuid4().hex[:8]
    roster = ("student_key,first_name,last_name,grade,contact_name,contact_relationship,contact_email,"
              f"contact_language,contact_authorised,staff_email\nK{key},Ana,Ruiz,7,Eva Ruiz,mother,"
              f"eva.{key}@family.example,es,yes,{teacher_email}\n")
    r = admin.post(system.url("/api/v1/rosters/import"), data=roster, headers={"Content-Type": "text/csv"})
    assert r.status_code in (200, 201), r.text
    teacher = system.login(teacher_email, PASSWORD)
    student = teacher.get(system.url("/api/v1/students")).json()["items"][0]
    operator_email = f"op-{uuid.uuid4().hex[:8]}@analytics.example"
    rpc.identity.bootstrap_user({"email": operator_email, "display_name": "Op", "role": "operator",
                                 "tenant_id": None}, PASSWORD)
    ops = system.login(operator_email, PASSWORD)
    from services.directory.taxonomy import term_id
    service = ops.post(system.url("/api/v1/directory/services"), json={
        "name": f"Counseling {key}", "organization_name": f"Org {key}", "languages": ["en"], "cost": "free",
        "taxonomy_term_ids": [term_id("108-07-01")]}).json()
    share = teacher.post(system.url("/api/v1/referrals"), json={
        "student_id": student["id"], "service_ids": [service["id"]], "channel": "print",
        "consent": {"given_by": "parent", "method": "verbal", "given_on": time.strftime("%Y-%m-%d")}})
    assert share.status_code == 201, share.text
    referral = share.json()["items"][0]["id"]
    r = teacher.post(system.url(f"/api/v1/referrals/{referral}/status"), json={"status": "completed", "outcome": "connected"})
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 30
    rows = []
    while time.monotonic() < deadline:
        rows = admin.get(system.url("/api/v1/analytics/outcomes?period=month")).json()["rows"]
        if any(row["outcome"] == "connected" and row["count"] for row in rows):
            break
        time.sleep(0.5)
    connected = [row for row in rows if row["outcome"] == "connected"]
    assert [(row["category_name"], row["count"], row["connected_rate"]) for row in connected] == [("Counseling", 1, 1.0)]
    assert connected[0]["median_days_to_connect"] == 0
    csv_text = admin.get(system.url("/api/v1/analytics/outcomes?period=month&format=csv")).text
    assert "connected_rate" in csv_text.splitlines()[0] and "Counseling" in csv_text
