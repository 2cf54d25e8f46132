"""The data-holding side of deletion: every service that stores tenant or personal
data mixes in :class:`DeletionParticipant`.

Retention publishes ``deletion_requested`` to each service's durable queue; the
participant loads it with the shared contract, deletes idempotently in one
transaction (the service's ``delete_for``), stages ``deletion_completed`` in its
outbox in that same transaction. A copy arriving while the same request is still
being carried out (a re-send during a long termination) is skipped
(:func:`claim_request`). New data about the subject is kept out by identity's
fence (``identity.fence_subject``), set before dispatch.

A request can still run more than once (a copy redelivered after a broker restart,
a re-send), and a later run finds (almost) nothing left. So each run adds its
counts to the service's *deletion receipt* for the request (:func:`add_to_receipt`,
same transaction), and every confirmation carries the receipt's totals over all
runs and the first run's completion time: whichever copy reaches retention first
says what the service really deleted, never the zeros of a repeat (and retention
takes a later confirmation that counts more, see ``record_confirmation``).

Deleted means gone from the database files too: ``delete_for`` marks the tables whose
deleted rows held personal data, and after the commit they are scrubbed
(:mod:`weintervene.remnants`: SQLite's WAL checkpointed and truncated, PostgreSQL's
tables rewritten) before the confirmation is staged.

Example::

    class AnalyticsService(DeletionParticipant, OutboxRelay):
        name = "analytics"
        outbox_model = OutboxMessage          # make_outbox_model(Base)
        receipt_model = DeletionReceipt       # make_deletion_receipt_model(Base)
        ...
        def delete_for(self, request: dict) -> dict[str, int]:
            if request["scope"] != "tenant":
                return {}
            n = self.db.execute(delete(Counter).where(Counter.tenant_id.in_(request["tenant_ids"]))).rowcount
            return {"counters": n}
"""
from __future__ import annotations

import hashlib
import logging
import time

from marshmallow import ValidationError
from nameko.events import SERVICE_POOL
from sqlalchemy import Integer, String, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Mapped, mapped_column

from weintervene.contracts import (
    DELETION_COMPLETED, DELETION_REQUESTED, DeletionCompleted, DeletionRequested,
)
from weintervene.db import JSONType, UTCDateTime, utcnow
from weintervene.messaging import event_handler, outbox_add, relay_outbox
from weintervene.remnants import forget_marks, scrub, tables_marked

log = logging.getLogger(__name__)

# PostgreSQL's "deadlock detected" and "could not serialize": the transaction did nothing
# and may simply run again (a deletion meets the delivery worker on the same rows).
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
DELETION_ATTEMPTS = 4


def sqlstate(exc: DBAPIError) -> str | None:
    """The SQLSTATE of a PostgreSQL error (psycopg2's ``pgcode``); None for SQLite's."""
    return getattr(exc.orig, "pgcode", None)


