"""The RPCs other services rely on (exact shapes from the brief), the fence, and
deletion through retention's event with its confirmation staged in the outbox."""
from __future__ import annotations

import time
import uuid

import pytest
from nameko.exceptions import deserialize
from nameko.standalone.events import event_dispatcher

from services.identity.exceptions import StudentForbidden, StudentNotFound, SubjectFenced
from tests.support.identity_db import count_rows, execute, tables_holding
from tests.support.signing import ClusterRpcClient  # signs the contexts it passes, as the gateway does
from tests.support.world import ROLES, build_world, csv_b64
from weintervene.contracts import DELETION_REQUESTED, DeletionRequested
from weintervene.errors import Forbidden, NotFound, Unauthorized

pytestmark = pytest.mark.integration

TENANT_KEYS = {"id", "kind", "name", "parent_id", "district_id", "postcode", "latitude", "longitude", "timezone",
               "student_ids_enabled", "analytics_consent", "suppression_threshold", "status"}


@pytest.fixture(scope="module")
def world(system):
    return build_world(system)


@pytest.fixture(scope="module")
def rpc(system):
    with ClusterRpcClient(uri=system.settings.amqp_uri, timeout=30) as client:
        yield client


def test_tenant_info(world, rpc):
    info = rpc.identity.tenant_info(world.tenants["S1"])
    assert set(info) == TENANT_KEYS
    assert (info["kind"], info["parent_id"], info["district_id"]) == ("school", world.tenants["D1"], world.tenants["D1"])
    assert (info["postcode"], info["latitude"], info["longitude"]) == ("20001", 38.91, -77.02)
    assert (info["student_ids_enabled"], info["suppression_threshold"], info["status"]) == (True, 10, "active")
    district = rpc.identity.tenant_info(world.tenants["D1"])
    assert district["district_id"] == world.tenants["D1"] and district["parent_id"] is None
    assert rpc.identity.tenant_info(world.tenants["S4"])["district_id"] is None
    with pytest.raises(NotFound):
        rpc.identity.tenant_info(str(uuid.uuid4()))


def test_list_tenants_in(world, rpc):
    ids = [t["id"] for t in rpc.identity.list_tenants_in(world.tenants["D1"])]
    assert ids[0] == world.tenants["D1"] and set(ids) == {world.tenants[n] for n in ("D1", "S1", "S2")}
    assert [t["id"] for t in rpc.identity.list_tenants_in(world.tenants["S1"])] == [world.tenants["S1"]]
    assert [t["id"] for t in rpc.identity.list_tenants_in(world.tenants["P1"])] == [world.tenants["P1"]]


def test_check_student_access_shape(world, rpc):
    summary = rpc.identity.check_student_access(world.auth("teacher"), world.students["A"])
    assert summary == {"student_id": world.students["A"], "tenant_id": world.tenants["S1"],
                       "district_id": world.tenants["D1"], "is_adult": False, "first_name": "Ana"}
    assert rpc.identity.check_student_access(world.auth("teacher"), world.students["M"])["is_adult"] is True
    program = rpc.identity.check_student_access(world.auth("program_staff"), world.students["Q"])
    assert program["district_id"] is None and program["tenant_id"] == world.tenants["P1"]


@pytest.mark.parametrize("role, student, error", [
    ("teacher", "B", StudentNotFound),          # same school, not served: as if unknown
    ("teacher", "X", StudentNotFound),          # another district's student
    ("teacher", "C", StudentNotFound),          # sister school
    ("school_admin", "C", StudentNotFound),
    ("district_admin", "X", StudentNotFound),
    ("program_staff", "A", StudentNotFound),
    ("operator", "A", StudentForbidden),        # operators see no student data
    ("auditor", "A", StudentForbidden),
])
def test_check_student_access_refusals(world, rpc, role, student, error):
    with pytest.raises(error) as caught:
        rpc.identity.check_student_access(world.auth(role), world.students[student])
    assert caught.value.code in ("student_forbidden", "student_not_found")


def test_check_student_access_allows(world, rpc):
    for role, student in (("school_admin", "B"), ("district_admin", "C"), ("district_admin", "A"),
                          ("program_admin", "Q"), ("teacher", "A")):
        assert rpc.identity.check_student_access(world.auth(role), world.students[student])["student_id"] == world.students[student]


def test_unknown_student_is_not_found(world, rpc):
    with pytest.raises(StudentNotFound):
        rpc.identity.check_student_access(world.auth("school_admin"), str(uuid.uuid4()))


