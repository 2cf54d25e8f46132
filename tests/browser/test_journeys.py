"""The journeys of JOURNEYS.md in the browser, through the web app only.

Each test first checks that the endpoints it drives are routed (``require_endpoints``),
so a missing route fails at once with its name.
"""
from __future__ import annotations

import csv
import io
import time

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.browser.conftest import PASSWORD, require_endpoints
from services.directory.taxonomy import term_id
from tests.support.infra import random_suffix
from weintervene.contracts import DATA_SERVICES
from weintervene.deletion import DeletionParticipant
from weintervene.runner import service_class

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ANY_ID = "00000000-0000-4000-8000-000000000000"


def roster_csv(rows: list[dict]) -> bytes:
    columns = list(rows[0])
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def import_roster(system, admin, rows) -> dict:
    r = admin.post(system.url("/api/v1/rosters/import"), data=roster_csv(rows), headers={"Content-Type": "text/csv"})
    assert r.status_code in (200, 201), r.text
    assert not r.json()["errors"], r.json()["errors"]
    return r.json()


def create_service(system, people, name: str, **extra) -> dict:
    ops = system.login(people["operator"]["email"], PASSWORD)
    body = {
        "name": name, "organization_name": f"{name} Inc.", "description": "Counseling for students and families.",
        "languages": ["en", "es"], "cost": "free", "phones": ["555-010-2000"],
        "location": {"name": "Main office", "address": {"address_1": "1 Main St", "city": "New York", "state_province": "NY", "postal_code": "10001"},
                     "latitude": 40.7506, "longitude": -73.9972},
        "schedules": [{"days": ["MO", "TU", "WE", "TH", "FR"], "opens_at": "09:00", "closes_at": "18:00"}],
        **extra,
    }
    r = ops.post(system.url("/api/v1/directory/services"), json=body)
    assert r.status_code == 201, r.text
    return r.json()


def student_rows(people, key: str, first: str, contact_email: str) -> list[dict]:
    return [{
        "student_key": key, "first_name": first, "last_name": "Ramos", "grade": "7",
        "contact_name": "Maria Ramos", "contact_relationship": "mother", "contact_email": contact_email,
        "contact_language": "es", "contact_authorised": "yes", "staff_email": people["teacher"]["email"],
    }]


def test_teacher_searches_shares_by_email_and_updates_the_status(page, people, system):
    require_endpoints(system, ("GET", "/api/v1/directory/services"), ("POST", "/api/v1/directory/services"),
                      ("POST", "/api/v1/rosters/import"), ("GET", "/api/v1/students"), ("POST", "/api/v1/referrals"),
                      ("GET", "/api/v1/referrals"), ("POST", f"/api/v1/referrals/{ANY_ID}/status"))
    word = random_suffix(10)
    service = create_service(system, people, f"Counseling {word}")
    first = "Diego" + random_suffix(4).capitalize()
    contact_email = f"maria.{word}@family.example"
    admin = system.login(people["school_admin"]["email"], PASSWORD)
    import_roster(system, admin, student_rows(people, f"S-{word}", first, contact_email))
    teacher_api = system.login(people["teacher"]["email"], PASSWORD)
    student = next(s for s in teacher_api.get(system.url("/api/v1/students?per_page=200")).json()["items"] if s["first_name"] == first)

    page.open("/signin")
    page.sign_in(people["teacher"]["email"])
    page.dismiss_policy_banner()
    page.go("/search")
    page.wait_heading("Find services")
    page.fill("input[name=q]", word)
    page.select_option("select[name=language]", "es")
    page.select_option("select[name=cost]", "free")
    page.click("form[role=search] button[type=submit]")
    page.wait_for_selector(f"a[href='/services/{service['id']}']")
    page.shot("journey1-search-results")
    page.assert_accessible("search results")
    page.click(f"a[href='/services/{service['id']}']")
    page.wait_heading(f"Counseling {word}")
    assert "1 Main St" in page.text_content("main")
    page.shot("journey1-service")
    page.click("#share-button")
    page.wait_for_selector(f"select[name=student_id] option[value='{student['id']}']", state="attached")
    page.fill("input[name=student_filter]", first[:5])
    page.select_option("select[name=student_id]", student["id"])
    page.wait_for_selector("input[name=contact_ids]")
    page.check("input[name=contact_ids]")
    page.select_option("select[name=channel]", "email")
    page.fill("textarea[name=note]", "Ask for Ana at the front desk.")
    page.shot("journey1-share-dialog")
    page.assert_accessible("share dialog")
    page.click("dialog button[type=submit]")
    page.wait_for_selector("dialog .notice-success")
    page.shot("journey1-shared")

    mail = system.smtp.wait_for(lambda m: contact_email in str(m["To"]), timeout=30)
    body = mail.get_body(preferencelist=("plain", "html")).get_content()
    assert f"Counseling {word}" in body and "1 Main St" in body
    assert "Ask for Ana" in body

    page.click("dialog a[href^='/referrals/']")
    page.wait_heading(f"Counseling {word}")
    assert page.text_content("#referral-status").strip() in ("Requested", "Received")
    page.select_option("form select[name=status]", "completed")
    page.select_option("form select[name=outcome]", "connected")
    page.click("form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#referral-status').textContent === 'Completed'")
    page.shot("journey1-referral-completed")
    page.go("/referrals")
    page.wait_heading("My referrals")
    page.settle()
    assert f"Counseling {word}" in page.text_content("main table")
    assert first in page.text_content("main table")
    page.shot("journey1-my-referrals")
    # No student data left in the browser's storage or in any address it visited.
    storage = page.storage()
    assert storage["local"] == {} and storage["session"] == {}
    visited = page.evaluate("() => performance.getEntriesByType('navigation').map(e => e.name).concat([location.href])")
    assert not any(first.lower() in url.lower() or "ramos" in url.lower() for url in visited), visited


