"""Identity's service logic with nameko's worker_factory on a real SQLite database
(migrated with the service's own Alembic chain). No broker; email is captured."""
from __future__ import annotations

import base64
import hashlib
from datetime import date, timedelta

import pytest
from nameko.exceptions import deserialize, serialize
from sqlalchemy import event, func, select, update

from services.identity import accounts, rosters
from services.identity.accounts import account_key
from services.identity.exceptions import (
    AccountDisabled, AccountEnded, InvalidCredentials, InvalidResetToken, RosterRejected, StudentForbidden, StudentNotFound, SubjectFenced,
)
from services.identity.models import (
    FamilyContact, LoginAttempt, MailJob, OutboxMessage, PasswordReset, ServesLink, Student, SubjectFence, Tenant, User,
    UserSession,
)
from services.identity.students import age_on, is_adult, is_fenced, subject_hash
from tests.support.scanner import scan_engine
from weintervene.auth import AuthContext, Role
from weintervene.contracts import DeletionRequested
from weintervene.db import utcnow
from weintervene.errors import BadRequest, NotFound, WeInterveneError
from tests.unit.identity_fixtures import PASSWORD, sent, service, session  # noqa: F401  (fixtures)


@pytest.fixture
def school(service):
    """A district with one school, its admin and two teachers; returns auth dicts and ids."""
    op = AuthContext(user_id="op", tenant_id="platform", role=Role.OPERATOR).to_dict()
    district = service.create_tenant(op, {"kind": "district", "name": "Riverside"})
    school = service.create_tenant(op, {"kind": "school", "name": "Lincoln", "parent_id": district["id"]})
    users = {}
    for name, role in (("admin", "school_admin"), ("rivera", "teacher"), ("okafor", "teacher")):
        service.bootstrap_user({"email": f"{name}@lincoln.example", "display_name": name, "role": role,
                                "tenant_id": school["id"]}, PASSWORD)
        users[name] = service.login({"email": f"{name}@lincoln.example", "password": PASSWORD}, "127.0.0.1")["user"]
    return {"district": district["id"], "school": school["id"], **users}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


ROSTER = (
    "student_key,first_name,last_name,grade,contact_name,contact_relationship,contact_email,contact_language,staff_email,ethnicity\n"
    "S1,Diego,Ramos,7,Rosa Ramos,mother,rosa@family.example,es,rivera@lincoln.example,Hispanic\n"
    "S2,Lena,Ortiz,8,,,,,,White\n"
)


def test_login_authenticate_logout(service):
    service.bootstrap_user({"email": "ops@x.example", "display_name": "Ops", "role": "operator", "tenant_id": None}, PASSWORD)
    session = service.login({"email": "OPS@x.example", "password": PASSWORD}, "1.2.3.4")
    assert service.authenticate(session["token"])["role"] == "operator"
    service.logout(session["token"])
    with pytest.raises(Exception) as caught:
        service.authenticate(session["token"])
    assert caught.value.code == "session_expired"
    with pytest.raises(InvalidCredentials):
        service.login({"email": "ops@x.example", "password": "wrong password"}, "1.2.3.4")


def test_import_then_access_rules(service, school, session):
    result = service.import_roster(school["admin"], b64(ROSTER))
    assert result["columns_dropped"] == ["ethnicity"] and result["created"] == 2
    diego = session.scalar(select(Student).where(Student.roster_key == "S1"))
    lena = session.scalar(select(Student).where(Student.roster_key == "S2"))
    assert service.check_student_access(school["rivera"], diego.id)["first_name"] == "Diego"
    # Not served: answered as an unknown id.
    with pytest.raises(StudentNotFound):
        service.check_student_access(school["rivera"], lena.id)
    with pytest.raises(StudentNotFound):
        service.check_student_access(school["okafor"], diego.id)
    assert service.check_student_access(school["admin"], lena.id)["tenant_id"] == school["school"]
    district_admin = AuthContext(user_id="d", tenant_id=school["district"], role=Role.DISTRICT_ADMIN).to_dict()
    assert service.check_student_access(district_admin, lena.id)["district_id"] == school["district"]
    other = AuthContext(user_id="o", tenant_id="another-tenant", role=Role.SCHOOL_ADMIN).to_dict()
    with pytest.raises(StudentNotFound):
        service.check_student_access(other, lena.id)
    for role in (Role.OPERATOR, Role.AUDITOR):
        with pytest.raises(StudentForbidden):
            service.check_student_access(AuthContext(user_id="x", tenant_id=school["school"], role=role).to_dict(), lena.id)


def test_teacher_lists_only_served_students(service, school):
    service.import_roster(school["admin"], b64(ROSTER))
    assert [s["first_name"] for s in service.list_students(school["rivera"])["items"]] == ["Diego"]
    assert service.list_students(school["okafor"])["items"] == []
    assert service.list_students(school["admin"])["total"] == 2


def test_the_student_list_counts_the_staff_who_serve_each(service, school, session):
    service.import_roster(school["admin"], b64(ROSTER))
    counts = {s["first_name"]: s["staff_count"] for s in service.list_students(school["admin"])["items"]}
    assert counts == {"Diego": 1, "Lena": 0}
    lena = session.scalar(select(Student).where(Student.roster_key == "S2"))
    okafor = session.scalar(select(User).where(User.email == "okafor@lincoln.example"))
    rivera = session.scalar(select(User).where(User.email == "rivera@lincoln.example"))
    service.set_student_staff(school["admin"], lena.id, {"user_ids": [okafor.id, rivera.id]})
    counts = {s["first_name"]: s["staff_count"] for s in service.list_students(school["admin"])["items"]}
    assert counts == {"Diego": 1, "Lena": 2}


def test_preview_rolls_back(service, school, session):
    result = service.preview_roster(school["admin"], b64(ROSTER))
    assert result["preview"] is True and result["created"] == 2
    assert session.scalar(select(func.count()).select_from(Student)) == 0
    assert session.scalar(select(func.count()).select_from(ServesLink)) == 0


def test_only_admins_import(service, school):
    with pytest.raises(Exception) as caught:
        service.import_roster(school["rivera"], b64(ROSTER))
    assert caught.value.code == "role_forbidden"


