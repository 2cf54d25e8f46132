"""Policy versions and incident notices in the browser: the privacy page and the banner
come from the API, an acknowledgement is recorded per user by identity (it follows
the user to another browser), and the operator publishes both from a page."""
from __future__ import annotations

import pytest
import requests

from tests.browser.conftest import PASSWORD, require_endpoints
from tests.support.infra import random_suffix
from weintervene.db import utcnow

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def current(system) -> dict:
    return requests.get(system.url("/api/v1/notices"), timeout=30).json()


def test_privacy_page_and_the_banner_follow_the_user_not_the_browser(page, browser, people, system, bootstrap):
    require_endpoints(system, ("GET", "/api/v1/notices"), ("POST", "/api/v1/me/policy-acknowledgement"))
    user = bootstrap("teacher", people["school"]["id"], "Nia Newcomer")  # has read nothing yet
    policy = current(system)["policy"]
    page.open("/privacy")
    page.wait_heading("Privacy policy")
    assert f"Last Updated: {policy['last_updated']}" in page.text_content("main .updated")
    page.assert_accessible("privacy")
    page.shot("privacy")

    page.open("/signin")
    page.sign_in(user["email"])
    page.wait_for_selector(".banner-policy")
    assert policy["last_updated"] in page.text_content(".banner-policy")
    page.assert_accessible("policy banner")
    page.shot("policy-banner")
    page.click("#policy-ack")
    page.wait_for_selector(".banner-policy", state="detached")
    assert "wi_policy_ack" not in {c["name"] for c in page.cookies()}  # nothing kept in the browser
    api = system.login(user["email"], PASSWORD)
    assert api.get(system.url("/api/v1/me/policy-acknowledgement"), timeout=30).json()["acknowledged"] is True
    page.go("/search")
    page.wait_heading("Find services")
    page.banners_loaded()
    assert page.query_selector(".banner-policy") is None

    # Another browser (no cookies at all): still acknowledged, because identity recorded it.
    browser.send("new_context", viewport={"width": 1280, "height": 860})
    page.open("/signin")
    page.sign_in(user["email"])
    page.banners_loaded()
    assert page.query_selector(".banner-policy") is None
    page.go("/privacy")
    page.wait_heading("Privacy policy")
    page.wait_for_function("() => document.querySelector('#privacy-ack-state').textContent.includes('You acknowledged')")
    assert not page.is_visible("#privacy-ack")


def test_operator_publishes_a_version_and_an_incident_everyone_sees(page, browser, people, system, bootstrap):
    require_endpoints(system, ("POST", "/api/v1/policy-versions"), ("POST", "/api/v1/incident-notices"),
                      ("GET", "/api/v1/incident-notices"), ("POST", "/api/v1/incident-notices/00000000-0000-4000-8000-000000000000/end"))
    word = random_suffix(8)
    teacher = bootstrap("teacher", people["school"]["id"], "Theo Teacher")
    page.open("/signin")
    page.sign_in(people["operator"]["email"])
    page.dismiss_policy_banner()
    page.click("#site-nav a[href='/operator/notices']")
    page.wait_heading("Policy and notices")
    page.settle()
    page.assert_accessible("policy and notices")

    # A version dated before the current one: refused, with the reason on the page.
    page.fill("#policy-form input[name=last_updated]", "2026-10-01")
    page.fill("#policy-form textarea[name=summary]", f"Too old {word}")
    page.click("#policy-form button[type=submit]")
    page.wait_for_selector("main .notice-error")
    assert "cannot be older" in page.text_content("main .notice-error")
    assert current(system)["policy"]["summary"] != f"Too old {word}"

    today = utcnow().date().isoformat()
    page.fill("#policy-form input[name=last_updated]", today)
    page.fill("#policy-form textarea[name=summary]", f"Delivery logs now kept 90 days {word}.")
    page.click("#policy-form button[type=submit]")
    page.wait_for_selector("main .notice-success")
    page.settle()
    assert f"90 days {word}" in page.text_content("main table")
    assert current(system)["policy"]["summary"] == f"Delivery logs now kept 90 days {word}."
    # The operator, too, is asked to read the new version at once.
    page.wait_for_selector(".banner-policy")
    assert f"90 days {word}" in page.text_content(".banner-policy")

    page.fill("#notice-form textarea[name=message]", f"Text messages are delayed {word}; email works.")
    page.select_option("#notice-form select[name=severity]", "warning")
    page.click("#notice-form button[type=submit]")
    page.wait_for_function("w => document.querySelector('#banners').textContent.includes(w)", arg=word)
    page.settle()
    # A second, informational one, ended from the page at once.
    page.fill("#notice-form textarea[name=message]", f"Maintenance tonight {word}-m.")
    page.select_option("#notice-form select[name=severity]", "info")
    page.click("#notice-form button[type=submit]")
    page.wait_for_function("w => document.querySelector('#banners .banner-info')?.textContent.includes(w)", arg=f"{word}-m")
    page.settle()
    [maintenance] = [n for n in current(system)["incidents"] if f"{word}-m" in n["message"]]
    page.click(f"button[data-end='{maintenance['id']}']")
    page.wait_for_function("w => !document.querySelector('#banners').textContent.includes(w)", arg=f"{word}-m")
    page.settle()
    assert [n for n in current(system)["incidents"] if f"{word}-m" in n["message"]] == []
    page.shot("operator-notices")
    page.assert_accessible("operator notices with a notice")
    [notice] = [n for n in current(system)["incidents"] if word in n["message"]]
    try:
        # A visitor sees the incident on the sign-in page; the teacher, once signed in, the new policy too.
        browser.send("new_context", viewport={"width": 1280, "height": 860})
        page.open("/signin")
        page.banners_loaded()
        assert word in page.text_content(".banner-incident")
        assert page.query_selector(".banner-policy") is None  # nobody to ask yet
        page.shot("signin-with-incident")
        page.assert_accessible("sign in with an incident")
        page.sign_in(teacher["email"])
        page.wait_for_selector(".banner-policy")
        assert f"90 days {word}" in page.text_content(".banner-policy")
        assert word in page.text_content(".banner-incident")
        page.shot("teacher-banners")
    finally:
        ops = system.login(people["operator"]["email"], PASSWORD)
        ops.post(system.url(f"/api/v1/incident-notices/{notice['id']}/end"), timeout=30)

    # Once ended, it is gone for everyone (the next fresh load asks again).
    page.open("/search")
    page.wait_heading("Find services")
    page.banners_loaded()
    assert page.evaluate("w => [...document.querySelectorAll('.banner-incident')].some(b => b.textContent.includes(w))",
                         word) is False
