"""Versioned keys: what was made under an older key still verifies and is still found after a
rotation, new values record the new key, an unknown key id is refused, and rows stored before
key ids existed still match."""
from __future__ import annotations

import hashlib
import hmac

import pytest
from sqlalchemy import select

from services.identity import rekeying
from services.identity.exceptions import SubjectFenced
from services.identity.models import Student, SubjectFence
from services.identity.students import is_fenced, subject_hash
from tests.unit.test_identity_service import ROSTER, b64, school, service, session  # noqa: F401 (fixtures)
from weintervene.db import make_engine
from weintervene.hashing import Keyring, KeyringError, key_id_of, keyed_hash, parse_previous_keys, verify_keyed_hash

KEY_ONE = {"secret_key": "the first key", "secret_key_id": "1", "previous_secret_keys": ""}
KEY_TWO = {"secret_key": "the second key", "secret_key_id": "2", "previous_secret_keys": "1:the first key"}


def test_a_hash_made_under_key_1_verifies_after_rotating_to_key_2(patch_settings):
    patch_settings(**KEY_ONE)
    token = keyed_hash("csrf", "session-token")
    assert key_id_of(token) == "1"
    patch_settings(**KEY_TWO)
    assert verify_keyed_hash("csrf", "session-token", token)
    new = keyed_hash("csrf", "session-token")
    assert key_id_of(new) == "2" and new != token and verify_keyed_hash("csrf", "session-token", new)
    assert not verify_keyed_hash("csrf", "another session", token)


def test_an_unknown_key_id_is_refused(patch_settings):
    patch_settings(**KEY_TWO)
    digest = keyed_hash("csrf", "session-token").partition(":")[2]
    assert not verify_keyed_hash("csrf", "session-token", f"9:{digest}")  # no key 9
    patch_settings(**KEY_ONE)
    made_under_two = Keyring("2", {"2": b"the second key"}).keyed_hash("csrf", "session-token")
    assert not verify_keyed_hash("csrf", "session-token", made_under_two)  # key 2 not held here
    assert not verify_keyed_hash("csrf", "session-token", "1:not-hex")


def test_a_value_made_before_key_ids_is_the_legacy_key_0s(patch_settings):
    patch_settings(secret_key="the old single key", secret_key_id="0", previous_secret_keys="")
    bare = hmac.new(b"the old single key", b"csrf:session-token", hashlib.sha256).hexdigest()
    assert verify_keyed_hash("csrf", "session-token", bare)
    patch_settings(secret_key="new", secret_key_id="1", previous_secret_keys="0:the old single key")
    assert verify_keyed_hash("csrf", "session-token", bare)
    patch_settings(secret_key="new", secret_key_id="1", previous_secret_keys="")
    assert not verify_keyed_hash("csrf", "session-token", bare)  # key 0 dropped


def test_lookups_try_every_key_current_first():
    ring = Keyring("2", {"2": b"b", "1": b"a", "0": b"z"})
    assert [key_id_of(h) for h in ring.keyed_hashes("p", "v")] == ["2", "1", "0"]
    assert ring.keyed_hashes("p", "v")[0] == ring.keyed_hash("p", "v")
    assert ring.next_key_id() == "3"


def test_the_previous_keys_list():
    assert parse_previous_keys("1:abc, 0:d:e:f") == {"1": b"abc", "0": b"d:e:f"}
    for bad in ("abc", "1:", "1:a,1:b", "bad id!:x"):
        with pytest.raises(KeyringError):
            parse_previous_keys(bad)


