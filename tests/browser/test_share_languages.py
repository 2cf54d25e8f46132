"""The share dialog says, before sending, which language each contact will receive, offers the
nearest when theirs is not shipped, and the family then receives the message in that language."""
from __future__ import annotations

import pytest

from tests.browser.conftest import PASSWORD, require_endpoints
from tests.browser.test_journeys import create_service, import_roster, student_rows
from tests.support.infra import random_suffix

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def contact_hint(page) -> str:
    return page.text_content("[data-contact-language]").strip()


def test_share_dialog_shows_each_contacts_language_and_the_family_receives_it(page, people, system):
    require_endpoints(system, ("POST", "/api/v1/rosters/import"), ("POST", "/api/v1/referrals"))
    word = random_suffix(10)
    service = create_service(system, people, f"Tutoring {word}")
    first = "Amal" + random_suffix(4).capitalize()
    contact_email = f"family.{word}@family.example"
    rows = student_rows(people, f"S-{word}", first, contact_email)
    rows[0]["contact_language"] = "fr"  # a language we do not ship
    admin = system.login(people["school_admin"]["email"], PASSWORD)
    import_roster(system, admin, rows)
    teacher_api = system.login(people["teacher"]["email"], PASSWORD)
    student = next(s for s in teacher_api.get(system.url("/api/v1/students?per_page=200")).json()["items"]
                   if s["first_name"] == first)

    page.open("/signin")
    page.sign_in(people["teacher"]["email"])
    page.dismiss_policy_banner()
    page.go(f"/services/{service['id']}")
    page.wait_heading(f"Tutoring {word}")
    page.click("#share-button")
    page.wait_for_selector(f"select[name=student_id] option[value='{student['id']}']", state="attached")
    page.fill("input[name=student_filter]", first[:6])
    page.select_option("select[name=student_id]", student["id"])
    page.wait_for_selector("[data-contact-language]")
    hint = contact_hint(page)
    assert "French is not available: they will receive English" in hint, hint
    # Every shipped language is offered; choosing one says what the contact will receive.
    options = page.evaluate("() => [...document.querySelectorAll('select[name=language] option')].map(o => o.value)")
    assert options == ["", "en", "es", "ar", "zh", "vi", "ht", "so", "ru", "pt", "tl", "ko"]
    page.select_option("select[name=language]", "vi")
    hint = contact_hint(page)
    assert "Receives Vietnamese" in hint and "exist only in English" in hint, hint
    page.check("input[name=contact_ids]")
    page.select_option("select[name=channel]", "email")
    page.shot("share-dialog-languages")
    page.assert_accessible("share dialog with languages")
    page.click("dialog button[type=submit]")
    page.wait_for_selector("dialog .notice-success")

    mail = system.smtp.wait_for(lambda m: contact_email in str(m["To"]), timeout=30)
    assert mail["Subject"] == f"Một dịch vụ cho gia đình quý vị: Tutoring {word}"
    assert mail["Content-Language"] == "vi"
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "Giờ mở cửa: Th 2–Th 6 09:00–18:00" in body and "bằng Tiếng Anh" in body