def test_delivery_contacts(world, rpc):
    [maria] = rpc.identity.delivery_contacts(world.auth("teacher"), world.students["A"], [world.contacts["Maria"]])
    assert maria == {"id": world.contacts["Maria"], "name": "Maria Alvarez", "relationship": "mother",
                     "email": f"maria.{world.suffix}@family.example", "mobile": "+12025550101",
                     "preferred_language": "es", "authorised": True}
    # An adult student may receive information themself.
    self_and_father = rpc.identity.delivery_contacts(world.auth("teacher"), world.students["M"],
                                                     [world.students["M"], world.contacts["Mo"]])
    assert [c["id"] for c in self_and_father] == [world.students["M"], world.contacts["Mo"]]
    assert self_and_father[0]["email"] == f"mia.{world.suffix}@student.example"


@pytest.mark.parametrize("student, contact, why", [
    ("A", "Tio", "not authorised"),
    ("A", "Bea", "another student's contact"),
    ("A", "Xia", "another tenant's contact"),
    ("A", "A", "a minor is not their own contact"),
])
def test_delivery_contacts_refusals(world, rpc, student, contact, why):
    contact_id = world.students[contact] if contact in world.students else world.contacts[contact]
    with pytest.raises(Forbidden) as caught:
        rpc.identity.delivery_contacts(world.auth("school_admin"), world.students[student], [world.contacts["Maria"], contact_id])
    assert caught.value.code == "contact_forbidden", why


def test_delivery_contacts_checks_access_first(world, rpc):
    with pytest.raises(StudentNotFound):
        rpc.identity.delivery_contacts(world.auth("teacher"), world.students["B"], [world.contacts["Bea"]])
    with pytest.raises(StudentForbidden):
        rpc.identity.delivery_contacts(world.auth("operator"), world.students["A"], [world.contacts["Maria"]])


def _contact_ids(world, rpc, student: str, names: list[str]) -> list[str]:
    """Ids of contacts named by first name (a student's key names the adult student themself)."""
    ids = dict(world.contacts)
    if "Cy" in names:  # C's contact, seen only from the district (the world keeps S1/S3/P1's)
        detail = rpc.identity.get_student(world.auth("district_admin"), world.students["C"])
        ids["Cy"] = next(c["id"] for c in detail["contacts"] if c["name"].startswith("Cy"))
    return [world.students[n] if n in world.students else ids[n] for n in names]


@pytest.mark.parametrize("role, student, names", [
    ("teacher", "A", ["Maria"]),
    ("teacher", "M", ["M", "Mo"]),           # an adult student names themself, first
    ("teacher", "M", ["Mo", "M"]),           # ... or after a contact: the order named is kept
    ("school_admin", "B", ["Bea"]),
    ("district_admin", "C", ["Cy"]),         # the district's other school
    ("district_admin", "A", []),
    ("program_staff", "Q", ["Quade"]),
])
def test_share_context_answers_what_check_and_delivery_contacts_answer(world, rpc, role, student, names):
    auth, student_id = world.auth(role), world.students[student]
    contact_ids = _contact_ids(world, rpc, student, names)
    context = rpc.identity.share_context(auth, student_id, contact_ids)
    assert context == {"student": rpc.identity.check_student_access(auth, student_id),
                       "contacts": rpc.identity.delivery_contacts(auth, student_id, contact_ids), "tenants": {}}
    assert [c["id"] for c in context["contacts"]] == contact_ids


def test_share_context_exact_answers_across_the_district_and_for_an_adult(world, rpc):
    [cy] = _contact_ids(world, rpc, "C", ["Cy"])
    context = rpc.identity.share_context(world.auth("district_admin"), world.students["C"], [cy])
    assert context["student"] == {"student_id": world.students["C"], "tenant_id": world.tenants["S2"],
                                  "district_id": world.tenants["D1"], "is_adult": False, "first_name": "Cal"}
    assert context["contacts"] == [{"id": cy, "name": "Cy Chen", "relationship": "father",
                                    "email": f"cy.{world.suffix}@family.example", "mobile": None,
                                    "preferred_language": "zh", "authorised": True}]
    adult = rpc.identity.share_context(world.auth("teacher"), world.students["M"], [world.students["M"]])
    assert adult["student"]["is_adult"] is True and adult["contacts"] == [
        {"id": world.students["M"], "name": "Mia Moore", "relationship": "self",
         "email": f"mia.{world.suffix}@student.example", "mobile": None, "preferred_language": "en",
         "authorised": True}]


