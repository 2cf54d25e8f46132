"""Educator search: ranked keywords with stemming, synonyms, categories, typo tolerance, filters, facets.

The query text is read first (``query_terms.understand``: concepts with their synonyms, Spanish
words and the taxonomy terms they name; age words; stop words dropped), then one code path
builds the SQL for both databases; only the keyword part differs:

* PostgreSQL: ``tsv @@`` the concepts as ``phraseto_tsquery('english', …)`` alternatives ANDed,
  ranked by ``ts_rank`` (generated ``tsv`` column, GIN index), misspellings corrected
  with pg_trgm similarity over the indexed vocabulary;
* SQLite: FTS5 with the porter stemmer, the same concepts as quoted phrases, ranked by ``bm25``
  (name weighs 10x), misspellings corrected with difflib over the vocabulary.

Services filed under a category the query names rank first; when fewer than ``RELAX_BELOW``
services match every concept, the partial matches are ranked after the full ones and the answer
says ``relaxed`` (see ``docs/SEARCH.md``).

Everything runs in SQL, in one statement (:func:`build_statement`): the matches
(visibility, status, ages, language, cost, category with all its descendants,
great-circle distance inside an indexed box, service area, open at) found once,
then the page (ordered, LIMIT/OFFSET) and the matches grouped for the total and
facet counts. Only the page's cards then leave the database: a result page is 20 compact cards
(``views.card``), the full service is ``get_service``.

With keywords, language, cost, category and the day of "open at" are tokens in
the same full-text index (``indexing.search_tags``), services with every word in
their name rank first, and a broad search reads a bounded number of matches
(``exact_limit``) and estimates its total and facets (``total_is_estimate``).

Example::

    >>> search(session, {"q": "tutoring", "postcode": "20001", "radius_miles": 5, "sort": "distance"},
    ...        viewer={"tenant_id": "…", "district_id": None, "kind": "school"}, cards=lambda ids: views.cards(session, ids))
    {"items": [{"id": "…", "name": "After-School Math Tutoring", "organization_name": "…", "distance_miles": 0.8, ...}],
     "total": 12, "total_is_estimate": False, "pages": 1, "page": 1, "per_page": 20, "facets": {...},
     "corrected_query": None, "relaxed": False}
"""
from __future__ import annotations

import difflib
import math
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import text

from services.directory import visibility
from services.directory.geo import bounding_box, postcode_centroid
from services.directory.indexing import OPEN_COLUMNS, SLOT_MINUTES, tag
from services.directory.query_terms import WORDS, QueryPlan, fold, loosened, synonyms, understand
from services.directory.schedules import DAYS
from services.directory.taxonomy import TermTree
from weintervene.config import settings
from weintervene.errors import BadRequest

DEFAULT_TIMEZONE = "America/New_York"
MAX_PER_PAGE = 100
# A keyword search matching fewer services than this in full is relaxed (partial matches ranked after).
RELAX_BELOW = 10


def grade_to_age(grade) -> int:
    """The usual age at the start of a US grade (K = 5, 1st = 6, ... 12th = 17)."""
    return 5 if str(grade).upper() in ("K", "0") else int(grade) + 5


def plan_query(session, q: str | None) -> QueryPlan | None:
    """The understood query (``query_terms.understand``) with the synonyms in force and every
    taxonomy's term names, or None when ``q`` has no word at all (punctuation only)."""
    if not q or not WORDS.findall(fold(q)):
        return None
    plan = understand(q, synonyms(settings().directory_search_synonyms_file), TermTree.load(session))
    return None if plan.empty else plan


def _fts_group(concept, name_only: bool = False) -> str:
    """One concept as an FTS5 expression: any of its phrases in the text, or any of its terms."""
    phrases = " OR ".join('"%s"' % p for p in concept.phrases)
    if name_only:
        return "({name} : (%s))" % phrases
    parts = ["{name body} : (%s)" % phrases]
    if concept.term_ids:
        parts.append("{tags} : (%s)" % " OR ".join(tag("cat", t) for t in concept.term_ids))
    return "(" + " OR ".join(parts) + ")"


def _fts_all(concepts, joiner: str, name_only: bool = False) -> str:
    return joiner.join(_fts_group(c, name_only) for c in concepts)


