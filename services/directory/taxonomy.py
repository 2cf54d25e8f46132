"""Categories: the Open Eligibility taxonomy, carried with the package, loaded as HSDS.

The term list (``data/open_eligibility.csv``, CC BY-SA 3.0, see
``data/NOTICE.md``) is loaded at service start, idempotently, with uuid5 ids
derived from each term's code, so every installation gives a term the same id.
Imported taxonomies (a 211's own codes) live beside it in the same tables.

:class:`TermTree` answers "this term and all its descendants" for the category
filter and "its top-level category" for facets and analytics.

Example::

    >>> tree = TermTree.load(session)
    >>> tree.descendants(term_id("103"))        # Education and everything under it
    {'…', '…', …}
"""
from __future__ import annotations

import csv
import threading
import time
from pathlib import Path

from sqlalchemy import select

from services.directory.ids import stable_id
from services.directory.models import Taxonomy, TaxonomyTerm

DATA_FILE = Path(__file__).resolve().parent / "data" / "open_eligibility.csv"
OPEN_ELIGIBILITY_ID = stable_id("taxonomy", "open-eligibility")
OPEN_ELIGIBILITY_NAME = "Open Eligibility"


def term_id(code: str) -> str:
    """The id of the Open Eligibility term with ``code`` (e.g. "103-04")."""
    return stable_id("open-eligibility", code)


def open_eligibility_rows() -> list[dict]:
    with DATA_FILE.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def load_open_eligibility(session) -> int:
    """Insert or correct the Open Eligibility taxonomy; returns rows written."""
    written = 0
    taxonomy = session.get(Taxonomy, OPEN_ELIGIBILITY_ID)
    wanted = {
        "name": OPEN_ELIGIBILITY_NAME,
        "description": "Open Eligibility human services taxonomy (Aunt Bertha, CC BY-SA 3.0)",
        "uri": "http://openeligibility.org",
        "version": "2.0",
    }
    if taxonomy is None:
        session.add(Taxonomy(id=OPEN_ELIGIBILITY_ID, **wanted))
        written += 1
    existing = {t.id: t for t in session.scalars(select(TaxonomyTerm).where(TaxonomyTerm.taxonomy_id == OPEN_ELIGIBILITY_ID))}
    for row in open_eligibility_rows():
        code = row["taxonomy_id"].strip()
        values = {
            "code": code,
            "name": row["name"].strip(),
            "description": row["name"].strip(),
            "parent_id": term_id(row["parent_id"].strip()) if row["parent_id"].strip() else None,
            "taxonomy": OPEN_ELIGIBILITY_NAME,
            "taxonomy_id": OPEN_ELIGIBILITY_ID,
            "language": "en",
        }
        current = existing.get(term_id(code))
        if current is None:
            session.add(TaxonomyTerm(id=term_id(code), **values))
            written += 1
        elif any(getattr(current, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(current, k, v)
            written += 1
    session.commit()
    TermTree.invalidate()
    return written


class TermTree:
    """Every term with its parent, children and top-level ancestor (cached briefly)."""

    _cache: "TermTree | None" = None
    _loaded_at = 0.0
    _lock = threading.Lock()
    TTL_SECONDS = 30.0

    def __init__(self, terms):
        self.terms = {t["id"]: t for t in terms}
        self.children: dict[str, list[str]] = {}
        for t in terms:
            if t["parent_id"]:
                self.children.setdefault(t["parent_id"], []).append(t["id"])

    @classmethod
    def load(cls, session) -> "TermTree":
        with cls._lock:
            if cls._cache is not None and time.monotonic() - cls._loaded_at < cls.TTL_SECONDS:
                return cls._cache
        rows = session.execute(
            select(TaxonomyTerm.id, TaxonomyTerm.name, TaxonomyTerm.code, TaxonomyTerm.parent_id, TaxonomyTerm.taxonomy_id)
        ).all()
        tree = cls([{"id": r[0], "name": r[1], "code": r[2], "parent_id": r[3], "taxonomy_id": r[4]} for r in rows])
        with cls._lock:
            cls._cache, cls._loaded_at = tree, time.monotonic()
        return tree

    @classmethod
    def invalidate(cls) -> None:
        with cls._lock:
            cls._cache = None

    def descendants(self, term: str) -> set[str]:
        """``term`` and every term below it."""
        found, stack = set(), [term]
        while stack:
            current = stack.pop()
            if current in found:
                continue
            found.add(current)
            stack.extend(self.children.get(current, ()))
        return found

    def top_level(self, term: str) -> str:
        seen = set()
        current = term
        while current in self.terms and self.terms[current]["parent_id"] and current not in seen:
            seen.add(current)
            parent = self.terms[current]["parent_id"]
            if parent not in self.terms:
                break
            current = parent
        return current

    def path(self, term: str) -> list[str]:
        """The ids from the top-level term down to ``term`` (inclusive); cycles and missing
        parents end the walk. Example: path("…Counseling") -> [care_id, mental_health_care_id, counseling_id]."""
        chain, seen, current = [], set(), term
        while current in self.terms and current not in seen:
            seen.add(current)
            chain.append(current)
            current = self.terms[current]["parent_id"]
        return chain[::-1]

    def info(self, term: str) -> dict | None:
        t = self.terms.get(term)
        if t is None:
            return None
        top = self.top_level(term)
        return {
            "id": t["id"], "name": t["name"], "code": t["code"], "parent_id": t["parent_id"],
            "top_level_id": top, "top_level_name": self.terms.get(top, t)["name"],
            # Top level first: analytics shows categories at the level people recognise
            # (Open Eligibility's second, "Mental Health Care", not "Care").
            "ancestors": [{"id": a, "name": self.terms[a]["name"]} for a in self.path(term)],
        }

    def top_levels(self, taxonomy_id: str | None = OPEN_ELIGIBILITY_ID) -> list[dict]:
        return sorted(
            (t for t in self.terms.values() if not t["parent_id"] and (taxonomy_id is None or t["taxonomy_id"] == taxonomy_id)),
            key=lambda t: t["code"] or t["name"],
        )