def test_upload_must_be_base64(service, school):
    with pytest.raises(BadRequest):
        service.import_roster(school["admin"], "not base64 !!")


def test_fence_then_delete_student(service, school, session):
    service.import_roster(school["admin"], b64(ROSTER))
    diego = session.scalar(select(Student).where(Student.roster_key == "S1"))
    service.fence_subject("11111111-1111-4111-8111-111111111111", "student", school["school"], diego.id)
    with pytest.raises(SubjectFenced):
        service.check_student_access(school["admin"], diego.id)
    fence = session.scalar(select(SubjectFence))
    assert fence.roster_key_hash == rosters.roster_key_hash(school["school"], "S1")
    payload = DeletionRequested().dump({"request_id": "22222222-2222-4222-8222-222222222222", "scope": "student",
                                        "tenant_id": school["school"], "subject_id": diego.id})
    service.on_deletion_requested(payload)
    assert session.scalar(select(func.count()).select_from(Student)) == 1
    assert session.scalar(select(func.count()).select_from(FamilyContact)) == 0
    staged = session.scalars(select(OutboxMessage)).all()
    assert [m.event_type for m in staged] == ["deletion_completed"]
    assert staged[0].payload["counts"] == {"students": 1, "family_contacts": 1, "serves_links": 1}
    again = service.import_roster(school["admin"], b64(ROSTER))
    assert again["skipped_rows"] == [2] and again["applied_rows"] == [3]
    # Deletion complete: no table holds her id, the fence keeps only hashes and still works.
    assert scan_engine(session.get_bind(), diego.id) == []
    assert fence.subject_id is None and fence.applied_at is not None and fence.tenant_id == school["school"]
    # Gone: answered as any unknown id (the fence would tell whoever holds the id that it was
    # a student); the re-import above shows the fence still works where it must.
    with pytest.raises(StudentNotFound):
        service.check_student_access(school["admin"], diego.id)
    # A repeated fence call (a second request) does not bring the raw id back.
    service.fence_subject("33333333-3333-4333-8333-333333333333", "student", school["school"], diego.id)
    assert scan_engine(session.get_bind(), diego.id) == []
    assert session.scalar(select(func.count()).select_from(SubjectFence)) == 1


def test_pending_fence_hides_student_but_not_the_rest(service, school, session):
    """The student list filters pending fences by raw id; sealed fences (NULL id) must not hide everyone."""
    service.import_roster(school["admin"], b64(ROSTER))
    diego = session.scalar(select(Student).where(Student.roster_key == "S1"))
    lena = session.scalar(select(Student).where(Student.roster_key == "S2"))
    service.fence_subject("11111111-1111-4111-8111-111111111111", "student", school["school"], diego.id)
    assert [s["first_name"] for s in service.list_students(school["admin"])["items"]] == ["Lena"]
    service.delete_for({"scope": "student", "subject_id": diego.id, "tenant_id": school["school"],
                        "tenant_ids": [school["school"]], "request_id": "r1"})
    session.commit()
    service.fence_subject("44444444-4444-4444-8444-444444444444", "student", school["school"], lena.id)
    service.delete_for({"scope": "student", "subject_id": lena.id, "tenant_id": school["school"],
                        "tenant_ids": [school["school"]], "request_id": "r2"})
    session.commit()
    service.import_roster(school["admin"], b64("student_key,first_name,last_name\nS3,Ana,Lopez\n"))
    assert [s["first_name"] for s in service.list_students(school["admin"])["items"]] == ["Ana"]


def test_deletion_without_a_prior_fence_still_leaves_a_hashed_fence(service, school, session):
    service.import_roster(school["admin"], b64(ROSTER))
    diego = session.scalar(select(Student).where(Student.roster_key == "S1"))
    counts = service.delete_for({"scope": "student", "subject_id": diego.id, "tenant_id": school["school"],
                                 "tenant_ids": [school["school"]], "request_id": "r"})
    session.commit()
    assert counts["students"] == 1
    assert scan_engine(session.get_bind(), diego.id) == []
    assert service.import_roster(school["admin"], b64(ROSTER))["skipped_rows"] == [2]


def test_fences_are_keyed_by_the_secret(service, school, session, patch_settings):
    """Without the deployment's key, a fence cannot be matched to a guessed id."""
    service.import_roster(school["admin"], b64(ROSTER))
    diego = session.scalar(select(Student).where(Student.roster_key == "S1"))
    service.fence_subject("11111111-1111-4111-8111-111111111111", "student", school["school"], diego.id)
    fence = session.scalar(select(SubjectFence))
    assert fence.subject_hash == subject_hash("student", diego.id)
    assert fence.subject_hash != hashlib.sha256(diego.id.encode()).hexdigest()
    assert fence.roster_key_hash != hashlib.sha256(f"{school['school']}:S1".encode()).hexdigest()
    patch_settings(secret_key="another deployment")
    assert subject_hash("student", diego.id) != fence.subject_hash


def _age(session, user_id, days):
    """Make all of a user's sign-in records ``days`` old (sessions and reset links ended then)."""
    then = utcnow() - timedelta(days=days)
    email = session.scalar(select(User.email).where(User.id == user_id))
    session.execute(update(UserSession).where(UserSession.user_id == user_id)
                    .values(created_at=then, last_seen_at=then, expires_at=then + timedelta(hours=12)))
    session.execute(update(LoginAttempt).where(LoginAttempt.account_key == account_key(email)).values(at=then))
    session.execute(update(PasswordReset).where(PasswordReset.user_id == user_id).values(expires_at=then))
    session.commit()


