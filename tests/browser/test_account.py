"""A person's own account in the browser: change the password (then only the new one signs
in, and their other sessions end)."""
from __future__ import annotations

import pytest
import requests

from tests.browser.conftest import PASSWORD, require_endpoints

pytestmark = [pytest.mark.browser, pytest.mark.integration]

NEW_PASSWORD = "a fresh passphrase for winter 2026"


def test_change_password_then_only_the_new_one_signs_in(page, people, system, bootstrap):
    require_endpoints(system, ("POST", "/api/v1/me/password"), ("POST", "/api/v1/sessions"))
    user = bootstrap("teacher", people["school"]["id"], "Cora Changer")
    elsewhere = system.login(user["email"], PASSWORD)  # the same person signed in on another device
    assert elsewhere.get(system.url("/api/v1/me"), timeout=30).status_code == 200

    page.open("/signin")
    page.sign_in(user["email"])
    page.dismiss_policy_banner()
    page.click("#site-nav a[href='/account/password']")
    page.wait_heading("Change your password")
    page.assert_accessible("change password")

    # The two new passwords differ: caught on the page, nothing sent.
    page.fill("input[name=current_password]", PASSWORD)
    page.fill("input[name=new_password]", NEW_PASSWORD)
    page.fill("input[name=confirm]", NEW_PASSWORD + "x")
    page.click("main form button[type=submit]")
    page.wait_for_selector("main .notice-error")
    assert "differ" in page.text_content("main .notice-error")
    # A wrong current password and a common password: the API's reasons, shown.
    page.fill("input[name=current_password]", "not my password at all")
    page.fill("input[name=confirm]", NEW_PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_function("() => !document.querySelector('main .notice-error').textContent.includes('differ')")
    wrong = page.text_content("main .notice-error")
    page.fill("input[name=current_password]", PASSWORD)
    page.fill("input[name=new_password]", "password1234")
    page.fill("input[name=confirm]", "password1234")
    page.click("main form button[type=submit]")
    page.wait_for_function("t => document.querySelector('main .notice-error').textContent !== t", arg=wrong)
    weak = page.text_content("main .notice-error")
    assert wrong.strip() and weak.strip() and wrong != weak
    assert system.login(user["email"], PASSWORD)  # nothing changed yet

    page.fill("input[name=current_password]", PASSWORD)
    page.fill("input[name=new_password]", NEW_PASSWORD)
    page.fill("input[name=confirm]", NEW_PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_selector("main .notice-success")
    assert "changed" in page.text_content("main .notice-success")
    assert page.input_value("input[name=new_password]") == ""  # not left in the form
    page.shot("password-changed")
    # This session goes on; the other device's session has ended.
    page.go("/search")
    page.wait_heading("Find services")
    assert elsewhere.get(system.url("/api/v1/me"), timeout=30).status_code == 401

    page.click("#sign-out")
    page.wait_heading("You are signed out")
    page.open("/signin")
    page.fill("input[name=email]", user["email"])
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_selector("#signin-messages .notice-error")
    assert page.path().startswith("/signin")
    assert requests.post(system.url("/api/v1/sessions"), json={"email": user["email"], "password": PASSWORD},
                         timeout=30).status_code == 401
    page.sign_in(user["email"], NEW_PASSWORD)
    page.wait_heading("Welcome, Cora Changer")
