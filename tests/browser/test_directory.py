"""The operator curates the global directory in the browser: add a service, find it, edit it
(its history shows the change), retire it; a teacher finds it while it is active. And an HSDS
import with its progress and report."""
from __future__ import annotations

import re
import zipfile

import pytest
import requests

from tests.browser.conftest import PASSWORD, require_endpoints
from tests.support.infra import random_suffix
from tests.support.shared_data import dataset

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ANY_ID = "00000000-0000-4000-8000-000000000000"


def teacher_finds(system, people, word) -> list[dict]:
    teacher = system.login(people["teacher"]["email"], PASSWORD)
    return teacher.get(system.url("/api/v1/directory/services"), params={"q": word}).json()["items"]


def saved(page, word: str):
    """Wait for the page's answer; an error notice fails with the API's reason."""
    page.wait_for_function("w => [...document.querySelectorAll('main .notice')].some(n => n.textContent.includes(w)"
                           " || n.classList.contains('notice-error'))", arg=word)
    page.settle()
    errors = page.query_selector("main .notice-error")
    assert errors is None, page.text_content("main .notice-error")


def test_operator_adds_edits_and_retires_a_service(page, people, system):
    require_endpoints(system, ("POST", "/api/v1/directory/services"), ("PATCH", f"/api/v1/directory/services/{ANY_ID}"),
                      ("DELETE", f"/api/v1/directory/services/{ANY_ID}"), ("GET", f"/api/v1/directory/services/{ANY_ID}/history"))
    word = random_suffix(10)
    page.open("/signin")
    page.sign_in(people["operator"]["email"])
    page.dismiss_policy_banner()
    page.click("#site-nav a[href='/operator/directory']")
    page.wait_heading("Directory services")
    page.settle()

    # A bad field gets the API's reason next to the form, and nothing is added.
    page.fill("#service-form input[name=name]", f"Homework Help {word}")
    page.fill("#service-form input[name=organization_name]", f"Library Friends {word}")
    page.fill("#service-form input[name=languages]", "spanish")
    page.click("#service-form button[type=submit]")
    page.wait_for_selector("main .notice-error")
    assert "languages" in page.text_content("main .notice-error")
    assert teacher_finds(system, people, word) == []

    category = page.evaluate("() => [...document.querySelectorAll('#service-form select[name=category] option')].find(o => o.value).value")
    page.fill("#service-form input[name=languages]", "en, es")
    page.fill("#service-form textarea[name=description]", "Free homework help after school.")
    page.select_option("#service-form select[name=category]", category)
    page.select_option("#service-form select[name=cost]", "free")
    page.fill("#service-form input[name=minimum_age]", "10")
    page.fill("#service-form input[name=maximum_age]", "14")
    page.fill("#service-form input[name=phone]", "555-010-3000")
    for day in ("MO", "WE"):
        page.check(f"#service-form input[name=day_{day}]")
    page.fill("#service-form input[name=opens_at]", "15:00")
    page.fill("#service-form input[name=closes_at]", "18:00")
    page.fill("#service-form input[name=address_1]", "12 Library Way")
    page.fill("#service-form input[name=city]", "New York")
    page.fill("#service-form input[name=state_province]", "NY")
    page.fill("#service-form input[name=postal_code]", "10001")
    page.fill("#service-form input[name=latitude]", "40.7506")
    page.fill("#service-form input[name=longitude]", "-73.9972")
    page.shot("operator-directory-add")
    page.assert_accessible("directory curation form")
    page.click("#service-form button[type=submit]")
    saved(page, "added")
    [found] = teacher_finds(system, people, word)
    assert found["name"] == f"Homework Help {word}" and found["cost"] == "free"
    assert sorted(found["languages"]) == ["en", "es"]
    assert page.is_visible(f"main table a[href='/services/{found['id']}']")

    # Edit: the form holds what was saved; a change is saved and shows in the history.
    page.click(f"button[aria-label='Edit Homework Help {word}']")
    page.wait_for_function("() => document.querySelector('#service-form-title').textContent.startsWith('Edit')")
    page.settle()
    assert page.input_value("#service-form input[name=address_1]") == "12 Library Way"
    assert page.input_value("#service-form input[name=opens_at]") == "15:00"
    assert page.is_checked("#service-form input[name=day_WE]") and not page.is_checked("#service-form input[name=day_TU]")
    page.fill("#service-form input[name=maximum_age]", "16")
    page.select_option("#service-form select[name=cost]", "low")
    page.click("#service-form button[type=submit]")
    saved(page, "saved")
    page.wait_for_selector(".history table")
    changes = page.evaluate("() => [...document.querySelectorAll('.history tbody tr')].map(r => r.cells[2].textContent)")
    # Only what changed is sent, so only that is in the history (newest first), then the creation.
    assert sorted(changes[:2]) == ["cost", "maximum_age"], changes
    operator = system.login(people["operator"]["email"], PASSWORD)
    service = operator.get(system.url(f"/api/v1/directory/services/{found['id']}")).json()
    assert (service["maximum_age"], service["cost"], service["locations"][0]["latitude"]) == (16, "low", 40.7506)
    assert [t["id"] for t in service["taxonomy_terms"]] == [category]
    page.shot("operator-directory-edit")
    page.assert_accessible("directory curation edit")

    # Retire: asked in the page, then gone from search; the record stays with its status.
    page.click(f"button[aria-label='Retire Homework Help {word}']")
    page.click("main .confirm button.danger")
    page.wait_for_function("() => (document.querySelector('main .notice-success') || {}).textContent?.includes('retired')")
    page.settle()
    assert teacher_finds(system, people, word) == []
    assert operator.get(system.url(f"/api/v1/directory/services/{found['id']}")).json()["status"] == "inactive"


