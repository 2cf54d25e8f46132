"""The web app shell in a real browser: sign in and out, role-aware pages,
session expiry, CSP, accessibility, and no student data in storage or URLs."""
import pytest
import requests

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_sign_in_shows_role_navigation_and_sign_out_ends_the_session(page, people):
    teacher = people["teacher"]
    page.open("/")
    page.wait_heading("Sign in")
    page.assert_accessible("sign in")
    page.shot("signin")
    page.sign_in(teacher["email"])
    page.wait_heading("Welcome, Ms Rivera")
    nav = page.text_content("#site-nav")
    assert "Find services" in nav and "My referrals" in nav
    assert "Deletion requests" not in nav and "Roster" not in nav
    page.assert_accessible("home")
    page.shot("home-teacher")
    page.click("#sign-out")
    page.wait_heading("You are signed out")
    cookies = {c["name"] for c in page.cookies()}
    assert "wi_session" not in cookies
    page.open("/referrals")
    page.wait_heading("Sign in")
    assert page.path() == "/signin?next=%2Freferrals"


DENIED = {
    "teacher": ["/audit", "/admin/roster", "/operator/directory", "/operator/tenants", "/operator/notices", "/dashboard", "/incoming"],
    "school_admin": ["/audit", "/operator/directory", "/operator/imports", "/operator/notices", "/incoming"],
    "district_admin": ["/admin/roster", "/audit", "/operator/tenants", "/lists"],
    "program_staff": ["/referrals", "/admin/users", "/dashboard", "/admin/roster", "/operator/notices"],
    "program_admin": ["/referrals", "/dashboard", "/admin/roster", "/admin/settings", "/audit", "/lists"],
    "operator": ["/search", "/referrals", "/admin/roster", "/audit", "/dashboard", "/incoming"],
    "auditor": ["/admin/roster", "/operator/directory", "/search", "/referrals", "/operator/notices", "/students/00000000-0000-4000-8000-000000000000"],
}


@pytest.mark.parametrize("role", sorted(DENIED))
def test_a_role_that_must_not_see_a_page_gets_the_denied_page(page, people, role):
    page.open("/signin")
    page.sign_in(people[role]["email"])
    nav = page.text_content("#site-nav")
    for path in DENIED[role]:
        assert f'href="{path}"' not in page.inner_html("#site-nav")
        page.go(path)
        page.wait_heading("You do not have access to this page")
    assert nav  # the role's own navigation is there
    page.shot(f"denied-{role}")
    page.assert_accessible("denied")


def test_an_expired_session_sends_the_user_to_sign_in_and_back_to_their_page(page, people, system):
    operator = people["operator"]
    page.open("/signin?next=%2Foperator%2Ftenants")
    page.sign_in(operator["email"])
    page.wait_heading("Tenants")
    assert page.path() == "/operator/tenants"
    # The session ends on the server (as an idle timeout or a revocation would).
    token = next(c["value"] for c in page.cookies() if c["name"] == "wi_session")
    r = requests.delete(system.url("/api/v1/sessions/current"), headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200
    page.fill("input[name=name]", "A school added after the session ended")
    page.click("form button[type=submit]")
    page.wait_heading("Sign in")
    assert page.path() == "/signin?expired=1&next=%2Foperator%2Ftenants"
    assert "Your session has ended" in page.text_content("main")
    page.shot("session-expired")
    page.sign_in(operator["email"])
    page.wait_heading("Tenants")
    assert page.path() == "/operator/tenants"


def test_the_session_is_rechecked_when_the_tab_becomes_visible(page, people, system):
    page.open("/signin")
    page.sign_in(people["school_admin"]["email"])
    page.go("/account/password")
    page.wait_heading("Change your password")
    token = next(c["value"] for c in page.cookies() if c["name"] == "wi_session")
    requests.delete(system.url("/api/v1/sessions/current"), headers={"Authorization": f"Bearer {token}"}, timeout=10)
    page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
    page.wait_heading("Sign in")
    assert page.path() == "/signin?expired=1&next=%2Faccount%2Fpassword"


def test_the_csp_detector_sees_a_violation(page, system):
    """Guards the other tests: an inline style is refused by the CSP and we notice."""
    page.open("/privacy")
    page.evaluate("() => { const d = document.createElement('div'); d.setAttribute('style', 'color: red'); document.body.append(d); }")
    page.wait_for_timeout(200)
    messages = page.console(clear=True)
    assert any("Content Security Policy" in m["text"] for m in messages), messages


def test_csp_header_is_strict_on_the_app_shell(system):
    r = requests.get(system.url("/search"), timeout=10)
    assert r.status_code == 200
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert r.headers["Cache-Control"] == "no-store"  # it may name the signed-in user


@pytest.mark.parametrize("link, path", [
    ("/reset-password#token=abc123-one-time-token-xyz", "/reset-password"),
    ("/reset?token=abc123-one-time-token-xyz", "/reset"),
])
def test_reset_link_token_is_removed_from_the_address_bar(page, link, path):
    page.open(link)
    page.wait_heading("Choose a new password")
    assert page.evaluate("() => location.href").endswith(path)
    # about:blank, then our page: the token's entry was replaced, not pushed, so Back cannot bring it back.
    assert page.evaluate("() => history.length") == 2


def test_nothing_is_kept_in_browser_storage(page, people):
    page.open("/signin")
    page.sign_in(people["school_admin"]["email"])
    for path in ("/search", "/admin/roster", "/admin/opt-out", "/referrals"):
        page.go(path)
        page.settle()
    storage = page.storage()
    assert storage["local"] == {} and storage["session"] == {}
    names = {c["name"] for c in page.cookies()}
    assert names <= {"wi_session", "wi_csrf"}  # the policy acknowledgement is kept by identity
    session_cookie = next(c for c in page.cookies() if c["name"] == "wi_session")
    assert session_cookie["httpOnly"] and session_cookie["sameSite"] == "Strict"


def test_the_endpoint_probe_tells_routed_from_missing(system):
    """The journeys skip only on a routing 404: make sure the probe is right both ways."""
    from tests.browser.conftest import endpoint_exists

    assert endpoint_exists(system, "GET", "/api/v1/me")
    assert endpoint_exists(system, "POST", "/api/v1/tenants")
    assert endpoint_exists(system, "DELETE", "/api/v1/sessions/current")
    assert not endpoint_exists(system, "GET", "/api/v1/no-such-endpoint")
    assert not endpoint_exists(system, "PUT", "/api/v1/me")