@pytest.mark.parametrize("role, student, names, code", [
    ("teacher", "B", ["Bea"], "student_not_found"),          # same school, not served: as if unknown
    ("teacher", "X", ["Xia"], "student_not_found"),          # another district's student
    ("teacher", "C", [], "student_not_found"),               # sister school
    ("school_admin", "C", ["Cy"], "student_not_found"),
    ("district_admin", "X", ["Xia"], "student_not_found"),
    ("program_staff", "A", ["Maria"], "student_not_found"),
    ("operator", "A", ["Maria"], "student_forbidden"),
    ("school_admin", "A", ["Maria", "Tio"], "contact_forbidden"),   # not authorised
    ("school_admin", "A", ["Bea"], "contact_forbidden"),            # another student's contact
    ("district_admin", "A", ["Cy"], "contact_forbidden"),           # another school's student's contact
    ("school_admin", "A", ["A"], "contact_forbidden"),              # a minor is not their own contact
    ("school_admin", "M", ["A"], "contact_forbidden"),              # another student is no contact
])
def test_share_context_refuses_as_check_and_delivery_contacts_do(world, rpc, role, student, names, code):
    contact_ids = _contact_ids(world, rpc, student, names)
    with pytest.raises(Exception) as caught:
        rpc.identity.share_context(world.auth(role), world.students[student], contact_ids)
    assert caught.value.code == code
    with pytest.raises(Exception) as again:
        rpc.identity.delivery_contacts(world.auth(role), world.students[student], contact_ids)
    assert again.value.code == code


def test_share_contexts_answers_each_as_share_context_does(world, rpc):
    """The batch runs in identity's read-only session too (no transaction): the same answers."""
    ok = {"auth": world.auth("teacher"), "student_id": world.students["M"],
          "contact_ids": [world.students["M"], world.contacts["Mo"]], "tenant_ids": [world.tenants["P1"]]}
    refused = {**ok, "student_id": world.students["B"], "contact_ids": [world.contacts["Bea"]]}
    answers = rpc.identity.share_contexts([ok, refused, ok])
    expected = rpc.identity.share_context(ok["auth"], ok["student_id"], ok["contact_ids"], ok["tenant_ids"])
    assert answers[0] == answers[2] == {"context": expected}
    assert list(expected["tenants"]) == [world.tenants["P1"]]
    assert answers[1]["error"]["exc_type"] == "StudentNotFound"