def test_admin_imports_a_roster_with_preview_then_fixes_rows(page, people, system, tmp_path):
    require_endpoints(system, ("POST", "/api/v1/rosters/preview"), ("POST", "/api/v1/rosters/import"), ("GET", "/api/v1/students"),
                      ("GET", f"/api/v1/students/{ANY_ID}"), ("PUT", f"/api/v1/students/{ANY_ID}/staff"), ("GET", "/api/v1/users"),
                      ("GET", f"/api/v1/tenants/{ANY_ID}"), ("PATCH", f"/api/v1/tenants/{ANY_ID}/settings"))
    word = random_suffix(6)
    good = {"student_key": f"A-{word}", "first_name": "Ana", "last_name": f"Lopez{word}", "grade": "5", "home_address": "12 Elm St", "ethnicity": "x", "iep_flag": "Y"}
    rows = [good,
            {**good, "student_key": f"B-{word}", "first_name": "Ben", "grade": "42"},
            {**good, "student_key": "", "first_name": "Cal"}]
    broken = tmp_path / "roster.csv"
    broken.write_bytes(roster_csv(rows))

    page.open("/signin")
    page.sign_in(people["school_admin"]["email"])
    page.dismiss_policy_banner()
    page.go("/admin/roster")
    page.wait_heading("Roster import")
    page.set_input_files("input[type=file]", str(broken))
    page.click("form button[type=submit]")
    page.wait_for_selector(".roster-report")
    report = page.text_content(".roster-report")
    for column in ("home_address", "ethnicity", "iep_flag"):
        assert column in report
    assert "2 rows with errors" in report
    page.shot("journey3-roster-preview")
    page.assert_accessible("roster preview")
    page.click("#roster-import")
    page.wait_for_function("() => document.querySelector('.roster-report h2').textContent === 'Import result'")
    assert "1 created" in page.text_content("#roster-counts")

    fixed = tmp_path / "roster-fixed.csv"
    fixed.write_bytes(roster_csv([good, {**rows[1], "grade": "4"}, {**rows[2], "student_key": f"C-{word}"}]))
    page.set_input_files("input[type=file]", str(fixed))
    page.click("form button[type=submit]")
    page.wait_for_function("() => document.querySelector('.roster-report h2').textContent === 'Preview'")
    assert "No row has errors" in page.text_content(".roster-report")
    page.click("#roster-import")
    page.wait_for_function("() => document.querySelector('.roster-report h2').textContent === 'Import result'")
    counts = page.text_content("#roster-counts")
    assert "2 created" in counts and "1 unchanged" in counts, counts
    page.settle()
    page.shot("journey3-roster-imported")
    admin = system.login(people["school_admin"]["email"], PASSWORD)
    mine = [s for s in admin.get(system.url("/api/v1/students?per_page=200")).json()["items"] if s["last_name"] == f"Lopez{word}"]
    assert len(mine) == 3  # nothing duplicated

    # She assigns a teacher to a student...
    ana = next(st for st in mine if st["first_name"] == "Ana")
    page.click(f"a[href='/students/{ana['id']}']")
    page.wait_heading("Ana Lopez")
    page.check(f"input[name=user_ids][value='{people['teacher']['id']}']")
    page.click("text=Save staff")
    page.wait_for_selector("main .notice-success")
    page.shot("journey3-student-record")
    page.assert_accessible("student record")
    teacher = system.login(people["teacher"]["email"], PASSWORD)
    assert ana["id"] in {st["id"] for st in teacher.get(system.url("/api/v1/students?per_page=200")).json()["items"]}
    # ...and turns student IDs off for her school.
    page.go("/admin/settings")
    page.wait_heading("Settings of")
    if page.is_checked("input[name=student_ids_enabled]"):
        page.uncheck("input[name=student_ids_enabled]")
    page.click("form button[type=submit]")
    page.wait_for_selector("main .notice-success")
    school = admin.get(system.url(f"/api/v1/tenants/{people['school']['id']}")).json()
    assert school["student_ids_enabled"] is False


