"""HSDS 3.1 documents (valid as 3.0 too) from our tables: the shapes of the spec's compiled schemas.

``data/hsds_shapes.json`` holds the property tree of each HSDS response schema
(service, service_list, organization, organization_list, service_at_location,
service_at_location_list, taxonomy, taxonomy_term). :func:`document` walks that
tree, emitting only properties the schema has (so strict validation passes),
leaving out empty values (HSDS types are not nullable), and following the
relations in :data:`RELATIONS` to nest related rows.

Edit history (``metadata``) is nested only at the top of a document: the spec
allows it everywhere, but repeating it on every phone adds nothing.

Example::

    >>> loader = Loader(session)
    >>> document(loader, "service", loader.get("service", "ac148810-…"))
    {"id": "ac148810-…", "name": "Community Counselling", "status": "active",
     "organization": {"id": "…", "name": "…", "description": "…"}, "phones": [...], ...}
"""
from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from sqlalchemy import inspect, select

from services.directory.models import HSDS_TABLES, Metadata

SHAPES_FILE = Path(__file__).resolve().parent / "data" / "hsds_shapes.json"
HSDS_VERSION = "3.1"

# (parent kind, property) -> (child kind, how): ("fk", column on the parent
# holding the child's id) or ("back", column on the child holding the parent's id).
RELATIONS = {
    "organization": ("organization", "fk", "organization_id"),
    "program": ("program", "fk", "program_id"),
    "location": ("location", "fk", "location_id"),
    "service": ("service", "fk", "service_id"),
    "taxonomy_term": ("taxonomy_term", "fk", "taxonomy_term_id"),
    "taxonomy_detail": ("taxonomy", "fk", "taxonomy_id"),
    "phones": ("phone", "back", None),
    "schedules": ("schedule", "back", None),
    "service_areas": ("service_area", "back", None),  # a service's, or (3.1) a service at a location's
    "service_at_locations": ("service_at_location", "back", "service_id"),
    "languages": ("language", "back", None),
    "cost_options": ("cost_option", "back", "service_id"),
    "contacts": ("contact", "back", None),
    "addresses": ("address", "back", "location_id"),
    "accessibility": ("accessibility", "back", "location_id"),
    "locations": ("location", "back", "organization_id"),
    "programs": ("program", "back", "organization_id"),
    "services": ("service", "back", "organization_id"),
    "attributes": ("attribute", "back", "link_id"),
    "metadata": ("metadata", "back", "resource_id"),
    # HSDS 3.1
    "capacities": ("service_capacity", "back", "service_id"),
    "unit": ("unit", "fk", "unit_id"),
    "additional_urls": ("url", "back", "service_id"),
    "additional_websites": ("url", "back", "organization_id"),
}
# The column of a child naming its parent, when it depends on the parent kind.
BACK_COLUMN = {
    "service": "service_id", "location": "location_id", "organization": "organization_id",
    "service_at_location": "service_at_location_id", "contact": "contact_id", "phone": "phone_id",
}
# Columns of ours that are not HSDS (never emitted).
PRIVATE = {"owner_tenant_id", "owner_district_id", "published_to"}


@lru_cache(maxsize=1)
def shapes() -> dict:
    return json.loads(SHAPES_FILE.read_text(encoding="utf-8"))


def row_dict(obj) -> dict:
    """Column values of a model instance (HSDS names), private columns removed."""
    values = {}
    for attr in inspect(obj).mapper.column_attrs:
        if attr.key in PRIVATE:
            continue
        values[attr.key] = getattr(obj, attr.key)
    return values


def _plain(value):
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class Loader:
    """Fetches related rows, remembering what it fetched (one query per relation key).

    ``prefetch()`` loads whole tables first, for exports of the whole directory.
    """

    def __init__(self, session, visible_service=None):
        self.session = session
        self.by_id: dict[tuple[str, str], object] = {}
        self.by_column: dict[tuple[str, str, str], list] = {}
        self.complete: set[str] = set()
        self.visible_service = visible_service or (lambda service: True)

    def prefetch(self, kinds=None) -> "Loader":
        for kind in kinds or list(HSDS_TABLES) + ["metadata"]:
            model = Metadata if kind == "metadata" else HSDS_TABLES[kind]
            grouped = defaultdict(lambda: defaultdict(list))
            for obj in self.session.scalars(select(model).order_by(model.id)):
                self.by_id[(kind, obj.id)] = obj
                for col in list(BACK_COLUMN.values()) + ["link_id", "resource_id"]:
                    if hasattr(obj, col) and getattr(obj, col):
                        grouped[col][getattr(obj, col)].append(obj)
            for col, values in grouped.items():
                for value, rows in values.items():
                    self.by_column[(kind, col, value)] = rows
            self.complete.add(kind)
        return self

    def get(self, kind: str, ident: str | None):
        if not ident:
            return None
        key = (kind, ident)
        if key not in self.by_id:
            if kind in self.complete:
                return None
            model = Metadata if kind == "metadata" else HSDS_TABLES[kind]
            self.by_id[key] = self.session.get(model, ident)
        return self.by_id[key]

    def children(self, kind: str, column: str, value: str) -> list:
        key = (kind, column, value)
        if key not in self.by_column:
            if kind in self.complete:
                return []
            model = Metadata if kind == "metadata" else HSDS_TABLES[kind]
            self.by_column[key] = list(self.session.scalars(select(model).where(getattr(model, column) == value).order_by(model.id)))
        return self.by_column[key]


def document(loader: Loader, shape_name: str, obj, kind: str | None = None, depth: int = 0, seen=()) -> dict:
    """The HSDS document of ``obj`` in the shape ``shape_name`` (a key of shapes())."""
    return _shape(loader, shapes()[shape_name], kind or shape_name.replace("_list", ""), obj, depth, seen)


def _shape(loader, shape: dict, kind: str, obj, depth: int, seen) -> dict:
    values = row_dict(obj)
    out = {}
    for prop, nested in shape.items():
        if nested is None:
            value = values.get(prop)
            if value is None:
                continue
            out[prop] = _plain(value)
            continue
        if prop == "metadata" and depth > 0:
            continue
        relation = RELATIONS.get(prop)
        if relation is None:
            continue  # funding, accessibility...: not kept
        child_kind, how, column = relation
        if how == "fk":
            child = loader.get(child_kind, values.get(column))
            if child is None or (child_kind, child.id) in seen:
                continue
            if child_kind == "service" and not loader.visible_service(child):
                continue
            out[prop] = _shape(loader, nested["shape"], child_kind, child, depth + 1, seen + ((kind, obj.id),))
        else:
            column = column or BACK_COLUMN.get(kind)
            if column is None:
                continue
            children = loader.children(child_kind, column, obj.id)
            if child_kind == "service":
                children = [c for c in children if loader.visible_service(c)]
            if child_kind == "attribute":
                children = [c for c in children if (c.link_entity or "service") == kind]
            items = [
                _shape(loader, nested["shape"], child_kind, c, depth + 1, seen + ((kind, obj.id),))
                for c in children if (child_kind, c.id) not in seen
            ]
            if items:
                out[prop] = items
    return out


def page(contents: list, total: int, page_number: int, per_page: int) -> dict:
    """The HSDS ``Page`` wrapper."""
    total_pages = (total + per_page - 1) // per_page if per_page else 0
    return {
        "total_items": total,
        "total_pages": total_pages,
        "page_number": page_number,
        "size": len(contents),
        "first_page": page_number == 1,
        "last_page": page_number >= total_pages,
        "empty": len(contents) == 0,
        "contents": contents,
    }