def test_share_contexts_answers_a_mixed_batch_exactly_as_share_context_one_by_one(system, rpc):
    """The batch is read in one statement on PostgreSQL (UNION ALL of typed columns, then the
    checks in Python): every share gets what ``share_context`` alone answers, refusals and
    their order included. Its own world: it fences a student and a school."""
    world = build_world(system)
    fern = _import_one(rpc, world, "FERN" + world.suffix, first="Fern", contact="Fay Fern")
    rpc.identity.fence_subject(str(uuid.uuid4()), "student", world.tenants["S1"], fern)
    # S2's deletion fence alone (active again); S3 inactive without a fence.
    rpc.identity.fence_subject(str(uuid.uuid4()), "tenant", world.tenants["S2"], world.tenants["S2"])
    execute(system, "UPDATE tenant SET status = 'active' WHERE id = :t", t=world.tenants["S2"])
    execute(system, "UPDATE tenant SET status = 'terminated' WHERE id = :t", t=world.tenants["S3"])
    s, c, t = world.students, world.contacts, world.tenants

    def share(role, student, contacts=(), tenant_ids=()):
        return {"auth": world.auth(role), "student_id": s.get(student, student),
                "contact_ids": [s.get(n) or c.get(n, n) for n in contacts], "tenant_ids": list(tenant_ids)}

    requests = [
        share("teacher", "A", ["Maria"], [t["P1"], str(uuid.uuid4())]),   # ok, with a program
        share("teacher", "M", ["M", "Mo"]),                                # ok: an adult, self first
        share("school_admin", "B", ["Bea"]),                               # ok
        share("district_admin", "A", [], [t["P1"], t["S4"]]),             # ok
        share("program_staff", "Q", ["Quade"], [t["P1"]]),                 # ok
        share("program_admin", "Q"),                                       # ok
        share("teacher", "B", ["Bea"]),                                    # student_not_found: not served
        share("operator", "A", ["Maria"]),                                 # student_forbidden: role
        share("teacher", "X", ["Xia"]),                                    # student_not_found: another district
        share("program_staff", "A"),                                       # student_not_found
        share("teacher", str(uuid.uuid4())),                               # student_not_found: no such student
        share("district_admin", "C"),                                      # subject_fenced: S2's fence, asked after
        share("s2_teacher", "C"),                                          # subject_fenced: own school's fence
        share("d2_admin", "X"),                                            # subject_fenced: S3 inactive
        share("s3_teacher", "X", ["Xia"]),                                 # subject_fenced: S3 inactive
        share("teacher", fern),                                            # subject_fenced: the student's fence
        share("district_admin", fern),                                     # subject_fenced first
        share("school_admin", "A", ["Maria", "Tio"]),                      # contact_forbidden: not authorised
        share("school_admin", "A", ["A"]),                                 # contact_forbidden: a minor
        share("teacher", "A", ["Bea"]),                                    # contact_forbidden: another's contact
        {**share("teacher", "A"), "contact_ids": "x"},                     # invalid_input
        {**share("teacher", "A"), "tenant_ids": None},                     # invalid_input
    ]
    expected = []
    for r in requests:
        try:
            expected.append({"context": rpc.identity.share_context(r["auth"], r["student_id"], r["contact_ids"],
                                                                   r["tenant_ids"])})
        except Exception as refused:  # the remote error, as nameko raised it here
            expected.append({"error": (type(refused).__name__, refused.code, str(refused))})
    codes = [e["error"][1] for e in expected if "error" in e]
    assert len(expected) - len(codes) == 6 and {code: codes.count(code) for code in set(codes)} == {
        "student_forbidden": 1, "student_not_found": 4, "subject_fenced": 6, "contact_forbidden": 3,
        "invalid_input": 2}
    assert list(expected[3]["context"]["tenants"]) == sorted([t["P1"], t["S4"]])

    answers = rpc.identity.share_contexts(requests)
    assert [a if "context" in a else {"error": _refusal(a["error"])} for a in answers] == expected
    # The district admin's school fence is asked afterwards: alone in a batch too.
    fenced, fine = rpc.identity.share_contexts([share("district_admin", "C"), share("district_admin", "A", ["Maria"])])
    assert _refusal(fenced["error"]) == expected[11]["error"]
    assert fine == {"context": rpc.identity.share_context(world.auth("district_admin"), s["A"], [c["Maria"]], [])}
    # A context the gateway did not sign refuses the whole batch at identity's entrypoint
    # (referrals forwards only contexts it verified itself): none of its shares is read.
    with pytest.raises(Unauthorized) as refused:
        rpc.identity.share_contexts([share("teacher", "A"), {**share("teacher", "A"), "auth": {}}])
    assert refused.value.code == "not_authenticated"


def _refusal(error: dict) -> tuple:
    """(class name, code, message) of a refusal serialised in a ``share_contexts`` answer."""
    refused = deserialize(error)
    return type(refused).__name__, refused.code, str(refused)


def test_user_info(world, rpc):
    info = rpc.identity.user_info(world.users["teacher"]["id"])
    assert info == {"id": world.users["teacher"]["id"], "tenant_id": world.tenants["S1"],
                    "display_name": f"Teacher {world.suffix}", "email": world.email("teacher"), "role": "teacher"}
    with pytest.raises(NotFound):
        rpc.identity.user_info(str(uuid.uuid4()))


# -- fence and deletion -------------------------------------------------------------

def _dispatch_deletion(system, scope, tenant_id, subject_id, tenant_ids=()):
    request_id = str(uuid.uuid4())
    payload = DeletionRequested().dump({
        "request_id": request_id, "scope": scope, "tenant_id": tenant_id, "subject_id": subject_id,
        "tenant_ids": list(tenant_ids),
    })
    dispatch = event_dispatcher(uri=system.settings.amqp_uri)
    dispatch("retention", DELETION_REQUESTED, payload)
    return request_id


