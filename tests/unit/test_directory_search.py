"""The search module against SQLite + FTS5 (the embedded default), on the generated demo
directory; the PostgreSQL path runs in tests/integration/test_directory.py."""
import re

import pytest

from services.directory.demo import load_demo
from services.directory.editing import create_service
from services.directory.geo import miles_between, postcode_centroid
from services.directory.schemas import SearchQuerySchema
from services.directory.indexing import open_slots, search_tags
from services.directory.search import estimate, search
from services.directory.taxonomy import term_id
from services.directory.views import cards, details
from tests.unit.directory_fixtures import sqlite_directory
from weintervene.auth import AuthContext, Role
from weintervene.errors import BadRequest

VIEWER = {"tenant_id": "00000000-0000-4000-8000-00000000000a", "district_id": None, "kind": "school"}
CARD_FIELDS = {"id", "name", "organization_name", "description", "address", "hours_text", "cost", "languages",
               "categories", "distance_miles", "relevance"}


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    s = sqlite_directory(tmp_path_factory.mktemp("search") / "directory.db")
    load_demo(s, count=300)
    yield s
    s.close()


def run(session, viewer=VIEWER, exact_limit=None, **params):
    params = SearchQuerySchema().load(params)
    params = {k: str(v) if k == "category" else v for k, v in params.items()}
    return search(session, params, viewer, cards=lambda ids: cards(session, ids), exact_limit=exact_limit)


def full(session, items):
    """The full services behind result cards (what a click on a card opens)."""
    return details(session, [i["id"] for i in items])


def test_tutoring_near_dc_is_tutoring_sorted_by_distance(session):
    result = run(session, q="tutoring", postcode="20001", sort="distance", per_page=50)
    assert result["total"] > 10
    distances = [i["distance_miles"] for i in result["items"]]
    assert distances == sorted(distances)
    tutoring = term_id("109-03-10")
    services = full(session, result["items"])
    assert all(tutoring in i["taxonomy_term_ids"] or "tutor" in i["name"].lower() or "tutor" in i["description"].lower()
               for i in services)
    origin = postcode_centroid("20001")
    first = services[0]["locations"][0]
    assert miles_between(origin["latitude"], origin["longitude"], first["latitude"], first["longitude"]) == pytest.approx(
        result["items"][0]["distance_miles"], abs=0.01)


def test_stemming_matches_other_word_forms(session):
    assert run(session, q="tutor")["total"] == run(session, q="tutoring")["total"] > 0
    assert run(session, q="counselling")["total"] >= 0  # no error on British spelling


def test_a_typo_is_corrected(session):
    result = run(session, q="tutorng")
    assert result["corrected_query"] == "tutoring"
    assert result["total"] == run(session, q="tutoring")["total"]


