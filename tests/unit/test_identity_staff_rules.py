"""Identity's rules for the platform's operators (staff_rules) and break-glass records, with
nameko's worker_factory on a real SQLite database migrated by identity's own chain."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from services.identity.exceptions import BreakGlassRefused, OperatorRefused
from services.identity.models import BreakGlassRequest
from tests.support.scanner import scan_engine
from tests.unit.identity_fixtures import PASSWORD, sent, service, session  # noqa: F401  (fixtures)


def _operator(service, name):
    user = service.bootstrap_user({"email": f"{name}@ops.example", "display_name": name, "role": "operator",
                                   "tenant_id": None}, PASSWORD)
    return service.login({"email": f"{name}@ops.example", "password": PASSWORD}, "127.0.0.1")["user"], user


def test_first_administrator_only_and_no_way_back_by_disabling(service, sent):
    ops, _ = _operator(service, "ana")
    program = service.create_tenant(ops, {"kind": "program", "name": "Bright Futures"})
    with pytest.raises(OperatorRefused) as refused:
        service.create_user(ops, {"tenant_id": program["id"], "email": "mentor@bf.example",
                                  "display_name": "Mentor", "role": "program_staff"})
    assert refused.value.code == "tenant_accounts_are_the_tenants"
    first = service.create_user(ops, {"tenant_id": program["id"], "email": "director@bf.example",
                                      "display_name": "Director", "role": "program_admin"})
    service.send_mail()  # invitations go after the answer (services.identity.mailing)
    assert first["invited"] is True
    assert ("director@bf.example", "Your WeIntervene account") in {(to, subject) for to, subject, _ in sent}
    with pytest.raises(OperatorRefused) as refused:
        service.create_user(ops, {"tenant_id": program["id"], "email": "me@ops-own.example",
                                  "display_name": "Me", "role": "program_admin"})
    assert refused.value.code == "tenant_has_administrator"
    assert service.update_user(ops, first["id"], {"is_active": False})["is_active"] is False
    with pytest.raises(OperatorRefused) as refused:
        service.create_user(ops, {"tenant_id": program["id"], "email": "me@ops-own.example",
                                  "display_name": "Me", "role": "program_admin"})
    assert refused.value.code == "tenant_needs_break_glass"
    with pytest.raises(OperatorRefused) as refused:
        service.update_user(ops, first["id"], {"is_active": True})
    assert refused.value.code == "operator_disable_only"


def test_break_glass_rows_go_with_their_tenant_and_forget_deleted_users(service, session, sent):
    ana, ana_user = _operator(service, "ana")
    ben, _ = _operator(service, "ben")
    school = service.create_tenant(ana, {"kind": "school", "name": "Cedar Grove"})
    request = service.request_break_glass(ana, {"tenant_id": school["id"], "email": "head@cedar.example",
                                                "display_name": "Head", "reason": "No administrator yet; contract signed."})
    assert request["approvers"] == "second_operator" and sent == []  # nobody to ask inside the school
    with pytest.raises(BreakGlassRefused):
        service.approve_break_glass(ana, request["id"])
    approved = service.approve_break_glass(ben, request["id"], {"note": "Checked the contract"})
    assert approved["status"] == "approved" and approved["approval"] == "second_operator"
    service.send_mail()  # the invitation goes after the answer (services.identity.mailing)
    # The invitation, and the access-log notices of what the operators did, to the new head only.
    assert {to for to, *_ in sent} == {"head@cedar.example"}
    assert "Your WeIntervene account" in {subject for _, subject, _ in sent}
    # The asking operator's account is removed: the record stays, without their id.
    service.delete_for({"scope": "user", "subject_id": ana_user["id"], "tenant_id": ana_user["tenant_id"],
                        "tenant_ids": [], "request_id": "r1"})
    session.commit()
    assert scan_engine(session.get_bind(), ana_user["id"]) == []
    row = session.scalar(select(BreakGlassRequest))
    assert row.requested_by is None and row.decided_by is not None and row.reason
    # The school is terminated: its recovery record goes with it.
    counts = service.delete_for({"scope": "tenant", "subject_id": school["id"], "tenant_id": school["id"],
                                 "tenant_ids": [school["id"]], "request_id": "r2"})
    session.commit()
    assert counts["break_glass_requests"] == 1 and counts["tenants"] == 1
    assert session.scalar(select(BreakGlassRequest)) is None