def _pg_group(concept, binds: dict, prefix: str, name_only: bool = False) -> str:
    """One concept as a PostgreSQL tsquery expression (phrases stemmed by the english config)."""
    parts = []
    for j, phrase in enumerate(concept.phrases):
        binds[f"{prefix}_{j}"] = phrase
        parts.append(f"phraseto_tsquery('english', :{prefix}_{j})")
    if concept.term_ids and not name_only:
        binds[f"{prefix}_t"] = " | ".join(f"'{tag('cat', t)}'" for t in concept.term_ids)
        parts.append(f"CAST(:{prefix}_t AS tsquery)")
    return "(" + " || ".join(parts) + ")"


def _pg_all(concepts, binds: dict, prefix: str, joiner: str, name_only: bool = False) -> str:
    return "(" + f" {joiner} ".join(_pg_group(c, binds, f"{prefix}{i}", name_only) for i, c in enumerate(concepts)) + ")"


HAVERSINE = (
    "(2 * 3958.8 * asin(sqrt(power(sin(radians(ss.latitude - :o_lat) / 2), 2) + "
    "cos(radians(:o_lat)) * cos(radians(ss.latitude)) * power(sin(radians(ss.longitude - :o_lon) / 2), 2))))"
)


def tag_filters(params: dict, open_clauses=None) -> list[list[str]]:
    """The language, cost and category filters, and the days of "open at", as index tokens:
    a list of alternatives per filter."""
    filters = []
    if open_clauses:
        filters.append(sorted({tag("open", day) for _, day, _ in open_clauses}))
    if params.get("language"):
        filters.append([tag("lang", params["language"])])
    if params.get("cost") == "free":
        filters.append([tag("cost", "free")])
    elif params.get("cost") == "low":
        filters.append([tag("cost", "free"), tag("cost", "low")])
    if params.get("category"):
        filters.append([tag("cat", params["category"])])
    return filters


def _keyword_match(dialect: str, plan: QueryPlan, tags: list[list[str]], binds: dict, name_only: bool = False,
                   relaxed: bool = False) -> str:
    """The keyword condition: every concept of ``plan`` (``relaxed``: any of them), and the tag
    filters inside the same index lookup; ``name_only``: every concept in the name."""
    joiner = "OR" if relaxed else "AND"
    if dialect == "postgresql":
        words = _pg_all(plan.concepts, binds, "kw", "||" if relaxed else "&&")
        if not tags:
            condition = f"ss.tsv @@ {words}"
        else:
            binds["tagq"] = " & ".join("(" + " | ".join(f"'{t}'" for t in alts) + ")" for alts in tags)
            # numnode: a query of stop words alone matches nothing, as without filters (the planner
            # folds it to a constant); "AND" with the tags would otherwise leave the tags alone.
            condition = f"numnode({words}) > 0 AND ss.tsv @@ ({words} && CAST(:tagq AS tsquery))"
        if name_only:
            # The (small) name index finds the name matches; the filters still hold.
            named = f"to_tsvector('english', ss.name) @@ {_pg_all(plan.concepts, binds, 'kn', '&&', name_only=True)}"
            return named if not tags else f"{condition} AND {named}"
        return condition
    query = _fts_all(plan.concepts, f" {joiner} ", name_only)
    if relaxed:
        query = f"({query})"
    if tags:
        query += " AND {tags} : (%s)" % " AND ".join("(" + " OR ".join(alts) + ")" for alts in tags)
    key = "fts_named" if name_only else "fts"
    binds[key] = query
    return f"service_fts MATCH :{key}"


def _any_of(concepts):
    """One concept matching any of ``concepts`` (the age words of a query, as one preference)."""
    from services.directory.query_terms import Concept

    phrases, terms = [], []
    for c in concepts:
        phrases += [p for p in c.phrases if p not in phrases]
        terms += [t for t in c.term_ids if t not in terms]
    return Concept(" ".join(c.typed for c in concepts), tuple(phrases), tuple(terms))


def keyword_condition(dialect: str, plan: QueryPlan, binds: dict) -> str:
    """The condition "matches every concept of ``plan``" over ``service_search ss`` (PostgreSQL) or
    ``service_fts`` (SQLite), binds added to ``binds``: what the HSDS API's ``search`` filters by."""
    return _keyword_match(dialect, plan, [], binds)


