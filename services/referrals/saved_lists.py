"""Saved lists (favourites): a user's own, optionally shared with their school.

Example::

    >>> create_list(db, directory, auth, {"name": "Food pantries", "shared": True,
    ...     "service_ids": [a, b, c]})
    {"id": "…", "name": "Food pantries", "shared": true, "items": [{"service_id": a, …}]}
"""
from __future__ import annotations

from sqlalchemy import or_, select

from services.referrals.models import SavedList, SavedListItem
from services.referrals.schemas import SavedListCreateSchema, SavedListItemSchema, SavedListSchema
from services.referrals.sharing import visible_list
from weintervene.auth import STUDENT_DATA_ROLES, AuthContext
from weintervene.db import utcnow
from weintervene.errors import Forbidden
from weintervene.validation import load


def _caller(auth) -> AuthContext:
    return AuthContext.from_dict(auth).require(*STUDENT_DATA_ROLES)


def list_view(saved: SavedList) -> dict:
    return SavedListSchema().dump({
        "id": saved.id, "tenant_id": saved.tenant_id, "owner_id": saved.owner_id, "name": saved.name,
        "shared": saved.shared, "created_at": saved.created_at,
        "items": [{"service_id": i.service_id, "service_name": i.service_name, "added_at": i.added_at.isoformat()}
                  for i in saved.items],
    })


def _add(db, directory, auth, saved: SavedList, service_id: str) -> None:
    if any(item.service_id == service_id for item in saved.items):
        return  # adding twice is harmless
    service = directory.get_service(auth, service_id)  # NotFound when not visible to the caller
    saved.items.append(SavedListItem(service_id=service_id, service_name=service.get("name") or "", added_at=utcnow()))


def create_list(db, directory, auth, data) -> dict:
    caller = _caller(auth)
    values = load(SavedListCreateSchema(), data)
    saved = SavedList(tenant_id=caller.tenant_id, owner_id=caller.user_id, name=values["name"],
                      shared=values["shared"], created_at=utcnow())
    saved.items = []
    for service_id in dict.fromkeys(str(s) for s in values["service_ids"]):
        _add(db, directory, auth, saved, service_id)
    db.add(saved)
    db.commit()
    return list_view(saved)


def add_item(db, directory, auth, list_id: str, data) -> dict:
    caller = _caller(auth)
    values = load(SavedListItemSchema(), data)
    saved = _owned_list(db, caller, list_id)
    _add(db, directory, auth, saved, str(values["service_id"]))
    db.commit()
    return list_view(saved)


def _owned_list(db, caller: AuthContext, list_id: str) -> SavedList:
    saved = visible_list(db, caller, list_id)  # ListNotFound when the caller cannot see it
    if saved.owner_id != caller.user_id:
        raise Forbidden("Only the list's owner changes it.", code="list_forbidden")
    return saved


def remove_item(db, auth, list_id: str, service_id: str) -> dict:
    """Take a service off the caller's list (harmless when it is not on it); returns the list.

    Example: remove_item(db, auth, list_id, service_id)["items"]  # without that service
    """
    saved = _owned_list(db, _caller(auth), list_id)
    saved.items = [item for item in saved.items if item.service_id != service_id]
    db.commit()
    return list_view(saved)


def delete_list(db, auth, list_id: str) -> None:
    """Delete the caller's own list with its items."""
    db.delete(_owned_list(db, _caller(auth), list_id))
    db.commit()


def get_lists(db, auth) -> dict:
    """My lists and the lists shared within my school."""
    caller = _caller(auth)
    rows = db.scalars(
        select(SavedList)
        .where(SavedList.tenant_id == caller.tenant_id,
               or_(SavedList.owner_id == caller.user_id, SavedList.shared.is_(True)))
        .order_by(SavedList.created_at)
    ).all()
    items = [list_view(s) for s in rows]
    return {"items": items, "total": len(items), "page": 1, "per_page": max(len(items), 1)}