def test_leader_sees_the_dashboard_with_charts_and_csv(page, people, system):
    require_endpoints(system, ("GET", "/api/v1/analytics/dashboard"), ("GET", "/api/v1/analytics/top-categories"),
                      ("POST", "/api/v1/directory/services"),
                      ("POST", "/api/v1/referrals"))
    # Filed under Open Eligibility's Education > More Education > Tutoring: the dashboard names
    # it as people do ("Tutoring"), or broader ("Education") on request.
    service = create_service(system, people, f"Tutoring {random_suffix(8)}", taxonomy_term_ids=[term_id("109-03-10")])
    teacher = system.login(people["teacher"]["email"], PASSWORD)
    for _ in range(6):  # walk-in prints: counted, and above the smallest suppression threshold (5)
        r = teacher.post(system.url("/api/v1/referrals"), json={"service_ids": [service["id"]], "channel": "print"})
        assert r.status_code == 201, r.text
    admin = system.login(people["school_admin"]["email"], PASSWORD)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = admin.get(system.url("/api/v1/analytics/channels?period=month")).json().get("rows", [])
        if any(r.get("channel") == "print" and (r.get("count") or 0) >= 6 for r in rows):
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"analytics never counted the shares: {rows}")

    page.open("/signin")
    page.sign_in(people["school_admin"]["email"])
    page.dismiss_policy_banner()
    # A full load: the shell preloads the dashboard's one call, which the page takes.
    page.open("/dashboard")
    page.wait_heading("Dashboard")
    page.settle()
    assert page.api_calls("/api/v1/analytics/") == ["/api/v1/analytics/dashboard?period=semester"]
    page.wait_for_selector("#channels svg.bar-chart rect.bar")
    page.select_option("select[name=period]", "month")
    page.click("form button[type=submit]")
    page.settle()
    assert page.api_calls("/api/v1/analytics/")[1:] == ["/api/v1/analytics/dashboard?period=month"]
    page.wait_for_selector("#channels svg.bar-chart rect.bar")
    assert "Print" in page.text_content("#channels table")
    page.wait_for_selector("#trends svg.line-chart path.line")
    assert page.text_content("#trends .legend").strip()  # every line named
    assert page.text_content("#trends svg .axis-title") == "Shares"
    page.wait_for_selector("#top-categories svg.bar-chart rect.bar")
    assert "Tutoring" in page.text_content("#top-categories table")
    assert "More Education" not in page.text_content("#top-categories table")
    page.select_option("select[name=category_level]", "1")
    page.click("form button[type=submit]")
    page.settle()
    assert page.api_calls("/api/v1/analytics/")[-1] == "/api/v1/analytics/dashboard?period=month&category_level=1"
    page.wait_for_selector("#top-categories svg.bar-chart rect.bar")
    assert "Education" in page.text_content("#top-categories table")
    assert "Tutoring" not in page.text_content("#top-categories table")
    page.wait_for_selector("#outcomes .panel-body[aria-busy=false]")
    outcomes = page.text_content("#outcomes")  # closed referrals of other tests of this school, or none yet
    assert "No referral was closed" in outcomes or "Median days to connect" in outcomes
    assert page.query_selector("#schools") is None  # a school's own view compares no schools
    page.shot("journey4-dashboard")
    page.assert_accessible("dashboard")
    link = page.get_attribute("#channels a[download]", "href")
    assert link.startswith("/api/v1/analytics/channels?")  # each CSV is its report's own
    r = admin.get(system.url(link))
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert "print" in r.text
    # The district admin's dashboard adds the schools compared, small counts suppressed.
    page.assert_clean_console()
    page.browser.send("new_context", viewport={"width": 1280, "height": 860})
    page.open("/signin")
    page.sign_in(people["district_admin"]["email"])
    page.dismiss_policy_banner()
    page.open("/dashboard")
    page.settle()
    page.wait_for_selector("#schools table")
    assert people["school"]["name"] in page.text_content("#schools table")
    assert page.api_calls("/api/v1/analytics/") == ["/api/v1/analytics/dashboard?period=semester"]
    page.shot("journey4-dashboard-district")
    page.assert_accessible("district dashboard")


