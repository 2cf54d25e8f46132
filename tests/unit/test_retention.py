"""Retention's logic with nameko's worker_factory: a real (SQLite) database, identity mocked.

Covers the state machine (fence, FERPA guard, dispatch, re-send, completion),
idempotent confirmations, the record's privacy, and the audit chain.
"""
import uuid
from datetime import datetime, timedelta
from unittest.mock import ANY

import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker

from services.retention import audit
from services.retention.schemas import check_note
from marshmallow import ValidationError
from services.retention.models import AuditEntry, Base, DeletionRequest, OutboxMessage
from services.retention.service import RetentionService
from services.directory.models import Base as DirectoryBase, DeletionReceipt as DirectoryReceipt
from services.directory.models import OutboxMessage as DirectoryOutbox
from weintervene.contracts import DATA_SERVICES, DELETION_REQUESTED, DeletionRequested
from tests.support.databases import migrated_session
from weintervene.db import Database, make_engine, migrate, utcnow
from weintervene.deletion import DeletionParticipant, completion_payload
from weintervene.errors import BadRequest, Conflict, Forbidden, NotFound, Unavailable
from weintervene.messaging import PublishOutcome


@pytest.fixture
def session(tmp_path):
    with migrated_session(tmp_path, "retention") as db:
        yield db


SCHOOL = str(uuid.uuid4())
ADMIN = {"user_id": str(uuid.uuid4()), "tenant_id": SCHOOL, "role": "school_admin"}
VERIFIER = str(uuid.uuid4())
AUDITOR = {"user_id": str(uuid.uuid4()), "tenant_id": str(uuid.uuid4()), "role": "auditor"}
OPERATOR = {"user_id": str(uuid.uuid4()), "tenant_id": str(uuid.uuid4()), "role": "operator"}


@pytest.fixture
def service(session):
    svc = worker_factory(RetentionService, db=session)
    svc.identity_rpc.check_student_access.side_effect = lambda auth, sid: {
        "student_id": sid, "tenant_id": SCHOOL, "district_id": None, "is_adult": False, "first_name": "Ana",
    }
    svc.identity_rpc.user_info.side_effect = lambda uid: {
        "id": uid, "tenant_id": SCHOOL, "display_name": "V", "email": "v@x.org", "role": "teacher",
    }
    svc.identity_rpc.fence_subject.return_value = {"fenced": True}
    svc.identity_rpc.names_for_audit.return_value = {"users": {}, "tenants": {}}
    svc.events.publish_many.side_effect = broker_confirming_everything
    return svc


def broker_confirming_everything(messages):
    outcome = PublishOutcome()
    outcome.confirmed = {message_id for _event_type, _payload, message_id in messages}
    return outcome


def opt_out(student_id=None, **extra):
    return {
        "scope": "student", "subject_id": student_id or str(uuid.uuid4()), "reason": "parent_opt_out",
        "verification": {"method": "signed_letter_on_file", "verified_by": VERIFIER}, **extra,
    }


def published(service):
    """The deletion_requested payloads published so far, checked against the contract."""
    out = []
    for call in service.events.publish_many.call_args_list:
        for event_type, payload, _message_id in call.args[0]:
            if event_type == DELETION_REQUESTED:
                out.append(DeletionRequested().load(payload))
    return out


def confirm(service, request_id, name, counts=None):
    payload = completion_payload(name, request_id, counts if counts is not None else {"rows": 1})
    return getattr(service, f"on_{name}_deletion_completed")(payload)


def test_opt_out_fences_then_dispatches_to_every_service(service, session):
    student = str(uuid.uuid4())
    result = service.request_deletion(ADMIN, opt_out(student))
    assert result["status"] == "dispatched"
    service.identity_rpc.fence_subject.assert_called_once_with(result["id"], "student", SCHOOL, student, ANY)
    [message] = published(service)
    assert str(message["subject_id"]) == student and message["services"] == [] and message["attempt"] == 1
    assert result["missing_services"] == list(DATA_SERVICES)
    # The record names nobody: the subject is an HMAC (with its key id), not the id.
    key_id, _, digest = result["subject_ref"].partition(":")
    assert student not in str(result) and key_id == "0" and len(digest) == 64


def test_identity_unreachable_keeps_the_request_pending_and_says_why(service, session, patch_settings):
    patch_settings(deletion_fence_retry_seconds=0)
    service.identity_rpc.fence_subject.side_effect = TimeoutError("no answer")
    result = service.request_deletion(ADMIN, opt_out())
    assert result["status"] == "pending"
    assert "fence" in result["status_reason"] and "TimeoutError" in result["status_reason"]
    assert published(service) == []
    service.identity_rpc.fence_subject.side_effect = None
    service.sweep()
    assert service.get_deletion_request(AUDITOR, result["id"])["status"] == "dispatched"
    assert len(published(service)) == 1


