"""The people and schools behind deletion requests, named for the auditor when a page is read.

The permanent record keeps ids only (``requested_by``, ``verified_by``, ``tenant_id``): a name
written into it would outlive the account's own deletion. So the auditor's list, detail and
CSV ask identity for the current names and roles of those staff accounts and the tenants'
names, in one call per page. An account or tenant deleted since is left out by identity and
shown as removed; if identity does not answer in time, the page still lists the requests
with their ids (``names_available`` false) rather than failing.
"""
from __future__ import annotations

import logging

import eventlet
from nameko.exceptions import RemoteError, UnknownService

from services.retention.deletions import _call
from weintervene.errors import WeInterveneError

log = logging.getLogger(__name__)

POLICY = "policy"  # requested_by of a request a retention policy made
BATCH = 500  # identity names at most this many ids per call


def name_requests(identity, items: list[dict]) -> list[dict]:
    """Add ``tenant_name``, ``requested_by_name``/``_role``, ``verified_by_name``/``_role``
    and ``names_available`` to each dumped request, in place; returns ``items``.

    Example: name_requests(identity_rpc, [{"requested_by": admin_id, "verified_by": None,
    "tenant_id": lincoln_id, …}]) -> [{…, "requested_by_name": "Ms. Patel",
    "requested_by_role": "school_admin", "tenant_name": "Lincoln Middle", …}]
    """
    for start in range(0, len(items), BATCH):
        _name_batch(identity, items[start:start + BATCH])
    return items


def _name_batch(identity, items: list[dict]) -> None:
    user_ids = sorted({i[key] for i in items for key in ("requested_by", "verified_by")
                       if i.get(key) and i[key] != POLICY})
    tenant_ids = sorted({i["tenant_id"] for i in items if i.get("tenant_id")})
    names = None
    if user_ids or tenant_ids:
        try:
            names = _call(identity.names_for_audit, user_ids, tenant_ids)
        except (eventlet.Timeout, WeInterveneError, RemoteError, UnknownService) as exc:
            log.warning("names for the audit pages unavailable: %s", type(exc).__name__)
    users = (names or {}).get("users", {})
    tenants = (names or {}).get("tenants", {})
    for item in items:
        item["names_available"] = names is not None
        item["tenant_name"] = tenants.get(item.get("tenant_id"))
        for key in ("requested_by", "verified_by"):
            person = users.get(item.get(key)) or {}
            if item.get(key) == POLICY:
                person = {"display_name": "Retention policy", "role": None}
            item[f"{key}_name"] = person.get("display_name")
            item[f"{key}_role"] = person.get("role")
