"""Idempotent sharing: a request sent again with the same ``Idempotency-Key`` gets the
share the first one made, never a second share (the family gets one email, one SMS).

A teacher's browser retries a share after a 504 or a network error, or the teacher
presses Share again; the first request may well have committed. The client sends one
key per share it means (``Idempotency-Key: <1-255 characters>``, the web app a random
UUID per form submission) and the same key with every retry of it.

* The key is the caller's: (tenant, user, SHA-256 of the key). The same key from
  another user is another request.
* The row (``IdempotencyKey``) is inserted in the share's own transaction, right after
  the share: both commit, or neither.
* A repeat with the same request (SHA-256 of the validated body) answers with the same
  referrals, as they are now, with the original 201, and writes nothing: no share,
  delivery or ``share_recorded`` event. With another body it is
  ``IdempotencyKeyReused`` (422) and writes nothing.
* Two requests with the same key at once: the primary key decides. The second one's
  ``INSERT … ON CONFLICT DO NOTHING`` waits, on PostgreSQL, for the first one's
  transaction (READ COMMITTED), finds its committed row and inserts nothing; on SQLite
  the database lock serialises the writers, so the second finds the committed row the
  same way. The second then rolls its share back and answers with the first one's.
* Keys live at least ``idempotency_key_ttl_hours`` (24 h): ``purge_expired`` runs with
  the hourly outbox purge; after it the same key makes a new share (as Stripe's keys).

A key row holds no personal data: two hashes, the caller's ids and the share id.

Example::

    >>> key = RequestKey.of(caller, "3f0c…", values)
    >>> replay(db, key)                  # None: never seen, go on and share
    >>> record(db, key, share_id, now)   # True: this request owns the key (commit with the share)
    >>> replay(db, key)                  # later, the same request again
    <Share 7e1…>
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from services.referrals.exceptions import IdempotencyKeyInUse, IdempotencyKeyReused
from services.referrals.models import IdempotencyKey, Share
from weintervene.auth import AuthContext
from weintervene.config import settings
from weintervene.db import utcnow
from weintervene.errors import BadRequest

MAX_KEY_LENGTH = 255


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


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
    def where(self) -> tuple:
        return (IdempotencyKey.tenant_id == self.tenant_id, IdempotencyKey.user_id == self.user_id,
                IdempotencyKey.key_hash == self.key_hash)


def replay(db, key: RequestKey) -> Share | None:
    """The share a repeat of ``key``'s request answers with, or None when the key is new.

    Raises ``IdempotencyKeyReused`` when the caller used the key for another request.
    """
    row = db.scalar(select(IdempotencyKey).where(*key.where))
    return None if row is None else _share_of(db, row, key)


def record(db, key: RequestKey, share_id: str, now: datetime) -> bool:
    """Insert ``key`` for ``share_id`` in the caller's (open) transaction; False when a
    concurrent request committed the same key first (then roll back and ``replay_after_race``).

    ``ON CONFLICT DO NOTHING``: on PostgreSQL an uncommitted row with the same key makes
    this wait for that transaction's outcome, then insert (it rolled back) or skip (it
    committed), never fail; on SQLite the writer holding the database lock has committed.
    """
    from sqlalchemy.dialects import postgresql, sqlite

    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[db.get_bind().dialect.name]
    statement = (
        insert(IdempotencyKey)
        .values(tenant_id=key.tenant_id, user_id=key.user_id, key_hash=key.key_hash,
                request_hash=key.request_hash, share_id=share_id, created_at=now)
        .on_conflict_do_nothing(index_elements=["tenant_id", "user_id", "key_hash"])
        .returning(IdempotencyKey.key_hash)
    )
    return db.execute(statement).first() is not None


def replay_after_race(db, key: RequestKey) -> Share:
    """The winner's share, for the request that lost the race for ``key`` (after its rollback)."""
    row = db.scalar(select(IdempotencyKey).where(*key.where))
    if row is None:  # the winner's share was deleted in the meantime (an erasure)
        raise IdempotencyKeyInUse("Another request with this Idempotency-Key was being answered: send it again.")
    return _share_of(db, row, key)


def _share_of(db, row: IdempotencyKey, key: RequestKey) -> Share:
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