def test_open_inspection_makes_the_deletion_wait_until_closed(service, session):
    student = str(uuid.uuid4())
    inspection = service.open_inspection(ADMIN, {"student_id": student, "kind": "inspection"})
    result = service.request_deletion(ADMIN, opt_out(student))
    assert result["status"] == "waiting_ferpa_inspection"
    assert inspection["id"] in result["status_reason"] and "FERPA" in result["status_reason"]
    service.sweep()
    assert published(service) == []
    service.close_inspection(ADMIN, inspection["id"], {"outcome": "provided"})
    assert service.get_deletion_request(AUDITOR, result["id"])["status"] == "dispatched"
    assert len(published(service)) == 1


def test_complete_only_when_every_service_confirmed_and_then_forget_the_id(service, session):
    student = str(uuid.uuid4())
    inspection = service.open_inspection(ADMIN, {"student_id": student, "kind": "amendment"})
    result = service.request_deletion(ADMIN, opt_out(student))
    for name in DATA_SERVICES[:-1]:
        assert confirm(service, result["id"], name, {"rows": 2}) == "recorded"
        assert service.get_deletion_request(AUDITOR, result["id"])["status"] == "dispatched"
    assert confirm(service, result["id"], DATA_SERVICES[-1], {"rows": 3}) == "completed"
    done = service.get_deletion_request(AUDITOR, result["id"])
    assert done["status"] == "completed" and done["missing_services"] == []
    assert {c["service"]: c["counts"] for c in done["confirmations"]}[DATA_SERVICES[-1]] == {"rows": 3}
    session.expire_all()
    assert session.get(DeletionRequest, result["id"]).subject_id is None
    assert not [m for m in session.scalars(select(OutboxMessage)) if student in str(m.payload)]
    assert service.list_inspections(ADMIN)["items"][0]["student_id"] is None
    assert inspection["id"]


def test_repeated_confirmation_is_harmless_and_the_first_counts_stand(service):
    result = service.request_deletion(ADMIN, opt_out())
    confirm(service, result["id"], "identity", {"student": 1})
    assert confirm(service, result["id"], "identity", {"student": 0}) == "duplicate"
    [c] = service.get_deletion_request(AUDITOR, result["id"])["confirmations"]
    assert c["counts"] == {"student": 1}
    assert confirm(service, str(uuid.uuid4()), "identity") == "unknown"


def test_a_later_confirmation_counting_more_updates_the_record_and_the_chain_says_so(service, session):
    """Confirmations carry each service's receipt totals (weintervene.deletion): a run that
    deleted more after the first confirmation was recorded must not be lost to auditors."""
    result = service.request_deletion(ADMIN, opt_out())
    confirm(service, result["id"], "referrals", {"shares": 2, "saved_lists": 0})
    assert confirm(service, result["id"], "referrals", {"shares": 2, "saved_lists": 0}) == "duplicate"
    assert confirm(service, result["id"], "referrals", {"shares": 3, "saved_lists": 0}) == "updated"
    assert confirm(service, result["id"], "referrals", {"shares": 1, "saved_lists": 5}) == "duplicate"
    [c] = service.get_deletion_request(AUDITOR, result["id"])["confirmations"]
    assert c["counts"] == {"shares": 3, "saved_lists": 0}
    from services.retention.models import AuditEntry
    events = session.scalars(select(AuditEntry).where(AuditEntry.request_id == result["id"],
                                                      AuditEntry.event == "confirmation_updated")).all()
    assert [e.data["counts_before"] for e in events] == [{"shares": 2, "saved_lists": 0}]
    assert service.verify_audit(AUDITOR)["ok"] is True
    assert service.on_identity_deletion_completed({"request_id": "x", "oops": 1}) == "rejected"
    assert service.on_analytics_deletion_completed(
        completion_payload("identity", result["id"], {})) == "rejected"  # on the wrong queue


def test_repeating_an_open_request_returns_the_same_request(service):
    student = str(uuid.uuid4())
    first = service.request_deletion(ADMIN, opt_out(student))
    again = service.request_deletion(ADMIN, opt_out(student))
    assert again["id"] == first["id"] and len(published(service)) == 1