def test_only_the_right_password_learns_the_account_has_ended_or_is_disabled(service, school, session):
    rivera = {"email": "rivera@lincoln.example", "password": PASSWORD}
    session.execute(update(User).where(User.id == school["okafor"]["user_id"]).values(is_active=False))
    session.execute(update(Tenant).where(Tenant.id == school["school"]).values(status="terminated"))
    session.commit()
    with pytest.raises(AccountEnded) as ended:
        service.login(rivera, "10.0.0.3")
    assert "Lincoln no longer uses WeIntervene" in str(ended.value)
    for wrong in ({**rivera, "password": "not the password"}, {"email": "nobody@lincoln.example", "password": PASSWORD}):
        with pytest.raises(InvalidCredentials) as caught:
            service.login(wrong, "10.0.0.3")
        assert type(caught.value) is InvalidCredentials and "Lincoln" not in str(caught.value)
    session.execute(update(Tenant).where(Tenant.id == school["school"]).values(status="active"))
    session.commit()
    with pytest.raises(AccountDisabled):
        service.login({"email": "okafor@lincoln.example", "password": PASSWORD}, "10.0.0.3")
    with pytest.raises(InvalidCredentials):
        service.login({"email": "okafor@lincoln.example", "password": "not the password"}, "10.0.0.3")
    assert service.login(rivera, "10.0.0.3")["user"]["user_id"] == school["rivera"]["user_id"]


def test_names_for_audit_names_staff_and_tenants_never_students(service, school, session):
    service.import_roster(school["admin"], b64(ROSTER))
    diego = session.scalar(select(Student).where(Student.roster_key == "S1"))
    admin = school["admin"]["user_id"]
    names = service.names_for_audit([admin, diego.id, "no-such-user"], [school["school"], "no-such-tenant"])
    assert names == {"users": {admin: {"display_name": "admin", "role": "school_admin"}},
                     "tenants": {school["school"]: "Lincoln"}}
    assert service.names_for_audit([], []) == {"users": {}, "tenants": {}}


def _sessions_of(session, user_id):
    return session.scalar(select(func.count()).select_from(UserSession).where(UserSession.user_id == user_id))


def test_policy_expires_old_login_records_of_that_tenant_only(service, school, session):
    op = AuthContext(user_id="op", tenant_id="platform", role=Role.OPERATOR).to_dict()
    other = service.create_tenant(op, {"kind": "school", "name": "Elsewhere"})
    service.bootstrap_user({"email": "t@elsewhere.example", "display_name": "T", "role": "teacher",
                            "tenant_id": other["id"]}, PASSWORD)
    elsewhere = service.login({"email": "t@elsewhere.example", "password": PASSWORD}, "10.0.0.1")["user"]["user_id"]
    with pytest.raises(InvalidCredentials):
        service.login({"email": "rivera@lincoln.example", "password": "not the password"}, "10.0.0.2")
    rivera = session.get(User, school["rivera"]["user_id"])
    accounts.issue_reset(session, rivera)
    session.commit()
    for user_id in (school["admin"]["user_id"], rivera.id, elsewhere):
        _age(session, user_id, 40)
    # The admin signs in again today (a session made directly: a login would prune old attempts itself).
    token, _ = accounts.start_session(session, session.get(User, school["admin"]["user_id"]))
    session.commit()
    request = {"scope": "policy", "request_id": "p", "tenant_id": school["school"], "subject_id": school["school"],
               "tenant_ids": [school["school"]], "older_than": utcnow() - timedelta(days=30),
               "record_kind": "login_records"}
    counts = service.delete_for(request)
    session.commit()
    # admin and rivera: their old sessions and attempts (rivera: a success and a failure), rivera's reset link.
    assert counts == {"sessions": 2, "login_attempts": 3, "password_resets": 1}
    assert service.authenticate(token)["user_id"] == school["admin"]["user_id"]
    assert _sessions_of(session, school["okafor"]["user_id"]) == 1  # recent: kept
    assert _sessions_of(session, elsewhere) == 1  # another tenant: untouched
    assert session.scalar(select(func.count()).select_from(LoginAttempt)
                          .where(LoginAttempt.account_key == account_key("t@elsewhere.example"))) == 1
    assert service.delete_for(request) == {"sessions": 0, "login_attempts": 0, "password_resets": 0}
    # Kinds identity does not hold are confirmed with no counts.
    for kind in ("closed_referrals", "delivery_logs"):
        assert service.delete_for({**request, "record_kind": kind}) == {}


def test_policy_keeps_sessions_still_in_use(service, school, session):
    """A policy expires records; it does not sign anyone out, even with a zero-day age."""
    request = {"scope": "policy", "request_id": "p", "tenant_id": school["school"], "subject_id": school["school"],
               "tenant_ids": [school["school"]], "older_than": utcnow() + timedelta(days=1),
               "record_kind": "login_records"}
    counts = service.delete_for(request)
    session.commit()
    assert counts["sessions"] == 0 and counts["login_attempts"] == 3
    assert session.scalar(select(func.count()).select_from(UserSession).where(UserSession.revoked_at.is_(None))) == 3


def test_policy_request_through_the_contract(service, school, session):
    """The message retention sends, end to end through on_deletion_requested."""
    _age(session, school["okafor"]["user_id"], 40)
    payload = DeletionRequested().dump({
        "request_id": "55555555-5555-4555-8555-555555555555", "scope": "policy", "tenant_id": school["school"],
        "subject_id": school["school"], "tenant_ids": [school["school"]],
        "older_than": utcnow() - timedelta(days=30), "record_kind": "login_records"})
    service.on_deletion_requested(payload)
    staged = session.scalars(select(OutboxMessage)).all()
    assert staged[-1].payload["counts"] == {"sessions": 1, "login_attempts": 1, "password_resets": 0}


def test_delete_tenant_is_complete_and_idempotent(service, school, session):
    service.import_roster(school["admin"], b64(ROSTER))
    request = {"scope": "tenant", "tenant_id": school["district"], "subject_id": school["district"],
               "tenant_ids": [school["district"]], "request_id": "r"}
    counts = service.delete_for(request)
    session.commit()
    # The operator's access log of both tenants (2 tenants, 3 users created) and the notices
    # to the admin waiting to be sent go with them (reported only when there were any).
    assert counts == {"students": 2, "family_contacts": 1, "serves_links": 1, "users": 3, "sessions": 3,
                      "password_resets": 0, "login_attempts": 3, "tenants": 2, "access_log_entries": 5,
                      "mail_jobs": 3}
    assert service.delete_for(request) == dict.fromkeys(counts.keys() - {"access_log_entries", "mail_jobs"}, 0)
    session.commit()
    # Nothing names either tenant any more, fences included; they still refuse by hash.
    for tenant_id in (school["district"], school["school"]):
        assert scan_engine(session.get_bind(), tenant_id) == [], tenant_id
        assert is_fenced(session, "tenant", tenant_id)


