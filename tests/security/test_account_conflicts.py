"""An email taken in another tenant is not revealed to a tenant admin who cannot see that
account: the answer is the one any unusable address gets (same status, code and text),
and the conflict goes to the operators' queue instead (no other tenant named in it)."""
from __future__ import annotations

from email.utils import parseaddr

import pytest

from tests.support.world import build_world

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(system):
    return build_world(system)


def create(system, world, who, tenant, email, role="teacher"):
    return world.http(who).post(system.url("/api/v1/users"), json={
        "tenant_id": world.tenants[tenant], "email": email, "display_name": "Someone", "role": role}, timeout=10)


def test_an_address_taken_elsewhere_is_answered_as_any_unusable_address(system, world):
    elsewhere = world.email("s3_teacher")  # a school of another district
    taken = create(system, world, "school_admin", "S1", elsewhere.upper())
    unusable = create(system, world, "school_admin", "S1", parseaddr(system.settings.smtp_sender)[1])
    assert taken.status_code == unusable.status_code == 400
    assert taken.json() == unusable.json()
    assert taken.json()["error"]["code"] == "email_unavailable"
    assert "exist" not in taken.text.lower() and "taken" not in taken.text.lower()
    # Program admins (another kind of tenant) are told the same about a school's account.
    assert create(system, world, "program_admin", "P1", world.email("teacher"), "program_staff").json() == taken.json()

    # Whoever can see the existing account is still told plainly: the admins of its
    # tenant and district, and an operator (here inviting a new school's first admin).
    fresh = world.http("operator").post(system.url("/api/v1/tenants"), json={
        "kind": "school", "name": f"Fresh {world.suffix}"}, timeout=10).json()["id"]
    world.tenants["fresh"] = fresh
    for who, tenant, email, role in (("school_admin", "S1", world.email("teacher2"), "teacher"),
                                     ("district_admin", "S1", world.email("s2_teacher"), "teacher"),
                                     ("operator", "fresh", elsewhere, "school_admin")):
        r = create(system, world, who, tenant, email, role)
        assert r.status_code == 409 and r.json()["error"]["code"] == "email_taken", (who, r.text)

    # The operators' queue has it: who asked, in which tenant, for which address.
    r = world.http("operator").get(system.url("/api/v1/operator/account-conflicts"), params={"per_page": 200}, timeout=10)
    assert r.status_code == 200
    page = r.json()
    assert set(page) == {"items", "page", "per_page", "total"}
    mine = [c for c in page["items"] if c["email"] == elsewhere and c["tenant_id"] == world.tenants["S1"]]
    assert mine and mine[0]["requested_by"] == world.users["school_admin"]["id"] and mine[0]["role"] == "teacher"
    assert world.tenants["S3"] not in str(mine)  # where the other account is, the queue does not say
    assert [c for c in page["items"] if c["email"] == world.email("teacher") and c["tenant_id"] == world.tenants["P1"]]
    # Only operators read it.
    for who in ("school_admin", "district_admin", "auditor", "teacher"):
        assert world.http(who).get(system.url("/api/v1/operator/account-conflicts"), timeout=10).status_code == 403