def test_resend_targets_only_services_that_have_not_confirmed(service, session, patch_settings):
    result = service.request_deletion(ADMIN, opt_out())
    confirm(service, result["id"], "identity")
    confirm(service, result["id"], "referrals")
    service.sweep()  # not yet due
    assert len(published(service)) == 1
    patch_settings(deletion_resend_seconds=0)
    service.sweep()
    resent = published(service)[-1]
    assert resent["attempt"] == 2 and sorted(resent["services"]) == sorted({"directory", "analytics"})
    got = service.get_deletion_request(AUDITOR, result["id"])
    assert got["attempt"] == 2 and sorted(got["missing_services"]) == ["analytics", "directory"]


def test_student_opt_out_needs_verification_and_a_clean_note(service):
    with pytest.raises(BadRequest) as exc:
        service.request_deletion(ADMIN, {"scope": "student", "subject_id": str(uuid.uuid4()), "reason": "parent_opt_out"})
    assert "verification" in exc.value.details
    for note in ("call dad at 555 123 4567", "from maria@example.org"):
        with pytest.raises(BadRequest) as exc:
            service.request_deletion(ADMIN, opt_out(note=note))
        assert "note" in exc.value.details
    with pytest.raises(BadRequest):
        service.request_deletion(ADMIN, opt_out(note="x" * 201))
    assert service.request_deletion(ADMIN, opt_out(note="Letter received at front office"))["note"]


@pytest.mark.parametrize("note", [
    "letter received 2026-12-03", "signed letter dated 12/03/2026, filed", "Brief vom 3.12.2026",
    "received 2026-12-03 and 2026-12-04",
])
def test_an_opt_out_note_may_carry_a_date(note):
    check_note(note)


@pytest.mark.parametrize("note", [
    "call 555-123-4567", "letter 2026-12-03, call 555 123 4567", "(202) 555-0143", "+1 202 555 0143",
    "2026-13-45 is no date: 202613-45", "20261203",
])
def test_an_opt_out_note_refuses_phone_like_numbers_even_beside_a_date(note):
    with pytest.raises(ValidationError):
        check_note(note)


def test_the_auditor_sees_who_asked_and_who_verified_by_name_and_role(service):
    request = service.request_deletion(ADMIN, opt_out(note="letter received 2026-12-03"))
    requester, verifier = request["requested_by"], request["verified_by"]
    service.identity_rpc.names_for_audit.return_value = {
        "users": {requester: {"display_name": "Ms. Patel", "role": "school_admin"},
                  verifier: {"display_name": "Mr. Okafor", "role": "teacher"}},
        "tenants": {SCHOOL: "Lincoln Middle"}}
    shown = service.get_deletion_request(AUDITOR, request["id"])
    assert (shown["requested_by_name"], shown["requested_by_role"]) == ("Ms. Patel", "school_admin")
    assert (shown["verified_by_name"], shown["verified_by_role"]) == ("Mr. Okafor", "teacher")
    assert shown["tenant_name"] == "Lincoln Middle" and shown["verification_method"] and shown["names_available"]
    listed = service.list_deletion_requests(AUDITOR, {})["items"]
    assert [(r["requested_by_name"], r["tenant_name"]) for r in listed] == [("Ms. Patel", "Lincoln Middle")]
    service.identity_rpc.names_for_audit.assert_called_with(sorted({requester, verifier}), [SCHOOL])
    csv_text = service.deletion_requests_csv(AUDITOR, {})
    assert csv_text.splitlines()[1].endswith("Lincoln Middle,Ms. Patel,school_admin,Mr. Okafor,teacher")


def test_the_audit_pages_still_answer_when_identity_does_not(service):
    request = service.request_deletion(ADMIN, opt_out())
    service.identity_rpc.names_for_audit.side_effect = Unavailable("identity is restarting")
    shown = service.get_deletion_request(AUDITOR, request["id"])
    assert shown["names_available"] is False and shown["requested_by"] == request["requested_by"]
    assert shown["requested_by_name"] is None and shown["tenant_name"] is None


def test_verifier_must_be_staff_of_the_school(service):
    service.identity_rpc.user_info.side_effect = lambda uid: {"id": uid, "tenant_id": str(uuid.uuid4()), "role": "teacher"}
    with pytest.raises(Forbidden):
        service.request_deletion(ADMIN, opt_out())


def test_teachers_cannot_request_or_read_deletions(service):
    teacher = {**ADMIN, "role": "teacher"}
    with pytest.raises(Forbidden):
        service.request_deletion(teacher, opt_out())
    with pytest.raises(Forbidden):
        service.list_deletion_requests(teacher, {})