def _matches_each(dialect: str, concepts, binds: dict, prefix: str, categories_only: bool = False) -> str:
    """How many of ``concepts`` a row matches (an SQL integer expression): coverage of a relaxed
    query, the preference for what the age words say and, ``categories_only``, for services
    filed under the categories the query names (their text need not say it)."""
    if categories_only:
        concepts = [c for c in concepts if c.term_ids]
        if not concepts:
            return "0"
    parts = []
    for i, concept in enumerate(concepts):
        key = f"{prefix}{i}"
        if categories_only:
            # The row's own term ids (with their ancestors): read from the matched row, no index
            # lookup, so the preference costs next to nothing per match on either engine.
            likes = []
            for j, term in enumerate(concept.term_ids):
                binds[f"{key}_{j}"] = f"%|{term}|%"
                likes.append(f"ss.term_ids LIKE :{key}_{j}")
            parts.append(f"(CASE WHEN {' OR '.join(likes)} THEN 1 ELSE 0 END)")
        elif dialect == "postgresql":
            parts.append(f"CAST(ss.tsv @@ {_pg_group(concept, binds, key)} AS integer)")
        else:
            binds[key] = _fts_group(concept)
            parts.append(f"(ss.id IN (SELECT rowid FROM service_fts WHERE service_fts MATCH :{key}))")
    return "(" + " + ".join(parts) + ")"


