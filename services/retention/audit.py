"""The append-only, hash-chained audit log of retention.

Each entry's hash is ``sha256(prev_hash + canonical JSON of the entry)``, where
the canonical JSON holds the entry's sequence number, time, event, request id
and data (sorted keys, no spaces). Editing, inserting or removing a past entry
breaks the chain at that entry; :func:`verify_chain` finds the first break.
Entries are appended in the same transaction as the state change they record.

On PostgreSQL an advisory lock serialises appends, so two workers never chain
onto the same predecessor; a trigger (see the migration) refuses UPDATE and
DELETE on the table, so only someone who disables it can tamper, and the chain
then tells.

Example::

    >>> append(session, "request_created", request_id=r.id, data={"scope": "student"})
    >>> verify_chain(session)
    {"ok": True, "entries": 12, "first_broken": None, "head_hash": "9f2c…"}
"""
from __future__ import annotations

import hashlib
import json
import zlib
from datetime import datetime, timezone

from sqlalchemy import select, text

from services.retention.models import AuditEntry
from weintervene.db import utcnow

GENESIS_HASH = "0" * 64
_LOCK_KEY = zlib.crc32(b"retention.audit_entry")


def canonical(seq: int, at: datetime, event: str, request_id: str | None, data: dict) -> str:
    """The exact bytes (as text) that are hashed for one entry."""
    return json.dumps(
        {"seq": seq, "at": at.astimezone(timezone.utc).isoformat(timespec="microseconds"), "event": event,
         "request_id": request_id, "data": data},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str,
    )


def entry_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def append(session, event: str, request_id: str | None = None, data: dict | None = None) -> AuditEntry:
    """Add the next entry to the chain in the caller's transaction (the caller commits)."""
    if session.bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    last = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).first()
    seq = (last.seq + 1) if last else 1
    prev = last.hash if last else GENESIS_HASH
    # Microsecond precision survives both databases, so the hash recomputes.
    at = utcnow()
    data = json.loads(json.dumps(data or {}, default=str))
    body = canonical(seq, at, event, request_id, data)
    entry = AuditEntry(seq=seq, at=at, event=event, request_id=request_id, data=data,
                       prev_hash=prev, hash=entry_hash(prev, body))
    session.add(entry)
    session.flush()
    return entry


def verify_chain(session, batch: int = 1000) -> dict:
    """Recompute every hash in order; report the first entry that does not fit.

    Returns ``{"ok", "entries", "first_broken": {"seq", "reason"} | None, "head_hash"}``.
    """
    expected_prev = GENESIS_HASH
    expected_seq = 1
    count = 0
    last_seq = 0
    while True:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.seq > last_seq).order_by(AuditEntry.seq).limit(batch)
        ).all()
        if not rows:
            break
        for entry in rows:
            count += 1
            broken = None
            if entry.seq != expected_seq:
                broken = f"entries {expected_seq}..{entry.seq - 1} are missing"
            elif entry.prev_hash != expected_prev:
                broken = "prev_hash does not match the previous entry's hash"
            elif entry.hash != entry_hash(
                entry.prev_hash, canonical(entry.seq, entry.at, entry.event, entry.request_id, entry.data)
            ):
                broken = "the entry's content does not match its hash (edited)"
            if broken:
                return {"ok": False, "entries": count, "first_broken": {"seq": entry.seq, "reason": broken},
                        "head_hash": None}
            expected_prev = entry.hash
            expected_seq = entry.seq + 1
            last_seq = entry.seq
        session.expunge_all()
    return {"ok": True, "entries": count, "first_broken": None,
            "head_hash": expected_prev if count else GENESIS_HASH}