def test_fences_made_under_key_1_still_fence_after_rotating_and_rekey_moves_what_it_can(
        service, school, session, patch_settings):  # noqa: F811
    patch_settings(**KEY_ONE)
    service.import_roster(school["admin"], b64(ROSTER))
    diego = session.scalar(select(Student).where(Student.roster_key == "S1"))
    lena = session.scalar(select(Student).where(Student.roster_key == "S2"))
    # Diego's deletion applied (a sealed fence: hashes only); Lena's requested, still pending.
    service.delete_for({"scope": "student", "subject_id": diego.id, "tenant_id": school["school"],
                        "tenant_ids": [school["school"]], "request_id": "r1"})
    session.commit()
    service.fence_subject("22222222-2222-4222-8222-222222222222", "student", school["school"], lena.id)
    assert {key_id_of(f.subject_hash) for f in session.scalars(select(SubjectFence))} == {"1"}

    patch_settings(**KEY_TWO)
    assert is_fenced(session, "student", diego.id) and is_fenced(session, "student", lena.id)
    with pytest.raises(SubjectFenced):
        service.check_student_access(school["admin"], lena.id)
    # A re-import still recognises both by the roster key hashes made under key 1.
    assert service.import_roster(school["admin"], b64(ROSTER))["skipped_rows"] == [2, 3]
    # Fencing again finds the key-1 fence rather than making a second one.
    service.fence_subject("22222222-2222-4222-8222-222222222222", "student", school["school"], lena.id)
    assert session.scalar(select(SubjectFence).where(SubjectFence.subject_id == lena.id)).subject_hash.startswith("1:")

    assert rekeying.rekey(session) == {"subject_fence.subject_hash": 1, "subject_fence.roster_key_hash": 1}
    lena_fence = session.scalar(select(SubjectFence).where(SubjectFence.subject_id == lena.id))
    assert lena_fence.subject_hash == subject_hash("student", lena.id) and lena_fence.subject_hash.startswith("2:")
    assert lena_fence.roster_key_hash.startswith("2:")
    # The sealed fence keeps no id to re-key from: key 1 is still needed, and the count says so.
    assert rekeying.key_usage(session) == {"subject_fence.subject_hash": {"1": 1, "2": 1},
                                           "subject_fence.roster_key_hash": {"1": 1, "2": 1},
                                           "sso_configuration.client_secret": {}}
    assert rekeying.rekey(session) == {}  # nothing more to do

    # Dropping key 1 too soon would orphan Diego's fence: it no longer matches.
    patch_settings(secret_key="the second key", secret_key_id="2", previous_secret_keys="")
    assert not is_fenced(session, "student", diego.id) and is_fenced(session, "student", lena.id)


def test_a_batch_of_shares_sees_fences_made_under_key_1_after_rotating(service, school, session, patch_settings):  # noqa: F811
    """The batch access check (one statement for many shares) matches every key's hash too."""
    from nameko.exceptions import deserialize

    patch_settings(**KEY_ONE)
    service.import_roster(school["admin"], b64(ROSTER))
    diego = session.scalar(select(Student).where(Student.roster_key == "S1"))
    rosa = diego.contacts[0].id
    request = {"auth": school["rivera"], "student_id": diego.id, "contact_ids": [rosa], "tenant_ids": []}
    assert "context" in service.share_contexts([request, request])[0]
    service.fence_subject("33333333-3333-4333-8333-333333333333", "student", school["school"], diego.id)
    patch_settings(**KEY_TWO)
    answers = service.share_contexts([request, request])
    assert [deserialize(a["error"]).code for a in answers] == ["subject_fenced", "subject_fenced"]


def test_retention_finds_a_subject_made_under_key_1_after_rotating(tmp_path, patch_settings):
    from services.retention import rekeying as retention_rekeying
    from services.retention.deletions import open_inspection_for, refs_of, subject_ref
    from services.retention.models import InspectionRequest
    from tests.support.databases import migrated_session

    with migrated_session(tmp_path, "retention") as db:
        patch_settings(**KEY_ONE)
        db.add(InspectionRequest(kind="inspection", tenant_id="t", student_id="s-1", subject_ref=subject_ref("s-1"),
                                 opened_by="u"))
        db.commit()
        patch_settings(**KEY_TWO)
        # A deletion request made now (under key 2) still sees the inspection opened under key 1.
        assert open_inspection_for(db, refs_of("s-1", subject_ref("s-1"))) is not None
        assert retention_rekeying.rekey(db) == {"inspection_request.subject_ref": 1}
        assert db.scalar(select(InspectionRequest.subject_ref)) == subject_ref("s-1")
        assert retention_rekeying.key_usage(db)["inspection_request.subject_ref"] == {"2": 1}


def test_fences_stored_before_key_ids_still_match_after_the_migration(tmp_path, patch_settings):
    """The Alembic path: rows hashed with the single legacy key get its id, "0", and still match."""
    from alembic import command
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from weintervene.db import alembic_config, make_engine

    patch_settings(secret_key="the deployment's one key", secret_key_id="0", previous_secret_keys="")
    engine = make_engine(f"sqlite:///{tmp_path}/identity.db")
    with engine.begin() as conn:
        command.upgrade(alembic_config("identity", conn), "6f2d8a4c9e15")  # the revision before key ids
    subject = "5d7c0000-0000-4000-8000-000000000001"
    legacy = hmac.new(b"the deployment's one key", f"identity-fence:student:{subject}".encode(),
                      hashlib.sha256).hexdigest()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO subject_fence (id, request_id, scope, subject_hash, roster_key_hash, created_at) "
                          "VALUES ('f1', 'r1', 'student', :h, :h, '2026-01-01 00:00:00')"), {"h": legacy})
        command.upgrade(alembic_config("identity", conn), "head")
    with Session(engine) as db:
        assert db.scalar(select(SubjectFence.subject_hash)) == "0:" + legacy
        assert is_fenced(db, "student", subject)
        patch_settings(**{"secret_key": "new", "secret_key_id": "1",
                          "previous_secret_keys": "0:the deployment's one key"})
        assert is_fenced(db, "student", subject)  # after a rotation too, while key 0 is kept
    with engine.begin() as conn:  # and back down: the old shape again
        command.downgrade(alembic_config("identity", conn), "6f2d8a4c9e15")
        assert conn.execute(text("SELECT subject_hash FROM subject_fence")).scalar() == legacy
    engine.dispose()


