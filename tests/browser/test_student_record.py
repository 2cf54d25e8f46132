"""A school admin handles a parent's request to inspect a student's records in the browser:
opens it, downloads the records from every service, closes it with its outcome."""
from __future__ import annotations

import io
import json
import zipfile

import pytest
import requests

from tests.browser.conftest import PASSWORD, require_endpoints
from tests.browser.test_journeys import import_roster, student_rows
from tests.support.infra import random_suffix

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ANY_ID = "00000000-0000-4000-8000-000000000000"


def test_admin_opens_an_inspection_downloads_the_records_and_closes_it(page, people, system):
    require_endpoints(system, ("POST", "/api/v1/inspection-requests"), ("GET", "/api/v1/inspection-requests"),
                      ("GET", f"/api/v1/inspection-requests/{ANY_ID}/records"),
                      ("POST", f"/api/v1/inspection-requests/{ANY_ID}/close"))
    word = random_suffix(8)
    first = "Ines" + random_suffix(4).capitalize()
    admin = system.login(people["school_admin"]["email"], PASSWORD)
    import_roster(system, admin, student_rows(people, f"S-{word}", first, f"parent.{word}@family.example"))
    student = next(s for s in admin.get(system.url("/api/v1/students?per_page=200")).json()["items"] if s["first_name"] == first)

    page.open("/signin")
    page.sign_in(people["school_admin"]["email"])
    page.dismiss_policy_banner()
    page.open(f"/students/{student['id']}")
    page.wait_heading(first)
    page.settle()
    assert "No inspection requests for this student." in page.text_content(".inspections")
    page.fill("#inspection-form input[name=inspection_note]", "Asked at the front office")
    page.click("#inspection-form button[type=submit]")
    page.wait_for_selector(".inspections a.records-download")
    page.settle()
    page.shot("student-record-inspection")
    page.assert_accessible("student record with an inspection")

    # The link downloads the student's records from every service, and no one else's.
    link = page.get_attribute(".inspections a.records-download", "href")
    r = admin.get(system.url(link))
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/zip"), r.text[:200]
    records = zipfile.ZipFile(io.BytesIO(r.content))
    assert first in json.dumps(json.loads(records.read("identity/student.json")))
    # The link names no student, and without a session it hands out nothing.
    assert student["id"] not in link and first not in link
    assert requests.get(system.url(link), timeout=30).status_code == 401

    page.select_option(".inspections select[name=outcome]", "provided")
    page.click(".inspections button:has-text('Close the request')")
    page.wait_for_function("() => document.querySelector('.inspections table').textContent.includes('Provided')")
    assert page.query_selector(".inspections a.records-download") is None
    assert admin.get(system.url(link)).status_code in (403, 404, 409)  # closed: the records are no longer handed out
