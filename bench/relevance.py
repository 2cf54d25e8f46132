"""Search relevance on real data: judged queries, precision@10 and recall@20 beside plain BM25.

Imports the shared Washington DC directory (``dc-orservices``) through the product's importer
into a fresh directory database (SQLite, PostgreSQL or both), then runs every query of
``tests/data/judged_queries.json`` (counsellors' phrasing, English and Spanish) twice:

* **search**: the directory's own search (``services.directory.search.search``), as an educator
  at a school runs it;
* **baseline**: plain BM25 over each service's name and description with the raw query words
  (SQLite FTS5, the same porter/unicode61 tokenizer, any word may match, no synonyms, no
  taxonomy, no stop words removed), built in memory from the same imported services.

A result is relevant when the service carries the query's taxonomy terms in the dataset's own
links (see the judged file). precision@10 = relevant among the first 10 / min(10, relevant in
the data); recall@20 = relevant among the first 20 / relevant in the data.

Targets: mean precision@10 >= 0.7, no judged query without results, mean precision@10 >= 1.3x
the baseline's. Also printed: the search's time per query (median and p95, in this process).

    python -m bench relevance [--database sqlite|postgres|both]
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

JUDGED = Path(__file__).resolve().parents[1] / "tests" / "data" / "judged_queries.json"
TARGET_PRECISION = 0.7
TARGET_RATIO = 1.3
VIEWER = {"tenant_id": "00000000-0000-4000-8000-00000000000a", "district_id": None, "kind": "school"}
PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"


def judged() -> dict:
    return json.loads(JUDGED.read_text(encoding="utf-8"))


def import_dc(session) -> dict:
    """The shared DC data, imported the way the product imports it (``weintervene import-directory``)."""
    from services.directory.importer import import_path
    from tests.support.shared_data import dataset

    return import_path(session, dataset("dc-orservices"), source="dc-orservices")


class Judge:
    """Relevance from the dataset's own taxonomy links (imported taxonomies, not Open Eligibility)."""

    def __init__(self, session, age_groups: dict):
        from sqlalchemy import select

        from services.directory.models import Attribute, TaxonomyTerm
        from services.directory.taxonomy import OPEN_ELIGIBILITY_ID, TermTree

        TermTree.invalidate()
        self.tree = TermTree.load(session)
        self.by_name: dict[str, set] = {}
        for term_id, name in session.execute(select(TaxonomyTerm.id, TaxonomyTerm.name)
                                             .where(TaxonomyTerm.taxonomy_id != OPEN_ELIGIBILITY_ID)):
            self.by_name.setdefault(name, set()).add(term_id)
        self.carries: dict[str, set] = {}
        for service_id, term_id in session.execute(select(Attribute.link_id, Attribute.taxonomy_term_id)
                                                   .where(Attribute.taxonomy_term_id.is_not(None))):
            self.carries.setdefault(term_id, set()).add(service_id)
        self.age_groups = age_groups
        self.any_age_group = self.under(["Age Group"])

    def under(self, names) -> set:
        """Services carrying any term named in ``names`` or any term below one."""
        found = set()
        for name in names:
            if name not in self.by_name:
                raise KeyError(f"no term named {name!r} in the imported taxonomy")
            for term in self.by_name[name]:
                for t in self.tree.descendants(term):
                    found |= self.carries.get(t, set())
        return found

    def relevant(self, item: dict) -> set:
        found = set()
        for clause in item["relevant_if"]:
            sets = [self.under([name]) for name in clause]
            found |= set.intersection(*sets)
        if item.get("ages"):
            fits = self.under(self.age_groups[item["ages"]])
            found = {s for s in found if s in fits or s not in self.any_age_group}
        return found


class Baseline:
    """Plain BM25 over name + description with the raw query words (any of them), no synonyms."""

    def __init__(self, session):
        from sqlalchemy import select

        from services.directory.models import Service

        self.db = sqlite3.connect(":memory:")
        self.db.execute("CREATE VIRTUAL TABLE doc USING fts5(service_id UNINDEXED, name, description, "
                        "tokenize = 'porter unicode61 remove_diacritics 2')")
        self.db.executemany("INSERT INTO doc VALUES (?, ?, ?)",
                            session.execute(select(Service.id, Service.name, Service.description)).all())

    def ranking(self, q: str, k: int = 20) -> list[str]:
        from services.directory.query_terms import WORDS

        words = WORDS.findall(q.lower())
        if not words:
            return []
        query = " OR ".join('"%s"' % w for w in words)
        return [r[0] for r in self.db.execute("SELECT service_id FROM doc WHERE doc MATCH ? ORDER BY bm25(doc) LIMIT ?",
                                              (query, k))]


def product_ranking(session, q: str, k: int = 20) -> tuple[list[str], dict]:
    from services.directory.search import search

    result = search(session, {"q": q, "page": 1, "per_page": k, "sort": "relevance"}, VIEWER, exact_limit=500)
    return [i["id"] for i in result["items"]], result


def scores(ranking: list[str], relevant: set) -> tuple[float, float]:
    """(precision@10, recall@20) of a ranking."""
    if not relevant:
        return 0.0, 0.0
    p10 = len([s for s in ranking[:10] if s in relevant]) / min(10, len(relevant))
    r20 = len([s for s in ranking[:20] if s in relevant]) / len(relevant)
    return p10, r20