def test_delete_user(service, school, session):
    service.import_roster(school["admin"], b64(ROSTER))
    counts = service.delete_for({"scope": "user", "subject_id": school["rivera"]["user_id"], "tenant_id": school["school"],
                                 "tenant_ids": [], "request_id": "r"})
    assert counts == {"serves_links": 1, "sessions": 1, "password_resets": 0, "login_attempts": 1, "users": 1}
    session.commit()
    assert scan_engine(session.get_bind(), school["rivera"]["user_id"]) == []
    assert is_fenced(session, "user", school["rivera"]["user_id"])


def test_reset_sends_only_to_real_accounts_and_works_once(service, school, sent):
    service.send_mail()  # the admin's access notices (the operator created the school's accounts)
    sent.clear()
    assert service.request_password_reset({"email": "ghost@lincoln.example"})["accepted"] is True
    service.send_mail()
    assert sent == []
    service.request_password_reset({"email": "rivera@lincoln.example"})
    assert sent == []  # the request only stages the mail; the worker sends it after the answer
    service.send_mail()
    [(to, subject, text)] = sent
    assert to == "rivera@lincoln.example" and "reset" in subject.lower()
    token = text.split("token=", 1)[1].split()[0]
    assert service.complete_password_reset({"token": token, "new_password": "fresh passphrase 1"})["changed"]
    with pytest.raises(InvalidResetToken):
        service.complete_password_reset({"token": token, "new_password": "fresh passphrase 2"})
    assert service.login({"email": "rivera@lincoln.example", "password": "fresh passphrase 1"}, "1.1.1.1")["token"]


def test_mail_outage_does_not_reveal_accounts(service, school, monkeypatch, session):
    from weintervene import mail

    def down(*_args, **_kwargs):
        raise mail.MailUnavailable("smtp down")

    monkeypatch.setattr("weintervene.mail.send", down)
    assert service.request_password_reset({"email": "rivera@lincoln.example"}) == \
        service.request_password_reset({"email": "ghost@lincoln.example"})
    created = service.create_user(school["admin"], {"tenant_id": school["school"], "email": "new@lincoln.example",
                                                    "display_name": "New", "role": "teacher"})
    assert created["invited"] is True and created["email"] == "new@lincoln.example"
    # The worker meets the outage: the jobs wait for a retry (nothing lost, nothing told).
    service.send_mail()
    jobs = session.scalars(select(MailJob)).all()
    assert {"password_reset", "invitation"} <= {j.kind for j in jobs}
    assert sum(j.attempts for j in jobs) == 1 and all(j.next_try_at for j in jobs)


def test_settings_ids_off_erases_numbers(service, school, session):
    service.import_roster(school["admin"], b64("student_key,first_name,last_name,student_number\nS1,A,B,N-1\n"))
    assert session.scalar(select(Student.student_number)) == "N-1"
    info = service.update_tenant_settings(school["admin"], school["school"], {"student_ids_enabled": False})
    assert info["student_ids_enabled"] is False
    session.expire_all()
    assert session.scalar(select(Student.student_number)) is None


def test_user_info_and_tenant_info(service, school):
    info = service.user_info(school["rivera"]["user_id"])
    assert set(info) == {"id", "tenant_id", "display_name", "email", "role"}
    assert service.tenant_info(school["school"])["district_id"] == school["district"]
    with pytest.raises(NotFound):
        service.tenant_info("00000000-0000-4000-8000-000000000000")
    assert [t["id"] for t in service.list_tenants_in(school["district"])] == [school["district"], school["school"]]


def test_tenants_info_answers_for_many_tenants_in_one_call(service, school):
    unknown = "00000000-0000-4000-8000-000000000000"
    many = service.tenants_info([school["school"], school["district"], unknown, school["school"]])
    assert set(many) == {school["school"], school["district"]}  # unknown left out, repeats once
    for tenant_id, info in many.items():
        assert info == service.tenant_info(tenant_id)
    assert service.tenants_info([]) == {}
    for bad in ("not-a-list", [None], [""], ["x" * 65], [school["school"]] * 1001):
        with pytest.raises(BadRequest):
            service.tenants_info(bad)


def test_disabling_revokes_sessions(service, school, session):
    token = service.login({"email": "okafor@lincoln.example", "password": PASSWORD}, "9.9.9.9")["token"]
    service.update_user(school["admin"], school["okafor"]["user_id"], {"is_active": False})
    with pytest.raises(Exception) as caught:
        service.authenticate(token)
    assert caught.value.code == "session_expired"


# -- the CSV reader and row rules ------------------------------------------------

def test_parse_drops_unlisted_columns_before_keeping_rows():
    parsed = rosters.parse(b"student_key,First Name,last_name,Home Address\nK,Ana,Lopez,12 Elm\n")
    assert parsed.columns_kept == ["student_key", "first_name", "last_name"]
    assert parsed.columns_dropped == ["Home Address"]
    assert parsed.rows == [(2, {"student_key": "K", "first_name": "Ana", "last_name": "Lopez"})]


@pytest.mark.parametrize("raw, code", [
    (b"", "empty_file"), (b"student_key,first_name,last_name\n", "empty_file"),
    ("student_key,first_name,last_name\nK,Jos\u00e9,L\n".encode("latin-1"), "bad_encoding"),
    (b"first_name\nAna\n", "missing_columns"),
])
def test_parse_refuses(raw, code):
    with pytest.raises(RosterRejected) as caught:
        rosters.parse(raw)
    assert caught.value.code == code


@pytest.mark.parametrize("value, expected", [
    ("(202) 555-0142", "+12025550142"), ("202.555.0142", "+12025550142"), ("1 202 555 0142", "+12025550142"),
    ("+44 20 7946 0958", "+442079460958"),
])
def test_mobile_numbers_are_normalised(value, expected):
    assert rosters.normalise_mobile(value) == expected


@pytest.mark.parametrize("value", ["12345", "call me", "+1"])
def test_bad_mobiles(value):
    with pytest.raises(ValueError):
        rosters.normalise_mobile(value)


