"""Journey 6's first step in the browser: a district admin prepares the full export of the
district (and its schools) on the settings page and downloads it."""
from __future__ import annotations

import io
import json
import zipfile

import pytest
import requests

from tests.browser.conftest import PASSWORD, require_endpoints

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ANY_ID = "00000000-0000-4000-8000-000000000000"


def test_district_admin_downloads_the_districts_full_export(page, people, system):
    require_endpoints(system, ("POST", "/api/v1/exports"), ("GET", f"/api/v1/exports/{ANY_ID}"))
    page.open("/signin")
    page.sign_in(people["district_admin"]["email"])
    page.dismiss_policy_banner()
    page.go("/admin/settings")
    page.wait_heading("Settings of")
    page.settle()
    page.click("#prepare-export")
    page.wait_for_selector("#export-download")
    page.shot("district-export-ready")
    page.assert_accessible("settings with an export")
    link = page.get_attribute("#export-download", "href")
    assert requests.get(system.url(link), timeout=30).status_code == 401  # the link alone gives nothing
    leader = system.login(people["district_admin"]["email"], PASSWORD)
    r = leader.get(system.url(link))
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/zip", r.text[:200]
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    manifest = json.loads(archive.read("manifest.json"))
    # The district and its school, nobody else's.
    assert {people["district"]["id"], people["school"]["id"]} <= set(manifest["tenant_ids"])
    assert people["program"]["id"] not in manifest["tenant_ids"]
    # Staff without an admin role cannot download it.
    teacher = system.login(people["teacher"]["email"], PASSWORD)
    assert teacher.get(system.url(link)).status_code == 403