def evaluate(session) -> dict:
    """Every judged query on the directory in ``session``: per-query figures, means, baseline, latency."""
    data = judged()
    judge, baseline = Judge(session, data["age_groups"]), Baseline(session)
    rows, times = [], []
    for item in data["queries"]:
        relevant = judge.relevant(item)
        started = time.perf_counter()
        ours, answer = product_ranking(session, item["query"])
        times.append(time.perf_counter() - started)
        theirs = baseline.ranking(item["query"])
        p, r = scores(ours, relevant)
        bp, br = scores(theirs, relevant)
        rows.append({"query": item["query"], "language": item["language"], "relevant": len(relevant),
                     "results": answer["total"], "relaxed": answer.get("relaxed", False), "p10": p, "r20": r,
                     "baseline_results": len(theirs), "baseline_p10": bp, "baseline_r20": br})
    # A query with no relevant service in the data cannot be judged: listed, left out of the means.
    scored = [row for row in rows if row["relevant"]]
    mean = lambda key: statistics.mean(row[key] for row in scored)  # noqa: E731
    times.sort()
    return {"rows": rows, "judged": len(scored), "p10": mean("p10"), "r20": mean("r20"), "baseline_p10": mean("baseline_p10"),
            "baseline_r20": mean("baseline_r20"), "zero_results": [r["query"] for r in rows if r["results"] == 0],
            "median_ms": 1000 * statistics.median(times), "p95_ms": 1000 * times[int(0.95 * (len(times) - 1))]}


def meets_targets(figures: dict) -> list[str]:
    """What misses a target (empty: all met)."""
    misses = []
    if figures["p10"] < TARGET_PRECISION:
        misses.append(f"mean precision@10 {figures['p10']:.3f} < {TARGET_PRECISION}")
    if figures["zero_results"]:
        misses.append(f"queries without results: {figures['zero_results']}")
    if figures["p10"] < TARGET_RATIO * figures["baseline_p10"]:
        misses.append(f"precision@10 {figures['p10']:.3f} < {TARGET_RATIO} x baseline {figures['baseline_p10']:.3f}")
    return misses


def directory_session(url: str):
    from sqlalchemy.orm import Session

    from services.directory.taxonomy import TermTree, load_open_eligibility
    from weintervene.db import ensure_database, make_engine, migrate

    ensure_database(url)
    engine = make_engine(url)
    migrate("directory", engine)
    session = Session(engine)
    TermTree.invalidate()
    load_open_eligibility(session)
    return engine, session


def report(kind: str, figures: dict) -> None:
    print(f"\n{kind}: {len(figures['rows'])} queries on dc-orservices, {figures['judged']} judged "
          "(- : no relevant service in the data, not in the means)")
    print(f"{'query':<38} {'lang':<4} {'rel':>4} {'found':>5} {'P@10':>5} {'R@20':>5} | {'bm25 P@10':>9} {'R@20':>5}")
    for r in figures["rows"]:
        flag = "*" if r["relaxed"] else " "
        if not r["relevant"]:
            print(f"{r['query'][:37]:<38} {r['language']:<4} {'-':>4} {r['results']:>4}{flag} {'-':>5} {'-':>5} | "
                  f"{'-':>9} {'-':>5}")
            continue
        print(f"{r['query'][:37]:<38} {r['language']:<4} {r['relevant']:>4} {r['results']:>4}{flag} {r['p10']:>5.2f} "
              f"{r['r20']:>5.2f} | {r['baseline_p10']:>9.2f} {r['baseline_r20']:>5.2f}")
    ratio = figures["p10"] / figures["baseline_p10"] if figures["baseline_p10"] else float("inf")
    print(f"{'mean':<38} {'':<4} {'':>4} {'':>5} {figures['p10']:>5.2f} {figures['r20']:>5.2f} | "
          f"{figures['baseline_p10']:>9.2f} {figures['baseline_r20']:>5.2f}")
    print(f"precision@10 {ratio:.2f}x the baseline (target >= {TARGET_RATIO}x); * = relaxed (partial matches ranked)")
    print(f"search time per query: median {figures['median_ms']:.1f} ms, p95 {figures['p95_ms']:.1f} ms")
    misses = meets_targets(figures)
    print("targets met" if not misses else "TARGETS MISSED: " + "; ".join(misses))


def run(kind: str) -> dict:
    import random
    import string

    from sqlalchemy import text

    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            engine, session = directory_session(f"sqlite:///{tmp}/directory.db")
            try:
                import_dc(session)
                return evaluate(session)
            finally:
                session.close()
                engine.dispose()
    name = "wi_relevance_" + "".join(random.choice(string.ascii_lowercase) for _ in range(8))
    engine, session = directory_session(PG_URL.format(name=name))
    try:
        import_dc(session)
        return evaluate(session)
    finally:
        session.close()
        engine.dispose()
        from weintervene.db import make_engine

        admin = make_engine(PG_URL.format(name="postgres"))
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench relevance", description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args(argv)
    failed = False
    for kind in (["sqlite", "postgres"] if args.database == "both" else [args.database]):
        figures = run(kind)
        report(kind, figures)
        failed = failed or bool(meets_targets(figures))
    return 1 if failed else 0