def claim_request(session, service: str, request_id: str) -> bool:
    """Whether this worker may carry out ``request_id`` now: False while another worker
    of the service (in any instance) is carrying it out.

    A big termination outlasts retention's re-send timeout; without this the re-sent
    copy would start the same deletion again and wait on every row the first one
    holds. The transaction-level advisory lock (PostgreSQL) ends with the deletion's
    commit; a copy skipped here is harmless, since retention re-sends until confirmed.
    """
    if session.get_bind().dialect.name != "postgresql":
        return True  # SQLite: one writer at a time anyway
    digest = hashlib.sha256(f"deletion:{service}:{request_id}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    return bool(session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key}).scalar())


def make_deletion_receipt_model(base):
    """The deletion receipts in one data service's own database: per request carried
    out, the rows it deleted over every run of that request.

    No personal data: a request id (retention's, not the subject's) and counts per
    table. So the receipt outlives the deletion it describes, and is what lets the
    service prove what it deleted. Kept for good, like retention's audit record (one
    small row per request); no purge removes it.

    Example: ``DeletionReceipt = make_deletion_receipt_model(Base)``  # in models.py
    """

    class DeletionReceipt(base):
        __tablename__ = "deletion_receipt"
        request_id: Mapped[str] = mapped_column(String(36), primary_key=True)
        counts: Mapped[dict] = mapped_column(JSONType)  # running totals {table_or_kind: rows}
        runs: Mapped[int] = mapped_column(Integer, default=1)
        first_completed_at = mapped_column(UTCDateTime, nullable=False)
        last_run_at = mapped_column(UTCDateTime, nullable=False)

    return DeletionReceipt


def add_to_receipt(session, model, request_id: str, counts: dict):
    """Add one run's ``counts`` to the receipt of ``request_id`` (created by the first
    run) in the caller's transaction; returns the receipt, its ``counts`` the totals.

    Called under :func:`claim_request`, so two runs of one request never both read
    the receipt before either commits.

    Example: add_to_receipt(db, DeletionReceipt, rid, {"shares": 0})  # .counts -> {"shares": 2}
    """
    now = utcnow()
    # populate_existing: read what is committed, not an object the session still holds.
    receipt = session.get(model, request_id, populate_existing=True)
    if receipt is None:
        receipt = model(request_id=request_id, counts=dict(counts), runs=1,
                        first_completed_at=now, last_run_at=now)
        session.add(receipt)
        return receipt
    totals = dict(receipt.counts or {})
    for kind, n in counts.items():
        totals[kind] = totals.get(kind, 0) + n
    receipt.counts = totals  # a new dict: JSON columns do not see changes made in place
    receipt.runs = (receipt.runs or 1) + 1
    receipt.last_run_at = now
    return receipt


def completion_payload(service: str, request_id: str, counts: dict, completed_at=None) -> dict:
    return DeletionCompleted().dump({
        "request_id": request_id, "service": service, "counts": counts,
        "completed_at": completed_at or utcnow(),
    })


class DeletionParticipant:
    """Mixin: handle ``retention.deletion_requested`` and confirm with counts.

    The service defines ``db``, ``outbox_model`` (and relays its outbox with
    :class:`weintervene.messaging.OutboxRelay`), ``receipt_model``
    (:func:`make_deletion_receipt_model`), and ``delete_for(request)`` returning
    ``{table_or_kind: rows_deleted}``. ``request`` is the loaded contract with
    ids as strings. The confirmation carries the receipt's totals over every run.

    ``delete_for`` marks the tables whose deleted rows held personal data
    (:func:`weintervene.remnants.mark_for_scrub`); they are rewritten after the commit,
    before the confirmation is staged. ``tables_with_personal_data`` names every such
    table of the service: a repeat run rewrites them all.
    """

    tables_with_personal_data: tuple[str, ...] = ()

    @event_handler("retention", DELETION_REQUESTED, handler_type=SERVICE_POOL, reliable_delivery=True)
    def on_deletion_requested(self, payload):
        try:
            request = DeletionRequested().load(payload)
        except ValidationError as exc:
            log.error("rejected a deletion request outside the contract: %s", exc.messages)
            return
        if request["services"] and self.name not in request["services"]:
            # A re-send addressed to the services that have not confirmed yet.
            return
        request = {
            **request,
            "request_id": str(request["request_id"]),
            "tenant_id": str(request["tenant_id"]),
            "subject_id": str(request["subject_id"]),
            "tenant_ids": [str(t) for t in request["tenant_ids"]] or [str(request["tenant_id"])],
        }
        scrubbing: set[str] = set()
        for attempt in range(1, DELETION_ATTEMPTS + 1):
            try:
                if not claim_request(self.db, self.name, request["request_id"]):
                    self.db.rollback()
                    log.info("%s is already carrying out request %s; this copy is skipped",
                             self.name, request["request_id"])
                    return
                counts = self.delete_for(request)
                receipt = add_to_receipt(self.db, self.receipt_model, request["request_id"], counts)
                scrubbing = tables_marked(self.db)
                if receipt.runs > 1:
                    # A repeat cannot tell whether the first run's scrub happened (a crash
                    # between its commit and the rewrite): every table that can hold
                    # personal data is rewritten.
                    scrubbing |= set(self.tables_with_personal_data)
                if not scrubbing:
                    self._stage_confirmation(request, receipt)
                self.db.commit()
                break
            except DBAPIError as exc:
                self.db.rollback()
                forget_marks(self.db)
                if sqlstate(exc) not in RETRYABLE_SQLSTATES or attempt == DELETION_ATTEMPTS:
                    raise
                log.warning("%s: request %s met %s; trying again", self.name, request["request_id"], sqlstate(exc))
                time.sleep(0.05 * attempt)  # green under eventlet
        # The deleted rows' bytes out of the files (weintervene.remnants), and only then
        # the confirmation: "completed" at retention means gone from the files too. A
        # scrub that fails raises here, unconfirmed; retention re-sends, the repeat scrubs.
        scrub(self.db.get_bind(), scrubbing)
        if scrubbing:
            self._stage_confirmation(request, receipt)
            self.db.commit()
        log.info("%s deleted %s for request %s (run %d; in all %s)",
                 self.name, counts, request["request_id"], receipt.runs, receipt.counts)
        if getattr(self, "events", None) is not None:
            # Confirm now rather than at the next relay tick (an opt-out should
            # be confirmed everywhere within a second); the timer still retries.
            relay_outbox(self.db, self.outbox_model, self.events, self.name)

    def _stage_confirmation(self, request: dict, receipt) -> None:
        # The totals, not this run's counts: a repeat deletes nothing and would
        # otherwise confirm zeros, which retention may record first.
        outbox_add(
            self.db, self.outbox_model, DELETION_COMPLETED,
            completion_payload(self.name, request["request_id"], receipt.counts, receipt.first_completed_at),
        )

    def delete_for(self, request: dict) -> dict:  # pragma: no cover - each service overrides
        raise NotImplementedError
