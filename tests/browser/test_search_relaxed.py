"""A search no service matches in full still answers, and the page says it relaxed the query
(the teacher's search page; the operator's directory page shows the same line); a full match
says nothing."""
from __future__ import annotations

import pytest

from tests.browser.conftest import require_endpoints
from tests.browser.test_journeys import create_service
from tests.support.infra import random_suffix

pytestmark = [pytest.mark.browser, pytest.mark.integration]
LINE = "Not every result matches every word: those matching the most of them come first."


def test_the_search_pages_say_when_they_relaxed_the_query(page, people, system):
    require_endpoints(system, ("GET", "/api/v1/directory/services"), ("POST", "/api/v1/directory/services"))
    word = random_suffix(10)
    service = create_service(system, people, f"Tutoring {word}")
    page.open("/signin")
    page.sign_in(people["teacher"]["email"])
    page.dismiss_policy_banner()
    page.go("/search")
    page.wait_heading("Find services")
    page.fill("input[name=q]", f"{word} zebrafishery")  # no service has both words
    page.click("form[role=search] button[type=submit]")
    page.wait_for_selector(f"a[href='/services/{service['id']}']")
    assert page.text_content("main .relaxed-query").strip() == LINE
    page.assert_accessible("relaxed search results")
    page.fill("input[name=q]", f"help with {word}")  # stop words never count: a full match
    page.click("form[role=search] button[type=submit]")
    page.wait_for_function("() => !document.querySelector('main [aria-busy=true]')")
    page.wait_for_selector(f"a[href='/services/{service['id']}']")
    assert page.query_selector("main .relaxed-query") is None