@pytest.mark.parametrize("value, expected", [("k", "K"), ("KG", "K"), ("07", "7"), ("12", "12"), ("pre-k", "PK"), ("", None)])
def test_grades(value, expected):
    assert rosters.parse_grade(value) == expected


def test_dates():
    assert rosters.parse_date("2013-03-04") == date(2013, 3, 4)
    assert rosters.parse_date("03/04/2013") == date(2013, 3, 4)
    for bad in ("2013-13-01", "1850-01-01", (date.today() + timedelta(days=1)).isoformat()):
        with pytest.raises(ValueError):
            rosters.parse_date(bad)


def test_adult_on_the_eighteenth_birthday():
    today = date(2026, 11, 28)
    assert age_on(date(2008, 11, 28), today) == 18
    assert age_on(date(2008, 11, 29), today) == 17
    student = Student(date_of_birth=date(2008, 11, 28))
    assert is_adult(student, today) and not is_adult(Student(date_of_birth=None), today)


def test_auth_context_dict_round_trip_has_every_field():
    """to_dict is spelled out for speed: it must still carry every field (and nothing else)."""
    import dataclasses

    ctx = AuthContext(user_id="u", tenant_id="t", role=Role.DISTRICT_ADMIN, district_id="t", session_id="s",
                      email="e@x.example", display_name="E")
    unsigned = {k: v for k, v in dataclasses.asdict(ctx).items() if k not in ("expires_at", "signature")}
    assert ctx.to_dict() == {**unsigned, "role": "district_admin"}
    assert AuthContext.from_dict({**ctx.to_dict(), "extra": 1}) == ctx
    # Signed (by the gateway), the signature and expiry come back as they went, to be forwarded.
    signed = dataclasses.replace(ctx, expires_at=1796440230, signature="dev-1.abc")
    assert signed.to_dict() == {**unsigned, "role": "district_admin", "expires_at": 1796440230,
                                "signature": "dev-1.abc"}
    assert AuthContext.from_dict(signed.to_dict()).to_dict() == signed.to_dict()


def test_authenticate_refuses_revoked_idle_and_disabled(service, school, session, patch_settings):
    """The single-statement authenticate keeps every check: revoked at once, idle timeout, disabled users."""
    token = service.login({"email": "okafor@lincoln.example", "password": PASSWORD}, "1.1.1.1")["token"]
    ctx = service.authenticate(token)
    assert ctx["role"] == "teacher" and ctx["district_id"] == school["district"] and ctx["tenant_id"] == school["school"]
    user_id = ctx["user_id"]
    accounts.revoke_sessions(session, user_id, "test")
    session.commit()
    with pytest.raises(Exception) as caught:
        service.authenticate(token)
    assert caught.value.code == "session_expired"
    token = service.login({"email": "okafor@lincoln.example", "password": PASSWORD}, "1.1.1.1")["token"]
    session.execute(update(UserSession).where(UserSession.token_hash == accounts.token_hash(token))
                    .values(last_seen_at=utcnow() - timedelta(hours=2)))
    session.commit()
    with pytest.raises(Exception) as caught:
        service.authenticate(token)
    assert "timed out" in caught.value.message
    timed_out = session.scalar(select(UserSession).where(UserSession.token_hash == accounts.token_hash(token)))
    session.refresh(timed_out)
    assert timed_out.revoked_reason == "timeout"
    token = service.login({"email": "okafor@lincoln.example", "password": PASSWORD}, "1.1.1.1")["token"]
    session.execute(update(User).where(User.id == user_id).values(is_active=False))
    session.commit()
    with pytest.raises(Exception) as caught:
        service.authenticate(token)
    assert caught.value.code == "session_expired"


def statements_of(session, call) -> list[str]:
    """The SQL statements ``call()`` sent, with nothing left in the session's identity map."""
    session.expire_all()
    sent = []

    def record(_conn, _cursor, statement, *_):
        sent.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return sent


def test_share_context_is_one_statement_and_still_sees_every_fence(service, school, session):
    service.import_roster(school["admin"], b64(ROSTER))
    diego = session.scalar(select(Student).where(Student.roster_key == "S1"))
    diego_id, rosa = diego.id, diego.contacts[0].id
    district_admin = AuthContext(user_id="d", tenant_id=school["district"], role=Role.DISTRICT_ADMIN).to_dict()
    one = statements_of(session, lambda: service.share_context(school["rivera"], diego_id, [rosa], []))
    assert len(one) == 1, "\n\n".join(one)
    assert len(statements_of(session, lambda: service.share_context(school["admin"], diego_id, [rosa]))) == 1
    # A district admin's student may be in any school of the district: that school's fence is one more.
    assert len(statements_of(session, lambda: service.share_context(district_admin, diego_id, [rosa]))) == 2
    # The school's deletion fence alone (its status put back to active) still refuses every role.
    service.fence_subject("req-t", "tenant", school["school"], school["school"])
    session.execute(update(Tenant).where(Tenant.id == school["school"]).values(status="active"))
    session.commit()
    for caller in (school["rivera"], school["admin"], district_admin):
        with pytest.raises(SubjectFenced):
            service.share_context(caller, diego_id, [rosa])


def test_share_context_is_one_access_check_with_contacts_and_tenants(service, school, session):
    service.import_roster(school["admin"], b64(ROSTER))
    diego = session.scalar(select(Student).where(Student.roster_key == "S1"))
    lena = session.scalar(select(Student).where(Student.roster_key == "S2"))
    rosa = diego.contacts[0].id
    op = AuthContext(user_id="op", tenant_id="platform", role=Role.OPERATOR).to_dict()
    program = service.create_tenant(op, {"kind": "program", "name": "Bright Futures"})
    context = service.share_context(school["rivera"], diego.id, [rosa], [program["id"], "no-such-tenant"])
    assert context["student"] == service.check_student_access(school["rivera"], diego.id)
    assert context["contacts"] == service.delivery_contacts(school["rivera"], diego.id, [rosa])
    assert context["contacts"][0]["email"] == "rosa@family.example"
    assert list(context["tenants"]) == [program["id"]] and context["tenants"][program["id"]]["kind"] == "program"
    assert service.share_context(school["rivera"], diego.id, [])["contacts"] == []
    # The same refusals as check_student_access and delivery_contacts.
    with pytest.raises(StudentNotFound):
        service.share_context(school["okafor"], diego.id, [rosa])
    with pytest.raises(StudentNotFound):
        service.share_context(AuthContext(user_id="o", tenant_id="elsewhere", role=Role.SCHOOL_ADMIN).to_dict(),
                              lena.id, [])
    with pytest.raises(Exception) as caught:
        service.share_context(school["rivera"], diego.id, [lena.id])  # not Diego's contact, not an adult
    assert caught.value.code == "contact_forbidden"
    with pytest.raises(BadRequest):
        service.share_context(school["rivera"], diego.id, "rosa")
    service.fence_subject("req-1", "student", school["school"], diego.id)
    with pytest.raises(SubjectFenced):
        service.share_context(school["rivera"], diego.id, [rosa])