def test_auditor_filters_pending_overdue_and_csv(service, session):
    done = service.request_deletion(ADMIN, opt_out())
    for name in DATA_SERVICES:
        confirm(service, done["id"], name)
    late = service.request_deletion(ADMIN, opt_out())
    row = session.get(DeletionRequest, late["id"])
    row.due_at = utcnow() - timedelta(hours=1)
    session.commit()
    assert [r["id"] for r in service.list_deletion_requests(AUDITOR, {"overdue": True})["items"]] == [late["id"]]
    assert [r["id"] for r in service.list_deletion_requests(AUDITOR, {"status": "completed"})["items"]] == [done["id"]]
    assert service.list_deletion_requests(AUDITOR, {"tenant_id": SCHOOL, "scope": "student"})["total"] == 2
    assert service.list_deletion_requests(AUDITOR, {"tenant_id": str(uuid.uuid4())})["total"] == 0
    today = utcnow().date().isoformat()
    assert service.list_deletion_requests(AUDITOR, {"from": today, "to": today})["total"] == 2
    csv_text = service.deletion_requests_csv(AUDITOR, {"status": "open"})
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("id,scope,tenant_id,subject_ref,status") and len(lines) == 2
    assert late["id"] in lines[1] and "True" in lines[1]
    with pytest.raises(BadRequest):
        service.list_deletion_requests(AUDITOR, {"status": "lost"})


def test_policies_become_policy_requests_without_a_fence(service, session):
    policy = service.create_policy(ADMIN, {"record_kind": "login_records", "max_age_days": 365})
    assert policy["tenant_id"] == SCHOOL
    with pytest.raises(Forbidden):
        service.create_policy(ADMIN, {"tenant_id": str(uuid.uuid4()), "record_kind": "login_records", "max_age_days": 9})
    [request_id] = service.run_due_policies()
    assert service.run_due_policies() == []  # once per interval
    [message] = published(service)
    assert message["scope"] == "policy" and message["record_kind"] == "login_records"
    assert abs((utcnow() - message["older_than"]) - timedelta(days=365)) < timedelta(minutes=1)
    service.identity_rpc.fence_subject.assert_not_called()
    assert service.get_deletion_request(AUDITOR, request_id)["status"] == "dispatched"


def test_a_left_students_policy_deletes_each_left_student_with_a_student_request(service, session):
    left = [str(uuid.uuid4()), str(uuid.uuid4())]
    service.identity_rpc.left_students.return_value = [{"id": s, "tenant_id": SCHOOL} for s in left]
    service.create_policy(ADMIN, {"record_kind": "left_students", "max_age_days": 30})
    ids = service.run_due_policies()
    assert len(ids) == 2
    [(tenant_id, older_than)] = [c.args for c in service.identity_rpc.left_students.call_args_list]
    assert tenant_id == SCHOOL
    assert abs((utcnow() - datetime.fromisoformat(older_than)) - timedelta(days=30)) < timedelta(minutes=1)
    # Each is an ordinary student deletion: fenced first, then sent to every service...
    messages = published(service)
    assert sorted(str(m["subject_id"]) for m in messages) == sorted(left)
    assert {m["scope"] for m in messages} == {"student"} and {m["record_kind"] for m in messages} == {"left_students"}
    assert service.identity_rpc.fence_subject.call_count == 2
    # ...and the record says which policy asked, and why.
    record = service.get_deletion_request(AUDITOR, ids[0])
    assert (record["reason"], record["requested_by"], record["status"]) == ("retention_policy", "policy", "dispatched")
    assert record["note"] == "Left the roster more than 30 days ago (retention policy)"
    # A student whose request is still open is not asked for twice.
    session.execute(text("UPDATE retention_policy SET last_applied_at = NULL"))
    session.commit()
    assert service.run_due_policies() == []


def test_a_left_students_policy_waits_while_identity_does_not_answer(service, session):
    service.identity_rpc.left_students.side_effect = RuntimeError("identity is down")
    service.create_policy(ADMIN, {"record_kind": "left_students", "max_age_days": 30})
    assert service.run_due_policies() == []
    service.identity_rpc.left_students.side_effect = None
    service.identity_rpc.left_students.return_value = [{"id": str(uuid.uuid4()), "tenant_id": SCHOOL}]
    assert len(service.run_due_policies()) == 1  # still due: the next run takes it


