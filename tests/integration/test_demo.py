"""The demo data loads through the RPCs once, again only on demand, without duplicates,
and its logins work as printed."""
from datetime import date

import pytest
import requests

from weintervene import demo

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def loaded(system):
    calls = []
    demo.DEMO_LOADERS.append(lambda rpc, context: calls.append(context))
    try:
        first = demo.ensure_demo(system.settings)
        second = demo.ensure_demo(system.settings)
    finally:
        demo.DEMO_LOADERS.pop()
    return first, second, calls


def test_loads_once_and_calls_the_other_loaders(loaded):
    first, second, calls = loaded
    assert (first, second) == (True, False)
    [context] = calls
    assert set(context.tenants) == {"riverside", "lincoln", "washington", "cedar", "bright"}
    assert context.tenants["lincoln"]["district_id"] == context.tenants["riverside"]["id"]
    assert context.tenants["riverside"]["postcode"] == "20001"
    assert 35 <= len(context.students) <= 45
    assert context.auth("rivera@lincoln.example")["role"] == "teacher"


def test_every_role_has_a_login(system, loaded):
    roles = set()
    for role, email, _name in demo.DEMO_LOGINS:
        r = requests.post(system.url("/api/v1/sessions"), json={"email": email, "password": demo.DEMO_PASSWORD}, timeout=30)
        assert r.status_code == 201, (email, r.text)
        roles.add(r.json()["user"]["role"])
    assert roles == {"teacher", "school_admin", "district_admin", "program_staff", "program_admin", "operator", "auditor"}


def test_rivera_sees_diego_and_his_spanish_speaking_mother(system, loaded):
    rivera = system.login("rivera@lincoln.example", demo.DEMO_PASSWORD)
    students = rivera.get(system.url("/api/v1/students?search=diego")).json()["items"]
    [diego] = [s for s in students if s["last_name"] == "Ramos"]
    assert diego["student_number"]  # Lincoln uses student IDs
    detail = rivera.get(system.url(f"/api/v1/students/{diego['id']}")).json()
    mother = next(c for c in detail["contacts"] if c["relationship"] == "mother")
    assert mother["preferred_language"] == "es" and mother["mobile"] and mother["authorised"]
    served = rivera.get(system.url("/api/v1/students?per_page=200")).json()["total"]
    principal = system.login("principal@lincoln.example", demo.DEMO_PASSWORD)
    assert principal.get(system.url("/api/v1/students")).json()["total"] > served > 0


def test_adult_student_and_ids_off_at_washington(system, loaded):
    admin = system.login("admin@washington.example", demo.DEMO_PASSWORD)
    items = admin.get(system.url("/api/v1/students?per_page=200")).json()["items"]
    assert [s["first_name"] for s in items if s["is_adult"]] == ["Jordan"]
    assert all(s["student_number"] is None for s in items)


def test_forced_reload_duplicates_nothing(system, loaded):
    principal = system.login("principal@lincoln.example", demo.DEMO_PASSWORD)
    before = principal.get(system.url("/api/v1/students")).json()["total"]
    assert demo.ensure_demo(system.settings, force=True) is True
    assert principal.get(system.url("/api/v1/students")).json()["total"] == before
    district = system.login("district.admin@riverside.example", demo.DEMO_PASSWORD)
    assert district.get(system.url("/api/v1/tenants")).json()["total"] == 3


def test_a_lincoln_teacher_finds_the_program_published_to_schools(system, loaded):
    # Journey 7 after `make run`: Bright Futures' own service, offered to every school.
    rivera = system.login("rivera@lincoln.example", demo.DEMO_PASSWORD)
    items = rivera.get(system.url("/api/v1/directory/services?q=mentoring")).json()["items"]
    assert [c["name"] for c in items].count(demo.PROGRAM_SERVICE["name"]) == 1
    # The public HSDS API lists global services only.
    public = requests.get(system.url("/hsds/services?search=mentoring&per_page=50"), timeout=30)
    assert public.status_code == 200 and public.json()["contents"]
    assert demo.PROGRAM_SERVICE["name"] not in [s["name"] for s in public.json()["contents"]]


def test_the_principal_sees_a_year_of_history_with_the_rise(system, loaded):
    # Journey 4 after `make run`: counseling and tutoring most requested, up on last semester.
    principal = system.login("principal@lincoln.example", demo.DEMO_PASSWORD)
    year = principal.get(system.url("/api/v1/analytics/trends?period=school_year")).json()["rows"]
    assert sum(1 for r in year if r["count"]) >= min(5, date.today().month - 6 if date.today().month >= 7 else 6)
    r = principal.get(system.url("/api/v1/analytics/top-categories?period=school_year"))
    assert r.status_code == 200, r.text
    names = [row["category_name"] for row in r.json()["rows"]]
    assert names[:2] == ["Counseling", "Tutoring"], names
    if date.today().month in (10, 11, 12, 4, 5, 6):  # far enough into a semester to compare
        semester = {row["category_name"]: row for row in principal.get(
            system.url("/api/v1/analytics/top-categories?period=semester")).json()["rows"]}
        assert semester["Counseling"]["change_pct"] > 15 and semester["Tutoring"]["change_pct"] > 15
    # Loaded again, nothing doubles.
    before = sum(row["count"] or 0 for row in year)
    demo.ensure_demo(system.settings, force=True)
    again = principal.get(system.url("/api/v1/analytics/trends?period=school_year")).json()["rows"]
    assert sum(row["count"] or 0 for row in again) == before


def test_demo_district_admin_configures_single_sign_on_and_rivera_signs_in(system, loaded):
    """Issue 18's done-when, on the demo's own district: Riverside's administrator configures
    single sign-on through the API and Elena Rivera (Lincoln) signs in through a real OpenID
    provider (tests/integration/test_single_sign_on.py covers every refusal)."""
    from tests.support.oidc_provider import OidcProvider

    with OidcProvider() as provider:
        provider.set_clients([{"client_id": "riverside", "client_secret": "riverside-secret",
                               "redirect_uris": [system.url("/api/v1/sso/callback")]}])
        provider.set_account("erivera", email="rivera@lincoln.example", email_verified=True, name="Elena Rivera")
        admin = system.login("district.admin@riverside.example", demo.DEMO_PASSWORD)
        riverside = admin.get(system.url("/api/v1/me")).json()["tenant_id"]
        configured = admin.put(system.url(f"/api/v1/tenants/{riverside}/sso"), json={
            "preset": "generic", "issuer_url": provider.issuer, "client_id": "riverside",
            "client_secret": "riverside-secret", "allowed_domains": ["lincoln.example", "washington.example"]})
        assert configured.status_code == 200, configured.text
        try:
            start = requests.get(system.url(f"/api/v1/sso/{riverside}/start"), allow_redirects=False, timeout=30)
            back = provider.sign_in(start.headers["Location"], "erivera")
            signed_in = requests.get(back, headers={"Cookie": f"wi_sso_flow={start.cookies['wi_sso_flow']}"},
                                     allow_redirects=False, timeout=30)
            assert signed_in.status_code == 200, signed_in.text
            me = system.client(signed_in.cookies["wi_session"]).get(system.url("/api/v1/me")).json()
            assert (me["email"], me["role"], me["district_id"]) == ("rivera@lincoln.example", "teacher", riverside)
        finally:
            assert admin.delete(system.url(f"/api/v1/tenants/{riverside}/sso")).status_code == 200
