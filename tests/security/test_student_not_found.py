"""A student the caller may not see answers exactly as an id that never existed (issue 16).

Every endpoint that takes a student id, in its path or its body, is asked twice by the
same caller: once with a real student that caller may not see (a teacher who does not
serve them, a teacher or an admin of another tenant) and once with a random UUID. Both
answers must be 404 ``student_not_found`` with the same body and the same headers (the
``Date`` aside): nothing tells "exists but not yours" from "never existed".

Before this, identity answered a teacher who does not serve a student 403
``student_forbidden`` (and a fenced student of another tenant 409), so a teacher could
tell which ids are students of the school.
"""
from __future__ import annotations

import uuid

import pytest

from tests.support.referrals_system import service_input
from tests.support.world import build_world


@pytest.fixture(scope="module")
def world(system):
    world = build_world(system)
    # A real service to share: a share of an unknown service is refused before the student is
    # looked at, and would make the two answers equal for the wrong reason.
    with world.rpc() as rpc:
        term = rpc.directory.categories()[0]["children"][0]["id"]
    r = world.http("operator").post(system.url("/api/v1/directory/services"),
                                    json=service_input(f"Not Found Tutoring {world.suffix}", term), timeout=30)
    assert r.status_code == 201, r.text
    world.service_id = r.json()["id"]
    return world


def _share(world, student_id, contact_id):
    return {"student_id": student_id, "contact_ids": [contact_id], "service_ids": [world.service_id],
            "channel": "email"}


def _opt_out(verifier):
    def body(world, student_id, contact_id):
        return {"scope": "student", "subject_id": student_id, "reason": "parent_opt_out",
                "verification": {"method": "in_person_photo_id", "verified_by": world.users[verifier]["id"]}}
    return body


# (endpoint, method, path, body(world, student_id, contact_id) or None)
ENDPOINTS = {
    "student": ("GET", "/api/v1/students/{student}", None),
    "share": ("POST", "/api/v1/referrals", _share),
    "staff": ("PUT", "/api/v1/students/{student}/staff", lambda w, s, c: {"user_ids": []}),
    "disclosures": ("GET", "/api/v1/students/{student}/disclosures", None),
    "inspection": ("POST", "/api/v1/inspection-requests", lambda w, s, c: {"student_id": s, "kind": "inspection"}),
    "opt_out_by_s3_admin": ("POST", "/api/v1/deletion-requests", _opt_out("s3_admin")),
    "opt_out_by_d2_admin": ("POST", "/api/v1/deletion-requests", _opt_out("d2_admin")),
}

# (caller, student it may not see, that student's contact, endpoints the caller's role may call)
CASES = [
    ("teacher", "B", "Bea", ["student", "share"]),                 # same school, not served
    ("teacher2", "A", "Maria", ["student", "share"]),              # same school, serves nobody
    ("s3_teacher", "A", "Maria", ["student", "share"]),            # another district's teacher
    ("program_staff", "A", "Maria", ["student", "share"]),         # a program's staff, a school's student
    ("s3_admin", "A", "Maria", ["student", "staff", "disclosures", "inspection", "opt_out_by_s3_admin"]),
    ("d2_admin", "C", None, ["student", "disclosures", "opt_out_by_d2_admin"]),  # another district's admin
]

PARAMS = [(caller, student, contact, endpoint)
          for caller, student, contact, endpoints in CASES for endpoint in endpoints]


def _ask(world, system, caller, endpoint, student_id, contact_id):
    method, template, body = ENDPOINTS[endpoint]
    kwargs = {"timeout": 30}
    if body is not None:
        kwargs["json"] = body(world, student_id, contact_id)
    if endpoint == "share":
        kwargs["headers"] = {"Idempotency-Key": str(uuid.uuid4())}
    return world.http(caller).request(method, system.url(template.format(student=student_id)), **kwargs)


def _headers(response) -> dict:
    return {k.lower(): v for k, v in response.headers.items() if k.lower() != "date"}


@pytest.mark.parametrize("caller, student, contact, endpoint", PARAMS,
                         ids=[f"{p[0]}-{p[3]}" for p in PARAMS])
def test_a_student_out_of_sight_answers_as_an_unknown_id(world, system, caller, student, contact, endpoint):
    hidden = _ask(world, system, caller, endpoint, world.students[student], world.contacts.get(contact))
    unknown = _ask(world, system, caller, endpoint, str(uuid.uuid4()), str(uuid.uuid4()))
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "student_not_found", unknown.text
    assert (hidden.status_code, hidden.json()) == (unknown.status_code, unknown.json()), hidden.text
    assert _headers(hidden) == _headers(unknown)


def test_a_fenced_student_answers_as_an_unknown_id_to_whoever_may_not_see_them(world, system):
    """A deletion requested for a student is told (409) only to those who may see the student."""
    with world.rpc() as rpc:  # as retention does before it dispatches a student's deletion
        rpc.identity.fence_subject(str(uuid.uuid4()), "student", world.tenants["S1"], world.students["M"])
    own = _ask(world, system, "teacher", "share", world.students["M"], world.contacts["Mo"])
    assert own.status_code == 409 and own.json()["error"]["code"] == "subject_fenced", own.text  # serves Mia
    for caller in ("teacher2", "s3_teacher", "program_staff"):
        hidden = _ask(world, system, caller, "share", world.students["M"], world.contacts["Mo"])
        unknown = _ask(world, system, caller, "share", str(uuid.uuid4()), str(uuid.uuid4()))
        assert unknown.status_code == 404, unknown.text
        assert (hidden.status_code, hidden.json()) == (unknown.status_code, unknown.json()), f"{caller}: {hidden.text}"
        assert _headers(hidden) == _headers(unknown)


@pytest.mark.parametrize("caller, student", [("teacher", "B"), ("s3_teacher", "A"), ("s3_admin", "A")])
def test_referrals_filtered_by_a_student_out_of_sight_answer_as_by_an_unknown_id(world, system, caller, student):
    """``GET /api/v1/referrals?student_id=`` filters the caller's own referrals: the same empty page."""
    scope = "school" if caller.endswith("admin") else "mine"

    def ask(student_id):
        return world.http(caller).get(system.url(f"/api/v1/referrals?scope={scope}&student_id={student_id}"), timeout=30)

    hidden, unknown = ask(world.students[student]), ask(uuid.uuid4())
    assert (hidden.status_code, hidden.json()) == (unknown.status_code, unknown.json()) == (200, unknown.json())
    assert _headers(hidden) == _headers(unknown)
