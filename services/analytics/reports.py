"""The reports: counters in, suppressed tables out, as JSON rows or CSV.

Every report is one table per period (current and previous): items (services,
top-level categories, days, channels…) by tenants, read from the pre-aggregated
counters with one GROUP BY, so its cost follows the number of counter rows in
the period, not the number of shares ever counted. Figures that leave a school
go through :mod:`services.analytics.suppression`.

Rows are flat, one per (tenant or total, item), so the same rows make the JSON
answer, the dashboards' side-by-side tables and the CSV export::

    # level: school or program for a tenant's own figures, district_office for
    # shares made at the district level itself, and the totals: district (a
    # district admin's view) or platform (all consenting tenants, operators).
    {"tenant_id": "…", "tenant_name": "Lincoln Middle", "level": "school", "rank": 1,
     "service_id": "…", "service_name": "Eastside Tutoring", "count": 42,
     "count_suppressed": false, "previous_count": 30, "previous_suppressed": false,
     "change_pct": 40.0}
"""
from __future__ import annotations

import io
from datetime import date

from sqlalchemy import distinct, func, select

from services.analytics import suppression
from services.analytics.models import DailyShareCount, OutcomeCount, ServiceShareCount, TermSetShareCount
from services.analytics.periods import Period, local_today, resolve
from services.analytics.scope import Scope
from weintervene import spreadsheets
from weintervene.contracts import CHANNELS, OUTCOMES
from weintervene.errors import NotFound

REPORTS = ("top-services", "top-categories", "trends", "channels", "unmet-need", "schools", "outcomes")
MAX_NAMED_SERVICES = 50
COMMON_COLUMNS = ["tenant_id", "tenant_name", "level"]
FIGURE_COLUMNS = ["count", "count_suppressed", "previous_count", "previous_suppressed", "change_pct"]
ITEM_COLUMNS = {
    "top-services": ["rank", "service_id", "service_name"],
    "top-categories": ["rank", "category_id", "category_name"],
    "trends": ["bucket", "bucket_start"],
    "channels": ["channel"],
    "schools": [],
    "unmet-need": ["rank", "category_id", "category_name", "services_nearby", "need_score"],
    "outcomes": ["category_id", "category_name", "outcome", "connected_rate", "median_days_to_connect"],
}


# -- reading counters ---------------------------------------------------------

def counts_by(session, model, item_column, tenant_ids: list[str], period: Period) -> dict:
    """{item: {tenant_id: shares}} over ``period`` for ``tenant_ids``."""
    if not tenant_ids:
        return {}
    query = (
        select(item_column, model.tenant_id, func.sum(model.count))
        .where(model.tenant_id.in_(tenant_ids), model.day >= period.start, model.day <= period.end)
        .group_by(item_column, model.tenant_id)
    )
    matrix: dict = {}
    for item, tenant_id, total in session.execute(query):
        key = item.isoformat() if isinstance(item, date) else item
        matrix.setdefault(key, {})[tenant_id] = matrix.get(key, {}).get(tenant_id, 0) + int(total)
    return matrix


def tenants_with_counts(session) -> list[str]:
    return list(session.scalars(select(distinct(DailyShareCount.tenant_id))))


def merge_into(matrix: dict, mapping) -> dict:
    """Re-key ``matrix`` items through ``mapping(item)``, summing items that land together."""
    merged: dict = {}
    for item, row in matrix.items():
        target = mapping(item)
        into = merged.setdefault(target, {})
        for tenant, n in row.items():
            into[tenant] = into.get(tenant, 0) + n
    return merged


# -- building rows ------------------------------------------------------------

def _level(tenant: dict) -> str:
    kind = tenant.get("kind") or "school"
    return "district_office" if kind == "district" else kind


def change_pct(count, previous) -> float | None:
    if count is None or previous is None or previous == 0:
        return None  # never derive a figure from a hidden one
    return round((count - previous) * 100.0 / previous, 1)


