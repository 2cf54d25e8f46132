"""Break-glass in the browser (issue 16): an operator asks to invite a new administrator to
a school, with a reason; the operator's own request offers no Approve; the school's admin
approves it on the same page, and the invitation goes out."""
import pytest

from tests.browser.conftest import PASSWORD
from tests.support.infra import random_suffix

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_an_operator_asks_and_the_schools_admin_approves(page, browser, people, system, smtp_sink):
    email = f"new.head.{random_suffix(6)}@school.example"
    page.open("/signin")
    page.sign_in(people["operator"]["email"])
    page.dismiss_policy_banner()
    page.click("#site-nav a[href='/break-glass']")
    page.wait_heading("Break-glass recovery")
    page.settle()
    page.select_option("#break-glass-form select[name=tenant_id]", people["school"]["id"])
    page.fill("#break-glass-form input[name=email]", email)
    page.fill("#break-glass-form input[name=display_name]", "New Head")
    page.fill("#break-glass-form textarea[name=reason]", "The principal left; the district called (ticket 77).")
    page.click("#break-glass-form button[type=submit]")
    page.wait_for_selector("main .notice-success")
    assert "its administrators" in page.text_content("main .notice-success")
    page.settle()
    page.assert_accessible("break-glass as operator")
    page.shot("operator-break-glass")
    ops = system.login(people["operator"]["email"], PASSWORD)
    [request] = [r for r in ops.get(system.url("/api/v1/break-glass?status=pending&per_page=200")).json()["items"]
                 if r["email"] == email]
    # The school has an administrator: the operator may withdraw, not approve.
    assert page.query_selector(f"button[data-decide='approve-{request['id']}']") is None
    assert page.query_selector(f"button[data-decide='refuse-{request['id']}']") is not None

    browser.send("new_context", viewport={"width": 1280, "height": 860})
    page.open("/signin")
    page.sign_in(people["school_admin"]["email"])
    page.dismiss_policy_banner()
    page.click("#site-nav a[href='/break-glass']")
    page.wait_heading("Break-glass recovery")
    page.settle()
    assert "ticket 77" in page.text_content("main table")
    page.assert_accessible("break-glass as school admin")
    page.click(f"button[data-decide='approve-{request['id']}']")
    page.wait_for_selector("main .notice-success")
    assert "invited" in page.text_content("main .notice-success")
    page.shot("school-admin-break-glass-approved")
    smtp_sink.wait_for(lambda m: email in str(m["To"]))