def _wait_for_confirmation(system, request_id, timeout=15):
    """The identity deletion_completed for ``request_id``, once relayed from the outbox."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = execute(system, "SELECT payload, published_at FROM outbox_message WHERE event_type = 'deletion_completed'")
        for payload, published_at in rows:
            if isinstance(payload, str):
                import json
                payload = json.loads(payload)
            if payload["request_id"] == request_id and published_at is not None:
                return payload
        time.sleep(0.1)
    raise AssertionError("no confirmation relayed")


def _import_one(rpc, world, key, first="Fen", contact="Fay Fence"):
    text = ("student_key,first_name,last_name,contact_name,contact_relationship,contact_email,staff_email\n"
            f"{key},{first},Fence,{contact},mother,fay.{key}.{world.suffix}@family.example,{world.email('teacher')}\n")
    rpc.identity.import_roster(world.auth("school_admin"), csv_b64(text))
    page = rpc.identity.list_students(world.auth("school_admin"), {"search": first})
    return next(s["id"] for s in page["items"] if s["roster_key"] == key)


def test_student_fence_then_deletion(system, world, rpc):
    key = "DEL" + world.suffix
    student = _import_one(rpc, world, key, first="Delia")
    assert rpc.identity.fence_subject(str(uuid.uuid4()), "student", world.tenants["S1"], student) == {"fenced": True}
    assert rpc.identity.fence_subject(str(uuid.uuid4()), "student", world.tenants["S1"], student) == {"fenced": True}
    with pytest.raises(SubjectFenced):
        rpc.identity.check_student_access(world.auth("teacher"), student)
    with pytest.raises(SubjectFenced):
        rpc.identity.delivery_contacts(world.auth("teacher"), student, [])
    r = world.http("school_admin").get(system.url(f"/api/v1/students/{student}"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "subject_fenced"

    request_id = _dispatch_deletion(system, "student", world.tenants["S1"], student)
    confirmation = _wait_for_confirmation(system, request_id)
    assert confirmation["service"] == "identity"
    assert confirmation["counts"] == {"students": 1, "family_contacts": 1, "serves_links": 1}
    assert tables_holding(system, f"fay.{key}") == []
    assert count_rows(system, "student", "id = :s", s=student) == 0
    # A later roster import does not bring her back.
    text = f"student_key,first_name,last_name\n{key},Delia,Fence\n"
    result = rpc.identity.import_roster(world.auth("school_admin"), csv_b64(text))
    assert result["skipped_rows"] == [2] and result["errors"][0]["column"] == "student_key"
    # Redelivery deletes nothing more and confirms again.
    again = _dispatch_deletion(system, "student", world.tenants["S1"], student)
    assert _wait_for_confirmation(system, again)["counts"] == {"students": 0, "family_contacts": 0, "serves_links": 0}


def test_user_fence_and_deletion(system, world, rpc):
    email = f"leaver.{world.suffix}@world.example"
    user = rpc.identity.bootstrap_user({"email": email, "display_name": "Leaver", "role": "teacher",
                                        "tenant_id": world.tenants["S1"]}, "leaver passphrase 1")
    token = rpc.identity.login({"email": email, "password": "leaver passphrase 1"}, client_ip="x")["token"]
    rpc.identity.set_student_staff(world.auth("school_admin"), world.students["B"], {"user_ids": [user["id"]]})
    rpc.identity.fence_subject(str(uuid.uuid4()), "user", world.tenants["S1"], user["id"])
    assert system.client(token).get(system.url("/api/v1/me")).status_code == 401
    request_id = _dispatch_deletion(system, "user", world.tenants["S1"], user["id"])
    counts = _wait_for_confirmation(system, request_id)["counts"]
    # session_notices: the fence's sessions_ended event, which named the user.
    assert counts == {"users": 1, "sessions": 1, "password_resets": 0, "serves_links": 1, "login_attempts": 1,
                      "session_notices": 1}
    assert tables_holding(system, email) == []
    assert tables_holding(system, user["id"]) == []  # the fence keeps a keyed hash only


def test_tenant_termination_deletes_district_and_schools(system, rpc):
    world = build_world(system)  # its own world: this one is destroyed
    district_ids = [world.tenants[n] for n in ("D1", "S1", "S2")]
    rpc.identity.fence_subject(str(uuid.uuid4()), "tenant", world.tenants["D1"], world.tenants["D1"])
    assert world.http("teacher").get(system.url("/api/v1/me")).status_code == 401
    r = system.client().post(system.url("/api/v1/sessions"), json={"email": world.email("district_admin"), "password": "world-passphrase-2026"})
    assert r.status_code == 401
    request_id = _dispatch_deletion(system, "tenant", world.tenants["D1"], world.tenants["D1"], tenant_ids=[world.tenants["D1"]])
    counts = _wait_for_confirmation(system, request_id)["counts"]
    assert counts["tenants"] == 3 and counts["students"] == 4 and counts["users"] == 6
    for tenant_id in district_ids:
        assert count_rows(system, "tenant", "id = :t", t=tenant_id) == 0
        for table in ("student", "family_contact", "serves_link", "user_account"):
            assert count_rows(system, table, "tenant_id = :t", t=tenant_id) == 0
    assert tables_holding(system, f"maria.{world.suffix}") == []
    # Other tenants are untouched.
    assert count_rows(system, "student", "tenant_id = :t", t=world.tenants["S3"]) == 1
    assert rpc.identity.tenant_info(world.tenants["P1"])["status"] == "active"
    with pytest.raises(NotFound):
        rpc.identity.tenant_info(world.tenants["S1"])
