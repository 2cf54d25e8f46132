"""Keeping the search document of each service in step with the HSDS rows.

Search reads one denormalised row per service (``ServiceSearch``), its weekly
hours (``ServiceHours``), its result card (``ServiceCard``) and, on SQLite, the
FTS5 table ``service_fts``.
:func:`reindex` rebuilds them for some services from the HSDS tables; every
write path (import, operator edits, demo load) calls it in the same
transaction, so search never sees half an edit.

Example::

    reindex(session, ["5f0e…"])   # after changing the service or its locations
    session.commit()
"""
from __future__ import annotations

import re
from collections import defaultdict

from sqlalchemy import delete, select, text

from services.directory.geo import postcode_centroid
from services.directory.models import (
    Address, Attribute, CostOption, Language, Location, Organization, Schedule, SearchWord,
    Service, ServiceArea, ServiceAtLocation, ServiceCard, ServiceHours, ServiceSearch,
)
from services.directory.schedules import DAYS, weekly_hours
from services.directory.taxonomy import TermTree
from weintervene.db import bulk_insert

CHUNK = 500
WORD = re.compile(r"[a-z]{3,30}")

LANGUAGE_CODES = {
    "english": "en", "spanish": "es", "español": "es", "espanol": "es", "chinese": "zh", "mandarin": "zh",
    "cantonese": "zh", "french": "fr", "vietnamese": "vi", "tagalog": "tl", "korean": "ko",
    "amharic": "am", "arabic": "ar", "russian": "ru", "portuguese": "pt", "haitian creole": "ht",
    "creole": "ht", "farsi": "fa", "persian": "fa", "hindi": "hi", "urdu": "ur", "german": "de",
    "italian": "it", "japanese": "ja", "polish": "pl", "somali": "so", "tigrinya": "ti", "asl": "sgn",
    "american sign language": "sgn", "sign language": "sgn", "bengali": "bn", "nepali": "ne",
}
FREE = re.compile(r"\b(free|no cost|no charge|no fee|without charge)\b", re.I)
LOW = re.compile(r"(sliding[- ]scale|low[- ]cost|reduced|donation|income[- ]based|discount|subsidi[sz]ed|nominal)", re.I)
PAID = re.compile(r"(\$\s*\d|\bfee\b|\bfees\b|\bcharge\b|\bcost\b)", re.I)


def language_code(name: str | None, code: str | None = None) -> str | None:
    """ISO 639-1 code for a language given by code or English name ("Spanish" -> "es")."""
    if code and code.strip():
        c = code.strip().lower()
        return {"eng": "en", "spa": "es", "zho": "zh", "fra": "fr"}.get(c, c)
    if name and name.strip():
        return LANGUAGE_CODES.get(name.strip().lower())
    return None


def cost_class(amounts: list[float | None], texts: list[str]) -> str:
    """free / low / paid / unknown, from cost options and fee texts (free wins)."""
    joined = " ".join(t for t in texts if t)
    if any(a is not None and a == 0 for a in amounts) or FREE.search(joined):
        return "free"
    if LOW.search(joined):
        return "low"
    if any(a is not None and a > 0 for a in amounts) or PAID.search(joined):
        return "paid"
    return "unknown"


def _bar(values) -> str:
    values = sorted({v for v in values if v})
    return "|" + "".join(f"{v}|" for v in values) if values else "|"


SLOT_MINUTES = 30
OPEN_COLUMNS = {day: f"open_{day.lower()}" for day in DAYS}


def tag(kind: str, value: str) -> str:
    """One filter token of the full-text index ("tlanges0"): letters and digits only, so both
    tokenizers keep it whole, and ending in a digit, so the porter stemmer leaves it alone."""
    return "t" + kind + re.sub(r"[^0-9a-z]", "", value.lower()) + "0"


def search_tags(languages: str, cost: str, term_ids: str, days=()) -> str:
    """The filter tokens of a search row: its languages, cost class, categories (with
    ancestors) and the days it has opening hours on.

    They sit in the full-text index beside the words, so a language, cost or category filter
    (and the day of "open at") narrows the keyword matches inside the index instead of row by row.

    >>> search_tags("|en|es|", "free", "|5f0e…|", ["TU"])
    'tcat5f0e0 tcostfree0 tlangen0 tlanges0 topentu0'
    """
    tokens = {tag("lang", v) for v in languages.strip("|").split("|") if v}
    tokens |= {tag("cat", v) for v in term_ids.strip("|").split("|") if v}
    tokens |= {tag("open", d) for d in days}
    tokens.add(tag("cost", cost or "unknown"))
    return " ".join(sorted(tokens))


def _minutes(hhmm: str) -> int:
    return int(hhmm[:2]) * 60 + int(hhmm[3:5])


