"""Stable ids: the same foreign record always gets the same UUID.

Real exports carry numeric or free-text ids; we derive a uuid5 from the
source, the table and the foreign id, so a re-import finds the rows it made
before instead of duplicating them.

Example::

    >>> stable_id("dc-orservices", "service", "540866542533436")
    '6f0c…'   # the same on every run
"""
from __future__ import annotations

import uuid

NAMESPACE = uuid.UUID("0b6d3c1e-5a1f-4f0e-9a55-6c1f0d7e2a11")


def stable_id(*parts: object) -> str:
    return str(uuid.uuid5(NAMESPACE, ":".join(str(p) for p in parts)))


def as_uuid(value) -> str | None:
    """The canonical text of ``value`` when it is a UUID, else None."""
    if value is None:
        return None
    text = str(value).strip()
    if len(text) < 32:  # shorter than any spelling uuid.UUID reads (numeric ids): spare the exception
        return None
    try:
        return str(uuid.UUID(str(value).strip()))
    except ValueError:
        return None
