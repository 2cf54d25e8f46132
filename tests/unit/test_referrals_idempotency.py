"""Idempotent sharing: a share request sent again with the same Idempotency-Key answers
with the first one's share and writes nothing (identity and directory faked, real SQLite)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import event, func, select
from sqlalchemy.orm import sessionmaker

from services.referrals.batching import NaturalBatcher
from services.referrals.directory_cache import ServiceDetailsCache, ServiceLookups
from services.referrals.exceptions import IdempotencyKeyReused, LinkNotFound
from services.referrals.models import (
    Delivery, Disclosure, IdempotencyKey, OutboxMessage, Referral, Share, ShareRecipient, StatusChange,
)
from services.referrals.service import ReferralsService
from services.referrals.sharing import token_hash
from tests.support.databases import migrated_session
from tests.unit.referrals_fixtures import (  # noqa: F401  (fixtures)
    FATHER, MOTHER, OTHER_ADMIN_AUTH, OTHER_TEACHER_AUTH, SCHOOL, SERVICE, SERVICE_2, STUDENT, TEACHER,
    TEACHER_AUTH, FakeDirectory, FakeIdentity, db, directory, identity, make_session, svc, uid,
)
from weintervene.db import utcnow
from weintervene.errors import BadRequest, Conflict

WRITTEN = (Share, ShareRecipient, Referral, StatusChange, Delivery, Disclosure, OutboxMessage, IdempotencyKey)


def count(db, model):
    return db.scalar(select(func.count()).select_from(model))


def counts(db):
    return {model.__tablename__: count(db, model) for model in WRITTEN}


def email_body(**extra):
    body = {"student_id": STUDENT, "contact_ids": [MOTHER], "service_ids": [SERVICE, SERVICE_2],
            "channel": "email", "note": "Pregunte por Ana"}
    body.update(extra)
    return body


def ids(answer):
    return [(item["id"], item["share_id"]) for item in answer["items"]]


# -- a repeat -----------------------------------------------------------------------------

def test_a_repeat_answers_with_the_same_referrals_and_writes_nothing(svc, db):
    key = "0c2f6a1e-3b7d-4e59-9a41-7d2c5f0e8b13"
    first = svc.share(TEACHER_AUTH, email_body(), key)
    written = counts(db)
    assert written == {"share": 1, "share_recipient": 1, "referral": 2, "status_change": 2, "delivery": 1,
                       "disclosure": 0, "outbox_message": 2, "idempotency_key": 1}
    assert "idempotent_replayed" not in first

    again = svc.share(TEACHER_AUTH, email_body(), key)
    assert ids(again) == ids(first) and again["idempotent_replayed"] is True
    assert again["items"] == first["items"]  # nothing happened to the referrals in between
    assert counts(db) == written  # no share, delivery, event or key row more


def test_a_repeat_is_checked_like_the_first_request(svc, db, identity):
    """A repeat runs identity's access check again: after a deletion request for the
    student it is refused like any share (and shows nothing of the first one)."""
    key = "retry-after-fence"
    svc.share(TEACHER_AUTH, email_body(), key)
    written = counts(db)
    identity.fenced.add(STUDENT)
    with pytest.raises(Conflict) as err:
        svc.share(TEACHER_AUTH, email_body(), key)
    assert err.value.code == "subject_fenced" and counts(db) == written


def test_the_same_key_with_another_body_is_refused_and_writes_nothing(svc, db):
    key = "form-submission-1"
    svc.share(TEACHER_AUTH, email_body(), key)
    written = counts(db)
    for changed in (email_body(note="Ask for Luis"), email_body(contact_ids=[FATHER]),
                    email_body(service_ids=[SERVICE]), email_body(channel="sms")):
        with pytest.raises(IdempotencyKeyReused) as err:
            svc.share(TEACHER_AUTH, changed, key)
        assert err.value.code == "idempotency_key_reused"
    assert counts(db) == written


def test_the_same_key_from_another_user_is_another_request(svc, db):
    key = "shared-by-chance"
    walk_in = {"service_ids": [SERVICE], "channel": "print"}
    mine = svc.share(TEACHER_AUTH, walk_in, key)
    colleagues = svc.share(OTHER_TEACHER_AUTH, walk_in, key)  # same school, other user
    other_school = svc.share(OTHER_ADMIN_AUTH, walk_in, key)
    assert len({ids(a)[0][1] for a in (mine, colleagues, other_school)}) == 3
    assert "idempotent_replayed" not in colleagues and "idempotent_replayed" not in other_school
    assert count(db, Share) == 3 and count(db, IdempotencyKey) == 3
    assert db.scalar(select(Share.sharer_id).where(Share.id == ids(colleagues)[0][1])) != TEACHER


def test_without_a_key_every_request_shares_and_no_key_is_read_or_written(svc, db):
    statements = []
    engine = db.get_bind()
    listener = lambda conn, cursor, statement, *rest: statements.append(statement)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        svc.share(TEACHER_AUTH, email_body())
        svc.share(TEACHER_AUTH, email_body())
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert count(db, Share) == 2 and count(db, Delivery) == 2
    assert statements and not [s for s in statements if "idempotency_key" in s]


@pytest.mark.parametrize("key", ["", "x" * 256, "line\nbreak", "tab\there"])
def test_a_malformed_key_is_400_and_writes_nothing(svc, db, key):
    with pytest.raises(BadRequest) as err:
        svc.share(TEACHER_AUTH, email_body(), key)
    assert err.value.code == "invalid_idempotency_key"
    assert all(n == 0 for n in counts(db).values())


def test_a_key_row_holds_no_personal_data(svc, db):
    key = "Diego Diaz grade 7"  # a client may put anything in a key
    svc.share(TEACHER_AUTH, email_body(note="Diego struggles with reading"), key)
    row = db.scalar(select(IdempotencyKey))
    assert set(IdempotencyKey.__table__.columns.keys()) == {
        "tenant_id", "user_id", "key_hash", "request_hash", "share_id", "created_at"}
    stored = " ".join(str(getattr(row, c)) for c in IdempotencyKey.__table__.columns.keys())
    for secret in ("Diego", key, STUDENT, MOTHER, "reading"):
        assert secret not in stored
    assert len(row.key_hash) == len(row.request_hash) == 64


# -- a link share -------------------------------------------------------------------------

def test_a_repeated_link_share_gets_a_fresh_token_and_the_first_one_stops_working(svc, db):
    key = "link-share-1"
    body = {"service_ids": [SERVICE], "channel": "link"}
    [first] = svc.share(TEACHER_AUTH, body, key)["items"]
    old_token = first["link_url"].rsplit("/", 1)[1]
    share = db.get(Share, first["share_id"])
    expires = share.link_expires_at

    [again] = svc.share(TEACHER_AUTH, body, key)["items"]
    new_token = again["link_url"].rsplit("/", 1)[1]
    assert again["id"] == first["id"] and new_token != old_token
    db.expire_all()
    share = db.get(Share, first["share_id"])
    assert share.link_token_hash == token_hash(new_token)  # only the new hash is kept
    assert share.link_expires_at == expires and count(db, Share) == 1
    assert "Casa Azul Counseling" in svc.open_link(new_token)["html"]
    with pytest.raises(LinkNotFound):
        svc.open_link(old_token)


# -- lifetime ------------------------------------------------------------------------------

def age_keys(db, hours):
    for row in db.scalars(select(IdempotencyKey)):
        row.created_at = utcnow() - timedelta(hours=hours)
    db.commit()


def test_the_hourly_purge_removes_keys_past_their_lifetime_then_the_key_shares_anew(svc, db, patch_settings):
    patch_settings(idempotency_key_ttl_hours=24)
    walk_in = {"service_ids": [SERVICE], "channel": "print"}
    old = svc.share(TEACHER_AUTH, walk_in, "old-key")
    age_keys(db, 25)
    svc.share(TEACHER_AUTH, walk_in, "fresh-key")

    svc.purge_published_outbox()  # the hourly timer (outbox and keys)
    db.expire_all()
    assert db.scalars(select(IdempotencyKey.share_id)).all() == [
        svc.share(TEACHER_AUTH, walk_in, "fresh-key")["items"][0]["share_id"]]  # a repeat, still known
    assert count(db, Share) == 2  # purging a key leaves its share alone
    renewed = svc.share(TEACHER_AUTH, walk_in, "old-key")
    assert "idempotent_replayed" not in renewed and ids(renewed) != ids(old)
    assert count(db, Share) == 3


def test_the_lifetime_is_a_setting(svc, db, patch_settings):
    svc.share(TEACHER_AUTH, {"service_ids": [SERVICE], "channel": "print"}, "k")
    age_keys(db, 2)
    patch_settings(idempotency_key_ttl_hours=3)
    svc.purge_published_outbox()
    assert count(db, IdempotencyKey) == 1
    patch_settings(idempotency_key_ttl_hours=1)
    svc.purge_published_outbox()
    assert count(db, IdempotencyKey) == 0


# -- deletion ------------------------------------------------------------------------------

def deletion(scope, subject, tenants=(SCHOOL,)):
    return {"request_id": uid(), "scope": scope, "tenant_id": tenants[0], "subject_id": subject,
            "tenant_ids": list(tenants), "older_than": None}


def test_a_users_deletion_takes_their_keys_and_a_students_the_keys_of_its_shares(svc, db):
    svc.share(TEACHER_AUTH, email_body(), "about-the-student")
    svc.share(TEACHER_AUTH, {"service_ids": [SERVICE], "channel": "print"}, "walk-in")
    svc.share(OTHER_TEACHER_AUTH, {"service_ids": [SERVICE], "channel": "print"}, "walk-in")
    assert svc.delete_for(deletion("student", STUDENT))["shares"] == 1
    db.commit()
    assert sorted(db.scalars(select(IdempotencyKey.user_id))) == sorted([TEACHER, OTHER_TEACHER_AUTH["user_id"]])
    assert svc.delete_for(deletion("user", TEACHER))["idempotency_keys"] == 1
    db.commit()
    assert db.scalars(select(IdempotencyKey.user_id)).all() == [OTHER_TEACHER_AUTH["user_id"]]


def test_a_tenants_termination_takes_its_keys(svc, db):
    svc.share(TEACHER_AUTH, {"service_ids": [SERVICE], "channel": "print"}, "k")
    svc.share(OTHER_ADMIN_AUTH, {"service_ids": [SERVICE], "channel": "print"}, "k")
    svc.delete_for(deletion("tenant", SCHOOL))
    db.commit()
    assert db.scalars(select(IdempotencyKey.tenant_id)).all() == [OTHER_ADMIN_AUTH["tenant_id"]]


# -- two requests at once --------------------------------------------------------------------

def test_two_requests_with_one_key_at_once_make_one_share_and_both_get_it(tmp_path):
    """SQLite, two connections: the other request commits its share while this one waits
    for identity; this one's key INSERT then finds the committed key (ON CONFLICT DO
    NOTHING, not an IntegrityError), rolls its share back and answers with the other's.
    (On PostgreSQL, where the INSERT waits for the other transaction, through the
    gateway: tests/integration/test_referrals.py.)"""
    identity, directory = FakeIdentity(), FakeDirectory()
    with migrated_session(tmp_path, "referrals") as db:
        other_db = sessionmaker(db.get_bind(), expire_on_commit=False)()

        def worker(session):
            # A batcher each: the other request runs inside this one's identity call, as
            # another referrals instance would.
            return worker_factory(ReferralsService, db=session, identity=identity, directory=directory,
                                  directory_services=ServiceLookups(ServiceDetailsCache(ttl=0)),
                                  share_batches=NaturalBatcher())

        key, answers = "double-click", {}
        share_context = identity.share_context.side_effect

        def the_other_request_commits_meanwhile(*args):
            identity.share_context.side_effect = share_context
            answers["other"] = worker(other_db).share(TEACHER_AUTH, email_body(), key)
            return share_context(*args)

        identity.share_context.side_effect = the_other_request_commits_meanwhile
        answers["this"] = worker(db).share(TEACHER_AUTH, email_body(), key)
        other_db.close()

        assert identity.share_context.call_count == 2  # both were checked and got as far as their INSERT
        assert ids(answers["this"]) == ids(answers["other"])
        assert answers["this"]["idempotent_replayed"] is True and "idempotent_replayed" not in answers["other"]
        assert {m.__tablename__: count(db, m) for m in (Share, Referral, Delivery, OutboxMessage, IdempotencyKey)} == {
            "share": 1, "referral": 2, "delivery": 1, "outbox_message": 2, "idempotency_key": 1}