def test_operator_imports_hsds_files_and_sees_progress_and_the_report(page, people, system, tmp_path):
    require_endpoints(system, ("POST", "/api/v1/directory/imports"), ("GET", f"/api/v1/directory/imports/{ANY_ID}"))
    archive = tmp_path / "ohana-sanmateo.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(dataset("ohana-sanmateo").glob("*.csv")):
            out.write(path, path.name)
    page.open("/signin")
    page.sign_in(people["operator"]["email"])
    page.dismiss_policy_banner()
    page.go("/operator/imports")
    page.wait_heading("Directory imports")
    page.set_input_files("input[name=file]", str(archive))
    page.fill("input[name=source]", "ohana-sanmateo")  # a bare zip of CSVs names no source of its own
    page.click("form button[type=submit]")
    page.wait_for_function("() => /^(Completed|Failed)/.test((document.querySelector('#import-status') || {}).textContent || '')",
                           timeout=90000)
    page.settle()
    status = page.text_content("#import-status")
    assert status.startswith("Completed"), page.text_content("main")
    done, total = (int(n) for n in re.findall(r"(\d+) of (\d+) rows", status)[0])
    assert done == total > 0
    counts = page.text_content("#import-counts")
    created, updated, unchanged = (int(n) for n in re.findall(r"(\d+) created, (\d+) updated, (\d+) unchanged", counts)[0])
    assert created + updated + unchanged >= 23  # the dataset's 23 services, with their organizations and places
    # Columns outside HSDS are reported, file by file (and stored nowhere).
    assert "admin_emails" in page.text_content("main table")
    # Every file of the package, with what became of its rows (holiday hours read as schedules).
    files = page.text_content("main")
    assert "Files in the package" in files and "holiday_schedules.csv" in files and "taxonomy.csv" in files
    page.shot("operator-import-report")
    page.assert_accessible("import report")
    found = requests.get(system.url("/hsds/services"), params={"search": "Fair Oaks"}, timeout=30).json()
    assert found["total_items"] >= 1