def test_audit_chain_verifies_and_an_edited_entry_is_found(service, session):
    for _ in range(3):
        service.request_deletion(ADMIN, opt_out())
    report = service.verify_audit(AUDITOR)
    assert report["ok"] and report["entries"] >= 9 and report["first_broken"] is None
    # The table refuses edits; an attacker would have to drop the trigger first.
    with pytest.raises(Exception):
        session.execute(text("UPDATE audit_entry SET event = 'x' WHERE seq = 4"))
        session.commit()
    session.rollback()
    session.execute(text("DROP TRIGGER audit_entry_no_update"))
    session.execute(text("UPDATE audit_entry SET data = '{\"scope\": \"tenant\"}' WHERE seq = 4"))
    session.commit()
    session.expire_all()
    report = service.verify_audit(AUDITOR)
    assert not report["ok"] and report["first_broken"]["seq"] == 4 and "edited" in report["first_broken"]["reason"]
    with pytest.raises(Forbidden):
        service.verify_audit(ADMIN)


def test_a_removed_entry_breaks_the_chain(session):
    for n in range(3):
        audit.append(session, "x", None, {"n": n})
    session.commit()
    session.execute(text("DROP TRIGGER audit_entry_no_delete"))
    session.execute(text("DELETE FROM audit_entry WHERE seq = 2"))
    session.commit()
    report = audit.verify_chain(session)
    assert report["first_broken"]["seq"] == 3 and "missing" in report["first_broken"]["reason"]


@pytest.fixture
def participant_session(tmp_path):
    """A data service's database (directory's: its outbox and deletion receipts)."""
    with migrated_session(tmp_path, "directory") as db:
        yield db


class Participant(DeletionParticipant):
    """Stands in for a data service's deletion handler (on directory's schema)."""

    name = "directory"
    db = Database("directory", DirectoryBase)
    outbox_model = DirectoryOutbox
    receipt_model = DirectoryReceipt

    def delete_for(self, request):
        return {"things": 1}


def test_participant_ignores_a_resend_addressed_to_other_services(participant_session):
    worker = worker_factory(Participant, db=participant_session)
    base = {"request_id": str(uuid.uuid4()), "scope": "tenant", "tenant_id": SCHOOL, "subject_id": SCHOOL,
            "attempt": 2}
    worker.on_deletion_requested({**base, "services": ["identity"]})
    assert participant_session.scalars(select(DirectoryOutbox)).all() == []
    worker.on_deletion_requested({**base, "services": ["directory", "analytics"]})
    [message] = participant_session.scalars(select(DirectoryOutbox)).all()
    assert message.payload["service"] == "directory" and message.payload["counts"] == {"things": 1}


class PostgreSQLError(Exception):
    """psycopg2's shape of a PostgreSQL error: the SQLSTATE as ``pgcode``."""

    def __init__(self, pgcode: str, message: str):
        super().__init__(message)
        self.pgcode = pgcode


class DeadlockOnce(Participant):
    tries = 0

    def delete_for(self, request):
        DeadlockOnce.tries += 1
        if DeadlockOnce.tries == 1:
            raise DBAPIError("DELETE FROM delivery", {}, PostgreSQLError("40P01", "deadlock detected"))
        return {"things": 1}


def test_participant_runs_a_deadlocked_deletion_again_and_confirms_once(participant_session):
    worker = worker_factory(DeadlockOnce, db=participant_session)
    request_id = str(uuid.uuid4())
    worker.on_deletion_requested({"request_id": request_id, "scope": "tenant", "tenant_id": SCHOOL,
                                  "subject_id": SCHOOL, "attempt": 1})
    assert DeadlockOnce.tries == 2
    [message] = participant_session.scalars(select(DirectoryOutbox)).all()
    assert message.payload["counts"] == {"things": 1}
    # The attempt that deadlocked left nothing in the receipt either: one run counted.
    receipt = participant_session.get(DirectoryReceipt, request_id)
    assert receipt.runs == 1 and receipt.counts == {"things": 1}


def test_participant_does_not_retry_other_database_errors(participant_session):
    class Broken(Participant):
        def delete_for(self, request):
            raise DBAPIError("DELETE", {}, PostgreSQLError("23503", "foreign key violation"))

    worker = worker_factory(Broken, db=participant_session)
    with pytest.raises(DBAPIError):
        worker.on_deletion_requested({"request_id": str(uuid.uuid4()), "scope": "tenant", "tenant_id": SCHOOL,
                                      "subject_id": SCHOOL, "attempt": 1})
    assert participant_session.scalars(select(DirectoryOutbox)).all() == []
    assert participant_session.scalars(select(DirectoryReceipt)).all() == []


def test_audit_entries_carry_no_subject_id(service, session):
    student = str(uuid.uuid4())
    result = service.request_deletion(ADMIN, opt_out(student))
    for name in DATA_SERVICES:
        confirm(service, result["id"], name)
    entries = session.scalars(select(AuditEntry)).all()
    assert entries and not [e for e in entries if student in str(e.data)]


DISTRICT = str(uuid.uuid4())