def open_slots(hours) -> dict:
    """Weekly hours as one bitmap per day of the half hours that are open from start to end
    (bit n: n*30 minutes after midnight), and whether any hours start or end off the half hour.

    "Open at 16:30 on Tuesday" is then ``open_tu & (1 << 33)``, read from the search row; the
    services whose hours are not on half hours (``hours_unaligned``) are also checked against
    their exact hours (``service_hours``).

    >>> open_slots([("TU", "16:00", "17:00")])["open_tu"]
    12884901888
    """
    slots = {column: 0 for column in OPEN_COLUMNS.values()}
    unaligned = False
    for day, opens, closes in hours:
        start, end = _minutes(opens), _minutes(closes)
        if start % SLOT_MINUTES or end % SLOT_MINUTES:
            unaligned = True
        for slot in range(-(-start // SLOT_MINUTES), end // SLOT_MINUTES):
            slots[OPEN_COLUMNS[day]] |= 1 << slot
    slots["hours_unaligned"] = unaligned
    return slots


def _group(rows, key):
    grouped = defaultdict(list)
    for r in rows:
        grouped[getattr(r, key)].append(r)
    return grouped


def reindex(session, service_ids) -> int:
    """Rebuild the search rows of ``service_ids`` (deleted services lose theirs)."""
    ids = sorted(set(service_ids))
    tree = None
    done = 0
    words: set[str] = set()  # the vocabulary grows once per call: one lookup, not one per chunk
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        if tree is None:
            TermTree.invalidate()
            tree = TermTree.load(session)
        done += _reindex_chunk(session, chunk, tree, words)
    add_words(session, words)
    return done


def _rows(session, model, *where):
    """The table's rows as read-only tuples with attribute access (``row.service_id``): the
    index reads them once, so building and tracking ORM objects would be wasted work (it was
    a third of an import's CPU)."""
    return session.execute(select(model.__table__).where(*where)).all()


def _reindex_chunk(session, ids, tree, words: set) -> int:
    services = {s.id: s for s in _rows(session, Service, Service.id.in_(ids))}
    sals = _group(_rows(session, ServiceAtLocation, ServiceAtLocation.service_id.in_(ids)), "service_id")
    location_ids = {sal.location_id for rows in sals.values() for sal in rows if sal.location_id}
    sal_ids = {sal.id for rows in sals.values() for sal in rows}
    locations = {l.id: l for l in _rows(session, Location, Location.id.in_(location_ids))} if location_ids else {}
    addresses = _group(_rows(session, Address, Address.location_id.in_(location_ids)), "location_id") if location_ids else {}
    org_ids = {s.organization_id for s in services.values() if s.organization_id}
    orgs = dict(session.execute(select(Organization.id, Organization.name).where(Organization.id.in_(org_ids))).all()) if org_ids else {}
    attrs = _group(_rows(session, Attribute, Attribute.link_id.in_(ids)), "link_id")
    langs_by_service = _group(_rows(session, Language, Language.service_id.in_(ids)), "service_id")
    langs_by_location = _group(_rows(session, Language, Language.location_id.in_(location_ids)), "location_id") if location_ids else {}
    costs = _group(_rows(session, CostOption, CostOption.service_id.in_(ids)), "service_id")
    areas = _group(_rows(session, ServiceArea, ServiceArea.service_id.in_(ids)), "service_id")
    scheds_by_service = _group(_rows(session, Schedule, Schedule.service_id.in_(ids)), "service_id")
    scheds_by_location = _group(_rows(session, Schedule, Schedule.location_id.in_(location_ids), Schedule.service_id.is_(None)), "location_id") if location_ids else {}
    scheds_by_sal = _group(_rows(session, Schedule, Schedule.service_at_location_id.in_(sal_ids), Schedule.service_id.is_(None)), "service_at_location_id") if sal_ids else {}

    existing = dict(session.execute(select(ServiceSearch.service_id, ServiceSearch.id).where(ServiceSearch.service_id.in_(ids))).all())
    sqlite = session.bind.dialect.name == "sqlite"
    if existing and sqlite:
        session.execute(text("DELETE FROM service_fts WHERE rowid IN (%s)" % ",".join(str(int(i)) for i in existing.values())))
    session.execute(delete(ServiceHours).where(ServiceHours.service_id.in_(ids)))
    gone = [sid for sid in existing if sid not in services]
    if gone:
        session.execute(delete(ServiceSearch).where(ServiceSearch.service_id.in_(gone)))
        session.execute(delete(ServiceCard).where(ServiceCard.service_id.in_(gone)))

    docs, hours_rows = [], []
    for sid, s in services.items():
        term_ids, top_ids, term_names = set(), set(), []
        for a in attrs.get(sid, []):
            t = a.taxonomy_term_id
            info = tree.terms.get(t)
            if info is None:
                continue
            term_names.append(info["name"])
            term_ids.update(_ancestors(tree, t))
            top_ids.add(tree.top_level(t))
        locs = [locations[sal.location_id] for sal in sals.get(sid, []) if sal.location_id in locations]
        lat = lon = None
        postal = state = None
        for loc in locs:
            if lat is None and loc.latitude is not None and loc.longitude is not None:
                lat, lon = loc.latitude, loc.longitude
            for addr in addresses.get(loc.id, []):
                if postal is None and addr.postal_code:
                    postal, state = addr.postal_code, addr.state_province
        place = postcode_centroid(postal) if postal else None
        if lat is None and place is not None:
            # No coordinates in the file: the ZIP centroid places it for distance
            # search (only in the search row; the HSDS location stays as imported).
            lat, lon = place["latitude"], place["longitude"]
        languages = {language_code(l.name, l.code) for l in langs_by_service.get(sid, [])}
        for loc in locs:
            languages.update(language_code(l.name, l.code) for l in langs_by_location.get(loc.id, []))
        service_costs = costs.get(sid, [])
        cost = cost_class(
            [c.amount for c in service_costs],
            [s.fees or "", s.fees_description or ""] + [c.option or "" for c in service_costs] + [c.amount_description or "" for c in service_costs],
        )
        area_names = set()
        for a in areas.get(sid, []):
            for value in (a.name, a.extent):
                for piece in re.split(r"[,;|\n]", value or ""):
                    if piece.strip():
                        area_names.add(piece.strip().lower())
        body = " ".join(filter(None, [
            s.alternate_name, s.description, s.eligibility_description, orgs.get(s.organization_id),
            " ".join(term_names), s.fees, s.application_process,
        ]))
        name = s.name or ""
        doc = {
            "service_id": sid, "name": name, "body": body, "status": s.status or "active",
            "owner_tenant_id": s.owner_tenant_id, "owner_district_id": s.owner_district_id,
            "published_to": s.published_to or "tenant",
            "minimum_age": s.minimum_age, "maximum_age": s.maximum_age,
            "languages": _bar(languages), "cost": cost, "term_ids": _bar(term_ids), "top_term_ids": _bar(top_ids),
            "latitude": lat, "longitude": lon, "postal_code": postal, "state_province": state,
            "area_names": _bar(area_names), "timezone": place["timezone"] if place else None,
        }
        words.update(WORD.findall(f"{name} {body}".lower()))
        schedules = list(scheds_by_service.get(sid, []))
        for sal in sals.get(sid, []):
            schedules += scheds_by_sal.get(sal.id, [])
            schedules += scheds_by_location.get(sal.location_id, [])
        rows = [{"byday": x.byday, "opens_at": x.opens_at, "closes_at": x.closes_at, "freq": x.freq} for x in schedules]
        hours = weekly_hours(rows)
        hours_rows += [{"service_id": sid, "day": d, "opens_at": o, "closes_at": c} for d, o, c in hours]
        doc.update(open_slots(hours), tags=search_tags(doc["languages"], cost, doc["term_ids"], {h[0] for h in hours}))
        docs.append(doc)

    if docs:
        from services.directory.views import card, details

        doc_ids = [d["service_id"] for d in docs]
        session.execute(delete(ServiceCard).where(ServiceCard.service_id.in_(doc_ids)))
        items = details(session, doc_ids, cost_override={d["service_id"]: d["cost"] for d in docs})
        bulk_insert(session, ServiceCard, [{"service_id": item["id"], "card": card(item)} for item in items])
    new_docs = [d for d in docs if d["service_id"] not in existing]
    for doc in docs:
        row_id = existing.get(doc["service_id"])
        if row_id is not None:
            session.execute(ServiceSearch.__table__.update().where(ServiceSearch.id == row_id).values(**doc))
    if new_docs:
        bulk_insert(session, ServiceSearch, new_docs)
    if sqlite and docs:
        row_ids = dict(session.execute(select(ServiceSearch.service_id, ServiceSearch.id).where(ServiceSearch.service_id.in_([d["service_id"] for d in docs]))).all())
        session.execute(
            text("INSERT INTO service_fts (rowid, name, body, tags) VALUES (:rowid, :name, :body, :tags)"),
            [{"rowid": row_ids[d["service_id"]], "name": d["name"], "body": d["body"], "tags": d["tags"]} for d in docs],
        )
    if hours_rows:
        bulk_insert(session, ServiceHours, hours_rows)
    return len(docs)


def _ancestors(tree, term):
    seen = []
    current = term
    while current and current in tree.terms and current not in seen:
        seen.append(current)
        current = tree.terms[current]["parent_id"]
    return seen


def add_words(session, words) -> None:
    """Add unseen words to the vocabulary used for spelling suggestions."""
    words = {w for w in words if len(w) <= 60}
    if not words:
        return
    known = set()
    ordered = sorted(words)
    for start in range(0, len(ordered), 1000):
        part = ordered[start:start + 1000]
        known.update(session.scalars(select(SearchWord.word).where(SearchWord.word.in_(part))))
    new = [{"word": w} for w in ordered if w not in known]
    if new:
        bulk_insert(session, SearchWord, new)