def test_share_context_across_the_district_for_adults_and_unauthorised_contacts(service, school, session):
    """The access check reads columns, not entities: every answer and refusal it shapes."""
    op = AuthContext(user_id="op", tenant_id="platform", role=Role.OPERATOR).to_dict()
    other = service.create_tenant(op, {"kind": "school", "name": "Jefferson", "parent_id": school["district"]})
    service.bootstrap_user({"email": "admin@jefferson.example", "display_name": "J", "role": "school_admin",
                            "tenant_id": other["id"]}, PASSWORD)
    jefferson = service.login({"email": "admin@jefferson.example", "password": PASSWORD}, "127.0.0.1")["user"]
    adult_dob = date(date.today().year - 19, 1, 1).isoformat()
    service.import_roster(jefferson, b64(
        "student_key,first_name,last_name,grade,date_of_birth,student_email,contact_name,contact_relationship,"
        "contact_email,contact_language,contact_authorised\n"
        f"J1,Jo,Park,12,{adult_dob},jo@student.example,Kim Park,mother,kim@family.example,ko,yes\n"
        f"J1,Jo,Park,12,{adult_dob},jo@student.example,Lee Park,uncle,lee@family.example,ko,no\n"))
    jo = session.scalar(select(Student).where(Student.roster_key == "J1"))
    kim, lee = (next(c.id for c in jo.contacts if c.name == name) for name in ("Kim Park", "Lee Park"))
    district_admin = AuthContext(user_id="d", tenant_id=school["district"], role=Role.DISTRICT_ADMIN).to_dict()

    context = service.share_context(district_admin, jo.id, [jo.id, kim])
    assert context["student"] == {"student_id": jo.id, "tenant_id": other["id"], "district_id": school["district"],
                                  "is_adult": True, "first_name": "Jo"}
    assert context["contacts"] == [
        {"id": jo.id, "name": "Jo Park", "relationship": "self", "email": "jo@student.example", "mobile": None,
         "preferred_language": "en", "authorised": True},
        {"id": kim, "name": "Kim Park", "relationship": "mother", "email": "kim@family.example", "mobile": None,
         "preferred_language": "ko", "authorised": True}]
    assert service.check_student_access(district_admin, jo.id) == context["student"]
    assert service.delivery_contacts(jefferson, jo.id, [kim, jo.id]) == context["contacts"][::-1]
    # The entity path (get_student, set_student_staff) across the district too.
    assert [c["relationship"] for c in service.get_student(district_admin, jo.id)["contacts"]] == ["self", "mother", "uncle"]
    assert service.set_student_staff(district_admin, jo.id, {"user_ids": []})["staff"] == []
    for caller, contacts, code in (
        (district_admin, [lee], "contact_forbidden"),           # not authorised
        (jefferson, [kim, school["rivera"]["user_id"]], "contact_forbidden"),  # no contact at all
        (school["admin"], [kim], "student_not_found"),          # Lincoln's admin: another school's student
        (school["rivera"], [kim], "student_not_found"),
    ):
        with pytest.raises(Exception) as caught:
            service.share_context(caller, jo.id, contacts)
        assert caught.value.code == code
    with pytest.raises(StudentNotFound):
        service.get_student(school["admin"], jo.id)


def test_share_contexts_checks_each_share_in_full_and_answers_each_on_its_own(service, school, session):
    service.import_roster(school["admin"], b64(ROSTER))
    diego = session.scalar(select(Student).where(Student.roster_key == "S1"))
    rosa = diego.contacts[0].id
    request = {"auth": school["rivera"], "student_id": diego.id, "contact_ids": [rosa], "tenant_ids": []}
    answers = service.share_contexts([request, {**request, "auth": school["okafor"]}, {**request, "contact_ids": "x"},
                                      {**request, "student_id": "no-such-student"}, request])
    assert answers[0] == {"context": service.share_context(school["rivera"], diego.id, [rosa], [])} == answers[4]
    refusals = [deserialize(a["error"]) for a in answers[1:4]]
    assert [type(r) for r in refusals] == [StudentNotFound, BadRequest, StudentNotFound]
    assert refusals[0].code == "student_not_found" and str(refusals[0]) == str(refusals[2])
    for bad in ([], "x", [request] * 65, [request, "x"]):
        with pytest.raises(BadRequest):
            service.share_contexts(bad)


def _one_by_one(service, requests) -> list[dict]:
    """What ``share_contexts`` answered before it read a batch at once: ``share_context`` per
    request, its refusal serialised in its place."""
    answers = []
    for r in requests:
        try:
            answers.append({"context": service.share_context(r.get("auth"), r.get("student_id"), r.get("contact_ids"),
                                                             r.get("tenant_ids", ()))})
        except WeInterveneError as refused:
            answers.append({"error": serialize(refused)})
    return answers


