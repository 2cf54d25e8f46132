"""The search form as the help text promises: an empty postcode with a distance measures from
the teacher's school (and says so), and "Open at" a chosen day and time filters like "Open now"."""
from __future__ import annotations

import pytest

from tests.browser.conftest import require_endpoints
from tests.browser.test_journeys import create_service
from tests.support.infra import random_suffix

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _search(page):
    page.click("form[role=search] button[type=submit]")
    page.wait_for_function("() => !document.querySelector('main [aria-busy=true]')")
    page.wait_for_selector("main .result-count")


def test_distance_from_the_school_and_open_at_a_chosen_time(page, people, system):
    require_endpoints(system, ("GET", "/api/v1/directory/services"), ("POST", "/api/v1/directory/services"))
    word = random_suffix(10)
    # Near the school (10001, Manhattan), open weekdays 9:00-18:00; and one far away (Brooklyn is ~6 miles).
    near = create_service(system, people, f"Counseling {word} near")
    far = create_service(system, people, f"Counseling {word} far", location={
        "name": "Far office", "address": {"address_1": "1 Far St", "city": "Brooklyn", "state_province": "NY",
                                          "postal_code": "11235"}, "latitude": 40.5839, "longitude": -73.9496})
    page.open("/signin")
    page.sign_in(people["teacher"]["email"])
    page.dismiss_policy_banner()
    page.go("/search")
    page.wait_heading("Find services")
    page.fill("input[name=q]", word)
    page.select_option("select[name=radius_miles]", "1")
    _search(page)
    page.wait_for_selector(f"a[href='/services/{near['id']}']")
    assert page.query_selector(f"a[href='/services/{far['id']}']") is None
    assert page.text_content("main .measured-from").strip() == f"Distances from {people['school']['name']} (10001)."
    page.assert_accessible("search measured from the school")

    page.select_option("select[name=radius_miles]", "")
    page.select_option("select[name=open]", "at")
    page.select_option("select[name=open_day]", "TU")
    page.fill("input[name=open_time]", "16:00")
    _search(page)
    page.wait_for_selector(f"a[href='/services/{near['id']}']")
    assert page.query_selector(f"a[href='/services/{far['id']}']") is not None  # both open Tuesday 16:00
    page.select_option("select[name=open_day]", "SU")
    _search(page)
    assert page.query_selector(f"a[href='/services/{near['id']}']") is None  # closed on Sundays
    assert "No services match" in page.text_content("main .result-count")
    page.assert_clean_console()
