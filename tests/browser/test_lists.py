"""A teacher's saved lists in the browser: create a list, save a service to it from the
service's page, find it on the list, and share the whole list from there."""
from __future__ import annotations

import pytest

from tests.browser.conftest import PASSWORD, require_endpoints
from tests.browser.test_journeys import create_service
from tests.support.infra import random_suffix

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ANY_ID = "00000000-0000-4000-8000-000000000000"


def test_teacher_saves_a_service_to_a_list_and_shares_the_list(page, people, system):
    require_endpoints(system, ("GET", "/api/v1/lists"), ("POST", "/api/v1/lists"), ("POST", f"/api/v1/lists/{ANY_ID}/items"))
    word = random_suffix(8)
    service = create_service(system, people, f"Food pantry {word}")
    page.open("/signin")
    page.sign_in(people["teacher"]["email"])
    page.dismiss_policy_banner()
    page.go("/lists")
    page.wait_heading("Saved lists")
    page.settle()
    page.fill("input[name=name]", f"Pantries {word}")
    page.check("input[name=shared]")
    page.click("main form button[type=submit]")
    page.wait_for_selector("main .notice-success")
    page.settle()
    assert f"Pantries {word}" in page.text_content("main .cards")

    page.go(f"/services/{service['id']}")
    page.wait_heading(f"Food pantry {word}")
    page.click("button:has-text('Save to a list')")
    page.wait_for_selector("#list-choice")
    list_id = page.evaluate("n => [...document.querySelectorAll('#list-choice option')].find(o => o.textContent === n).value",
                            f"Pantries {word}")
    page.select_option("#list-choice", list_id)
    page.click(".save-to-list button:has-text('Add')")
    page.wait_for_selector(".save-to-list .notice-success")

    page.go("/lists")
    page.wait_heading("Saved lists")
    page.settle()
    card = f"main .cards li.card:has(h2:text-is('Pantries {word}'))"
    assert page.is_visible(f"{card} a[href='/services/{service['id']}']")
    assert "shared with the school" in page.text_content(card)
    page.shot("teacher-saved-lists")
    page.assert_accessible("saved lists")
    # The school's other staff see a shared list (it is the API's rule; the page shows it).
    admin = system.login(people["school_admin"]["email"], PASSWORD)
    assert any(lst["id"] == list_id for lst in admin.get(system.url("/api/v1/lists")).json()["items"])
    page.click(f"{card} button:has-text('Share this list')")
    page.wait_for_selector("dialog[open]")
    assert f"Food pantry {word}" in page.text_content("dialog[open]")
    page.assert_accessible("share a list")


def test_the_owner_takes_a_service_off_a_list_and_deletes_the_list(page, people, system):
    word = random_suffix(8)
    kept = create_service(system, people, f"Tutoring {word}")
    dropped = create_service(system, people, f"Clothing bank {word}")
    teacher = system.login(people["teacher"]["email"], PASSWORD)
    r = teacher.post(system.url("/api/v1/lists"), json={"name": f"Mixed {word}", "service_ids": [kept["id"], dropped["id"]]})
    assert r.status_code == 201, r.text
    list_id = r.json()["id"]
    page.open("/signin")
    page.sign_in(people["teacher"]["email"])
    page.dismiss_policy_banner()
    page.go("/lists")
    page.wait_heading("Saved lists")
    page.settle()
    card = f"main .cards li.card:has(h2:text-is('Mixed {word}'))"
    page.click(f"{card} button[aria-label='Remove Clothing bank {word} from Mixed {word}']")
    page.wait_for_selector("main .notice-success")
    page.settle()
    assert not page.is_visible(f"{card} a[href='/services/{dropped['id']}']")
    assert page.is_visible(f"{card} a[href='/services/{kept['id']}']")
    assert [i["service_id"] for i in next(lst for lst in teacher.get(system.url("/api/v1/lists")).json()["items"]
                                          if lst["id"] == list_id)["items"]] == [kept["id"]]
    page.assert_accessible("saved list with remove buttons")
    page.evaluate("() => { window.confirm = () => true; }")  # the page asks before deleting
    page.click(f"{card} button:has-text('Delete list')")
    page.wait_for_selector(f"main .notice-success:has-text('List Mixed {word} deleted.')")
    assert all(lst["id"] != list_id for lst in teacher.get(system.url("/api/v1/lists")).json()["items"])
    # Only the owner changes a list: another teacher gets a 403 from the same API the page uses.
    other = teacher.post(system.url("/api/v1/lists"), json={"name": f"Shared {word}", "shared": True})
    admin = system.login(people["school_admin"]["email"], PASSWORD)
    r = admin.delete(system.url(f"/api/v1/lists/{other.json()['id']}"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "list_forbidden", r.text