def test_share_contexts_answers_a_mixed_batch_exactly_as_share_context_one_by_one(service, school, session):
    """One batch with every refusal, in each place of the refusal order, and several
    successes (students of three tenants, six callers, named programs, adult and minor
    students): the batch, read at once, answers each share exactly as alone."""
    op = AuthContext(user_id="op", tenant_id="platform", role=Role.OPERATOR).to_dict()
    district = school["district"]

    def tenant(kind, name, parent=None):
        return service.create_tenant(op, {"kind": kind, "name": name, "parent_id": parent})["id"]

    def user(name, role, tenant_id):
        service.bootstrap_user({"email": f"{name}@batch.example", "display_name": name, "role": role,
                                "tenant_id": tenant_id}, PASSWORD)
        return service.login({"email": f"{name}@batch.example", "password": PASSWORD}, "127.0.0.1")["user"]

    def student(tenant_id, first, adult=False, staff=(), contacts=()):
        row = Student(tenant_id=tenant_id, roster_key=first, first_name=first, last_name="Batch",
                      date_of_birth=date(date.today().year - (19 if adult else 12), 1, 1),
                      email=f"{first.lower()}@student.example" if adult else None)
        session.add(row)
        session.flush()
        for staff_auth in staff:
            session.add(ServesLink(user_id=staff_auth["user_id"], student_id=row.id, tenant_id=tenant_id))
        ids = []
        for name, authorised in contacts:
            contact = FamilyContact(student_id=row.id, tenant_id=tenant_id, name=name, relationship_to_student="mother",
                                    email=f"{name.lower()}@family.example", preferred_language="es",
                                    authorised=authorised)
            session.add(contact)
            session.flush()
            ids.append(contact.id)
        session.commit()
        return row.id, ids

    jefferson, adams, polk = (tenant("school", n, district) for n in ("Jefferson", "Adams", "Polk"))
    hilltop = tenant("school", "Hilltop", tenant("district", "Hill"))
    program, other_program = tenant("program", "Bright Futures"), tenant("program", "Open Doors")
    rivera, okafor, lincoln_admin = school["rivera"], school["okafor"], school["admin"]
    jefferson_admin = user("jeff", "school_admin", jefferson)
    staff, program_admin = user("pat", "program_staff", program), user("pam", "program_admin", program)
    district_admin = AuthContext(user_id="d", tenant_id=district, role=Role.DISTRICT_ADMIN).to_dict()
    adams_admin = AuthContext(user_id="a", tenant_id=adams, role=Role.SCHOOL_ADMIN).to_dict()
    polk_admin = AuthContext(user_id="p", tenant_id=polk, role=Role.SCHOOL_ADMIN).to_dict()

    diego, (rosa,) = student(school["school"], "Diego", staff=[rivera], contacts=[("Rosa", True)])
    lena, _ = student(school["school"], "Lena")
    fern, (fay,) = student(school["school"], "Fern", staff=[rivera], contacts=[("Fay", True)])
    jo, (kim, lee) = student(jefferson, "Jo", adult=True, contacts=[("Kim", True), ("Lee", False)])
    ada, _ = student(adams, "Ada")
    pat, _ = student(polk, "Pat")
    xia, _ = student(hilltop, "Xia")
    quinn, (quade,) = student(program, "Quinn", staff=[staff], contacts=[("Quade", True)])
    service.fence_subject("req-fern", "student", school["school"], fern)
    service.fence_subject("req-adams", "tenant", adams, adams)  # then active again: the fence alone refuses
    session.execute(update(Tenant).where(Tenant.id == adams).values(status="active"))
    session.execute(update(Tenant).where(Tenant.id == polk).values(status="terminated"))  # inactive, no fence
    session.commit()

    def share(auth, student_id, contact_ids=(), tenant_ids=()):
        return {"auth": auth, "student_id": student_id, "contact_ids": list(contact_ids), "tenant_ids": list(tenant_ids)}

    requests = [
        share(rivera, diego, [rosa], [program, "no-such-tenant", ""]),      # ok, with a program
        share(okafor, diego, [rosa]),                                       # student_not_found: not served
        share(lincoln_admin, lena),                                         # ok
        share(lincoln_admin, jo, [kim]),                                    # student_not_found: sister school
        share(district_admin, jo, [jo, kim], [other_program, program]),     # ok: adult, self first
        share(district_admin, jo, [lee]),                                   # contact_forbidden: not authorised
        share(district_admin, ada),                                         # subject_fenced: school fence (asked after)
        share(district_admin, pat),                                         # subject_fenced: school inactive
        share(adams_admin, ada),                                            # subject_fenced: own school's fence
        share(polk_admin, pat),                                             # subject_fenced: own school inactive
        share(rivera, fern, [fay]),                                         # subject_fenced: the student's fence
        share(district_admin, fern),                                        # subject_fenced before anything else
        share(okafor, fern),                                                # student_not_found: not served, before the fence
        share(rivera, "no-such-student"),                                   # student_not_found
        share(district_admin, xia),                                         # student_not_found: another district
        share(staff, quinn, [quade], [program]),                            # ok: program staff serving
        share(program_admin, quinn, [quade]),                               # ok
        share(staff, diego, [rosa]),                                        # student_not_found: a school's student
        share(op, diego, [rosa]),                                           # student_forbidden: role
        share(AuthContext(user_id="x", tenant_id=school["school"], role=Role.AUDITOR).to_dict(), diego),
        {**share(rivera, diego), "auth": {}},                               # not_authenticated
        {**share(rivera, diego), "auth": {"user_id": "u", "role": "wizard"}},  # not_authenticated: unknown role
        {**share(rivera, diego), "contact_ids": "x"},                       # invalid_input
        share(rivera, diego, ["c"] * 51),                                   # invalid_input: too many
        {**share(rivera, diego), "tenant_ids": None},                       # invalid_input
        {"auth": rivera, "student_id": diego, "contact_ids": [rosa]},       # ok: tenant_ids left out
        share(rivera, diego, [diego]),                                      # contact_forbidden: a minor
        share(rivera, diego, [kim]),                                        # contact_forbidden: Jo's contact
        share(jefferson_admin, jo, [kim, rivera["user_id"]]),               # contact_forbidden: no contact at all
        share(jefferson_admin, jo, [jo]),                                   # ok: adult student alone
        share(district_admin, diego, [rosa], [program]),                    # ok: a second district admin share
        share(rivera, diego, [rosa], [program, "no-such-tenant", ""]),      # ok: the first again
    ]
    expected = _one_by_one(service, requests)
    codes = [deserialize(a["error"]).code for a in expected if "error" in a]
    assert sum("context" in a for a in expected) == 9
    assert {code: codes.count(code) for code in set(codes)} == {
        "student_forbidden": 2, "student_not_found": 6, "subject_fenced": 6, "contact_forbidden": 4,
        "not_authenticated": 2, "invalid_input": 3}
    assert list(expected[4]["context"]["tenants"]) == sorted([other_program, program])

    answers: list = []
    sent = statements_of(session, lambda: answers.extend(service.share_contexts(requests)))
    assert answers == expected
    # One statement for the batch; one more for the district admins' students' schools' fences.
    assert len(sent) == 2, "\n\n".join(sent)
    without_district_admins = [r for r in requests if r["auth"] is not district_admin]
    answers = []
    assert len(statements_of(session, lambda: answers.extend(service.share_contexts(without_district_admins)))) == 1
    assert answers == _one_by_one(service, without_district_admins)
    # Adams' fence was read above for its own admin's share; asked for the district admin's alone:
    answers = []
    district_only = [share(district_admin, ada), share(district_admin, jo, [kim]), share(district_admin, pat)]
    assert len(statements_of(session, lambda: answers.extend(service.share_contexts(district_only)))) == 2
    assert answers == _one_by_one(service, district_only)
    assert [deserialize(a["error"]).code if "error" in a else "ok" for a in answers] == [
        "subject_fenced", "ok", "subject_fenced"]
    # Two shares whose students (and callers) are the same read them once, and agree.
    twins = [share(rivera, diego, [rosa]), share(rivera, diego, [])]
    assert service.share_contexts(twins) == _one_by_one(service, twins)
    # A batch whose other shares are refused before anything is read is checked as one share.
    answers = []
    lone = [share(op, diego), share(rivera, diego, [rosa], [program])]
    assert len(statements_of(session, lambda: answers.extend(service.share_contexts(lone)))) == 2
    assert answers == _one_by_one(service, lone)


