"""Search the way people ask, on PostgreSQL (tsvector, phraseto_tsquery): any text is safe on the
educator search and the HSDS API (a hypothesis property), and the phrasing features answer as
on SQLite (tests/unit/test_directory_search_phrasing.py)."""
import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from sqlalchemy.orm import Session

from services.directory import hsds_api
from services.directory.demo import load_demo
from services.directory.search import search
from services.directory.taxonomy import TermTree, load_open_eligibility
from tests.support.infra import scratch_postgres_database
from tests.unit.test_directory_search_phrasing import NASTY, VIEWER
from weintervene.db import make_engine, migrate


@pytest.fixture(scope="module")
def session():
    with scratch_postgres_database("wit_search_text") as url:
        engine = make_engine(url)
        migrate("directory", engine)
        s = Session(engine)
        TermTree.invalidate()
        load_open_eligibility(s)
        load_demo(s, count=150)
        yield s
        s.close()
        engine.dispose()
        TermTree.invalidate()


def run(session, q, **params):
    return search(session, dict({"q": q, "page": 1, "per_page": 100, "sort": "relevance"}, **params), VIEWER,
                  exact_limit=500)


def ids(result):
    return {i["id"] for i in result["items"]}


@pytest.mark.parametrize("text", NASTY)
def test_any_text_is_safe_on_postgresql(session, text):
    assert isinstance(run(session, text)["total"], int)
    session.rollback()
    assert isinstance(hsds_api.services(session, {"search": text}, None)["total_items"], int)
    for listing in (hsds_api.organizations(session, {"search": text}, None), hsds_api.taxonomies(session, {"search": text}),
                    hsds_api.taxonomy_terms(session, {"search": text})):
        assert isinstance(listing["total_items"], int)
    session.rollback()


@hypothesis_settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
       | st.lists(st.sampled_from(NASTY + ["food", "tutoring", "for", "teens", "comida"]), max_size=8).map(" ".join))
def test_property_no_search_text_fails_on_postgresql(session, text):
    try:
        run(session, text[:200])
        hsds_api.services(session, {"search": text[:200]}, None)
    finally:
        session.rollback()


def test_phrasing_spanish_and_relaxing_on_postgresql(session):
    tutoring = run(session, "tutoring")
    assert tutoring["total"] > 0
    for phrased in ("help with tutoring", "tutoring for the kids", "the tutoring"):
        assert run(session, phrased)["total"] > 0 and run(session, phrased)["relaxed"] is False, phrased
    assert ids(run(session, "comida")) == ids(run(session, "food")) != set()
    assert ids(run(session, "consejería")) == ids(run(session, "counseling")) != set()
    relaxed = run(session, "tutoring zebrafishery")
    assert relaxed["relaxed"] is True and ids(relaxed) == ids(tutoring)
    session.rollback()
