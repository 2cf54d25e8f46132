"""A district administrator uploads a OneRoster 1.2 CSV package in the web app, reads the
preview (files not read, dropped columns, counts), confirms the contacts are authorised and
imports it: the teacher then sees exactly the students of their classes."""
from __future__ import annotations

import pytest

from tests.browser.conftest import PASSWORD, require_endpoints
from tests.support.infra import random_suffix
from tests.support.oneroster_package import District

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_district_admin_previews_and_imports_a_oneroster_package(page, people, system, bootstrap, tmp_path):
    require_endpoints(system, ("POST", "/api/v1/rosters/oneroster/preview"), ("POST", "/api/v1/rosters/oneroster/import"))
    word = random_suffix(6)
    ops = system.login(people["operator"]["email"], PASSWORD)
    district = ops.post(system.url("/api/v1/tenants"), json={"kind": "district", "name": f"SIS District {word}"}).json()
    names = [f"North {word}", f"South {word}"]
    schools = [ops.post(system.url("/api/v1/tenants"), json={"kind": "school", "name": n, "parent_id": district["id"]}).json()
               for n in names]
    admin = bootstrap("district_admin", district["id"], "Dana SIS")
    teacher = bootstrap("teacher", schools[0]["id"], "Ms North")
    package = District.generate(names, students_per_school=3, district=f"SIS District {word}",
                                teacher_emails={0: [teacher["email"]]}, marker=f"Bw{word}")
    archive = tmp_path / "oneroster.zip"
    archive.write_bytes(package.zip())

    page.open("/signin")
    page.sign_in(admin["email"])
    page.dismiss_policy_banner()
    page.go("/admin/oneroster")
    page.wait_heading("OneRoster import")
    page.set_input_files("input[type=file]", str(archive))
    page.check("#oneroster-authorised")
    page.click("form button[type=submit]")
    page.wait_for_selector("#oneroster-report")
    page.settle()
    report = page.text_content("#oneroster-report")
    assert "Preview" in report and "demographics.csv" in report and "not read" in report
    assert "pronouns" in report and "password" in report  # dropped columns named, with counts
    assert "students 6 created" in page.text_content("#oneroster-counts")
    assert "No row has errors" in report
    page.shot("oneroster-preview")
    page.assert_accessible("oneroster preview")
    page.click("#oneroster-import")
    page.wait_for_function("() => document.querySelector('#oneroster-report h2').textContent === 'Import result'")
    page.settle()
    assert "Imported: students 6 created" in page.text_content("#oneroster-counts")
    page.shot("oneroster-imported")

    seen = system.login(teacher["email"], PASSWORD).get(system.url("/api/v1/students?per_page=200")).json()["items"]
    assert sorted(s["roster_key"] for s in seen) == ["s-0-0", "s-0-1", "s-0-2"]  # one teacher, both North classes
    school_admin = bootstrap("school_admin", schools[0]["id"], "North Admin")
    record = system.login(school_admin["email"], PASSWORD).get(system.url(f"/api/v1/students/{seen[0]['id']}")).json()
    assert record["contacts"] and all(c["authorised"] for c in record["contacts"])


def test_school_admin_maps_the_sis_headers_of_a_roster_csv(page, people, system, bootstrap, tmp_path):
    require_endpoints(system, ("GET", "/api/v1/rosters/column-mapping"), ("PUT", "/api/v1/rosters/column-mapping"))
    word = random_suffix(6)
    ops = system.login(people["operator"]["email"], PASSWORD)
    school = ops.post(system.url("/api/v1/tenants"), json={"kind": "school", "name": f"Mapped {word}"}).json()
    admin = bootstrap("school_admin", school["id"], "Mo Mapper")
    roster = tmp_path / "sis.csv"
    roster.write_text(f"Student ID,Given,Surname,Home Address\nM-{word},Ana,Lopez{word},12 Elm St\n")

    page.open("/signin")
    page.sign_in(admin["email"])
    page.dismiss_policy_banner()
    page.go("/admin/roster")
    page.wait_heading("Roster import")
    page.set_input_files("input[type=file]", str(roster))
    page.click("form button[type=submit]")
    page.wait_for_selector("#roster-mapping")
    page.settle()
    assert "Required columns are missing" in page.text_content("main")
    page.select_option("select[aria-label='Field for the column Student ID']", "student_key")
    page.select_option("select[aria-label='Field for the column Given']", "first_name")
    page.select_option("select[aria-label='Field for the column Surname']", "last_name")
    page.assert_accessible("roster column mapping")
    page.click("#roster-save-mapping")
    page.wait_for_selector(".roster-report")
    page.settle()
    report = page.text_content(".roster-report")
    assert "Home Address" in report and "No row has errors" in report
    page.shot("roster-column-mapping")
    page.click("#roster-import")
    page.wait_for_function("() => document.querySelector('.roster-report h2').textContent === 'Import result'")
    assert "1 created" in page.text_content("#roster-counts")
    mapping = system.login(admin["email"], PASSWORD).get(system.url("/api/v1/rosters/column-mapping")).json()["mapping"]
    assert mapping["Student ID"] == "student_key" and mapping["Home Address"] is None
