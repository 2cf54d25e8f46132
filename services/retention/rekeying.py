"""Re-keying retention's subject references after a key rotation, and which keys they still need.

``subject_ref`` (a keyed hash of the subject id, with its key id: weintervene.hashing)
finds a subject's open request, its open inspection, and lets an auditor who knows an id
check that it was deleted. A request keeps its raw ``subject_id`` until it completes, and
an inspection its ``student_id``: those are recomputed under the current key. A completed
request, and every audit entry (append-only, hash-chained: never rewritten), keep the
key they were made with; that key is needed only to match them against an id an auditor
brings.

Example::

    >>> rekey(session)
    {"deletion_request.subject_ref": 1, "inspection_request.subject_ref": 1}
    >>> key_usage(session)["audit_entry.subject_ref"]
    {"0": 40, "1": 2}
"""
from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from services.retention.deletions import subject_ref
from services.retention.models import AuditEntry, DeletionRequest, InspectionRequest
from weintervene.hashing import key_id_of, keyring


def rekey(session) -> dict[str, int]:
    """Recompute under the current key every reference whose subject id is still known. Commits."""
    current = keyring().current_id
    changed = Counter()
    for req in session.scalars(select(DeletionRequest).where(DeletionRequest.subject_id.is_not(None))):
        if key_id_of(req.subject_ref) != current:
            req.subject_ref = subject_ref(req.subject_id)
            changed["deletion_request.subject_ref"] += 1
    for inspection in session.scalars(select(InspectionRequest).where(InspectionRequest.student_id.is_not(None))):
        if key_id_of(inspection.subject_ref) != current:
            inspection.subject_ref = subject_ref(inspection.student_id)
            changed["inspection_request.subject_ref"] += 1
    session.commit()
    return dict(changed)


def key_usage(session) -> dict[str, dict[str, int]]:
    """How many stored references each key id made, per column (audit entries included)."""
    usage = {name: Counter() for name in (
        "deletion_request.subject_ref", "inspection_request.subject_ref", "audit_entry.subject_ref")}
    for (ref,) in session.execute(select(DeletionRequest.subject_ref)):
        usage["deletion_request.subject_ref"][key_id_of(ref) or "?"] += 1
    for (ref,) in session.execute(select(InspectionRequest.subject_ref)):
        usage["inspection_request.subject_ref"][key_id_of(ref) or "?"] += 1
    for (data,) in session.execute(select(AuditEntry.data)):
        ref = (data or {}).get("subject_ref")
        if ref:
            usage["audit_entry.subject_ref"][key_id_of(ref) or "?"] += 1
    return {column: dict(counts) for column, counts in usage.items()}