class TableReport:
    """A report's current and previous tables over one scope, and its rows."""

    def __init__(self, scope: Scope, current: dict, previous: dict, items: list | None = None):
        self.scope = scope
        self.columns = scope.tenant_ids
        items = list(items) if items is not None else sorted(set(current) | set(previous), key=str)
        current = {i: current.get(i, {}) for i in items}
        previous = {i: previous.get(i, {}) for i in items}
        self.items = items
        if scope.threshold is None:
            self.now = suppression.unsuppressed(current, self.columns)
            self.before = suppression.unsuppressed(previous, self.columns)
        else:
            self.now = suppression.suppress(current, self.columns, scope.threshold)
            self.before = suppression.suppress(previous, self.columns, scope.threshold)

    def display_columns(self) -> list[tuple]:
        """(column key, tenant_id, name, level) in display order: schools, then the total."""
        tenants = self.scope.tenants
        if self.scope.only:
            tenants = [t for t in tenants if t["id"] == self.scope.only]
        shown = [(t["id"], t["id"], t.get("name"), _level(t)) for t in tenants]
        if self.scope.total is not None and not self.scope.only:
            total = self.scope.total
            shown.append((suppression.TOTAL, total["id"], total["name"], total["level"]))
        return shown

    def figures(self, item, column) -> dict:
        count, before = self.now.shown(item, column), self.before.shown(item, column)
        return {
            "count": count, "count_suppressed": count is None,
            "previous_count": before, "previous_suppressed": before is None,
            "change_pct": change_pct(count, before),
        }

    def rows(self, describe, ranked: bool, limit: int | None = None) -> list[dict]:
        """One row per display column and item; ``describe(item)`` gives the item's fields."""
        rows = []
        for key, tenant_id, name, level in self.display_columns():
            items = self.items
            if ranked:
                listed = [i for i in items if self.now.value(i, key) > 0 or self.now.hidden(i, key)]
                # Shown figures first, largest first; hidden ones after, in a fixed
                # order that says nothing about their size.
                items = sorted(listed, key=lambda i: (self.now.hidden(i, key), -(self.now.shown(i, key) or 0), str(i)))
                items = items[:limit] if limit else items
            for rank, item in enumerate(items, start=1):
                row = {"tenant_id": tenant_id, "tenant_name": name, "level": level}
                if ranked:
                    row["rank"] = rank
                row.update(describe(item))
                row.update(self.figures(item, key))
                rows.append(row)
        return rows


# -- the reports --------------------------------------------------------------

def top_services(session, scope, period, sources, top_n) -> list[dict]:
    ids = scope.tenant_ids
    report = TableReport(
        scope,
        counts_by(session, ServiceShareCount, ServiceShareCount.service_id, ids, period),
        counts_by(session, ServiceShareCount, ServiceShareCount.service_id, ids, period.previous()),
    )
    rows = report.rows(lambda sid: {"service_id": sid}, ranked=True, limit=top_n)
    names = sources.service_names(list(dict.fromkeys(r["service_id"] for r in rows))[:MAX_NAMED_SERVICES])
    for row in rows:
        row["service_name"] = names.get(row["service_id"])
    return rows


def spread_into(matrix: dict, mapping) -> dict:
    """Re-key ``matrix`` items through ``mapping(item)``, a set of targets: each
    target gets the item's figures once, however many of its parts lead there."""
    spread: dict = {}
    for item, row in matrix.items():
        for target in mapping(item):
            into = spread.setdefault(target, {})
            for tenant, n in row.items():
                into[tenant] = into.get(tenant, 0) + n
    return spread


def category_tables(session, scope, period, sources, level: int = 3):
    """(current, previous, {category: (name, term ids)}): shares per category at ``level``.

    A category is a term at ``level`` of its taxonomy (1 the top, "Care"; 2 "Support
    Network"; 3 "Counseling"), or the term itself where its branch is shallower. Terms of the same name at
    that level (an imported taxonomy's "Food" beside Open Eligibility's) are one category,
    keyed by the first of their ids. Counted from term sets, so a share carrying two terms
    of one category (Counselling and Anxiety, both Mental Health Care; or both "Food"s)
    counts once for it. Read once per call (top-categories and unmet-need of one dashboard
    share them).
    """
    return sources.remember(("categories", period.start, period.end, level),
                            lambda: _category_tables(session, scope, period, sources, level))


def _category_tables(session, scope, period, sources, level):
    ids = scope.tenant_ids
    by_set = counts_by(session, TermSetShareCount, TermSetShareCount.taxonomy_term_ids, ids, period)
    by_set_before = counts_by(session, TermSetShareCount, TermSetShareCount.taxonomy_term_ids, ids, period.previous())
    categories, names = categorizer(sources, (*by_set, *by_set_before), level)
    return spread_into(by_set, categories), spread_into(by_set_before, categories), names