def test_age_filter_excludes_services_outside_the_age_range(session):
    everyone = run(session, per_page=100)["total"]
    teens = run(session, age=16, per_page=100)
    assert 0 < teens["total"] < everyone
    for page in range(1, (teens["total"] + 99) // 100 + 1):
        for item in full(session, run(session, age=16, per_page=100, page=page)["items"]):
            assert item["minimum_age"] is None or item["minimum_age"] <= 16
            assert item["maximum_age"] is None or item["maximum_age"] >= 16
    grade = run(session, grade="K")
    assert all(i["minimum_age"] is None or i["minimum_age"] <= 5 for i in full(session, grade["items"]))


def test_language_filter_keeps_only_services_in_that_language(session):
    spanish = run(session, language="es", per_page=100)
    assert 0 < spanish["total"] < run(session, per_page=1)["total"]
    assert all("es" in i["languages"] for i in spanish["items"])


def test_category_includes_descendants_and_cost_filters(session):
    food = run(session, category=term_id("102"), per_page=100)  # Food: pantry and meals below it
    names = {i["name"] for i in food["items"]}
    assert any("Pantry" in n for n in names) and any("Meals" in n for n in names)
    free = run(session, category=term_id("102"), cost="free", per_page=100)
    assert free["total"] == food["total"]  # every demo food service is free
    low = run(session, q="tutoring", cost="low", per_page=100)
    assert all(i["cost"] in ("free", "low") for i in low["items"])


def test_open_at_a_day_and_time(session):
    result = run(session, open_day="TU", open_time="16:30", per_page=100)
    assert result["total"] > 0
    with_keyword = run(session, q="tutoring", open_day="TU", open_time="16:30", per_page=100)  # probes hours per match
    assert 0 < with_keyword["total"] < run(session, q="tutoring")["total"]
    for item in result["items"] + with_keyword["items"]:
        full = details(session, [item["id"]])[0]
        assert any("TU" in (s.get("byday") or "") and s["opens_at"] <= "16:30" < s["closes_at"] for s in full["schedules"])
    closed = run(session, q="tutoring", open_day="SU", open_time="03:00")
    assert closed["total"] == 0


def test_radius_service_area_facets_and_paging(session):
    near = run(session, postcode="20001", radius_miles=2, per_page=100)
    assert near["total"] > 0 and all(i["distance_miles"] <= 2 for i in near["items"])
    origin = postcode_centroid("20001")
    everywhere = run(session, postcode="20001", sort="distance", per_page=100)["items"]
    within = [i["id"] for i in everywhere if i["distance_miles"] is not None and i["distance_miles"] <= 2]
    assert sorted(within) == sorted(i["id"] for i in near["items"])  # the radius cuts exactly at the distance shown
    for item in full(session, near["items"]):
        loc = item["locations"][0]
        assert miles_between(origin["latitude"], origin["longitude"], loc["latitude"], loc["longitude"]) <= 2.0001
    assert run(session, covers_postcode="20001")["total"] == 300
    assert run(session, covers_postcode="94063")["total"] == 0  # San Mateo: not served
    everything = run(session)
    facets = everything["facets"]
    assert sum(f["count"] for f in facets["cost"]) == everything["total"] == 300
    spanish = next(f["count"] for f in facets["languages"] if f["code"] == "es")
    assert spanish == run(session, language="es")["total"]
    food = next(f["count"] for f in facets["categories"] if f["name"] == "Food")
    assert food == run(session, category=term_id("102"))["total"]
    assert {f["name"] for f in facets["categories"]} >= {"Education", "Food", "Care"}
    first = run(session, per_page=10, page=1)["items"]
    second = run(session, per_page=10, page=2)["items"]
    assert not {i["id"] for i in first} & {i["id"] for i in second}
    assert run(session, per_page=10, page=1)["items"] == first  # stable
    with pytest.raises(BadRequest):
        run(session, per_page=10, page=999)


def test_bad_input_is_refused(session):
    with pytest.raises(BadRequest):
        run(session, sort="distance")  # no origin
    with pytest.raises(BadRequest):
        run(session, postcode="00000")  # well-formed but unknown
    with pytest.raises(BadRequest):
        run(session, category="0b6d3c1e-5a1f-4f0e-9a55-6c1f0d7e2a11")


def test_tenant_owned_services_are_visible_only_inside_the_tenant(session):
    school = "00000000-0000-4000-8000-0000000000b1"
    other = "00000000-0000-4000-8000-0000000000b2"
    admin = AuthContext(user_id="u1", tenant_id=school, role=Role.SCHOOL_ADMIN, district_id="00000000-0000-4000-8000-0000000000d1")
    created = create_service(session, admin, {"name": "Zyzzyva Homework Hour", "description": "Our own tutoring club",
                                              "taxonomy_term_ids": [term_id("109-03-10")]})
    assert created["owner_tenant_id"] == school
    assert run(session, viewer={"tenant_id": school}, q="zyzzyva")["total"] == 1
    assert run(session, viewer={"tenant_id": other}, q="zyzzyva")["total"] == 0
    assert run(session, viewer=None, q="zyzzyva")["total"] == 0


def test_results_are_compact_cards_with_what_the_result_card_shows(session):
    result = run(session, q="tutoring", postcode="20001", per_page=5)
    assert result["items"]
    for item, service in zip(result["items"], full(session, result["items"])):
        assert set(item) == CARD_FIELDS
        assert item["name"] == service["name"] and item["cost"] == service["cost"]
        assert item["organization_name"] == (service["organization"] or {}).get("name")
        assert item["languages"] == service["languages"] and item["hours_text"] == (service["hours_text"] or None)
        assert item["categories"] == [t["name"] for t in service["taxonomy_terms"][:3]]
        assert len(item["description"]) <= 180 and service["description"].startswith(item["description"].rstrip("…"))
        address = service["locations"][0]["address"]
        assert item["address"] == f"{address['address_1']}, {address['city']}"


def test_relevance_puts_name_matches_first_and_pages_partition_the_results(session):
    result = run(session, q="tutoring", per_page=100)
    relevance = [i["relevance"] for i in result["items"]]
    assert relevance == sorted(relevance, reverse=True) and relevance[0] > 0
    pages = [run(session, q="tutoring", per_page=7, page=p)["items"] for p in range(1, (result["total"] + 6) // 7 + 1)]
    assert [i["id"] for page in pages for i in page] == [i["id"] for i in result["items"]]


def test_a_missing_card_is_built_from_the_hsds_tables(session):
    from sqlalchemy import delete

    from services.directory.indexing import reindex
    from services.directory.models import ServiceCard

    items = run(session, q="tutoring", per_page=3)["items"]
    ids = [i["id"] for i in items]
    stored = cards(session, ids)
    session.execute(delete(ServiceCard).where(ServiceCard.service_id == ids[1]))
    try:
        assert cards(session, ids) == stored
    finally:
        reindex(session, [ids[1]])
        session.commit()
    assert session.get(ServiceCard, ids[1]).card == stored[1]


def test_a_search_below_the_exact_limit_is_exact_and_the_same_as_without_one(session):
    unbounded = run(session, q="tutoring", per_page=100)
    bounded = run(session, q="tutoring", per_page=100, exact_limit=unbounded["total"])
    assert bounded == unbounded
    assert bounded["total_is_estimate"] is False and bounded["pages"] == (bounded["total"] + 99) // 100
    narrow = run(session, q="tutoring", language="es", cost="free", per_page=100, exact_limit=unbounded["total"])
    assert 0 < narrow["total"] < unbounded["total"] and narrow["total_is_estimate"] is False
    assert all("es" in i["languages"] and i["cost"] == "free" for i in narrow["items"])


def test_a_broad_search_ranks_name_matches_first_pages_stably_and_says_its_counts_are_estimates(session):
    exact = run(session, q="tutoring", per_page=100)
    limit = 4
    assert exact["total"] > 2 * limit + 1
    first = run(session, q="tutoring", per_page=3, exact_limit=limit)
    assert first["total_is_estimate"] is True
    assert first["total"] >= limit + 1 and first["total"] == round(first["total"], -max(0, len(str(first["total"])) - 2))
    # Pages reach the ranked matches: the name matches read and the matches read, without repeats.
    ranked = []
    for page in range(1, first["pages"] + 1):
        items = run(session, q="tutoring", per_page=3, page=page, exact_limit=limit)["items"]
        assert items == run(session, q="tutoring", per_page=3, page=page, exact_limit=limit)["items"]  # stable
        ranked += items
    ids = [i["id"] for i in ranked]
    assert len(ids) == len(set(ids)) and limit + 1 <= len(ids) <= 2 * limit + 1
    assert first["pages"] == (len(ids) + 2) // 3
    with pytest.raises(BadRequest):
        run(session, q="tutoring", per_page=3, page=first["pages"] + 1, exact_limit=limit)
    # Filed under the category the query names (Tutoring) first, then every word in the name
    # (the synonyms included: "homework"), in both the bounded and the exact search.
    tutoring = term_id("109-03-10")
    for items in (ranked, exact["items"]):
        keys = [(tutoring in s["taxonomy_term_ids"], bool(re.search("tutor|homework", s["name"].lower())))
                for s in full(session, items)]
        assert keys == sorted(keys, reverse=True) and any(keys[0])
    assert set(ids) <= {i["id"] for i in exact["items"]}
    # Facet counts are scaled up from the matches read, like the total.
    costs = sum(f["count"] for f in first["facets"]["cost"])
    assert abs(costs - first["total"]) <= 0.15 * first["total"] + 2


def test_the_estimate_scales_the_matches_read_by_how_far_the_scan_went():
    assert estimate({"found": 501, "last": 1000, "size": 10000}, 500) == 5000
    assert estimate({"found": 501, "last": 1234, "size": 100000}, 500) == 41000
    assert estimate({"found": 501, "last": 100000, "size": 100000}, 500) == 501  # never fewer than read
    assert estimate({"found": 500, "last": 10, "size": 100000}, 500) is None  # all read: exact
    assert estimate({"found": 9000, "last": 10, "size": 100000}, None) is None


def test_filter_tokens_and_open_half_hours():
    assert search_tags("|en|es|", "free", "|a1b2|", {"TU"}) == "tcata1b20 tcostfree0 tlangen0 tlanges0 topentu0"
    slots = open_slots([("TU", "16:00", "17:30"), ("MO", "09:00", "10:00")])
    assert slots["open_tu"] == (1 << 32) | (1 << 33) | (1 << 34) and slots["open_mo"] == (1 << 18) | (1 << 19)
    assert slots["open_we"] == 0 and slots["hours_unaligned"] is False
    late = open_slots([("FR", "16:45", "18:10")])
    assert late["open_fr"] == (1 << 34) | (1 << 35) and late["hours_unaligned"] is True


def test_open_at_is_exact_for_hours_off_the_half_hour(session):
    admin = AuthContext(user_id="u1", tenant_id=VIEWER["tenant_id"], role=Role.SCHOOL_ADMIN)
    create_service(session, admin, {"name": "Quillwort Evening Homework Club", "description": "Tutoring in the evening",
                                    "schedules": [{"days": ["FR"], "opens_at": "16:45", "closes_at": "18:10"}]})
    session.commit()

    def found(day, time):
        return [i["name"] for i in run(session, q="quillwort", open_day=day, open_time=time)["items"]]

    assert found("FR", "16:45") and found("FR", "17:00") and found("FR", "18:09")
    assert not found("FR", "16:44") and not found("FR", "18:10") and not found("TH", "17:00")
    assert [i["name"] for i in run(session, open_day="FR", open_time="16:50", per_page=100)["items"]
            if "Quillwort" in i["name"]] == ["Quillwort Evening Homework Club"]
