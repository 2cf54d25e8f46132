"""Fixtures of the security suite: a world with a teacher and a school admin (their
session tokens), and a few of its records for the fuzz to aim at.

Requests carry the session in the ``Authorization: Bearer`` header (not the cookie), so
the CSRF check, which guards cookie sessions only, does not turn every fuzzed write
into a 403.

Example::

    def test_me(system, fuzz_world):
        fuzz_world.world.http("teacher").get(system.url("/api/v1/me"))  # Bearer: the teacher's token
        fuzz_world.known_ids["student_id"]  # [A (served by the teacher), B, C, X (another tenant)]
"""
from __future__ import annotations

import dataclasses

import pytest

from tests.support.world import World, build_world


@dataclasses.dataclass
class FuzzWorld:
    """The world, plus records of it the fuzz can aim at besides random ids."""

    world: World
    known_ids: dict  # path parameter name -> [ids that exist]

    def token(self, user: str) -> str:
        return self.world.users[user]["token"]


@pytest.fixture(scope="module")
def fuzz_world(system) -> FuzzWorld:
    """A fresh world, a service of S1, the teacher's saved list, a referral of student A, and a
    retention policy and an inspection request of S1."""
    world = build_world(system)
    admin, teacher = world.http("school_admin"), world.http("teacher")
    service = admin.post(system.url("/api/v1/directory/services"),
                         json={"name": f"Fuzz tutoring {world.suffix}", "cost": "free"}, timeout=30)
    assert service.status_code == 201, service.text
    service_id = service.json()["id"]
    saved = teacher.post(system.url("/api/v1/lists"),
                         json={"name": "Fuzz list", "shared": True, "service_ids": [service_id]}, timeout=30)
    assert saved.status_code == 201, saved.text
    share = teacher.post(system.url("/api/v1/referrals"), json={
        "student_id": world.students["A"], "contact_ids": [world.contacts["Maria"]],
        "service_ids": [service_id], "channel": "print"}, timeout=30)
    assert share.status_code == 201, share.text
    # Records of the retention lists (a policy that expires nothing for a century).
    policy = admin.post(system.url("/api/v1/retention-policies"),
                        json={"record_kind": "login_records", "max_age_days": 36500}, timeout=30)
    assert policy.status_code == 201, policy.text
    inspection = admin.post(system.url("/api/v1/inspection-requests"),
                            json={"student_id": world.students["B"], "kind": "inspection"}, timeout=30)
    assert inspection.status_code == 201, inspection.text
    known = {
        # A: served by the teacher; B: S1's, served by nobody; C: another school of the
        # district; X: another tenant's (the IDOR cases).
        "student_id": [world.students[k] for k in ("A", "B", "C", "X")],
        "tenant_id": [world.tenants[k] for k in ("S1", "D1", "S3")],
        # Not the fuzzing users themselves: a PATCH that disabled one would end its own run.
        "user_id": [world.users[k]["id"] for k in ("teacher2", "s3_teacher")],
        "service_id": [service_id],
        "list_id": [saved.json()["id"]],
        "referral_id": [item["id"] for item in share.json()["items"]],
        "inspection_id": [inspection.json()["id"]],
    }
    return FuzzWorld(world=world, known_ids=known)