def categorizer(sources, term_sets, level: int):
    """(categories(term_set) -> set of category keys, {key: (name, term ids)}) for these term
    sets at ``level`` (see :func:`category_tables`): one directory call for their terms."""
    term_ids = sorted({term for terms in term_sets for term in terms.split(",") if term})
    terms = sources.get_terms(term_ids)
    node_of = {}  # term id -> (category node id, its name)
    for term_id in term_ids:
        info = terms.get(term_id) or {}
        path = info.get("ancestors") or (
            [{"id": info["top_level_id"], "name": info.get("top_level_name")}] if info.get("top_level_id") else [])
        node = path[min(level, len(path)) - 1] if path else {"id": term_id, "name": info.get("name")}
        node_of[term_id] = (node["id"], node.get("name"))
    # One category per name: its key is the first id of the nodes sharing that name.
    by_name: dict[str, list[str]] = {}
    for node_id, name in sorted(set(node_of.values()), key=lambda n: n[0]):
        by_name.setdefault(_name_key(name) if name else node_id, []).append(node_id)
    key_of_node = {node_id: nodes[0] for nodes in by_name.values() for node_id in nodes}
    node_names = dict(node_of.values())
    names = {nodes[0]: (_display_name([node_names[n] for n in nodes]), nodes) for nodes in by_name.values()}

    def categories(term_set):
        return {key_of_node[node_of[term][0]] for term in term_set.split(",") if term in node_of}

    return categories, names


def _display_name(names: list[str | None]) -> str | None:
    """The best-written of a category's names: not shouting in capitals, no stray spaces.
    Example: _display_name(["FOOD", "Food "]) -> "Food"."""
    written = [n for n in names if n]
    if not written:
        return None
    return min(written, key=lambda n: (n.isupper(), n != n.strip(), n)).strip()


def _name_key(name: str) -> str:
    """ "Food", "food " and "FOOD" are one category name."""
    return " ".join(name.casefold().split())


def _category_level(query: dict | None, settings) -> int:
    return (query or {}).get("category_level") or getattr(settings, "analytics_category_level", 3)


def top_categories(session, scope, period, sources, top_n, level: int = 3) -> list[dict]:
    current, previous, names = category_tables(session, scope, period, sources, level)
    report = TableReport(scope, current, previous)
    return report.rows(lambda c: {"category_id": c, "category_name": names.get(c, (None, [c]))[0],
                                  "category_ids": names.get(c, (None, [c]))[1]}, ranked=True, limit=top_n)


def trends(session, scope, period, sources, top_n) -> list[dict]:
    ids, before = scope.tenant_ids, period.previous()
    buckets = [b.isoformat() for b in period.buckets()]
    previous_buckets = [b.isoformat() for b in before.buckets()]
    current = merge_into(counts_by(session, DailyShareCount, DailyShareCount.day, ids, period),
                         lambda d: period.bucket_of(date.fromisoformat(d)).isoformat())
    # The previous period's buckets line up with this one's by position.
    align = dict(zip(previous_buckets, buckets))
    previous = merge_into(counts_by(session, DailyShareCount, DailyShareCount.day, ids, before),
                          lambda d: align.get(before.bucket_of(date.fromisoformat(d)).isoformat(), "-"))
    previous.pop("-", None)
    report = TableReport(scope, current, previous, items=buckets)
    kind = period.bucket()
    return report.rows(lambda b: {"bucket": kind, "bucket_start": b}, ranked=False)


def channels(session, scope, period, sources, top_n) -> list[dict]:
    ids = scope.tenant_ids
    report = TableReport(
        scope,
        counts_by(session, DailyShareCount, DailyShareCount.channel, ids, period),
        counts_by(session, DailyShareCount, DailyShareCount.channel, ids, period.previous()),
        items=list(CHANNELS),
    )
    return report.rows(lambda c: {"channel": c}, ranked=False)


def schools(session, scope, period, sources, top_n) -> list[dict]:
    ids = scope.tenant_ids

    def totals(p):
        return merge_into(counts_by(session, DailyShareCount, DailyShareCount.channel, ids, p), lambda _c: "shares")

    report = TableReport(scope, totals(period), totals(period.previous()), items=["shares"])
    return report.rows(lambda _i: {}, ranked=False)


