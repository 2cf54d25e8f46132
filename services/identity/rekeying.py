"""Re-keying identity's keyed hashes after a key rotation, and which keys they still need.

A fence is found by ``subject_hash`` and a roster import recognises a fenced student by
``roster_key_hash``; both are keyed hashes that record their key id (weintervene.hashing).
While a deletion is pending, the fence still holds the raw ``subject_id`` (and the student
row its roster key), so both hashes can be recomputed under the current key. A sealed fence
(the deletion applied, the raw id cleared) cannot: it keeps the key it was made with, and
that key stays needed (in ``WEINTERVENE_PREVIOUS_SECRET_KEYS``) for as long as the fence
must hold, or a re-import of that student would no longer be refused.

Example::

    >>> rekey(session)
    {"subject_fence.subject_hash": 3, "subject_fence.roster_key_hash": 2, "sso_configuration.client_secret": 1}
    >>> key_usage(session)
    {"subject_fence.subject_hash": {"1": 5, "0": 12}, "subject_fence.roster_key_hash": {"1": 4, "0": 9}}
"""
from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from services.identity.models import SsoConfiguration, Student, SubjectFence
from services.identity.rosters import roster_key_hash
from services.identity.students import subject_hash
from services.identity.single_sign_on import reseal_secrets
from weintervene.hashing import key_id_of, keyring
from weintervene.sealing import sealed_key_id


def rekey(session) -> dict[str, int]:
    """Recompute under the current key every fence hash whose preimage is still known. Commits."""
    current = keyring().current_id
    changed = Counter()
    for fence in session.scalars(select(SubjectFence).where(SubjectFence.subject_id.is_not(None))):
        if key_id_of(fence.subject_hash) != current:
            fence.subject_hash = subject_hash(fence.scope, fence.subject_id)
            changed["subject_fence.subject_hash"] += 1
        if fence.scope == "student" and fence.roster_key_hash and key_id_of(fence.roster_key_hash) != current:
            student = session.get(Student, fence.subject_id)
            if student is not None:
                fence.roster_key_hash = roster_key_hash(student.tenant_id, student.roster_key)
                changed["subject_fence.roster_key_hash"] += 1
    # Single sign-on client secrets are sealed (encrypted), not hashed: always re-sealable.
    resealed = reseal_secrets(session, current)
    if resealed:
        changed["sso_configuration.client_secret"] += resealed
    session.commit()
    return dict(changed)


def key_usage(session) -> dict[str, dict[str, int]]:
    """How many stored values each key id made, per column (what dropping a key would orphan)."""
    usage = {"subject_fence.subject_hash": Counter(), "subject_fence.roster_key_hash": Counter()}
    for stored_hash, stored_roster_hash in session.execute(
        select(SubjectFence.subject_hash, SubjectFence.roster_key_hash)
    ):
        usage["subject_fence.subject_hash"][key_id_of(stored_hash) or "?"] += 1
        if stored_roster_hash:
            usage["subject_fence.roster_key_hash"][key_id_of(stored_roster_hash) or "?"] += 1
    usage["sso_configuration.client_secret"] = Counter(
        sealed_key_id(sealed) or "?" for (sealed,) in session.execute(select(SsoConfiguration.client_secret_sealed)))
    return {column: dict(counts) for column, counts in usage.items()}
