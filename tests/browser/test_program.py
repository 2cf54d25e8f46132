"""Journey 7 in the browser: a teacher shares a youth program's service with consent, the
program's staff see it among their incoming referrals, accept (or decline) it and keep its
status up to date, and the teacher sees each change."""
from __future__ import annotations

import pytest

from tests.browser.conftest import PASSWORD, require_endpoints
from tests.browser.test_journeys import ANY_ID, import_roster, student_rows
from tests.support.infra import random_suffix

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def program_service(system, people, program_admin, name: str) -> dict:
    """The program's own service, offered to every school on the platform."""
    body = {
        "name": name, "organization_name": f"{name} Org", "description": "Weekly mentoring for middle schoolers.",
        "languages": ["en", "es"], "cost": "free", "phones": ["555-010-3000"],
        "location": {"name": "Youth center", "address": {"address_1": "9 Park Ave", "city": "New York",
                                                         "state_province": "NY", "postal_code": "10001"},
                     "latitude": 40.7500, "longitude": -73.9900},
    }
    r = program_admin.post(system.url("/api/v1/directory/services"), json=body)
    assert r.status_code == 201, r.text
    service = r.json()
    assert service["owner_tenant_id"] == people["program"]["id"]
    r = program_admin.patch(system.url(f"/api/v1/directory/services/{service['id']}"), json={"published_to": "schools"})
    assert r.status_code == 200, r.text
    assert r.json()["published_to"] == "schools"
    return service


def share_in_the_browser(page, service, student, first):
    page.go(f"/services/{service['id']}")
    page.wait_heading(service["name"])
    page.click("#share-button")
    page.wait_for_selector(f"select[name=student_id] option[value='{student['id']}']", state="attached")
    page.fill("input[name=student_filter]", first[:5])
    page.select_option("select[name=student_id]", student["id"])
    page.wait_for_selector("input[name=contact_ids]")
    page.check("input[name=contact_ids]")
    page.select_option("select[name=channel]", "email")
    # The service is a program's: the dialog asks for the family's consent to disclose.
    assert page.is_visible("fieldset.consent-area")
    page.select_option("select[name=consent_given_by]", "parent")
    page.select_option("select[name=consent_method]", "written")
    page.click("dialog button[type=submit]")
    page.wait_for_selector("dialog .notice-success")
    href = page.get_attribute("dialog a[href^='/referrals/']", "href")
    page.click("dialog .notice-success ~ .actions button")
    return href.rsplit("/", 1)[1]


def test_program_staff_accept_decline_and_update_and_the_teacher_sees_it(page, browser, people, system, bootstrap):
    require_endpoints(system, ("POST", "/api/v1/directory/services"), ("PATCH", f"/api/v1/directory/services/{ANY_ID}"),
                      ("GET", "/api/v1/referrals"), ("POST", f"/api/v1/referrals/{ANY_ID}/status"),
                      ("GET", f"/api/v1/students/{ANY_ID}/disclosures"))
    word = random_suffix(8)
    program_admin = bootstrap("program_admin", people["program"]["id"], "Paz Director")
    mentoring = program_service(system, people, system.login(program_admin["email"], PASSWORD), f"Mentoring {word}")
    tutoring = program_service(system, people, system.login(program_admin["email"], PASSWORD), f"Homework Club {word}")
    first = "Mateo" + random_suffix(4).capitalize()
    admin = system.login(people["school_admin"]["email"], PASSWORD)
    import_roster(system, admin, student_rows(people, f"P-{word}", first, f"ana.{word}@family.example"))
    teacher_api = system.login(people["teacher"]["email"], PASSWORD)
    student = next(s for s in teacher_api.get(system.url("/api/v1/students?per_page=200")).json()["items"]
                   if s["first_name"] == first)

    # The teacher shares both services with Mateo's mother, consent recorded.
    page.open("/signin")
    page.sign_in(people["teacher"]["email"])
    page.dismiss_policy_banner()
    accepted_id = share_in_the_browser(page, mentoring, student, first)
    declined_id = share_in_the_browser(page, tutoring, student, first)
    page.shot("journey7-teacher-shared-with-consent")

    # The program's staff see both among their incoming referrals: the first name only.
    browser.send("new_context", viewport={"width": 1280, "height": 860})
    page.open("/signin")
    page.sign_in(people["program_staff"]["email"])
    page.dismiss_policy_banner()
    page.click("#site-nav a[href='/incoming']")
    page.wait_heading("Incoming referrals")
    page.settle()
    listing = page.text_content("main table")
    assert f"Mentoring {word}" in listing and f"Homework Club {word}" in listing
    assert first in listing and "Ramos" not in listing and "ana." not in listing
    page.shot("journey7-incoming")
    page.assert_accessible("incoming referrals")

    page.click(f"main table a[href='/referrals/{accepted_id}']")
    page.wait_heading(f"Mentoring {word}")
    assert first in page.text_content("#referral-for") and "Ramos" not in page.text_content("main")
    page.assert_accessible("incoming referral")
    page.click("#accept")
    page.wait_for_function("() => document.querySelector('#referral-status').textContent === 'Accepted'")
    page.select_option("form select[name=status]", "in-progress")
    page.click("form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#referral-status').textContent === 'In progress'")
    page.select_option("form select[name=status]", "completed")
    page.select_option("form select[name=outcome]", "connected")
    page.fill("form textarea[name=note]", "Matched with a mentor")
    page.click("form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#referral-status').textContent === 'Completed'")
    page.shot("journey7-program-completed")

    page.go(f"/referrals/{declined_id}")
    page.wait_heading(f"Homework Club {word}")
    page.click("#decline")
    page.wait_for_function("() => document.querySelector('#referral-status').textContent === 'Rejected'")
    page.go("/incoming")
    page.wait_heading("Incoming referrals")
    page.select_option("select[name=status]", "rejected")
    page.click("main form button[type=submit]")
    page.settle()
    assert f"Homework Club {word}" in page.text_content("main table")
    assert f"Mentoring {word}" not in page.text_content("main table")

    # The teacher sees each change of both.
    history = teacher_api.get(system.url(f"/api/v1/referrals/{accepted_id}")).json()["history"]
    assert [h["status"] for h in history] == ["requested", "accepted", "in-progress", "completed"]
    browser.send("new_context", viewport={"width": 1280, "height": 860})
    page.open("/signin")
    page.sign_in(people["teacher"]["email"])
    page.go(f"/referrals/{accepted_id}")
    page.wait_heading(f"Mentoring {word}")
    assert page.text_content("#referral-status") == "Completed"
    table = page.text_content("main table")
    assert "Accepted" in table and "In progress" in table and "Matched with a mentor" in table
    page.go(f"/referrals/{declined_id}")
    page.wait_heading(f"Homework Club {word}")
    assert page.text_content("#referral-status") == "Rejected"
    page.shot("journey7-teacher-sees-the-decline")
    # The disclosure is in the school's log.
    log = admin.get(system.url(f"/api/v1/students/{student['id']}/disclosures")).json()["items"]
    assert {d["referral_id"] for d in log} >= {accepted_id, declined_id}