def unmet_need(session, scope, period, sources, top_n, radius_miles: float, level: int = 3) -> list[dict]:
    """Per school: requested categories against directory services nearby, most unmet first.

    need_score = requests / (services nearby + 1): many requests and few
    providers near the school ranks first. Hidden request counts get no score
    (it would reveal them) and rank last.
    """
    current, previous, names = category_tables(session, scope, period, sources, level)
    report = TableReport(scope, current, previous)
    rows = []
    for key, tenant_id, name, level in report.display_columns():
        if key == suppression.TOTAL:
            continue  # "nearby" is about one school's area
        tenant = next(t for t in scope.tenants if t["id"] == key)
        categories = [c for c in report.items if report.now.value(c, key) > 0 or report.now.hidden(c, key)]
        if tenant.get("latitude") is None or tenant.get("longitude") is None:
            nearby = {}
        else:
            nearby = sources.count_services(categories, tenant["latitude"], tenant["longitude"], radius_miles, tenant,
                                            groups={c: names.get(c, (None, [c]))[1] for c in categories})
        scored = []
        for category in categories:
            figures = report.figures(category, key)
            services = nearby.get(category)
            score = None
            if figures["count"] is not None and services is not None:
                score = round(figures["count"] / (services + 1), 3)
            scored.append((category, figures, services, score))
        scored.sort(key=lambda s: (s[3] is None, -(s[3] or 0), str(s[0])))
        for rank, (category, figures, services, score) in enumerate(scored[:top_n], start=1):
            rows.append({
                "tenant_id": tenant_id, "tenant_name": name, "level": level, "rank": rank,
                "category_id": category, "category_name": names.get(category, (None, [category]))[0],
                "category_ids": names.get(category, (None, [category]))[1],
                "services_nearby": services, "need_score": score, **figures,
            })
    return rows


UNKNOWN_CATEGORY = "uncategorised"  # a referral whose service carried no taxonomy term


def outcomes(session, scope, period, sources, top_n, level: int = 3) -> list[dict]:
    """Referrals closed in the period, per category and outcome (connected, could not
    contact, not eligible, no capacity, no longer interested), suppressed like every other
    table; the ``connected`` row of each category adds ``connected_rate`` (connected of all
    closed) and ``median_days_to_connect``, given only where every outcome of that category
    is shown (a figure is never derived from a hidden one).
    """
    ids = scope.tenant_ids

    def read(p):
        rows = session.execute(
            select(OutcomeCount.tenant_id, OutcomeCount.taxonomy_term_ids, OutcomeCount.outcome,
                   OutcomeCount.days_open, func.sum(OutcomeCount.count))
            .where(OutcomeCount.tenant_id.in_(ids), OutcomeCount.day >= p.start, OutcomeCount.day <= p.end)
            .group_by(OutcomeCount.tenant_id, OutcomeCount.taxonomy_term_ids, OutcomeCount.outcome,
                      OutcomeCount.days_open)
        ).all() if ids else []
        return [(t, terms, outcome, days, int(n)) for t, terms, outcome, days, n in rows]

    now_rows, before_rows = read(period), read(period.previous())
    categories, names = categorizer(sources, {r[1] for r in (*now_rows, *before_rows)}, level)

    def table(rows, days=None):
        matrix: dict = {}
        for tenant, terms, outcome, days_open, n in rows:
            for category in categories(terms) or {UNKNOWN_CATEGORY}:
                cell = matrix.setdefault((category, outcome), {})
                cell[tenant] = cell.get(tenant, 0) + n
                if days is not None and outcome == "connected":
                    spread = days.setdefault((category, tenant), {})
                    spread[days_open] = spread.get(days_open, 0) + n
        return matrix

    connect_days: dict = {}
    current, previous = table(now_rows, connect_days), table(before_rows)
    found = sorted({c for c, _o in (*current, *previous)}, key=str)
    items = [(c, o) for c in found for o in OUTCOMES]
    report = TableReport(scope, current, previous, items=items)
    rows = []
    for key, tenant_id, name, level_name in report.display_columns():
        tenants = ids if key == suppression.TOTAL else [key]
        for category in found:
            shown = [report.now.shown((category, o), key) for o in OUTCOMES]
            closed = None if None in shown else sum(shown)
            if not closed:
                continue
            connected = shown[OUTCOMES.index("connected")]
            spread: dict = {}
            for tenant in tenants:
                for d, n in connect_days.get((category, tenant), {}).items():
                    spread[d] = spread.get(d, 0) + n
            for outcome in OUTCOMES:
                row = {"tenant_id": tenant_id, "tenant_name": name, "level": level_name,
                       "category_id": category, "outcome": outcome,
                       "category_name": names.get(category, ("Uncategorised", []))[0]
                       if category != UNKNOWN_CATEGORY else "Uncategorised",
                       **report.figures((category, outcome), key)}
                if outcome == "connected":
                    row["connected_rate"] = round(connected / closed, 3)
                    row["median_days_to_connect"] = _median(spread) if connected else None
                rows.append(row)
    # Where a cell is hidden the whole category is left out of that column's rows: its
    # other figures would let the hidden one be worked out.
    return rows