def tenant_facts(service, schools):
    service.identity_rpc.tenant_info.side_effect = lambda tid: {"id": tid, "kind": "district", "parent_id": None}
    service.identity_rpc.list_tenants_in.side_effect = lambda tid: [{"id": tid}] + [{"id": s} for s in schools]


def test_termination_covers_the_district_and_its_schools_and_checks_the_export(service, session):
    school_a, school_b = str(uuid.uuid4()), str(uuid.uuid4())
    tenant_facts(service, [school_a, school_b])
    with pytest.raises(Forbidden):
        service.request_deletion(ADMIN, {"scope": "tenant", "subject_id": DISTRICT, "reason": "contract_ended"})
    with pytest.raises(NotFound):
        service.request_deletion(OPERATOR, {"scope": "tenant", "subject_id": DISTRICT, "reason": "contract_ended",
                                            "export_id": str(uuid.uuid4())})
    district_admin = {"user_id": str(uuid.uuid4()), "tenant_id": DISTRICT, "role": "district_admin"}
    export = service.create_export(district_admin, {"tenant_id": DISTRICT})
    assert sorted(export["tenant_ids"]) == sorted([DISTRICT, school_a, school_b])
    result = service.request_deletion(OPERATOR, {"scope": "tenant", "subject_id": DISTRICT,
                                                 "reason": "contract_ended", "export_id": export["id"]})
    assert result["status"] == "dispatched" and result["export_id"] == export["id"]
    [message] = published(service)
    assert sorted(map(str, message["tenant_ids"])) == sorted([DISTRICT, school_a, school_b])
    service.identity_rpc.fence_subject.assert_called_once_with(result["id"], "tenant", DISTRICT, DISTRICT, ANY)
    # Once terminated, the export cannot be downloaded any more.
    with pytest.raises(NotFound):
        service.export_data(district_admin, export["id"])


def test_export_gathers_every_service_and_only_for_its_owner(service):
    service.cluster_rpc.identity.export_tenant.call_async.return_value.result.return_value = {"user_account": [{"id": 1}]}
    export = service.create_export(ADMIN, {"tenant_id": SCHOOL})
    data = service.export_data(ADMIN, export["id"])
    assert set(data["services"]) == set(DATA_SERVICES)
    assert data["manifest"]["tables"]["identity"] == {"user_account": 1}
    service.cluster_rpc.identity.export_tenant.call_async.assert_called_with({"tenant_ids": [SCHOOL]})
    with pytest.raises(NotFound):
        service.export_data({**ADMIN, "tenant_id": str(uuid.uuid4())}, export["id"])
    with pytest.raises(NotFound):
        service.create_export(ADMIN, {"tenant_id": str(uuid.uuid4())})
    with pytest.raises(Forbidden):
        service.create_export(OPERATOR, {"tenant_id": SCHOOL})


def test_an_unanswering_service_means_no_export(service):
    service.cluster_rpc.analytics.export_tenant.call_async.return_value.result.side_effect = TimeoutError()
    export = service.create_export(ADMIN, {"tenant_id": SCHOOL})
    with pytest.raises(Unavailable) as exc:
        service.export_data(ADMIN, export["id"])
    assert exc.value.code == "export_incomplete"


def test_inspection_records_only_while_open(service):
    student = str(uuid.uuid4())
    inspection = service.open_inspection(ADMIN, {"student_id": student})
    service.inspection_data(ADMIN, inspection["id"])
    service.cluster_rpc.referrals.export_student.call_async.assert_called_with(
        {"tenant_ids": [SCHOOL], "student_id": student})
    service.close_inspection(ADMIN, inspection["id"], {"outcome": "provided"})
    with pytest.raises(Conflict):
        service.inspection_data(ADMIN, inspection["id"])
    with pytest.raises(Conflict):
        service.close_inspection(ADMIN, inspection["id"], {"outcome": "provided"})
    amendment = service.open_inspection(ADMIN, {"student_id": student, "kind": "amendment", "note": "grade wrong"})
    closed = service.close_inspection(ADMIN, amendment["id"], {"outcome": "refused"})
    assert closed["outcome"] == "refused" and closed["status"] == "closed"
    with pytest.raises(NotFound):
        service.close_inspection({**ADMIN, "tenant_id": str(uuid.uuid4())}, amendment["id"], {"outcome": "amended"})


