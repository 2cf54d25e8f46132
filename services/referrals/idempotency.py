"""Idempotent sharing: a request sent again with the same ``Idempotency-Key`` gets the
share the first one made, never a second share (the family gets one email, one SMS).

A teacher's browser retries a share after a 504 or a network error, or the teacher
presses Share again; the first request may well have committed. The client sends one
key per share it means (``Idempotency-Key: <1-255 characters>``, the web app a random
UUID per form submission) and the same key with every retry of it.

* The key is the caller's: (tenant, user, SHA-256 of the key). The same key from
  another user is another request.
* The row (``IdempotencyKey``) is inserted with the share's rows, in the same statement
  and transaction (``sharing.write_batch``): both commit, or neither. That row is all a
  key costs a first request: nothing is looked up before. A key already taken makes
  that statement fail (a unique violation); it is rolled back and the share is written
  alone: its rows, then its key with ``INSERT … ON CONFLICT DO NOTHING`` (``record``),
  which tells a repeat apart without failing.
* A repeat goes the same way as the first request (identity's access check, directory's
  services: so a repeat after the student's deletion request is refused like any share)
  until its key INSERT finds the key taken. It rolls its share back and answers with the
  first one's referrals, same ids, as they are now, with the original 201: no second
  share, delivery or ``share_recorded`` event. If the first request was another one
  (another body: SHA-256 of the validated request), ``IdempotencyKeyReused`` (422),
  and nothing is written either.
* Two requests with the same key at once: the primary key decides. On PostgreSQL the
  second one's INSERT waits for the first one's transaction (READ COMMITTED) and, once
  it committed, fails; written alone, its ``record`` then inserts nothing. On SQLite the
  database lock serialises the writers, so the second finds the committed row the same
  way. The second then answers as a repeat. Twins in one batch go the same way.
* Keys live at least ``idempotency_key_ttl_hours`` (24 h): ``purge_expired`` runs with
  the hourly outbox purge; after it the same key makes a new share (as Stripe's keys).

A key row holds no personal data: two hashes, the caller's ids and the share id.

Example::

    >>> key = RequestKey.of(caller, "3f0c…", values)
    >>> record(db, key, share_id, now)   # True: a new key, commit it with the share
    >>> record(db, key, other_id, now)   # later, the same request again: False
    >>> db.rollback(); replay(db, key)   # the first request's share
    <Share 7e1…>
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, select, text

from services.referrals.exceptions import IdempotencyKeyInUse, IdempotencyKeyReused
from services.referrals.models import IdempotencyKey, Share
from weintervene.auth import AuthContext
from weintervene.config import settings
from weintervene.db import utcnow
from weintervene.errors import BadRequest

MAX_KEY_LENGTH = 255


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def request_hash(values: dict) -> str:
    """SHA-256 of the validated request, key order aside: the same share asked again
    hashes the same; any other field value (a service, a contact, the note) does not.

    Example: request_hash({"channel": "print", "service_ids": [s]}) -> "9b1c…" (64 hex digits)
    """
    return _sha256(json.dumps(values, sort_keys=True, separators=(",", ":"), default=str))


@dataclasses.dataclass(frozen=True)
class RequestKey:
    """A client's key as stored: scoped to the caller, hashed, with its request's hash."""

    tenant_id: str
    user_id: str
    key_hash: str
    request_hash: str

    @classmethod
    def of(cls, caller: AuthContext, key: str, values: dict) -> "RequestKey":
        """Example: RequestKey.of(caller, "0c2f6a1e-…", values) -> RequestKey(key_hash="5e88…", …)"""
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
            raise BadRequest(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters.",
                             code="invalid_idempotency_key")
        # The key itself is not kept: a client may put anything in it, and its hash finds it as well.
        return cls(caller.tenant_id, caller.user_id, _sha256(key), request_hash(values))

    @property
    def params(self) -> dict:
        return {"tenant_id": self.tenant_id, "user_id": self.user_id, "key_hash": self.key_hash}

    def row(self, share_id: str, now: datetime) -> dict:
        """The key's row for ``share_id``: ``record`` inserts it, or a batch of shares with the rest
        of their rows (where a taken key is a unique violation that sends each share to ``record``)."""
        return {**self.params, "request_hash": self.request_hash, "share_id": share_id, "created_at": now}


# Made once, with bound parameters: a statement built per call (``.values(...)``, an ORM
# entity query) is compiled per call, which costs more than its round trip. The INSERT is
# text because SQLAlchemy caches no compiled form of the dialects' ``insert`` (ON CONFLICT):
# the same SQL for both databases (SQLite since 3.35 for RETURNING).
_TABLE = IdempotencyKey.__table__
_FIND = select(_TABLE.c.request_hash, _TABLE.c.share_id).where(
    _TABLE.c.tenant_id == bindparam("tenant_id"), _TABLE.c.user_id == bindparam("user_id"),
    _TABLE.c.key_hash == bindparam("key_hash"))
_RECORD = text(
    "INSERT INTO idempotency_key (tenant_id, user_id, key_hash, request_hash, share_id, created_at) "
    "VALUES (:tenant_id, :user_id, :key_hash, :request_hash, :share_id, :created_at) "
    "ON CONFLICT (tenant_id, user_id, key_hash) DO NOTHING RETURNING key_hash"
).bindparams(bindparam("created_at", type_=_TABLE.c.created_at.type))


def record(db, key: RequestKey, share_id: str, now: datetime) -> bool:
    """Insert ``key`` for ``share_id`` in the caller's (open) transaction; False when a
    request with the same key committed first: then roll back and ``replay``.

    ``ON CONFLICT DO NOTHING``: on PostgreSQL an uncommitted row with the same key makes
    this wait for that transaction's outcome, then insert (it rolled back) or skip (it
    committed), never fail; on SQLite the writer holding the database lock has committed.
    """
    return db.connection().execute(_RECORD, key.row(share_id, now)).first() is not None


def replay(db, key: RequestKey) -> Share:
    """The share the first request with ``key`` made, for a repeat whose ``record`` found
    the key taken (after its rollback). ``IdempotencyKeyReused`` when that first request
    was another one."""
    row = db.connection().execute(_FIND, key.params).first()
    if row is None:  # the first request's share was deleted in the meantime (an erasure)
        raise IdempotencyKeyInUse("Another request with this Idempotency-Key was being answered: send it again.")
    if row.request_hash != key.request_hash:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used for another share request; "
            "use a new key for a new request.")
    return db.get(Share, row.share_id)


def purge_expired(db, older_than: timedelta | None = None) -> int:
    """Delete keys older than ``idempotency_key_ttl_hours``; returns how many.

    Example: purge_expired(db) -> 212
    """
    if older_than is None:
        older_than = timedelta(hours=settings().idempotency_key_ttl_hours)
    n = db.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - older_than)).rowcount
    db.commit()
    return max(n or 0, 0)
