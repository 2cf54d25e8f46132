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