def _rotate_key(env: dict, *args) -> str:
    import contextlib
    import io
    import os

    from weintervene import cli

    out = io.StringIO()
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out):
            assert cli.main(["rotate-key", *args]) == 0
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return out.getvalue()


def test_rotate_key_prints_exactly_what_to_set():
    output = _rotate_key({"WEINTERVENE_SECRET_KEY": "current", "WEINTERVENE_SECRET_KEY_ID": "1",
                          "WEINTERVENE_PREVIOUS_SECRET_KEYS": "0:oldest"})
    settings = dict(line.split("=", 1) for line in output.splitlines() if line.startswith("WEINTERVENE_"))
    assert settings["WEINTERVENE_SECRET_KEY_ID"] == "2"
    assert settings["WEINTERVENE_PREVIOUS_SECRET_KEYS"] == "1:current,0:oldest"
    new_key = settings["WEINTERVENE_SECRET_KEY"]
    assert len(new_key) >= 43 and new_key not in ("current", "oldest") and "," not in new_key and ":" not in new_key
    assert "weintervene rotate-key --rekey" in output
    # The first rotation of a deployment that never named a key id: its key becomes key 0.
    first = _rotate_key({"WEINTERVENE_SECRET_KEY": "only"})
    assert "WEINTERVENE_SECRET_KEY_ID=1\n" in first and "WEINTERVENE_PREVIOUS_SECRET_KEYS=0:only\n" in first


def test_rotate_key_rekey_reports_what_still_needs_each_key(tmp_path):
    env = {"WEINTERVENE_DATA_DIR": str(tmp_path), "WEINTERVENE_SECRET_KEY": "second", "WEINTERVENE_SECRET_KEY_ID": "2",
           "WEINTERVENE_PREVIOUS_SECRET_KEYS": "1:first"}
    output = _rotate_key(env, "--rekey")
    assert "current key: 2" in output
    assert "identity: subject_fence.subject_hash: none stored" in output
    assert "key 1: no stored value needs it; drop it from WEINTERVENE_PREVIOUS_SECRET_KEYS once 12 h" in output


def test_rotate_key_status_counts_stored_values_per_key_and_flags_unknown_ids(tmp_path, patch_settings):
    import contextlib
    import io
    import os

    from weintervene import cli
    from weintervene.config import Settings

    env = {"WEINTERVENE_DATA_DIR": str(tmp_path), "WEINTERVENE_SECRET_KEY": "second", "WEINTERVENE_SECRET_KEY_ID": "2",
           "WEINTERVENE_PREVIOUS_SECRET_KEYS": "1:first"}
    _rotate_key(env, "--status")  # creates and migrates the databases
    patch_settings(**{"secret_key": "first", "secret_key_id": "1", "previous_secret_keys": ""})
    engine = make_engine(f"sqlite:///{tmp_path}/identity.db")
    with engine.begin() as conn:
        conn.execute(SubjectFence.__table__.insert(), [
            {"id": "f1", "request_id": "r", "scope": "user", "subject_hash": keyed_hash("identity-fence:user", "u1")},
            {"id": "f2", "request_id": "r", "scope": "user", "subject_hash": "7:" + "a" * 64}])
    engine.dispose()
    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = cli.main(["rotate-key", "--status"])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert status == 1  # a value names key 7, which no setting holds: it no longer matches
    assert "identity: subject_fence.subject_hash: key 1: 1, key 7: 1" in out.getvalue()
    assert "key 1: still needed by 1 stored values" in out.getvalue()
    assert "key ids this keyring does not hold: 7" in err.getvalue()
    assert Settings.from_env(env).secret_key_id == "2"


def test_rekey_is_refused_under_the_published_default_key(tmp_path):
    import contextlib
    import io
    import os

    from weintervene import cli

    saved = dict(os.environ)
    os.environ.update({"WEINTERVENE_DATA_DIR": str(tmp_path)})
    os.environ.pop("WEINTERVENE_SECRET_KEY", None)
    os.environ.pop("WEINTERVENE_DEV_MODE", None)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            assert cli.main(["rotate-key", "--rekey"]) == 2
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert "WEINTERVENE_SECRET_KEY" in err.getvalue()
