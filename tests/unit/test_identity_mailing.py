"""Identity's mail after answering (services.identity.mailing) and the access log's event
consumer, with worker_factory on a migrated SQLite database; SMTP is replaced."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from services.identity import mailing
from services.identity.models import AccessLogEntry, MailJob, PasswordReset
from tests.unit.identity_fixtures import PASSWORD, service, session  # noqa: F401  (fixtures)
from weintervene import mail
from weintervene.auth import AuthContext, Role
from weintervene.contracts import PlatformAction
from weintervene.db import utcnow


@pytest.fixture
def smtp(monkeypatch):
    """A mail server that is down while ``smtp.down`` is set; ``smtp.sent``: [(to, subject, text)]."""

    class Server:
        down = False
        refuse = False
        sent: list = []

        def send(self, to, subject, text, html=None, headers=None):
            if self.refuse:
                raise mail.MailRefused("550 no such user")
            if self.down:
                raise mail.MailUnavailable("connection refused")
            self.sent.append((to, subject, text))

    server = Server()
    server.sent = []
    monkeypatch.setattr("weintervene.mail.send", server.send)
    return server


@pytest.fixture
def school(service, session):
    service.bootstrap_user({"email": "ops@platform.example", "display_name": "Olga Ops", "role": "operator",
                            "tenant_id": None}, PASSWORD)
    op = service.login({"email": "ops@platform.example", "password": PASSWORD}, "127.0.0.1")["user"]
    school = service.create_tenant(op, {"kind": "school", "name": "Lincoln"})
    service.bootstrap_user({"email": "admin@lincoln.example", "display_name": "Ada Admin", "role": "school_admin",
                            "tenant_id": school["id"]}, PASSWORD)
    service.bootstrap_user({"email": "rivera@lincoln.example", "display_name": "Rivera", "role": "teacher",
                            "tenant_id": school["id"]}, PASSWORD)
    session.execute(MailJob.__table__.delete())  # the notices of the set-up
    session.commit()
    return {"op": op, "school": school["id"]}


def _jobs(session):
    session.expire_all()
    return session.scalars(select(MailJob)).all()


def test_a_reset_is_sent_after_the_answer_retried_while_smtp_is_down_and_then_forgotten(service, session, school, smtp):
    smtp.down = True
    assert service.request_password_reset({"email": "Rivera@Lincoln.example"})["accepted"] is True
    assert service.request_password_reset({"email": "ghost@lincoln.example"})["accepted"] is True
    [ours, ghost] = sorted(_jobs(session), key=lambda j: j.email != "rivera@lincoln.example")
    assert (ours.kind, ghost.kind) == ("password_reset", "password_reset")  # the same row for both

    service.send_mail()  # the server is down: the reset waits, its token not kept
    [job] = [j for j in _jobs(session) if j.email == "rivera@lincoln.example"]
    assert job.attempts == 1 and job.next_try_at > utcnow() and "refused" in job.last_error
    assert session.scalar(select(func.count()).select_from(PasswordReset)) == 0
    assert smtp.sent == []

    smtp.down = False
    service.send_mail()
    assert smtp.sent == []  # not due yet
    session.execute(update(MailJob).values(next_try_at=utcnow() - timedelta(seconds=1)))
    session.commit()
    service.send_mail()
    [(to, subject, text)] = smtp.sent
    assert to == "rivera@lincoln.example" and "token=" in text
    assert _jobs(session) == []  # sent or resolved to nothing: no address kept
    assert session.scalar(select(func.count()).select_from(PasswordReset)) == 1


def test_an_invitation_waits_for_the_worker_and_a_refused_address_is_dropped(service, session, school, smtp):
    admin = service.login({"email": "admin@lincoln.example", "password": PASSWORD}, "127.0.0.1")["user"]
    created = service.create_user(admin, {"tenant_id": school["school"], "email": "refused-new@lincoln.example",
                                          "display_name": "New", "role": "teacher"})
    assert created["invited"] is True and smtp.sent == []
    [job] = _jobs(session)
    assert job.kind == "invitation" and job.user_id == created["id"] and job.email is None

    smtp.refuse = True
    service.send_mail()
    assert _jobs(session) == []  # a permanent refusal is not retried


def test_a_platform_action_event_is_logged_once_and_mailed_to_the_admins(service, session, school, smtp):
    payload = PlatformAction().dump({
        "event_id": uuid.uuid4(), "tenant_id": school["school"], "actor_user_id": school["op"]["user_id"],
        "action": "retention_policy_set", "description": "Set a retention policy: login_records kept 400 days",
        "occurred_at": utcnow()})
    assert service.on_retention_platform_action(payload) == "recorded"
    assert service.on_retention_platform_action(payload) == "duplicate"
    [entry] = session.scalars(select(AccessLogEntry).where(AccessLogEntry.action == "retention_policy_set")).all()
    assert (entry.actor_name, entry.actor_role, entry.source) == ("Olga Ops", "operator", "retention")
    service.send_mail()
    assert [to for to, subject, text in smtp.sent if "login_records" in text] == ["admin@lincoln.example"]
    # A report naming someone who is not a platform account is not an access-log entry.
    admin_id = service.login({"email": "admin@lincoln.example", "password": PASSWORD}, "127.0.0.1")["user"]["user_id"]
    other = {**payload, "event_id": str(uuid.uuid4()), "actor_user_id": admin_id}
    assert service.on_retention_platform_action(other) == "ignored"
    assert service.on_retention_platform_action({**payload, "student_id": "x"}) == "rejected"


def test_the_log_is_for_the_tenants_admins_and_its_csv_defuses_formulas(service, session, school, smtp):
    service.update_tenant_settings(school["op"], school["school"], {"suppression_threshold": 11})
    admin = service.login({"email": "admin@lincoln.example", "password": PASSWORD}, "127.0.0.1")["user"]
    page = service.list_access_log(admin, {"action": "settings_changed"})
    assert page["total"] == 1 and page["items"][0]["description"] == "Changed settings: suppression_threshold = 11"
    teacher = service.login({"email": "rivera@lincoln.example", "password": PASSWORD}, "127.0.0.1")["user"]
    with pytest.raises(Exception) as refused:
        service.list_access_log(teacher)
    assert getattr(refused.value, "code", "") == "role_forbidden"
    session.execute(update(AccessLogEntry).values(actor_name="=HYPERLINK(\"http://x\")"))
    session.commit()
    text = service.access_log_csv(admin)
    assert "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text and "'=HYPERLINK" in text
    operator = AuthContext(user_id="op", tenant_id="platform", role=Role.OPERATOR).to_dict()
    with pytest.raises(Exception):
        service.list_access_log(operator)


def test_a_terminated_schools_notices_go_out_before_its_deletion_its_district_admin_included(service, session, school, smtp):
    op = school["op"]
    district = service.create_tenant(op, {"kind": "district", "name": "Riverside"})["id"]
    adams = service.create_tenant(op, {"kind": "school", "name": "Adams", "parent_id": district})["id"]
    for email, role, tenant in (("dana@riverside.example", "district_admin", district),
                                ("sam@adams.example", "school_admin", adams)):
        service.bootstrap_user({"email": email, "display_name": email.split("@")[0].title(), "role": role,
                                "tenant_id": tenant}, PASSWORD)
    session.execute(MailJob.__table__.delete())
    session.commit()
    # Retention fences first, naming the operator who asked: the entry and its notices.
    service.fence_subject(str(uuid.uuid4()), "tenant", adams, adams, op["user_id"])
    assert {j.user_id for j in _jobs(session)} and smtp.sent == []
    counts = service.delete_for({"scope": "tenant", "tenant_id": adams, "subject_id": adams,
                                 "tenant_ids": [adams], "request_id": str(uuid.uuid4())})
    session.commit()
    assert sorted(to for to, subject, text in smtp.sent if "termination" in text) == [
        "dana@riverside.example", "sam@adams.example"]
    assert counts["access_log_entries"] == 3 and _jobs(session) == []  # created, its admin, termination


def test_a_reset_goes_before_access_notices_staged_earlier(service, session, school, smtp):
    """A burst of operator actions stages a notice per administrator; the person waiting
    for a reset link is not queued behind them (the CI flood test waited 10 s for one)."""
    for n in range(3):  # an operator's actions: notices to the school's admin
        service.update_tenant_settings(school["op"], school["school"], {"suppression_threshold": 10 + n})
    assert len(_jobs(session)) == 3
    service.request_password_reset({"email": "rivera@lincoln.example"})
    mailing.deliver_due(session, limit=1)
    assert [to for to, *_ in smtp.sent] == ["rivera@lincoln.example"]
    mailing.deliver_due(session)
    assert [to for to, *_ in smtp.sent][1:] == ["admin@lincoln.example"] * 3