def _sessions_ended(session) -> list[dict]:
    """The ``sessions_ended`` events staged in identity's outbox, oldest first."""
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.event_type == "sessions_ended")
                           .order_by(OutboxMessage.created_at)).all()
    return [row.payload for row in rows]


def test_every_way_a_session_ends_tells_the_gateways(service, school, session, sent):
    """Gateways keep a session check for seconds (gateway.sessions); each revocation stages
    ``sessions_ended`` in the same transaction, so none of them outlives it there."""
    rivera, okafor, admin = school["rivera"], school["okafor"], school["admin"]
    assert _sessions_ended(session) == []
    token = service.login({"email": "rivera@lincoln.example", "password": PASSWORD}, "127.0.0.1")["token"]
    rivera_session = service.authenticate(token)["session_id"]
    service.logout(token)
    assert _sessions_ended(session)[-1] == {"session_ids": [rivera_session], "user_ids": [], "tenant_ids": [],
                                           "reason": "logout"}
    service.logout(token)  # already ended: nothing more to say
    assert len(_sessions_ended(session)) == 1

    service.login({"email": "rivera@lincoln.example", "password": PASSWORD}, "127.0.0.1")  # another device
    service.change_password(rivera, {"current_password": PASSWORD, "new_password": "another passphrase 27"})
    assert _sessions_ended(session)[-1] == {"session_ids": [], "user_ids": [rivera["user_id"]], "tenant_ids": [],
                                           "reason": "password_changed"}
    service.request_password_reset({"email": "rivera@lincoln.example"})
    service.send_mail()
    # The reset link (earlier access notices to the admins may be sent after it).
    [text] = [text for to, subject, text in sent if "token=" in text and to == "rivera@lincoln.example"]
    reset = text.split("token=", 1)[1].split()[0]
    service.complete_password_reset({"token": reset, "new_password": "a third passphrase 28"})
    assert _sessions_ended(session)[-1]["reason"] == "password_reset"

    service.update_user(admin, okafor["user_id"], {"role": "school_admin"})
    assert _sessions_ended(session)[-1] == {"session_ids": [], "user_ids": [okafor["user_id"]], "tenant_ids": [],
                                           "reason": "role_changed"}
    service.login({"email": "okafor@lincoln.example", "password": PASSWORD}, "127.0.0.1")
    service.update_user(admin, okafor["user_id"], {"is_active": False})
    assert _sessions_ended(session)[-1]["user_ids"] == [okafor["user_id"]]
    assert _sessions_ended(session)[-1]["reason"] == "disabled"

    service.fence_subject("77777777-7777-4777-8777-777777777777", "tenant", school["school"], school["school"])
    assert _sessions_ended(session)[-1] == {"session_ids": [], "user_ids": [], "tenant_ids": [school["school"]],
                                           "reason": "tenant_terminated"}


def test_authenticate_says_when_the_session_ends_unused(service, school, patch_settings):
    patch_settings(session_idle_seconds=600)
    token = service.login({"email": "rivera@lincoln.example", "password": PASSWORD}, "127.0.0.1")["token"]
    answer = service.authenticate(token)
    from datetime import datetime
    left = datetime.fromisoformat(answer["session_valid_until"]) - utcnow()
    assert timedelta(seconds=590) < left <= timedelta(seconds=600)  # the idle end comes before the 12 h one


def test_session_notices_go_a_minute_after_publishing_or_with_the_people_they_name(service, school, session):
    rivera, okafor = school["rivera"]["user_id"], school["okafor"]["user_id"]
    accounts.announce_sessions_ended(session, "disabled", user_ids=[rivera])
    accounts.announce_sessions_ended(session, "disabled", user_ids=[okafor])
    session.commit()
    assert accounts.forget_session_notices(session, utcnow()) == 0  # not yet published: kept
    session.execute(update(OutboxMessage).where(OutboxMessage.event_type == "sessions_ended")
                    .values(published_at=utcnow() - timedelta(minutes=2)))
    assert accounts.forget_session_notices(session, naming=[rivera]) == 1
    assert [p["user_ids"] for p in _sessions_ended(session)] == [[okafor]]
    assert accounts.forget_session_notices(session, utcnow() - timedelta(minutes=3)) == 0
    service.forget_session_notices()  # the minute timer
    assert _sessions_ended(session) == []