def test_auditor_sees_an_opt_out_entered_by_the_admin(page, browser, people, system):
    require_endpoints(system, ("POST", "/api/v1/deletion-requests"), ("GET", "/api/v1/deletion-requests"),
                      ("GET", "/api/v1/audit/verify"), ("POST", "/api/v1/rosters/import"))
    # "Completed" needs every data-holding service's confirmation (referrals, analytics).
    assert all(issubclass(service_class(n), DeletionParticipant) for n in DATA_SERVICES)
    word = random_suffix(8)
    first = "Lucia" + random_suffix(4).capitalize()
    admin = system.login(people["school_admin"]["email"], PASSWORD)
    import_roster(system, admin, student_rows(people, f"O-{word}", first, f"dad.{word}@family.example"))
    student = next(s for s in admin.get(system.url("/api/v1/students?per_page=200")).json()["items"] if s["first_name"] == first)

    page.open("/signin")
    page.sign_in(people["school_admin"]["email"])
    page.dismiss_policy_banner()
    page.go("/admin/opt-out")
    page.wait_heading("Parent opt-out")
    page.wait_for_selector(f"select[name=student_id] option[value='{student['id']}']", state="attached")
    page.select_option("select[name=student_id]", student["id"])
    page.select_option("select[name=reason]", "parent_opt_out")
    page.select_option("select[name=method]", "in_person_photo_id")
    page.check("input[name=confirm]")
    page.click("form button[type=submit]")
    page.wait_for_selector("main .notice-success #request-ref")
    request_id = page.text_content("#request-ref").strip()
    page.settle()
    assert first not in page.text_content("main table")  # the school's list of requests names nobody
    page.shot("journey5-opt-out-recorded")
    page.assert_clean_console()

    browser.send("new_context", viewport={"width": 1280, "height": 860})
    page.open("/signin")
    page.sign_in(people["auditor"]["email"])
    page.dismiss_policy_banner()
    page.go("/audit")
    page.wait_heading("Deletion requests")
    page.select_option("select[name=scope]", "student")
    page.click("form button[type=submit]")
    page.settle()
    page.shot("journey5-audit-list")
    page.assert_accessible("audit list")
    assert first not in page.text_content("main")
    # Open ours from the list; wait until every service has confirmed.
    deadline = time.monotonic() + 30
    while True:
        page.click(f"main table a[href='/audit/{request_id}']")
        page.wait_heading("Deletion request")
        if page.text_content("#request-status").strip() == "Completed" or time.monotonic() > deadline:
            break
        page.go("/audit")
        page.wait_heading("Deletion requests")
        page.settle()
        time.sleep(0.5)
    assert page.text_content("#request-status").strip() == "Completed"
    text = page.text_content("main")
    for service in ("identity", "referrals"):
        assert service in text
    assert first not in text and "Ramos" not in text
    # Who asked, who verified and how, and for which school: named, not only ids.
    assert page.text_content("#request-requester").startswith("Sam Admin (School admin)")
    assert page.text_content("#request-verification").strip() == "In person photo id"
    assert "(School admin)" in page.text_content("#request-verifier")
    assert page.text_content("#request-tenant").startswith(people["school"]["name"])
    page.shot("journey5-audit-request")
    page.go("/audit")
    page.wait_heading("Deletion requests")
    page.click("#verify-chain")
    page.wait_for_selector("main .notice-success")
    assert "intact" in page.text_content("main .notice-success")
    csv_link = page.get_attribute("#audit-csv", "href")
    auditor = system.login(people["auditor"]["email"], PASSWORD)
    r = auditor.get(system.url(csv_link))
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert first not in r.text


