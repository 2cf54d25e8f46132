"""Policy versions, acknowledgements and incident notices in identity (worker_factory,
SQLite migrated with identity's own Alembic chain, no broker)."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import func, select

from services.identity.models import IncidentNotice, PolicyAcknowledgement
from services.identity.service import IdentityService
from tests.support.scanner import scan_engine
from tests.support.databases import migrated_session
from weintervene.auth import AuthContext, Role
from weintervene.db import utcnow
from weintervene.errors import BadRequest, Conflict, Forbidden, NotFound

PASSWORD = "unit passphrase 2026"
FIRST = "2026-11-01"  # the version the migration carries over from the old static file
FIRST_ID = "5b0f3c1e-7d2a-4c6b-9e55-2026110100a1"


@pytest.fixture
def session(tmp_path):
    with migrated_session(tmp_path, "identity") as db:
        yield db


@pytest.fixture
def service(session):
    return worker_factory(IdentityService, db=session)


@pytest.fixture
def people(service):
    op = AuthContext(user_id="op", tenant_id="platform", role=Role.OPERATOR).to_dict()
    school = service.create_tenant(op, {"kind": "school", "name": "Lincoln"})
    out = {"school": school["id"]}
    for name, role, tenant in (("ops", "operator", None), ("rivera", "teacher", school["id"]),
                               ("okafor", "teacher", school["id"])):
        service.bootstrap_user({"email": f"{name}@x.example", "display_name": name, "role": role,
                                "tenant_id": tenant}, PASSWORD)
        out[name] = service.login({"email": f"{name}@x.example", "password": PASSWORD}, "127.0.0.1")["user"]
    return out


def test_the_migration_carries_over_the_first_policy_version(service):
    current = service.current_notices(None)
    assert current["policy"]["version"] == FIRST_ID and current["policy"]["last_updated"] == FIRST
    assert "every service that receives student data" in current["policy"]["summary"]
    assert current["incidents"] == [] and current["acknowledged"] is None


def test_a_user_acknowledges_the_current_version_once(service, people, session):
    rivera = people["rivera"]
    assert service.current_notices(rivera)["acknowledged"] is False
    assert service.policy_acknowledgement(rivera) == {"version": FIRST_ID, "last_updated": FIRST,
                                                      "acknowledged": False, "acknowledged_at": None}
    ack = service.acknowledge_policy(rivera, {"version": FIRST_ID})
    assert ack["acknowledged"] is True and ack["acknowledged_at"]
    assert service.acknowledge_policy(rivera, {"version": FIRST_ID})["acknowledged_at"] == ack["acknowledged_at"]
    assert session.scalar(select(func.count()).select_from(PolicyAcknowledgement)) == 1
    assert service.current_notices(rivera)["acknowledged"] is True
    assert service.current_notices(people["okafor"])["acknowledged"] is False  # per user, not per school


def test_a_new_version_asks_everyone_again_and_old_versions_cannot_be_acknowledged(service, people):
    rivera, ops = people["rivera"], people["ops"]
    service.acknowledge_policy(rivera, {"version": FIRST_ID})
    today = utcnow().date().isoformat()
    published = service.publish_policy_version(ops, {"last_updated": today, "summary": "  Shorter retention.  "})
    assert published["last_updated"] == today and published["summary"] == "Shorter retention."
    assert service.current_notices(None)["policy"]["version"] == published["version"] != FIRST_ID
    assert service.current_notices(rivera)["acknowledged"] is False
    with pytest.raises(Conflict) as caught:
        service.acknowledge_policy(rivera, {"version": FIRST_ID})  # a tab left open on the old banner
    assert caught.value.code == "policy_version_not_current"
    assert service.acknowledge_policy(rivera, {"version": published["version"]})["acknowledged"] is True
    # A same-day correction is a version of its own: asked again.
    again = service.publish_policy_version(ops, {"last_updated": today, "summary": "Corrected."})
    assert service.current_notices(rivera) == {"policy": again, "incidents": [], "acknowledged": False}
    assert [v["version"] for v in service.list_policy_versions(ops)["items"]] == [
        again["version"], published["version"], FIRST_ID]


@pytest.mark.parametrize("data, error, code", [
    ({"last_updated": "2026-10-01", "summary": "Older"}, Conflict, "policy_version_outdated"),
    ({"last_updated": (date.today() + timedelta(days=2)).isoformat(), "summary": "Future"}, BadRequest, "invalid_input"),
    ({"last_updated": "2026-11-31", "summary": "No such day"}, BadRequest, "invalid_input"),
    ({"last_updated": "2026-11-20", "summary": "   "}, BadRequest, "invalid_input"),
    ({"last_updated": "2026-11-20", "summary": "x" * 501}, BadRequest, "invalid_input"),
    ({"last_updated": "2026-11-20"}, BadRequest, "invalid_input"),
    ({"last_updated": "2026-11-20", "summary": "ok", "version": "7"}, BadRequest, "invalid_input"),
])
def test_bad_policy_versions_are_refused_with_a_reason(service, people, data, error, code):
    with pytest.raises(error) as caught:
        service.publish_policy_version(people["ops"], data)
    assert caught.value.code == code
    assert caught.value.message
    assert service.current_notices(None)["policy"]["version"] == FIRST_ID  # nothing half-written


def test_only_operators_publish_or_list(service, people):
    rivera = people["rivera"]
    for call in (lambda: service.publish_policy_version(rivera, {"last_updated": "2026-11-20", "summary": "x"}),
                 lambda: service.post_incident_notice(rivera, {"message": "x"}),
                 lambda: service.list_policy_versions(rivera),
                 lambda: service.list_incident_notices(rivera)):
        with pytest.raises(Forbidden):
            call()


def test_incident_notices_show_until_they_end(service, people, session):
    ops = people["ops"]
    later = (utcnow() + timedelta(hours=2)).isoformat()
    timed = service.post_incident_notice(ops, {"message": "Text messages are delayed.", "ends_at": later})
    open_ended = service.post_incident_notice(ops, {"message": "Maintenance tonight.", "severity": "info"})
    assert timed["severity"] == "warning" and timed["active"] and open_ended["ends_at"] is None
    shown = service.current_notices(None)["incidents"]
    assert {n["id"] for n in shown} == {timed["id"], open_ended["id"]}
    ended = service.end_incident_notice(ops, open_ended["id"])
    assert ended["active"] is False and ended["ends_at"]
    with pytest.raises(Conflict) as caught:
        service.end_incident_notice(ops, open_ended["id"])
    assert caught.value.code == "notice_ended"
    # One whose end time passes disappears by itself.
    session.get(IncidentNotice, timed["id"]).ends_at = utcnow() - timedelta(seconds=1)
    session.commit()
    assert service.current_notices(people["rivera"])["incidents"] == []
    listed = service.list_incident_notices(ops)["items"]
    assert [n["id"] for n in listed] == [open_ended["id"], timed["id"]] and not any(n["active"] for n in listed)
    with pytest.raises(NotFound):
        service.end_incident_notice(ops, "00000000-0000-4000-8000-000000000000")


@pytest.mark.parametrize("data", [
    {"message": ""}, {"message": " \n "}, {"message": "x" * 501}, {"message": "ok", "severity": "panic"},
    {"message": "ok", "ends_at": "2026-11-29T18:00:00"},  # no offset: ambiguous
    {"message": "ok", "ends_at": "2020-01-01T00:00:00+00:00"},  # already over
    {"message": "ok", "starts_at": "2026-11-29T18:00:00+00:00"},
])
def test_bad_incident_notices_are_refused(service, people, session, data):
    with pytest.raises(BadRequest) as caught:
        service.post_incident_notice(people["ops"], data)
    assert caught.value.code == "invalid_input" and caught.value.details
    assert session.scalar(select(func.count()).select_from(IncidentNotice)) == 0


def test_acknowledgements_go_with_the_user_and_with_the_tenant(service, people, session):
    rivera, okafor = people["rivera"], people["okafor"]
    service.acknowledge_policy(rivera, {"version": FIRST_ID})
    service.acknowledge_policy(okafor, {"version": FIRST_ID})
    counts = service.delete_for({"scope": "user", "subject_id": rivera["user_id"], "tenant_id": people["school"],
                                 "tenant_ids": [], "request_id": "r1"})
    session.commit()
    assert counts["policy_acknowledgements"] == 1 and counts["users"] == 1
    assert scan_engine(session.get_bind(), rivera["user_id"]) == []
    counts = service.delete_for({"scope": "tenant", "subject_id": people["school"], "tenant_id": people["school"],
                                 "tenant_ids": [people["school"]], "request_id": "r2"})
    session.commit()
    assert counts["policy_acknowledgements"] == 1
    assert scan_engine(session.get_bind(), people["school"]) == []
    assert session.scalar(select(func.count()).select_from(PolicyAcknowledgement)) == 0


@pytest.mark.parametrize("data", [{}, {"version": ""}, {"version": 5}, {"version": FIRST_ID, "user_id": "x"}])
def test_bad_acknowledgements_are_refused(service, people, session, data):
    with pytest.raises(BadRequest) as caught:
        service.acknowledge_policy(people["rivera"], data)
    assert caught.value.code == "invalid_input"
    with pytest.raises(Conflict):
        service.acknowledge_policy(people["rivera"], {"version": "00000000-0000-4000-8000-000000000000"})
    assert session.scalar(select(func.count()).select_from(PolicyAcknowledgement)) == 0


def test_web_boot_says_who_holds_the_token_and_their_notices_in_one_call(service, people):
    session = service.login({"email": "rivera@x.example", "password": PASSWORD}, "127.0.0.1")
    boot = service.web_boot(session["token"])
    me = service.authenticate(session["token"])
    assert boot["me"] == {k: v for k, v in me.items() if k != "session_valid_until"}
    assert boot["notices"] == service.current_notices(boot["me"]) and boot["notices"]["acknowledged"] is False
    service.logout(session["token"])
    for token in (session["token"], "not-a-token", "x" * 500, None, ""):
        assert service.web_boot(token) == {"me": None, "notices": service.current_notices(None)}
