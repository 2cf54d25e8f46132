"""Deletion receipts: every confirmation carries what a service deleted over every run of
a request, so a copy that runs again (redelivered after a broker restart, a re-send) and
finds nothing left never confirms zeros.

Referrals' real handler and ``delete_for`` (worker_factory, real SQLite session; identity
and directory are the referrals tests' in-memory fakes).
"""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from services.referrals.models import DeletionReceipt, OutboxMessage
from tests.unit.referrals_fixtures import (  # noqa: F401  (fixtures)
    MOTHER, SCHOOL, SERVICE, SERVICE_2, STUDENT, TEACHER_AUTH, db, directory, identity, make_session, svc,
)
from weintervene.contracts import DELETION_COMPLETED, DeletionCompleted, DeletionRequested
from weintervene.messaging import PublishOutcome


def broker_confirming_everything(messages):
    outcome = PublishOutcome()
    outcome.confirmed = {message_id for _event_type, _payload, message_id in messages}
    return outcome


@pytest.fixture
def referrals(svc):
    svc.events.publish_many.side_effect = broker_confirming_everything
    return svc


def share(svc, service_id=SERVICE):
    return svc.share(TEACHER_AUTH, {"student_id": STUDENT, "contact_ids": [MOTHER], "service_ids": [service_id],
                                    "channel": "email"})


def termination(request_id: str) -> dict:
    """The ``deletion_requested`` retention sends to end the school's contract."""
    return DeletionRequested().dump({"request_id": request_id, "scope": "tenant", "tenant_id": SCHOOL,
                                     "subject_id": SCHOOL, "tenant_ids": [SCHOOL]})


def confirmations(db) -> list[dict]:
    rows = db.scalars(select(OutboxMessage).where(OutboxMessage.event_type == DELETION_COMPLETED)
                      .order_by(OutboxMessage.created_at)).all()
    return [DeletionCompleted().load(row.payload) for row in rows]


def test_a_redelivered_request_confirms_what_the_first_run_deleted(referrals, db):
    share(referrals)
    share(referrals, SERVICE_2)
    request_id = str(uuid.uuid4())
    referrals.on_deletion_requested(termination(request_id))
    # The unacknowledged copy, redelivered after the first run committed: nothing is left.
    referrals.on_deletion_requested(termination(request_id))
    first, second = confirmations(db)
    assert first["counts"]["shares"] == 2
    assert second["counts"] == first["counts"]  # not {"shares": 0, ...}
    assert second["completed_at"] == first["completed_at"]  # when the deletion was done
    receipt = db.get(DeletionReceipt, request_id)
    assert receipt.runs == 2 and receipt.counts == first["counts"]


def test_a_later_run_that_deletes_more_adds_to_the_totals(referrals, db):
    share(referrals)
    share(referrals, SERVICE_2)
    request_id = str(uuid.uuid4())
    referrals.on_deletion_requested(termination(request_id))
    share(referrals)  # a share that got in between the runs
    referrals.on_deletion_requested(termination(request_id))
    referrals.on_deletion_requested(termination(request_id))
    first, second, third = confirmations(db)
    assert first["counts"]["shares"] == 2
    assert second["counts"]["shares"] == 3 and second["counts"]["share_events"] == 3
    assert third["counts"] == second["counts"]
    assert db.get(DeletionReceipt, request_id).runs == 3


def test_each_request_has_its_own_receipt(referrals, db):
    share(referrals)
    first_request, second_request = str(uuid.uuid4()), str(uuid.uuid4())
    referrals.on_deletion_requested(termination(first_request))
    share(referrals)
    referrals.on_deletion_requested(termination(second_request))
    by_request = {str(c["request_id"]): c["counts"]["shares"] for c in confirmations(db)}
    assert by_request == {first_request: 1, second_request: 1}
    receipts = db.scalars(select(DeletionReceipt)).all()
    # Nothing about the school or its students: the request id and counts only.
    assert all(SCHOOL not in str(vars(r)) and STUDENT not in str(vars(r)) for r in receipts)