def test_password_reset_from_the_emailed_link(page, people, system, bootstrap):
    require_endpoints(system, ("POST", "/api/v1/password-resets"), ("POST", "/api/v1/password-resets/complete"))
    user = bootstrap("teacher", people["school"]["id"], "Reset Tester")
    page.open("/signin")
    page.click("a[href='/reset']")
    page.wait_heading("Reset your password")
    page.fill("input[name=email]", user["email"])
    page.click("form button[type=submit]")
    page.wait_for_selector("main .notice-success")
    mail = system.smtp.wait_for(lambda m: user["email"] in str(m["To"]), timeout=30)
    text = mail.get_body(preferencelist=("plain", "html")).get_content()
    import re
    link = re.search(r"https?://\S+?/reset(?:-password)?[#?]token=[\w\-_.~%]+", text).group(0)
    page.goto(link)
    page.wait_heading("Choose a new password")
    assert "token" not in page.evaluate("() => location.href")
    new_password = "a brand new passphrase 2026"
    page.fill("input[name=new_password]", new_password)
    page.fill("input[name=confirm]", new_password)
    page.click("form button[type=submit]")
    page.wait_for_selector("main .notice-success")
    page.click("main .notice-success a[href='/signin']")
    page.sign_in(user["email"], new_password)
    page.wait_heading("Welcome, Reset Tester")


def test_walk_in_family_gets_a_printed_page(page, people, system):
    require_endpoints(system, ("POST", "/api/v1/directory/services"), ("GET", f"/api/v1/directory/services/{ANY_ID}"),
                      ("POST", "/api/v1/referrals"), ("GET", f"/api/v1/referrals/{ANY_ID}/print"))
    word = random_suffix(8)
    service = create_service(system, people, f"Food Pantry {word}")
    page.open("/signin")
    page.sign_in(people["teacher"]["email"])
    page.dismiss_policy_banner()
    page.go(f"/services/{service['id']}")
    page.wait_heading(f"Food Pantry {word}")
    page.click("#share-button")
    page.check("input[name=who][value=walkin]")
    assert page.input_value("select[name=channel]") == "print"
    assert not page.is_visible("select[name=student_id]")
    page.click("dialog button[type=submit]")
    page.wait_for_selector("dialog .notice-success a[href$='/print']")
    href = page.get_attribute("dialog .notice-success a[href$='/print']", "href")
    page.shot("journey2-walk-in-shared")
    page.goto(system.url(href))
    page.wait_for_selector("body")
    printed = page.text_content("body")
    assert f"Food Pantry {word}" in printed and "1 Main St" in printed
    page.shot("journey2-print-view")


def test_pressing_share_again_after_a_lost_answer_makes_no_second_share(page, people, system, browser):
    """The first request commits its share but its answer never arrives (a dropped
    connection); the teacher presses Share again: the dialog sends the same Idempotency-Key,
    and the answer is that share, with a fresh link (the first one's token was never seen)."""
    require_endpoints(system, ("POST", "/api/v1/directory/services"), ("POST", "/api/v1/referrals"))
    word = random_suffix(8)
    service = create_service(system, people, f"Tutoring {word}")
    page.open("/signin")
    page.sign_in(people["teacher"]["email"])
    page.dismiss_policy_banner()
    page.go(f"/services/{service['id']}")
    page.wait_heading(f"Tutoring {word}")
    page.click("#share-button")
    page.check("input[name=who][value=walkin]")
    page.select_option("select[name=channel]", "link")
    page.fill("textarea[name=note]", f"Ask for Ana ({word})")
    browser.send("lose_next_answer", url="**/api/v1/referrals")
    page.click("dialog button[type=submit]")
    page.wait_for_selector("dialog .notice-error")
    assert "pressing Share again will not send it twice" in page.text_content("dialog")
    page.click("dialog button[type=submit]")
    page.wait_for_selector("dialog .notice-success code")
    link = page.text_content("dialog .notice-success code").strip()

    first, again = browser.send("sent")
    assert first["idempotency-key"] == again["idempotency-key"] and len(first["idempotency-key"]) == 36
    engine = create_engine(system.settings.database_url("referrals"))
    try:
        with engine.connect() as conn:
            shares = conn.scalar(text("SELECT count(*) FROM share WHERE note = :n"), {"n": f"Ask for Ana ({word})"})
    finally:
        engine.dispose()
    assert shares == 1  # the first request did make it, and the second made no other
    r = requests.get(link, timeout=10)
    assert r.status_code == 200 and f"Tutoring {word}" in r.text