def test_user_removal_is_the_users_own_admins_or_for_platform_accounts_an_operators(service):
    service.identity_rpc.user_info.side_effect = lambda uid: {"id": uid, "tenant_id": str(uuid.uuid4()), "role": "teacher"}
    service.identity_rpc.tenant_info.side_effect = lambda tid: {"id": tid, "kind": "school", "parent_id": None,
                                                                "district_id": None}
    with pytest.raises(Forbidden):
        service.request_deletion(ADMIN, {"scope": "user", "subject_id": str(uuid.uuid4()), "reason": "account_closed"})
    # Nor may an operator remove a tenant's user (issue 16: the tenant's administrators do)...
    with pytest.raises(Forbidden) as refused:
        service.request_deletion(OPERATOR, {"scope": "user", "subject_id": str(uuid.uuid4()), "reason": "account_closed"})
    assert refused.value.code == "tenant_user_not_operators"
    # ...while platform accounts (operators, auditors) are the operators' to remove.
    service.identity_rpc.user_info.side_effect = lambda uid: {"id": uid, "tenant_id": "platform-id", "role": "auditor"}
    service.identity_rpc.tenant_info.side_effect = lambda tid: {"id": tid, "kind": "platform", "parent_id": None,
                                                                "district_id": None}
    result = service.request_deletion(OPERATOR, {"scope": "user", "subject_id": str(uuid.uuid4()),
                                                 "reason": "account_closed"})
    assert result["status"] == "dispatched" and result["scope"] == "user"


def test_export_rows_follow_declared_ownership_without_secrets(tmp_path):
    from sqlalchemy import Column, ForeignKey, MetaData, String, Table, create_engine

    from weintervene.export import Via, build_archive, export_rows, ownership

    engine = create_engine(f"sqlite:///{tmp_path}/svc.db")
    metadata = MetaData()
    Table("user_account", metadata, Column("id", String, primary_key=True), Column("tenant_id", String),
          Column("email", String), Column("password_hash", String))
    # Kept by a value derived from the parent's (an upper-cased email stands for a hash).
    Table("attempt", metadata, Column("id", String, primary_key=True), Column("account_key", String),
          info=ownership(via=[Via("account_key", "user_account.email", transform=str.upper)]))
    Table("student", metadata, Column("id", String, primary_key=True), Column("tenant_id", String),
          info=ownership(student="id"))
    Table("share", metadata, Column("id", String, primary_key=True), Column("tenant_id", String),
          Column("student_id", String))
    # A child with a foreign key and no tenant column, and its own child.
    Table("status", metadata, Column("id", String, primary_key=True), Column("share_id", ForeignKey("share.id")))
    Table("note", metadata, Column("id", String, primary_key=True), Column("status_id", ForeignKey("status.id")))
    # A declared reference (no foreign key), and a reverse one that makes a cycle.
    Table("place", metadata, Column("id", String, primary_key=True), Column("owner_tenant_id", String),
          info=ownership(tenant="owner_tenant_id"))
    Table("room", metadata, Column("id", String, primary_key=True), Column("place_id", String),
          info=ownership(via=["place_id -> place.id", "id -> booking.room_id"]))
    Table("booking", metadata, Column("id", String, primary_key=True), Column("room_id", String),
          Column("share_id", String), info=ownership(via=["share_id -> share.id", "room_id -> room.id"]))
    Table("taxonomy", metadata, Column("id", String, primary_key=True))
    Table("outbox_message", metadata, Column("id", String, primary_key=True), Column("tenant_id", String))
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO user_account VALUES ('u1', 'A', 'a@x.org', 'argon'), ('u2', 'B', 'b@x.org', 'x')"))
        conn.execute(text("INSERT INTO attempt VALUES ('t1', 'A@X.ORG'), ('t2', 'B@X.ORG')"))
        conn.execute(text("INSERT INTO student VALUES ('s1', 'A'), ('s2', 'A')"))
        conn.execute(text("INSERT INTO share VALUES ('h1', 'A', 's1'), ('h2', 'A', 's2'), ('h3', 'B', 's1')"))
        conn.execute(text("INSERT INTO status VALUES ('c1', 'h1'), ('c2', 'h2'), ('c3', 'h3')"))
        conn.execute(text("INSERT INTO note VALUES ('n1', 'c1'), ('n3', 'c3')"))
        conn.execute(text("INSERT INTO place VALUES ('p1', 'A'), ('p2', 'B')"))
        conn.execute(text("INSERT INTO room VALUES ('r1', 'p1'), ('r2', 'p2'), ('r3', NULL), ('r4', NULL)"))
        conn.execute(text("INSERT INTO booking VALUES ('b1', 'r3', 'h1'), ('b2', 'r4', 'h3'), ('b3', 'r2', NULL)"))
        conn.execute(text("INSERT INTO taxonomy VALUES ('x')"))
        conn.execute(text("INSERT INTO outbox_message VALUES ('o1', 'A')"))
    with sessionmaker(engine)() as session:
        tenant = export_rows(session, ["A"], metadata=metadata)
        ids = {table: sorted(r["id"] for r in rows) for table, rows in tenant.items()}
        assert ids == {
            "user_account": ["u1"], "attempt": ["t1"], "student": ["s1", "s2"], "share": ["h1", "h2"],
            "status": ["c1", "c2"], "note": ["n1"], "place": ["p1"],
            # r1 through its place; r3 because the tenant's booking b1 is in it.
            "room": ["r1", "r3"], "booking": ["b1"],
        }
        assert tenant["user_account"] == [{"id": "u1", "tenant_id": "A", "email": "a@x.org"}]
        one = export_rows(session, ["A"], student_id="s1", metadata=metadata)
        assert {table: sorted(r["id"] for r in rows) for table, rows in one.items()} == {
            "student": ["s1"], "share": ["h1"], "status": ["c1"], "note": ["n1"], "booking": ["b1"], "room": ["r3"]}
        # Without declarations (the database reflected), tables with the column still come.
        reflected = export_rows(session, ["A"])
        assert sorted(r["id"] for r in reflected["share"]) == ["h1", "h2"] and "status" in reflected
    import io
    import zipfile

    archive = zipfile.ZipFile(io.BytesIO(build_archive({"tenant_id": "A"}, {"identity": tenant})))
    assert "identity/status.csv" in archive.namelist()
    assert archive.read("identity/user_account.csv").decode().splitlines() == ["email,id,tenant_id", "a@x.org,u1,A"]
    engine.dispose()


