"""Search relevance on the real DC directory, imported by the product's importer, on both engines:
the judged queries of tests/data/judged_queries.json (see docs/SEARCH.md for how they were
written and judged) must keep mean precision@10 >= 0.7, none without results, and at least
1.3x the precision of plain BM25 over the same services' text (``python -m bench relevance``)."""
import pytest

from bench.relevance import TARGET_PRECISION, TARGET_RATIO, directory_session, evaluate, import_dc, judged, meets_targets
from tests.support.infra import scratch_postgres_database


def test_the_judged_set_is_large_enough_and_bilingual():
    queries = judged()["queries"]
    assert len(queries) >= 20
    assert len([q for q in queries if q["language"] == "es"]) >= 5


@pytest.mark.parametrize("engine_kind", ["sqlite", "postgresql"])
def test_search_relevance_meets_its_targets_on_the_dc_directory(engine_kind, tmp_path):
    def measure(url):
        engine, session = directory_session(url)
        try:
            report = import_dc(session)
            assert report["totals"]["service"]["created"] > 400
            return evaluate(session)
        finally:
            session.close()
            engine.dispose()

    if engine_kind == "sqlite":
        figures = measure(f"sqlite:///{tmp_path}/directory.db")
    else:
        with scratch_postgres_database("wit_relevance") as url:
            figures = measure(url)
    assert figures["judged"] >= 20
    assert not figures["zero_results"], figures["zero_results"]
    assert figures["p10"] >= TARGET_PRECISION, figures["rows"]
    assert figures["p10"] >= TARGET_RATIO * figures["baseline_p10"]
    assert meets_targets(figures) == []