def _median(spread: dict[int, int]) -> float | None:
    """The median of a {value: how many} distribution. Example: _median({2: 1, 9: 2}) -> 9."""
    total = sum(spread.values())
    if not total:
        return None
    seen, middle = 0, [(total - 1) // 2, total // 2]
    found = []
    for value in sorted(spread):
        for position in middle:
            if seen <= position < seen + spread[value]:
                found.append(value)
        seen += spread[value]
    return sum(found) / len(found)


BUILDERS = {
    "top-services": top_services,
    "top-categories": top_categories,
    "trends": trends,
    "channels": channels,
    "schools": schools,
}


def report_period(scope: Scope, query: dict, now=None) -> Period:
    """The period ``query`` asks for (period, from, to as ISO dates). For a preset period,
    ``to`` (default: today in the scope's time zone) picks the period containing that day."""
    start = _date(query.get("from"))
    end = _date(query.get("to"))
    kind = query.get("period") or "month"
    anchor = end or local_today(scope.timezone, now)
    return resolve(kind, anchor, start, end)


def report_rows(session, name: str, scope: Scope, period: Period, sources, settings, query=None) -> list[dict]:
    level = _category_level(query, settings)
    if name == "unmet-need":
        return unmet_need(session, scope, period, sources, settings.analytics_top_n,
                          settings.analytics_unmet_need_radius_miles, level)
    if name == "top-categories":
        return top_categories(session, scope, period, sources, settings.analytics_top_n, level)
    if name == "outcomes":
        return outcomes(session, scope, period, sources, settings.analytics_top_n, level)
    return BUILDERS[name](session, scope, period, sources, settings.analytics_top_n)


def build_report(session, name: str, scope: Scope, query: dict, sources, settings, now=None) -> dict:
    """The report ``name`` for ``scope``; ``query`` holds period, from, to (dates as ISO strings)."""
    if name not in REPORTS:
        raise NotFound(f"No report {name!r}; reports are {', '.join(REPORTS)}.", code="report_not_found")
    period = report_period(scope, query, now)
    return _report(name, period, scope, report_rows(session, name, scope, period, sources, settings, query))


def _report(name: str, period: Period, scope: Scope, rows: list[dict]) -> dict:
    return {
        "report": name,
        "period": period.to_dict(),
        "previous_period": period.previous().to_dict(),
        "scope": scope.to_dict(),
        "columns": report_columns(name),
        "rows": rows,
    }


# A leader's dashboard: these reports, plus "schools" where the view compares tenants.
DASHBOARD_REPORTS = ("top-categories", "top-services", "trends", "channels", "unmet-need", "outcomes")


def dashboard_reports(scope: Scope) -> tuple[str, ...]:
    return DASHBOARD_REPORTS + (("schools",) if scope.view != "school" else ())


def build_dashboard(session, scope: Scope, query: dict, sources, settings, now=None) -> dict:
    """Every report of a leader's dashboard for one scope and period, in one answer: each
    is exactly what :func:`build_report` gives for that name (the CSV downloads use those).

    One scope (identity asked once by the caller), one period, and the term names asked
    once for the categories and unmet need (``sources`` keeps them).

    Example: build_dashboard(session, scope, {"period": "semester"}, sources, settings) ->
    {"period": {...}, "previous_period": {...}, "scope": {...},
     "reports": {"top-categories": {"report": "top-categories", "rows": [...], ...}, ...}}
    """
    period = report_period(scope, query, now)
    reports = {name: _report(name, period, scope, report_rows(session, name, scope, period, sources, settings, query))
               for name in dashboard_reports(scope)}
    return {
        "period": period.to_dict(),
        "previous_period": period.previous().to_dict(),
        "scope": scope.to_dict(),
        "reports": reports,
    }


def report_columns(name: str) -> list[str]:
    return COMMON_COLUMNS + ITEM_COLUMNS[name] + FIGURE_COLUMNS


def _date(value) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)


def _cell(value):
    return "" if value is None else value  # a name cannot run as a formula: spreadsheets escapes it


def to_csv(report: dict) -> str:
    """The report's rows as CSV, one header line; hidden figures are empty with their flag true."""
    out = io.StringIO()
    writer = spreadsheets.DictWriter(out, fieldnames=report["columns"], extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in report["rows"]:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return out.getvalue()
