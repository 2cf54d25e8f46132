"""Single sign-on in the browser: the district admin configures it on the settings page, then a
teacher of the district's school signs in through a real OpenID provider's own login and
consent pages (panva's oidc-provider on loopback), lands signed in, and on signing out is
offered the provider's sign-out too."""
from __future__ import annotations

import os
import pytest
import requests

from tests.browser.conftest import PASSWORD, require_endpoints
from tests.support.infra import random_suffix
from tests.support.oidc_provider import OidcProvider, node_available

pytestmark = [pytest.mark.browser, pytest.mark.integration,
              # CI installs Node.js (.ci/run); elsewhere without it these are skipped, saying why.
              pytest.mark.skipif(not node_available() and not os.environ.get("CI"),
                                 reason="needs Node.js 20.19+ and npm (apt-get install -y nodejs npm)")]

CLIENT_ID = "weintervene-browser"
CLIENT_SECRET = "browser-client-secret"


@pytest.fixture(scope="module")
def provider(system):
    with OidcProvider() as running:
        running.set_clients([{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                              "redirect_uris": [system.url("/api/v1/sso/callback")],
                              "post_logout_redirect_uris": [system.url("/signout")]}])
        yield running


def test_district_admin_configures_and_a_teacher_signs_in_through_the_provider(page, people, system, provider):
    require_endpoints(system, ("PUT", f"/api/v1/tenants/{people['district']['id']}/sso"),
                      ("GET", "/api/v1/sso/callback"))
    district = people["district"]["id"]
    try:
        # The district admin: Settings -> Single sign-on, generic OpenID Connect.
        page.open("/signin")
        page.sign_in(people["district_admin"]["email"])
        page.dismiss_policy_banner()
        page.click("#site-nav a[href='/admin/settings']")
        page.wait_for_selector("#sso-form")
        page.select_option("#sso-form select[name=preset]", "generic")
        page.fill("#sso-form input[name=issuer_url]", provider.issuer)
        page.fill("#sso-form input[name=client_id]", CLIENT_ID)
        page.fill("#sso-form input[name=client_secret]", CLIENT_SECRET)
        page.fill("#sso-form input[name=allowed_domains]", "browser.example")
        page.click("#sso-form button[type=submit]")
        page.wait_for_selector("#sso .notice-success")
        assert page.text_content("#sso-redirect-uri") == system.url("/api/v1/sso/callback")
        assert page.input_value("#sso-form input[name=client_secret]") == ""  # not left in the form
        page.assert_accessible("single sign-on settings")
        page.shot("sso-settings")
        page.click("#sign-out")
        page.wait_heading("You are signed out")

        # The teacher: types the work address, goes to the provider, signs in there.
        account = f"rivera-{random_suffix()}"
        provider.set_account(account, email=people["teacher"]["email"], email_verified=True, name="Ms Rivera")
        page.open("/signin")
        page.fill("input[name=email]", people["teacher"]["email"])
        page.click("#sso-sign-in")
        page.wait_for_url(f"{provider.issuer}/**")
        page.fill("input[name=login]", account)
        page.fill("input[name=password]", "the provider's own password")
        page.shot("sso-provider-login")
        page.click("button[type=submit]")
        page.wait_for_selector("button.login-submit")  # the provider's consent page
        page.click("button.login-submit")
        page.wait_for_url(f"{system.base_url}/", timeout=20000)
        page.wait_heading("Welcome, Ms Rivera")
        me = page.evaluate("() => fetch('/api/v1/me').then(r => r.json())")
        assert (me["email"], me["role"]) == (people["teacher"]["email"], "teacher")
        assert not any(c["name"] == "wi_sso_flow" for c in page.cookies())  # the flow is used once
        page.shot("sso-signed-in")

        page.click("#sign-out")
        page.wait_heading("You are signed out")
        link = page.get_attribute("#provider-sign-out", "href")
        assert link.startswith(f"{provider.issuer}/session/end?client_id={CLIENT_ID}")
        page.assert_accessible("signed out after single sign-on")

        # Password sign-in turned off: the teacher's password is refused with the way in.
        admin = system.login(people["district_admin"]["email"], PASSWORD)
        current = admin.get(system.url(f"/api/v1/tenants/{district}/sso"), timeout=30).json()
        answer = admin.put(system.url(f"/api/v1/tenants/{district}/sso"), timeout=30, json={
            "preset": "generic", "issuer_url": current["issuer_url"], "client_id": CLIENT_ID,
            "allowed_domains": current["allowed_domains"], "password_sign_in_allowed": False})
        assert answer.status_code == 200, answer.text
        page.open("/signin")
        page.fill("input[name=email]", people["teacher"]["email"])
        page.fill("input[name=password]", PASSWORD)
        page.click("form button[type=submit]")
        page.wait_for_selector("#signin-messages .notice-error")
        assert "single sign-on" in page.text_content("#signin-messages .notice-error")
        assert page.path().startswith("/signin")
        page.shot("sso-password-refused")
    finally:
        admin = system.login(people["district_admin"]["email"], PASSWORD)
        admin.delete(system.url(f"/api/v1/tenants/{district}/sso"), timeout=30)
        assert requests.post(system.url("/api/v1/sso/lookup"), json={"email": people["teacher"]["email"]},
                             timeout=30).status_code == 404