def test_a_termination_in_referrals_takes_every_row_of_the_tenant_and_nothing_of_another(tmp_path):
    """Referrals' tenant erasure selects by subqueries in SQL (not id lists): both
    tenants' shares with every child row and share event, and only one tenant's go."""
    from services.referrals import erasure
    from services.referrals.models import (
        Delivery, DeliveryAttempt, OutboxMessage as ReferralsOutbox, Referral, Share, ShareRecipient, StatusChange,
    )
    from weintervene.contracts import SHARE_RECORDED

    engine = make_engine(f"sqlite:///{tmp_path}/referrals.db")
    migrate("referrals", engine)
    db = sessionmaker(engine, expire_on_commit=False)()
    leaving, staying, district = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    for tenant in (leaving, staying):
        for _ in range(3):
            share = Share(tenant_id=tenant, district_id=district if tenant == leaving else None,
                          sharer_role="teacher", student_id=str(uuid.uuid4()), channel="email")
            db.add(share)
            db.flush()
            referral = Referral(share_id=share.id, tenant_id=tenant, service_id=str(uuid.uuid4()),
                                service_info={"name": "Club"})
            db.add_all([referral, ShareRecipient(share_id=share.id, contact_id=str(uuid.uuid4()))])
            db.flush()
            delivery = Delivery(share_id=share.id, referral_id=referral.id, channel="email", recipient_kind="contact")
            db.add_all([delivery, StatusChange(referral_id=referral.id, status="requested", changed_by_tenant_id=tenant)])
            db.flush()
            db.add(DeliveryAttempt(delivery_id=delivery.id, number=1))
            db.add(ReferralsOutbox(id=str(uuid.uuid4()), event_type=SHARE_RECORDED, payload={
                "event_id": share.id, "tenant_id": tenant, "district_id": district if tenant == leaving else None}))
    db.commit()
    models = (Share, Referral, ShareRecipient, Delivery, DeliveryAttempt, StatusChange, ReferralsOutbox)
    before = {m: db.scalar(select(func.count()).select_from(m)) for m in models}
    # The district is terminated: its school's rows (and events naming the district) go.
    counts = erasure.delete_for(db, {"scope": "tenant", "subject_id": district, "tenant_ids": [district, leaving]})
    db.commit()
    assert counts["shares"] == 3 and counts["share_events"] == 3
    for model in models:
        assert db.scalar(select(func.count()).select_from(model)) == before[model] // 2, model
    assert set(db.scalars(select(Share.tenant_id))) == {staying}
    assert set(db.scalars(select(Referral.tenant_id))) == {staying}
    assert {m.payload["tenant_id"] for m in db.scalars(select(ReferralsOutbox))} == {staying}
    # Repeating finds nothing.
    again = erasure.delete_for(db, {"scope": "tenant", "subject_id": district, "tenant_ids": [district, leaving]})
    assert again["shares"] == 0 and again["share_events"] == 0
    db.close()
    engine.dispose()