def build_where(dialect: str, params: dict, viewer: dict | None, origin=None, q: QueryPlan | None = None,
                open_clauses=None, name_only: bool = False, relaxed: bool = False) -> tuple[str, str, str, dict]:
    """(FROM, WHERE, rank expression, binds) selecting every matching search row
    (``name_only``: only those with every concept in the name; ``relaxed``: those matching
    any concept of ``q`` rather than all)."""
    # IS TRUE: PostgreSQL would otherwise AND the (status, owner) index's bitmap of nearly
    # every row into a keyword search's bitmap, reading 100,000 index entries to drop none.
    where, binds = ["(ss.status = 'active') IS TRUE"], {}
    vis, vis_binds = visibility.sql_text("ss", viewer)
    where.append(vis)
    binds.update(vis_binds)
    source, rank = "service_search ss", "0.0"
    if q:
        # Language, cost and category are tokens in the full-text index: the index
        # intersects them with the words, and no row outside the filters is read.
        where.append(_keyword_match(dialect, q, tag_filters(params, open_clauses), binds, name_only, relaxed))
        if dialect == "postgresql":
            # ts_rank (weights and frequency), not ts_rank_cd: cover density costs
            # ~25 us a row more, 250 ms on a query matching 10,000 services.
            rank = f"ts_rank(ss.tsv, {_pg_all(q.concepts, binds, 'kr', '||' if relaxed else '&&')})"
        else:
            # CROSS JOIN keeps the FTS index as the outer loop (SQLite would
            # otherwise scan the search rows and probe FTS for each one).
            source = "service_fts CROSS JOIN service_search ss ON ss.id = service_fts.rowid"
            rank = "-bm25(service_fts, 10.0, 1.0, 0.0)"
    else:
        if params.get("category"):
            where.append("ss.term_ids LIKE :category")
            binds["category"] = f"%|{params['category']}|%"
        if params.get("language"):
            where.append("ss.languages LIKE :language")
            binds["language"] = f"%|{params['language'].lower()}|%"
        if params.get("cost") == "free":
            where.append("ss.cost = 'free'")
        elif params.get("cost") == "low":
            where.append("ss.cost IN ('free', 'low')")
    age = params.get("age")
    if age is None and params.get("grade") is not None:
        age = grade_to_age(params["grade"])
    if age is not None:
        where.append("(ss.minimum_age IS NULL OR ss.minimum_age <= :age) AND (ss.maximum_age IS NULL OR ss.maximum_age >= :age)")
        binds["age"] = age
    elif q is not None and q.ages is not None:
        # Age words ("teens"): services whose ages overlap the range, or that state none.
        low, high = q.ages
        where.append("(ss.maximum_age IS NULL OR ss.maximum_age >= :age_low)")
        binds["age_low"] = low
        if high is not None:
            where.append("(ss.minimum_age IS NULL OR ss.minimum_age <= :age_high)")
            binds["age_high"] = high
    if origin is not None:
        binds.update(o_lat=origin[0], o_lon=origin[1])
        if params.get("radius_miles"):
            # The box lets the (latitude, longitude) index find candidates; the
            # great-circle distance then cuts the box's corners.
            lat0, lat1, lon0, lon1 = bounding_box(origin[0], origin[1], params["radius_miles"])
            where.append(f"ss.latitude BETWEEN :lat0 AND :lat1 AND ss.longitude BETWEEN :lon0 AND :lon1 AND {HAVERSINE} <= :radius")
            binds.update(lat0=lat0, lat1=lat1, lon0=lon0, lon1=lon1, radius=float(params["radius_miles"]))
    if params.get("_area"):
        ors = []
        for i, name in enumerate(params["_area"]):
            ors.append(f"ss.area_names LIKE :area{i}")
            binds[f"area{i}"] = f"%|{name}|%"
        where.append("(" + " OR ".join(ors) + ")")
    if open_clauses:
        ors = []
        for i, (tz, day, hhmm) in enumerate(open_clauses):
            # The half hour holding the time, open from start to end, in the row's bitmap
            # of the day; hours off the half hour (rare) are checked exactly.
            minutes = int(hhmm[:2]) * 60 + int(hhmm[3:5])
            exact = (f"EXISTS (SELECT 1 FROM service_hours h WHERE h.service_id = ss.service_id "
                     f"AND h.day = :day{i} AND h.opens_at <= :t{i} AND h.closes_at > :t{i})")
            hours = f"((ss.{OPEN_COLUMNS[day]} & :slot{i}) <> 0 OR (ss.hours_unaligned AND {exact}))"
            binds[f"slot{i}"] = 1 << (minutes // SLOT_MINUTES)
            if tz == "*":
                ors.append(hours)
            elif tz is None:
                ors.append(f"(ss.timezone IS NULL AND {hours})")
            else:
                ors.append(f"(ss.timezone = :tz{i} AND {hours})")
                binds[f"tz{i}"] = tz
            binds[f"day{i}"], binds[f"t{i}"] = day, hhmm
        where.append("(" + " OR ".join(ors) + ")")
    return source, " AND ".join(where), rank, binds


PAGE, FACETS, STATS = "p", "f", "s"


def build_statement(dialect: str, params: dict, viewer: dict | None, origin=None, q: QueryPlan | None = None,
                    open_clauses=None, page: int = 1, per_page: int = 20, exact_limit: int | None = None,
                    relaxed: bool = False) -> tuple[str, dict]:
    """The one statement of a search and its binds.

    It finds the matching rows once (materialised CTEs), then returns three kinds
    of rows, tagged in the first column:

    * ``"p", service_id, rank, distance``: the ``per_page`` rows of page ``page``, in order;
    * ``"f", top_term_ids, languages, cost, count``: the matches grouped by what the
      facets count, so the total and every facet count come from a few hundred
      groups rather than from every matching row;
    * ``"s", name, value``: ``found`` (matches read), ``ranked`` (matches pages reach),
      ``last`` (scan position of the last match read) and ``size`` (positions in all).

    A keyword search sorted by relevance ranks the services with every word in
    their name first (tier 0), then the others. With ``exact_limit`` it reads at
    most ``exact_limit`` name matches and ``exact_limit + 1`` matches in index
    order (one more to know there are more): a search matching more is ranked
    among those, and its total and facets are estimated from how far the index
    scan went (:func:`estimate`). So a broad search still puts name matches first,
    and one with fewer name matches than the limit ranks them exactly; every
    search matching fewer than the limit is exact. Sorted by distance, or with
    ``exact_limit`` None, or without keywords, every match is read.

    ``relaxed`` (no service matched every concept of ``q``): the services matching any concept,
    those matching the most concepts first (the tier is the number of concepts missed). Within a
    tier, services filed under the categories the query names and those matching its age words
    rank first (``boost``), then by text rank.
    """
    source, where, rank, binds = build_where(dialect, params, viewer, origin, q, open_clauses, relaxed=relaxed)
    boost = "0"
    if q is not None:
        # Filed under the categories the query names, and for the ages it names: a curated
        # signal, ranked before how often the words occur.
        # A category named counts twice an age word: what is needed before for whom.
        boost = f"(2 * {_matches_each(dialect, q.concepts, binds, 'kt', categories_only=True)})"
        if q.age_concepts:
            boost = f"({boost} + {_matches_each(dialect, [_any_of(q.age_concepts)], binds, 'ka')})"
    tier = "0"
    if relaxed:
        tier = f"({len(q.concepts)} - {_matches_each(dialect, q.concepts, binds, 'kc')})"
    distance = HAVERSINE if origin is not None else "NULL"
    if dialect == "postgresql":
        # The heap block of the row (block order is the order of a bitmap scan), and the blocks in all.
        position, size = "(CAST((ss.ctid::text::point)[0] AS bigint) + 1)", \
            "(pg_relation_size('service_search') / current_setting('block_size')::bigint)"
    else:
        position, size = "ss.id", "(SELECT max(id) FROM service_search)"
    columns = (f"ss.service_id, {rank} AS rank, {distance} AS distance, ss.name, ss.top_term_ids, ss.languages, ss.cost, "
               f"{position} AS pos, {boost} AS boost, {tier} AS missed")
    ranked_by_words = bool(q) and params.get("sort") != "distance"
    bounded = ranked_by_words and exact_limit is not None
    limit = " LIMIT :named_limit" if bounded else ""
    if ranked_by_words and not relaxed:
        named_source, named_where, _, named_binds = build_where(dialect, params, viewer, origin, q, open_clauses, name_only=True)
        binds.update(named_binds)
        ctes = (
            f"named AS MATERIALIZED (SELECT {columns} FROM {named_source} WHERE {named_where}{limit}), "
            f"found AS MATERIALIZED (SELECT {columns} FROM {source} WHERE {where}{limit and ' LIMIT :found_limit'}), "
            "m AS MATERIALIZED (SELECT 0 AS tier, named.* FROM named UNION ALL "
            "SELECT 1, found.* FROM found WHERE found.service_id NOT IN (SELECT service_id FROM named))"
        )
    else:
        ctes = (f"found AS MATERIALIZED (SELECT {columns} FROM {source} WHERE {where}{limit and ' LIMIT :found_limit'}), "
                "m AS MATERIALIZED (SELECT missed AS tier, found.* FROM found)")
        if bounded:
            binds.update(found_limit=exact_limit + 1)
    if bounded and not relaxed:
        binds.update(named_limit=exact_limit, found_limit=exact_limit + 1)
    # Relaxed: coverage first. Otherwise filed under the categories named (and for the ages
    # named) first, then every word in the name (tier 0), then the others.
    first = "tier, boost DESC" if relaxed else "boost DESC, tier"
    if params.get("sort") == "distance":
        order = "distance ASC NULLS LAST, rank DESC, service_id"
    elif origin is not None:
        order = f"{first}, rank DESC, distance ASC NULLS LAST, lower(name), service_id"
    else:
        order = f"{first}, rank DESC, lower(name), service_id"
    sql = (
        f"WITH {ctes} "
        f"SELECT * FROM (SELECT '{PAGE}' AS kind, service_id AS a, NULL AS b, NULL AS c, rank, distance, 0 AS n "
        f"FROM m ORDER BY {order} LIMIT :limit OFFSET :offset) page_rows "
        f"UNION ALL SELECT '{FACETS}', top_term_ids, languages, cost, NULL, NULL, count(*) FROM found "
        "GROUP BY top_term_ids, languages, cost "
        f"UNION ALL SELECT '{STATS}', 'ranked', NULL, NULL, NULL, NULL, (SELECT count(*) FROM m) "
        f"UNION ALL SELECT '{STATS}', 'found', NULL, NULL, NULL, NULL, (SELECT count(*) FROM found) "
        f"UNION ALL SELECT '{STATS}', 'last', NULL, NULL, NULL, NULL, (SELECT max(pos) FROM found) "
        f"UNION ALL SELECT '{STATS}', 'size', NULL, NULL, NULL, NULL, {size}"
    )
    return sql, dict(binds, limit=per_page, offset=(page - 1) * per_page)


def run_statement(session, sql: str, binds: dict, q: str | None) -> tuple[list, list, dict]:
    """Run a search statement: (page rows ``(service_id, rank, distance)``, facet groups
    ``(tops, langs, cost, n)``, stats ``{found, ranked, last, size}``).

    On PostgreSQL a keyword search must start from the GIN index: the planner
    prices ``@@`` like a comparison and picks a sequential scan for a common
    word, which then matches every row's tsvector (10x slower at 100,000 rows).
    JIT compilation is off for it: forcing the index inflates the estimated
    cost past ``jit_above_cost``, and compiling costs more than the query.
    Both are set for the transaction only (``set_config(..., true)``); what else
    a search transaction runs (the spelling lookup, the page's cards) reads by
    index anyway, so they are not reset (a round trip saved).
    """
    postgres = session.bind.dialect.name == "postgresql"
    if postgres:
        session.execute(text("SELECT set_config('jit', 'off', true), set_config('enable_seqscan', :seqscan, true)"),
                        {"seqscan": "off" if q else "on"})
    page_rows, groups, stats = [], [], {}
    for kind, a, b, c, rank, distance, n in session.execute(text(sql), binds):
        if kind == PAGE:
            page_rows.append((a, rank, distance))
        elif kind == FACETS:
            groups.append((a, b, c, n))
        else:
            stats[a] = n or 0
    return page_rows, groups, stats


def estimate(stats: dict, exact_limit: int | None) -> int | None:
    """The estimated number of matches when the scan stopped at ``exact_limit``, else None (exact).

    Matches are assumed spread evenly over the index order: ``exact_limit`` of them
    found within the first ``last`` of ``size`` positions. Two significant figures,
    never fewer than were found.

    >>> estimate({"found": 1001, "last": 1500, "size": 15000}, 1000)
    10000
    """
    if exact_limit is None or stats.get("found", 0) <= exact_limit:
        return None
    raw = stats["found"] * max(stats.get("size") or 0, 1) / max(stats.get("last") or 1, 1)
    return max(stats["found"], _about(raw))


def resolve_origin(params: dict) -> tuple[float, float] | None:
    if params.get("postcode"):
        place = postcode_centroid(params["postcode"])
        if place is None:
            raise BadRequest("Unknown postcode.", code="invalid_input", details={"postcode": ["Not a known US ZIP code."]})
        return place["latitude"], place["longitude"]
    if params.get("latitude") is not None and params.get("longitude") is not None:
        return params["latitude"], params["longitude"]
    if params.get("latitude") is not None or params.get("longitude") is not None:
        raise BadRequest("Give both latitude and longitude.", code="invalid_input",
                         details={"latitude": ["latitude and longitude go together."]})
    return None


def from_the_school(params: dict, school: dict) -> tuple[dict, str | None]:
    """A distance search without a postcode or point measures from the caller's school, as
    the search form says: its coordinates, else its postcode. Returns the parameters to
    search with and what the distances are measured from (for the answer), or raises a
    400 naming what to give when the school has no place on file.

    Example: from_the_school({"radius_miles": 5}, {"name": "Lincoln", "postcode": "20001"})
    -> ({"radius_miles": 5, "postcode": "20001"}, "Lincoln (20001)")
    """
    if school.get("latitude") is not None and school.get("longitude") is not None:
        where = f" ({school['postcode']})" if school.get("postcode") else ""
        return {**params, "latitude": school["latitude"], "longitude": school["longitude"]}, \
            f"{school.get('name') or 'your school'}{where}"
    if school.get("postcode") and postcode_centroid(school["postcode"]) is not None:
        return {**params, "postcode": school["postcode"]}, f"{school.get('name') or 'your school'} ({school['postcode']})"
    field = "radius_miles" if params.get("radius_miles") else "sort"
    raise BadRequest("Your school has no address on file to measure from: give a postcode.", code="invalid_input",
                     details={field: ["Give postcode, or latitude and longitude (your school has no address on file)."]})


def area_names(postcode: str) -> list[str]:
    """Service-area names that cover ``postcode``: the code, its city, county and state."""
    place = postcode_centroid(postcode)
    if place is None:
        raise BadRequest("Unknown postcode.", code="invalid_input", details={"covers_postcode": ["Not a known US ZIP code."]})
    names = {place["postcode"], place["city"].lower(), place["state"].lower()}
    if place["county"]:
        county = place["county"].lower()
        names.update({county, county.replace(" county", "")})
    names.add("united states")
    return sorted(n for n in names if n)


def open_clauses(params: dict, school_timezone: str | None, timezones) -> list | None:
    """(timezone, day, HH:MM) alternatives for "open now" or "open at day and time"."""
    if params.get("open_day") or params.get("open_time"):
        if not (params.get("open_day") and params.get("open_time")):
            raise BadRequest("Give open_day and open_time together.", code="invalid_input",
                             details={"open_time": ["open_day and open_time go together."]})
        return [("*", params["open_day"].upper()[:2], params["open_time"])]
    if params.get("open_now"):
        now = datetime.now(ZoneInfo("UTC"))
        clauses = []
        for tz in list(timezones) + [None]:
            zone = ZoneInfo(tz or school_timezone or DEFAULT_TIMEZONE)
            local = now.astimezone(zone)
            clauses.append((tz, DAYS[local.weekday()], local.strftime("%H:%M")))
        return clauses
    return None


def plan_words(plan: QueryPlan) -> set[str]:
    """The words of the query that the synonym list or a taxonomy term recognised (never "corrected")."""
    return {w for c in plan.concepts + plan.age_concepts if len(c.phrases) > 1 or c.term_ids for w in c.typed.split()}


def suggest(session, q: str, known=frozenset()) -> str | None:
    """The query with each unknown word replaced by the closest indexed word, or None
    (words in ``known`` are left as they are)."""
    words = WORDS.findall(fold(q))[:24]
    changed, out = False, []
    dialect = session.bind.dialect.name
    for w in words:
        if len(w) < 4 or w in known or session.execute(text("SELECT 1 FROM search_word WHERE word = :w"), {"w": w}).first():
            out.append(w)
            continue
        best = None
        if dialect == "postgresql":
            best = session.execute(
                text("SELECT word FROM search_word WHERE word % :w ORDER BY similarity(word, :w) DESC, word LIMIT 1"),
                {"w": w},
            ).scalar()
        else:
            candidates = session.scalars(
                text("SELECT word FROM search_word WHERE length(word) BETWEEN :a AND :b AND (substr(word, 1, 1) = :f OR substr(word, 2, 1) = :s)"),
                {"a": len(w) - 2, "b": len(w) + 2, "f": w[0], "s": w[1]},
            ).all()
            close = difflib.get_close_matches(w, candidates, n=1, cutoff=0.75)
            best = close[0] if close else None
        if best and best != w:
            changed = True
            out.append(best)
        else:
            out.append(w)
    return " ".join(out) if changed else None


def search(session, params: dict, viewer: dict | None = None, school_timezone: str | None = None,
           cards=None, exact_limit: int | None = None) -> dict:
    """Run an educator search; ``cards(ids)`` turns the page's ids into result cards.

    ``exact_limit`` bounds the matches a keyword search ranks and counts (see
    :func:`build_statement`); None ranks and counts every match.
    """
    dialect = session.bind.dialect.name
    tree = TermTree.load(session)
    page, per_page = params.get("page", 1), params.get("per_page", 20)
    if params.get("category") and params["category"] not in tree.terms:
        raise BadRequest("Unknown category.", code="invalid_input", details={"category": ["No such taxonomy term."]})
    origin = resolve_origin(params)
    if params.get("sort") == "distance" and origin is None:
        raise BadRequest("Sorting by distance needs a postcode or a point.", code="invalid_input",
                         details={"sort": ["Give postcode, or latitude and longitude."]})
    if params.get("radius_miles") and origin is None:
        raise BadRequest("A radius needs a postcode or a point.", code="invalid_input",
                         details={"radius_miles": ["Give postcode, or latitude and longitude."]})
    query_params = dict(params)
    if params.get("covers_postcode"):
        query_params["_area"] = area_names(params["covers_postcode"])
    timezones = []
    if params.get("open_now"):
        timezones = [r[0] for r in session.execute(text("SELECT DISTINCT timezone FROM service_search WHERE timezone IS NOT NULL"))]
    clauses = open_clauses(params, school_timezone, timezones)
    q = (params.get("q") or "").strip() or None
    plan = plan_query(session, q)
    _math_functions(session)

    def run(words, relaxed=False):
        sql, binds = build_statement(dialect, query_params, viewer, origin, words, clauses, page, per_page, exact_limit,
                                     relaxed=relaxed)
        return run_statement(session, sql, binds, words)

    window, groups, stats = run(plan)
    corrected, relaxed = None, False
    if plan is not None and not groups:
        corrected = suggest(session, q, known=plan_words(plan))
        if corrected and plan_query(session, corrected) is not None:
            plan = plan_query(session, corrected)
            window, groups, stats = run(plan)
        else:
            corrected = None
    matched = sum(n for *_, n in groups)
    if plan is not None and (matched == 0 or (matched < RELAX_BELOW and params.get("sort") != "distance")):
        loose = loosened(plan, synonyms(settings().directory_search_synonyms_file), tree)
        if len(loose.concepts) > 1:
            # Few or no services have every concept: rank those with the most of them (the full
            # matches still first) instead of answering nothing or next to nothing.
            relaxed_window, relaxed_groups, relaxed_stats = run(loose, relaxed=True)
            if sum(n for *_, n in relaxed_groups) > sum(n for *_, n in groups):
                relaxed, plan = True, loose
                window, groups, stats = relaxed_window, relaxed_groups, relaxed_stats
    found = sum(n for *_, n in groups)
    bounded = plan is not None and params.get("sort") != "distance"
    estimated = estimate(stats, exact_limit if bounded else None)
    total = found if estimated is None else estimated
    # Pages reach every match of an exact search, and the ranked ones of a broad one.
    reachable = total if estimated is None else stats.get("ranked", found)
    last_page = max(1, (reachable + per_page - 1) // per_page)
    if page > last_page:
        raise BadRequest("Page out of range.", code="invalid_input",
                         details={"page": [f"There are {last_page} page(s) of {per_page}."]})
    items = cards([r[0] for r in window]) if cards else [{"id": r[0]} for r in window]
    by_id = {item["id"]: item for item in items}
    ordered = []
    for sid, rank, distance in window:
        item = by_id.get(sid)
        if item is None:
            continue
        item["distance_miles"] = round(distance, 2) if distance is not None else None
        item["relevance"] = round(float(rank or 0), 6)
        ordered.append(item)
    scale = None if estimated is None else estimated / max(found, 1)
    return {"items": ordered, "total": total, "total_is_estimate": estimated is not None, "pages": last_page,
            "page": page, "per_page": per_page, "facets": _facets(groups, tree, scale), "corrected_query": corrected,
            "relaxed": relaxed}


def _math_functions(session) -> None:
    """SQLite built without its math functions gets them from Python (distance needs them)."""
    if session.bind.dialect.name != "sqlite" or _math_functions.checked:
        return
    try:
        session.execute(text("SELECT asin(sqrt(power(sin(radians(1.0)), 2)))"))
        _math_functions.checked = True
    except Exception:  # noqa: BLE001 - sqlite3.OperationalError: no such function
        raw = session.connection().connection.driver_connection
        for name, n, fn in (("asin", 1, math.asin), ("sqrt", 1, math.sqrt), ("power", 2, math.pow), ("sin", 1, math.sin),
                            ("cos", 1, math.cos), ("radians", 1, math.radians)):
            raw.create_function(name, n, fn, deterministic=True)


_math_functions.checked = False


def _about(n: float) -> int:
    """A count estimate to two significant figures (at least 1)."""
    digits = max(0, len(str(int(n))) - 2)
    return max(1, int(round(n, -digits)))


def _facets(groups, tree: TermTree, scale: float | None = None) -> dict:
    """Facet counts from the (top-level terms, languages, cost, count) groups of the facet statement;
    ``scale``: the matches read were a sample, and each count is scaled up to an estimate."""
    categories, languages, costs = {}, {}, {}
    for tops, langs, cost, n in groups:
        for t in (tops or "|").strip("|").split("|"):
            if t:
                categories[t] = categories.get(t, 0) + n
        for lang in (langs or "|").strip("|").split("|"):
            if lang:
                languages[lang] = languages.get(lang, 0) + n
        costs[cost] = costs.get(cost, 0) + n
    if scale is not None:
        for counts in (categories, languages, costs):
            for key, n in counts.items():
                counts[key] = _about(n * scale)
    return {
        "categories": sorted(
            ({"id": t, "name": tree.terms[t]["name"], "count": n} for t, n in categories.items() if t in tree.terms),
            key=lambda f: (-f["count"], f["name"]),
        ),
        "languages": sorted(({"code": c, "count": n} for c, n in languages.items()), key=lambda f: (-f["count"], f["code"])),
        "cost": sorted(({"value": c, "count": n} for c, n in costs.items()), key=lambda f: (-f["count"], f["value"])),
    }
