"""analytics reports, with identity and directory mocked (other bounded contexts)."""
import csv
import io
import uuid
from datetime import date, datetime, timezone
from unittest import mock

import pytest
from nameko.testing.services import worker_factory

from services.analytics import periods
from services.analytics.periods import Period, local_today, resolve
from services.analytics.service import AnalyticsService
from services.analytics.sources import Sources, term_cache
from services.analytics.suppression import TOTAL, suppress
from tests.support.analytics import closed_event, migrated_session, share_event, tenant
from weintervene.errors import BadRequest, Forbidden, NotFound

MENTAL_HEALTH, TUTORING, FOOD = (str(uuid.uuid4()) for _ in range(3))
COUNSELLING, ANXIETY, MATH = (str(uuid.uuid4()) for _ in range(3))
TERMS = {
    COUNSELLING: {"id": COUNSELLING, "name": "Counselling", "parent_id": MENTAL_HEALTH,
                  "top_level_id": MENTAL_HEALTH, "top_level_name": "Mental health"},
    ANXIETY: {"id": ANXIETY, "name": "Anxiety", "parent_id": MENTAL_HEALTH,
              "top_level_id": MENTAL_HEALTH, "top_level_name": "Mental health"},
    MATH: {"id": MATH, "name": "Math tutoring", "parent_id": TUTORING,
           "top_level_id": TUTORING, "top_level_name": "Tutoring"},
    FOOD: {"id": FOOD, "name": "Food", "parent_id": None, "top_level_id": FOOD, "top_level_name": "Food"},
}


@pytest.fixture
def session(tmp_path):
    s = migrated_session(f"sqlite:///{tmp_path}/analytics.db")
    yield s
    s.close()
    s.get_bind().dispose()


class World:
    """Tenants as identity knows them, services as directory knows them."""

    def __init__(self):
        self.district = tenant("Riverside USD", kind="district", threshold=10)
        self.lincoln = tenant("Lincoln Middle", parent_id=self.district["id"], consent=True)
        self.adams = tenant("Adams High", parent_id=self.district["id"], consent=False)
        self.tenants = {t["id"]: t for t in (self.district, self.lincoln, self.adams)}
        self.service_names = {}
        self.nearby = {}

    def tenant_info(self, tenant_id):
        if tenant_id not in self.tenants:
            raise NotFound("No such tenant.", code="tenant_not_found")
        return self.tenants[tenant_id]

    def tenants_info(self, tenant_ids):
        return {t: self.tenants[t] for t in tenant_ids if t in self.tenants}

    def list_tenants_in(self, tenant_id):
        children = [t for t in self.tenants.values() if t["parent_id"] == tenant_id]
        return children or [self.tenant_info(tenant_id)]

    def names_of(self, auth, service_ids):
        return {sid: self.service_names[sid] for sid in service_ids if sid in self.service_names}

    def service(self, name):
        sid = str(uuid.uuid4())
        self.service_names[sid] = name
        return sid


@pytest.fixture
def world():
    return World()


@pytest.fixture
def service(session, world):
    svc = worker_factory(AnalyticsService, db=session, term_cache=term_cache())
    svc.identity_rpc.tenant_info.side_effect = world.tenant_info
    svc.identity_rpc.tenants_info.side_effect = world.tenants_info
    svc.identity_rpc.list_tenants_in.side_effect = world.list_tenants_in
    svc.directory_rpc.get_terms.side_effect = lambda ids: {t: TERMS[t] for t in ids if t in TERMS}
    svc.directory_rpc.service_names.side_effect = world.names_of
    svc.directory_rpc.count_services.side_effect = (
        lambda term_ids, lat, lon, radius, tenant_id, kind, district_id, groups=None: {
            **{t: world.nearby.get(t, 0) for t in term_ids}, **{k: world.nearby.get(k, 0) for k in groups or {}}})
    return svc


def shares(service, tenant_info, n, **kwargs):
    for _ in range(n):
        service.on_share_recorded([share_event(tenant_info["id"], **kwargs)])


def admin(t, role="school_admin"):
    return {"user_id": str(uuid.uuid4()), "tenant_id": t["id"], "role": role}


def OPERATOR():
    return {"user_id": str(uuid.uuid4()), "tenant_id": str(uuid.uuid4()), "role": "operator"}


def rows_by(report, *keys):
    return {tuple(r[k] for k in keys): r for r in report["rows"]}


# -- periods and time zones -----------------------------------------------------

def test_the_schools_local_day_decides_today():
    now = datetime(2026, 12, 1, 3, 30, tzinfo=timezone.utc)  # 30 Nov, 19:30 in Los Angeles
    assert local_today("America/Los_Angeles", now) == date(2026, 11, 30)
    assert local_today("Europe/Berlin", now) == date(2026, 12, 1)
    assert local_today(None, now) == date(2026, 12, 1)
    assert local_today("Not/AZone", now) == date(2026, 12, 1)


@pytest.mark.parametrize("kind, anchor, start, end, prev_start, prev_end", [
    ("week", date(2026, 11, 28), date(2026, 11, 23), date(2026, 11, 29), date(2026, 11, 16), date(2026, 11, 22)),
    ("month", date(2026, 3, 31), date(2026, 3, 1), date(2026, 3, 31), date(2026, 2, 1), date(2026, 2, 28)),
    ("month", date(2026, 1, 5), date(2026, 1, 1), date(2026, 1, 31), date(2025, 12, 1), date(2025, 12, 31)),
    ("semester", date(2026, 11, 28), date(2026, 7, 1), date(2026, 12, 31), date(2026, 1, 1), date(2026, 6, 30)),
    ("semester", date(2026, 2, 1), date(2026, 1, 1), date(2026, 6, 30), date(2025, 7, 1), date(2025, 12, 31)),
    ("school_year", date(2026, 6, 30), date(2025, 7, 1), date(2026, 6, 30), date(2024, 7, 1), date(2025, 6, 30)),
    ("school_year", date(2026, 7, 1), date(2026, 7, 1), date(2027, 6, 30), date(2025, 7, 1), date(2026, 6, 30)),
])
def test_periods_and_their_previous(kind, anchor, start, end, prev_start, prev_end):
    period = resolve(kind, anchor)
    assert (period.start, period.end) == (start, end)
    assert (period.previous().start, period.previous().end) == (prev_start, prev_end)


def test_custom_period_and_its_errors():
    p = resolve("custom", None, date(2026, 1, 10), date(2026, 1, 19))
    assert p.previous() == Period("custom", date(2025, 12, 31), date(2026, 1, 9))
    with pytest.raises(BadRequest):
        resolve("custom", None, date(2026, 1, 19), date(2026, 1, 10))
    with pytest.raises(BadRequest):
        resolve("custom", None, None, date(2026, 1, 10))
    with pytest.raises(BadRequest):
        resolve("custom", None, date(2020, 1, 1), date(2026, 1, 10))


def test_month_report_follows_the_schools_local_day(service, world):
    world.lincoln["timezone"] = "America/Los_Angeles"
    shares(service, world.lincoln, 2, day="2026-11-30")
    shares(service, world.lincoln, 5, day="2026-12-01")
    # 03:30 UTC on 1 December is still 30 November in Los Angeles.
    with mock.patch.object(periods, "utcnow", return_value=datetime(2026, 12, 1, 3, 30, tzinfo=timezone.utc)):
        report = service.report(admin(world.lincoln), "schools", {"period": "month"})
    assert report["period"] == {"kind": "month", "from": "2026-11-01", "to": "2026-11-30"}
    assert report["rows"][0]["count"] == 2
    world.lincoln["timezone"] = "Europe/Berlin"
    with mock.patch.object(periods, "utcnow", return_value=datetime(2026, 12, 1, 3, 30, tzinfo=timezone.utc)):
        report = service.report(admin(world.lincoln), "schools", {"period": "month"})
    assert report["period"]["from"] == "2026-12-01"
    assert (report["rows"][0]["count"], report["rows"][0]["previous_count"]) == (5, 2)


def test_reports_across_period_boundaries_in_the_schools_time_zone(service, world):
    shares(service, world.lincoln, 3, day="2026-06-30")  # the last day of school year 2025-26
    shares(service, world.lincoln, 4, day="2026-07-01")  # the first day of 2026-27
    shares(service, world.lincoln, 6, day="2026-07-06")  # a Monday: the next week
    shares(service, world.lincoln, 2, day="2026-06-28")  # a Sunday: the week before
    # 12:30 UTC on 30 June is 00:30 on 1 July in Auckland (NZST, UTC+12) but still
    # 05:30 on 30 June in Los Angeles: the school's own day picks the school year.
    now = datetime(2026, 6, 30, 12, 30, tzinfo=timezone.utc)
    expected = {"Pacific/Auckland": ({"kind": "school_year", "from": "2026-07-01", "to": "2027-06-30"}, 10, 5),
                "America/Los_Angeles": ({"kind": "school_year", "from": "2025-07-01", "to": "2026-06-30"}, 5, 0)}
    for zone, (period, count, previous) in expected.items():
        world.lincoln["timezone"] = zone
        with mock.patch.object(periods, "utcnow", return_value=now):
            year = service.report(admin(world.lincoln), "schools", {"period": "school_year"})
        assert year["period"] == period
        assert (year["rows"][0]["count"], year["rows"][0]["previous_count"]) == (count, previous)
    # A week runs Monday to Sunday across the month and school-year boundary.
    week = service.report(admin(world.lincoln), "trends", {"period": "week", "to": "2026-07-01"})
    assert week["period"] == {"kind": "week", "from": "2026-06-29", "to": "2026-07-05"}
    figures = {r["bucket_start"]: (r["count"], r["previous_count"]) for r in week["rows"]}
    assert list(figures) == [f"2026-06-{d}" for d in (29, 30)] + [f"2026-07-0{d}" for d in range(1, 6)]
    # The previous week's Sunday lines up with this week's Sunday.
    assert {b: f for b, f in figures.items() if f != (0, 0)} == {
        "2026-06-30": (3, 0), "2026-07-01": (4, 0), "2026-07-05": (0, 2)}
    month = service.report(admin(world.lincoln), "schools", {"period": "month", "to": "2026-07-31"})
    assert (month["rows"][0]["count"], month["rows"][0]["previous_count"]) == (10, 5)


# -- a school's own view ------------------------------------------------------------

def test_top_services_with_change_against_the_previous_period(service, world):
    tutoring, pantry = world.service("Eastside Tutoring"), world.service("Food pantry")
    shares(service, world.lincoln, 14, service_id=tutoring, day="2026-11-01")  # first day of the month
    shares(service, world.lincoln, 10, service_id=tutoring, day="2026-10-31")  # last day of the previous
    shares(service, world.lincoln, 3, service_id=pantry, day="2026-11-30")
    shares(service, world.adams, 50, service_id=pantry, day="2026-11-15")  # another school: not counted

    report = service.report(admin(world.lincoln), "top-services", {"period": "month", "to": "2026-11-15"})
    assert report["scope"]["view"] == "school"
    assert [(r["rank"], r["service_name"], r["count"], r["previous_count"], r["change_pct"]) for r in report["rows"]] == [
        (1, "Eastside Tutoring", 14, 10, 40.0),
        (2, "Food pantry", 3, 0, None),  # a school's own small counts are not hidden
    ]
    assert not any(r["count_suppressed"] for r in report["rows"])


def test_top_categories_roll_terms_up_to_top_level(service, world):
    shares(service, world.lincoln, 4, terms=[COUNSELLING], day="2026-11-02")
    shares(service, world.lincoln, 3, terms=[ANXIETY], day="2026-11-02")
    shares(service, world.lincoln, 5, terms=[MATH, FOOD], day="2026-11-03")
    shares(service, world.lincoln, 1, terms=[FOOD], day="2026-11-30")
    report = service.report(admin(world.lincoln), "top-categories", {"period": "month", "to": "2026-11-30"})
    assert [(r["category_name"], r["count"]) for r in report["rows"]] == [
        ("Mental health", 7), ("Food", 6), ("Tutoring", 5)]


def test_two_terms_of_one_top_category_count_one_share_once(service, world):
    # One share carrying Counselling and Anxiety is one Mental-health request, not two.
    shares(service, world.lincoln, 4, terms=[COUNSELLING, ANXIETY], day="2026-11-02")
    shares(service, world.lincoln, 2, terms=[COUNSELLING, ANXIETY, MATH], day="2026-11-02", channel="email")
    shares(service, world.lincoln, 3, terms=[ANXIETY], day="2026-11-03")
    shares(service, world.lincoln, 1, terms=[ANXIETY, COUNSELLING], day="2026-10-05")  # previous month
    query = {"period": "month", "to": "2026-11-30"}
    report = service.report(admin(world.lincoln), "top-categories", query)
    assert [(r["category_name"], r["count"], r["previous_count"]) for r in report["rows"]] == [
        ("Mental health", 9, 1), ("Tutoring", 2, 0)]
    world.nearby = {MENTAL_HEALTH: 2, TUTORING: 0}
    unmet = service.report(admin(world.lincoln), "unmet-need", query)
    assert [(r["category_name"], r["count"], r["need_score"]) for r in unmet["rows"]] == [
        ("Mental health", 9, 3.0), ("Tutoring", 2, 2.0)]


CARE, MENTAL_HEALTH_CARE, FOOD_TOP, FOOD_PANTRY = (str(uuid.uuid4()) for _ in range(4))
IMPORTED_FOOD, IMPORTED_PANTRY = (str(uuid.uuid4()) for _ in range(2))
DEEP_TERMS = {
    # Open Eligibility: Care > Mental Health Care > Counseling; Food > Food Pantry.
    COUNSELLING: {"id": COUNSELLING, "name": "Counseling", "ancestors": [
        {"id": CARE, "name": "Care"}, {"id": MENTAL_HEALTH_CARE, "name": "Mental Health Care"},
        {"id": COUNSELLING, "name": "Counseling"}]},
    FOOD_PANTRY: {"id": FOOD_PANTRY, "name": "Food Pantry", "ancestors": [
        {"id": FOOD_TOP, "name": "Food"}, {"id": FOOD_PANTRY, "name": "Food Pantry"}]},
    FOOD_TOP: {"id": FOOD_TOP, "name": "Food", "ancestors": [{"id": FOOD_TOP, "name": "Food"}]},
    # A 211's own taxonomy, imported: its "Food" and "Food pantry " name the same categories.
    IMPORTED_PANTRY: {"id": IMPORTED_PANTRY, "name": "Food pantry ", "ancestors": [
        {"id": IMPORTED_FOOD, "name": "FOOD"}, {"id": IMPORTED_PANTRY, "name": "Food pantry "}]},
}


def test_categories_at_the_level_people_recognise_one_row_per_name(service, world):
    service.directory_rpc.get_terms.side_effect = lambda ids: {t: DEEP_TERMS[t] for t in ids if t in DEEP_TERMS}
    shares(service, world.lincoln, 4, terms=[COUNSELLING], day="2026-11-02")
    shares(service, world.lincoln, 3, terms=[FOOD_PANTRY], day="2026-11-02")
    shares(service, world.lincoln, 2, terms=[IMPORTED_PANTRY], day="2026-11-02")
    shares(service, world.lincoln, 2, terms=[FOOD_PANTRY, IMPORTED_PANTRY], day="2026-11-02")  # one request each
    shares(service, world.lincoln, 1, terms=[FOOD_TOP], day="2026-11-02")  # filed at the top: stays "Food"
    query = {"period": "month", "to": "2026-11-30", "category_level": 2}
    rows = service.report(admin(world.lincoln), "top-categories", query)["rows"]
    assert [(r["category_name"], r["count"]) for r in rows] == [
        ("Food Pantry", 7), ("Mental Health Care", 4), ("Food", 1)]
    default = service.report(admin(world.lincoln), "top-categories", {"period": "month", "to": "2026-11-30"})["rows"]
    assert [(r["category_name"], r["count"]) for r in default] == [  # level 3: the term itself on short branches
        ("Food Pantry", 7), ("Counseling", 4), ("Food", 1)]
    pantry = rows[0]
    assert pantry["category_id"] == min(FOOD_PANTRY, IMPORTED_PANTRY)
    assert sorted(pantry["category_ids"]) == sorted([FOOD_PANTRY, IMPORTED_PANTRY])
    top = service.report(admin(world.lincoln), "top-categories", {**query, "category_level": 1})["rows"]
    assert [(r["category_name"], r["count"]) for r in top] == [("Food", 8), ("Care", 4)]
    # Unmet need asks directory for one count per category, over every term of its name.
    world.nearby = {pantry["category_id"]: 1, MENTAL_HEALTH_CARE: 9}
    unmet = service.report(admin(world.lincoln), "unmet-need", query)["rows"]
    assert (unmet[0]["category_name"], unmet[0]["services_nearby"], unmet[0]["need_score"]) == ("Food Pantry", 1, 3.5)
    groups = service.directory_rpc.count_services.call_args.args[7]
    assert sorted(groups[pantry["category_id"]]) == sorted([FOOD_PANTRY, IMPORTED_PANTRY])
    with pytest.raises(BadRequest):
        service.report(admin(world.lincoln), "top-categories", {**query, "category_level": 0})


def test_trends_and_channels(service, world):
    shares(service, world.lincoln, 2, channel="sms", day="2026-11-02")
    shares(service, world.lincoln, 1, channel="print", day="2026-11-04")
    shares(service, world.lincoln, 4, channel="sms", day="2026-10-27")
    trend = service.report(admin(world.lincoln), "trends", {"period": "week", "to": "2026-11-04"})
    assert [(r["bucket_start"], r["count"], r["previous_count"]) for r in trend["rows"]] == [
        ("2026-11-02", 2, 0), ("2026-11-03", 0, 4), ("2026-11-04", 1, 0), ("2026-11-05", 0, 0),
        ("2026-11-06", 0, 0), ("2026-11-07", 0, 0), ("2026-11-08", 0, 0)]
    year = service.report(admin(world.lincoln), "trends", {"period": "school_year", "to": "2026-11-04"})
    assert {r["bucket"] for r in year["rows"]} == {"month"} and len(year["rows"]) == 12
    assert rows_by(year, "bucket_start")[("2026-11-01",)]["count"] == 3
    mix = service.report(admin(world.lincoln), "channels", {"period": "week", "to": "2026-11-04"})
    assert {r["channel"]: r["count"] for r in mix["rows"]} == {"email": 0, "sms": 2, "print": 1, "link": 0}


def test_unmet_need_ranks_requests_against_providers_nearby(service, world):
    shares(service, world.lincoln, 12, terms=[MATH], day="2026-11-02")
    shares(service, world.lincoln, 20, terms=[COUNSELLING], day="2026-11-02")
    shares(service, world.lincoln, 7, terms=[FOOD], day="2026-11-02")
    world.nearby = {MENTAL_HEALTH: 9, TUTORING: 1, FOOD: 0}
    report = service.report(admin(world.lincoln), "unmet-need", {"period": "month", "to": "2026-11-02"})
    assert [(r["category_name"], r["count"], r["services_nearby"], r["need_score"]) for r in report["rows"]] == [
        ("Food", 7, 0, 7.0), ("Tutoring", 12, 1, 6.0), ("Mental health", 20, 9, 2.0)]
    args = service.directory_rpc.count_services.call_args.args
    assert sorted(args[7]) == sorted([MENTAL_HEALTH, TUTORING, FOOD])  # one count per category
    # Counted as Lincoln's staff see the directory (its district's and programs' published services too).
    assert args[1:7] == (40.0, -75.0, 10.0, world.lincoln["id"], "school", world.district["id"])


def test_csv_export_of_every_report(service, world):
    sid = world.service("=cmd|' /C calc'!A0")
    shares(service, world.lincoln, 3, service_id=sid, terms=[MATH], day="2026-11-02")
    world.nearby = {TUTORING: 2}
    for name in ("top-services", "top-categories", "trends", "channels", "unmet-need", "schools"):
        exported = service.export_report(admin(world.lincoln), name, {"period": "month", "to": "2026-11-02"})
        assert exported["filename"] == f"{name}-2026-11-01-2026-11-30.csv"
        table = list(csv.DictReader(io.StringIO(exported["content"])))
        json_rows = service.report(admin(world.lincoln), name, {"period": "month", "to": "2026-11-02"})["rows"]
        assert len(table) == len(json_rows) > 0
        assert sum(int(r["count"]) for r in table) == sum(r["count"] for r in json_rows)
    top = service.export_report(admin(world.lincoln), "top-services", {"period": "month", "to": "2026-11-02"})
    assert "'=cmd" in top["content"]  # no spreadsheet formula


def test_bad_queries_and_roles(service, world):
    with pytest.raises(NotFound):
        service.report(admin(world.lincoln), "everything", {})
    with pytest.raises(BadRequest):
        service.report(admin(world.lincoln), "schools", {"period": "decade"})
    with pytest.raises(BadRequest):
        service.report(admin(world.lincoln), "schools", {"period": "custom", "from": "2026-02-01"})
    with pytest.raises(Forbidden):
        service.report(admin(world.lincoln, "teacher"), "schools", {})
    with pytest.raises(Forbidden):
        service.report(admin(world.lincoln), "schools", {"tenant_id": world.adams["id"]})
    outsider = tenant("Elsewhere District", kind="district")
    world.tenants[outsider["id"]] = outsider
    with pytest.raises(Forbidden):
        service.report(admin(outsider, "district_admin"), "schools", {"tenant_id": world.lincoln["id"]})


# -- suppression ----------------------------------------------------------------------

def test_primary_and_complementary_suppression_exact_cells():
    table = suppress({"tutoring": {"A": 3, "B": 20, "C": 15}, "food": {"A": 30, "B": 12, "C": 40}},
                     ["A", "B", "C"], 10)
    # Primary: A's 3. Row "tutoring" would give it away (38 - 20 - 15): hide B's 15? no, the
    # smallest other positive cell, C's 15 < B's 20. Column A would give it away (33 - 30):
    # hide A's 30. Column C then hides one figure (15): hide food's 40 in C. Row "food" now
    # hides two (30, 40). Each relation hides 0 or >= 2 figures.
    assert table.hidden_keys == {("tutoring", "A"), ("tutoring", "C"), ("food", "A"), ("food", "C")}
    assert table.shown("tutoring", TOTAL) == 38 and table.shown(TOTAL, "A") == 33
    assert table.shown("tutoring", "B") == 20


def test_small_totals_are_hidden_too_and_zero_is_shown():
    table = suppress({"sms": {"A": 4, "B": 0}, "email": {"A": 20, "B": 25}}, ["A", "B"], 10)
    assert table.hidden("sms", "A") and table.hidden("sms", TOTAL)  # the total 4 is itself small
    assert table.shown("sms", "B") == 0
    # Column A (24 = 4 + 20) would reveal the 4: A's 20 is hidden as its complement. The
    # column of row totals (49 = 4 + 45) would reveal the hidden total 4: 45 is hidden.
    # Row "email" (45 = 20 + 25) then hides two figures; 25 stays shown.
    assert table.hidden_keys == {("sms", "A"), ("sms", TOTAL), ("email", "A"), ("email", TOTAL)}
    assert table.shown("email", "B") == 25 and table.shown(TOTAL, TOTAL) == 49


def test_no_relation_ever_hides_exactly_one_figure():
    import random
    from services.analytics.suppression import relations
    rng = random.Random(5)
    for _ in range(200):
        items, columns = [f"i{n}" for n in range(rng.randint(1, 5))], [f"c{n}" for n in range(rng.randint(1, 4))]
        matrix = {i: {c: rng.choice([0, 0, 1, 3, 9, 10, 12, 40]) for c in columns} for i in items}
        table = suppress(matrix, columns, 10)
        for rel in relations(items, columns):
            assert sum(1 for key in rel if key in table.hidden_keys) != 1
        assert all(table.hidden(*k) for k, v in table.values.items() if 0 < v < 10)


def test_district_view_side_by_side_with_suppression(service, world):
    tutoring, pantry = world.service("Eastside Tutoring"), world.service("Food pantry")
    shares(service, world.lincoln, 3, service_id=tutoring, day="2026-11-02")
    shares(service, world.adams, 20, service_id=tutoring, day="2026-11-02")
    shares(service, world.lincoln, 30, service_id=pantry, day="2026-11-02")
    shares(service, world.adams, 12, service_id=pantry, day="2026-11-02")
    report = service.report(admin(world.district, "district_admin"), "top-services", {"period": "month", "to": "2026-11-02"})
    assert report["scope"]["view"] == "district" and report["scope"]["suppression_threshold"] == 10
    rows = rows_by(report, "tenant_name", "service_name")
    cell = {k: (r["count"], r["count_suppressed"]) for k, r in rows.items()}
    assert cell == {
        ("Lincoln Middle", "Eastside Tutoring"): (None, True),   # 3: primary
        ("Adams High", "Eastside Tutoring"): (None, True),       # 20: complementary (row total 23)
        ("Lincoln Middle", "Food pantry"): (None, True),         # 30: complementary (Lincoln's total 33)
        ("Adams High", "Food pantry"): (None, True),             # 12: complementary (Adams' total 32)
        ("Riverside USD", "Eastside Tutoring"): (23, False),
        ("Riverside USD", "Food pantry"): (42, False),
    }
    assert {r["level"] for r in report["rows"] if r["tenant_name"] == "Riverside USD"} == {"district"}
    assert all(r["change_pct"] is None for r in report["rows"] if r["count_suppressed"])
    # A school filter shows that school's rows from the same suppressed table.
    one = service.report(admin(world.district, "district_admin"), "top-services",
                         {"period": "month", "to": "2026-11-02", "tenant_id": world.adams["id"]})
    assert {r["tenant_name"] for r in one["rows"]} == {"Adams High"}
    assert all(r["count"] is None for r in one["rows"])


def test_district_threshold_is_configurable(service, world):
    world.district["suppression_threshold"] = 3
    shares(service, world.lincoln, 5, day="2026-11-02")
    shares(service, world.adams, 7, day="2026-11-02")
    report = service.report(admin(world.district, "district_admin"), "schools", {"period": "month", "to": "2026-11-02"})
    assert {(r["tenant_name"], r["level"]): r["count"] for r in report["rows"]} == {
        ("Lincoln Middle", "school"): 5, ("Adams High", "school"): 7,
        ("Riverside USD", "district_office"): 0,  # shares made at the district level itself
        ("Riverside USD", "district"): 12}


# -- operators and consent --------------------------------------------------------------

def test_operator_sees_consenting_schools_only(service, world):
    shares(service, world.lincoln, 12, day="2026-11-02")
    shares(service, world.adams, 15, day="2026-11-02")
    report = service.report(OPERATOR(), "schools", {"period": "month", "to": "2026-11-02"})
    assert report["scope"]["view"] == "operator"
    assert {r["level"] for r in report["rows"]} == {"school", "platform"}
    assert {r["tenant_name"]: r["count"] for r in report["rows"]} == {
        "Lincoln Middle": 12, "All consenting tenants": 12}
    assert world.adams["id"] not in repr(report)
    with pytest.raises(Forbidden):
        service.report(OPERATOR(), "schools", {"tenant_id": world.adams["id"]})
    # Consent on: Adams appears; consent off: Lincoln disappears.
    world.adams["analytics_consent"], world.lincoln["analytics_consent"] = True, False
    report = service.report(OPERATOR(), "schools", {"period": "month", "to": "2026-11-02", "tenant_id": world.district["id"]})
    assert {r["tenant_name"]: r["count"] for r in report["rows"]} == {
        "Adams High": 15, "All consenting tenants": 15}
    assert world.lincoln["id"] not in repr(report)


def test_operator_view_asks_identity_once_for_every_tenant(service, world):
    schools = [tenant(f"School {n:02d}", parent_id=world.district["id"], consent=n % 2 == 0) for n in range(30)]
    world.tenants.update({t["id"]: t for t in schools})
    for school in schools:
        shares(service, school, 1, day="2026-11-02")
    shares(service, {"id": str(uuid.uuid4())}, 1, day="2026-11-02")  # a tenant identity no longer knows
    report = service.report(OPERATOR(), "schools", {"period": "month", "to": "2026-11-02"})
    assert [r["tenant_name"] for r in report["rows"]] == [f"School {n:02d}" for n in range(0, 30, 2)] + [
        "All consenting tenants"]
    assert service.identity_rpc.tenant_info.call_count == 0
    # One call for the tenants with counts, one for their districts' thresholds.
    assert service.identity_rpc.tenants_info.call_count == 2


def test_operator_view_suppresses_small_counts(service, world):
    world.adams["analytics_consent"] = True
    shares(service, world.lincoln, 4, channel="sms", day="2026-11-02")
    shares(service, world.lincoln, 11, channel="email", day="2026-11-02")
    shares(service, world.adams, 25, channel="email", day="2026-11-02")
    shares(service, world.adams, 30, channel="sms", day="2026-11-02")
    report = service.report(OPERATOR(), "channels", {"period": "month", "to": "2026-11-02"})
    cells = {(r["tenant_name"], r["channel"]): r["count"] for r in report["rows"]}
    assert cells[("Lincoln Middle", "sms")] is None
    assert cells[("Lincoln Middle", "email")] is None  # else Lincoln's total 15 reveals the 4
    assert cells[("All consenting tenants", "sms")] == 34 and cells[("All consenting tenants", "email")] == 36


# -- the dashboard in one call ------------------------------------------------------------

def dashboard_world(service, world):
    tutoring, pantry = world.service("Eastside Tutoring"), world.service("Food pantry")
    shares(service, world.lincoln, 14, service_id=tutoring, terms=[MATH], day="2026-11-02", channel="email")
    shares(service, world.lincoln, 9, service_id=pantry, terms=[FOOD], day="2026-11-03")
    shares(service, world.lincoln, 5, service_id=pantry, terms=[FOOD, COUNSELLING], day="2026-10-03")
    shares(service, world.adams, 30, service_id=pantry, terms=[FOOD], day="2026-11-04")
    shares(service, world.adams, 2, service_id=tutoring, terms=[MATH], day="2026-11-05")
    world.nearby = {TUTORING: 1, FOOD: 4}


@pytest.mark.parametrize("who", ["school_admin", "district_admin", "operator"])
def test_the_dashboard_is_every_report_of_the_scope_in_one_answer(service, world, who):
    dashboard_world(service, world)
    world.adams["analytics_consent"] = True
    caller = {"school_admin": admin(world.lincoln), "district_admin": admin(world.district, "district_admin"),
              "operator": OPERATOR()}[who]
    query = {"period": "month", "to": "2026-11-20"}
    board = service.dashboard(caller, query)
    expected = ["top-categories", "top-services", "trends", "channels", "unmet-need", "outcomes"] + (
        ["schools"] if who != "school_admin" else [])
    assert list(board["reports"]) == expected
    assert board["period"] == {"kind": "month", "from": "2026-11-01", "to": "2026-11-30"}
    for name, report in board["reports"].items():
        assert report == service.report(caller, name, query), name
    assert board["scope"] == board["reports"]["channels"]["scope"]


def test_the_dashboard_keeps_a_schools_figures_in_the_school(service, world):
    dashboard_world(service, world)
    board = service.dashboard(admin(world.lincoln), {"period": "month", "to": "2026-11-20"})
    assert board["scope"]["view"] == "school"
    tenants = {r["tenant_id"] for report in board["reports"].values() for r in report["rows"]}
    assert tenants == {world.lincoln["id"]}
    assert world.adams["id"] not in repr(board)
    assert {r["channel"]: r["count"] for r in board["reports"]["channels"]["rows"]} == {
        "email": 14, "sms": 9, "print": 0, "link": 0}
    with pytest.raises(Forbidden):
        service.dashboard(admin(world.lincoln), {"tenant_id": world.adams["id"]})
    with pytest.raises(Forbidden):
        service.dashboard(admin(world.lincoln, "teacher"), {})
    with pytest.raises(BadRequest):
        service.dashboard(admin(world.lincoln), {"period": "decade"})
    with pytest.raises(BadRequest):  # a dashboard is JSON; CSV is each report's own
        service.dashboard(admin(world.lincoln), {"format": "csv"})


def test_the_district_dashboard_suppresses_small_counts(service, world):
    dashboard_world(service, world)
    board = service.dashboard(admin(world.district, "district_admin"), {"period": "month", "to": "2026-11-20"})
    assert board["scope"]["suppression_threshold"] == 10
    schools = {(r["tenant_name"], r["level"]): r["count"] for r in board["reports"]["schools"]["rows"]}
    assert schools[("Riverside USD", "district")] == 55
    services = {(r["tenant_name"], r["service_name"]): r["count"] for r in board["reports"]["top-services"]["rows"]}
    assert services[("Adams High", "Eastside Tutoring")] is None  # 2 < 10
    assert all(r["count"] is None or r["count"] == 0 or r["count"] >= 10
               for report in board["reports"].values() for r in report["rows"])


def test_the_dashboard_asks_identity_once_and_directory_once_per_kind(service, world):
    dashboard_world(service, world)
    service.dashboard(admin(world.lincoln), {"period": "month", "to": "2026-11-20"})
    assert service.identity_rpc.tenant_info.call_count == 1
    assert service.directory_rpc.get_terms.call_count == 1
    assert service.directory_rpc.service_names.call_count == 1
    assert service.directory_rpc.count_services.call_count == 1  # one school: one area
    # Again within the cache's time: the terms are kept, the tenant facts asked again
    # (consent and the threshold hold from the next report on).
    service.dashboard(admin(world.lincoln), {"period": "month", "to": "2026-11-20"})
    service.report(admin(world.lincoln), "top-categories", {"period": "month", "to": "2026-11-20"})
    assert service.directory_rpc.get_terms.call_count == 1
    assert service.identity_rpc.tenant_info.call_count == 3


def test_terms_are_kept_for_a_while_and_unknown_ones_never():
    now = [0.0]
    cache = term_cache(ttl=300, clock=lambda: now[0])
    directory = mock.Mock()
    directory.get_terms.side_effect = lambda ids: {t: TERMS[t] for t in ids if t in TERMS}
    unknown = str(uuid.uuid4())
    sources = Sources(None, mock.Mock(), directory, terms=cache)
    assert sources.get_terms([MATH, FOOD, unknown, MATH]) == {MATH: TERMS[MATH], FOOD: TERMS[FOOD]}
    directory.get_terms.assert_called_once_with([MATH, FOOD, unknown])
    assert Sources(None, mock.Mock(), directory, terms=cache).get_terms([FOOD, unknown]) == {FOOD: TERMS[FOOD]}
    assert directory.get_terms.call_args.args == ([unknown],)  # only the one it could not name
    now[0] = 301.0
    Sources(None, mock.Mock(), directory, terms=cache).get_terms([FOOD])
    assert directory.get_terms.call_args.args == ([FOOD],)  # expired: asked again
    assert Sources(None, mock.Mock(), directory).get_terms([]) == {}
    assert directory.get_terms.call_count == 3


def test_demo_history_reads_as_journey_4_and_only_in_demo_mode(service, world, patch_settings):
    operator = OPERATOR()
    plan = {"schools": [{"tenant_id": world.lincoln["id"], "district_id": world.district["id"]}],
            "services": [{"service_id": str(uuid.uuid4()), "taxonomy_term_ids": [t], "category": c}
                         for t, c in ((COUNSELLING, "mental_health"), (MATH, "tutoring"), (FOOD, "food"))]}
    patch_settings(dev_mode=False)
    with pytest.raises(Forbidden):
        service.load_demo_history(operator, plan, "2026-12-04")
    patch_settings(dev_mode=True)
    with pytest.raises(Forbidden):
        service.load_demo_history(admin(world.lincoln), plan, "2026-12-04")
    first = service.load_demo_history(operator, plan, "2026-12-04")
    assert first["counted"] > 1000 and set(first) == {"counted", "closings_counted"}
    assert 0.4 * first["counted"] < first["closings_counted"] < 0.65 * first["counted"]
    assert service.load_demo_history(operator, plan, "2026-12-04") == {
        "duplicate": first["counted"], "closings_duplicate": first["closings_counted"]}
    outcomes = service.report(admin(world.lincoln), "outcomes", {"period": "semester", "to": "2026-12-04"})["rows"]
    rates = {r["category_name"]: r["connected_rate"] for r in outcomes if r["outcome"] == "connected"}
    assert 0.45 < rates["Mental health"] < 0.75 and rates["Tutoring"] < rates["Mental health"]
    rows = service.report(admin(world.lincoln), "top-categories", {"period": "semester", "to": "2026-12-04"})["rows"]
    top = {r["category_name"]: r for r in rows}
    assert [r["category_name"] for r in rows[:2]] == ["Mental health", "Tutoring"]
    for name in ("Mental health", "Tutoring"):
        assert 25 <= top[name]["change_pct"] <= 70, top[name]  # "up 40% on last semester"
    assert top["Food"]["change_pct"] < 15
    months = service.report(admin(world.lincoln), "trends", {"period": "school_year", "to": "2026-12-04"})["rows"]
    counts = [r["count"] for r in months]
    assert counts[0] < counts[1] < counts[2]  # quiet July, half August, then school
    with pytest.raises(BadRequest):
        service.load_demo_history(operator, {"schools": [], "services": plan["services"]}, "2026-12-04")


def closings(service, tenant_info, n, **kwargs):
    service.on_referral_closed([closed_event(tenant_info["id"], **kwargs) for _ in range(n)])


def test_outcomes_by_category_with_connected_rate_and_median_days(service, world):
    # Lincoln (a school's own view: nothing hidden): counseling 6 connected (3, 5, 5, 8, 9, 30 days)
    # and 2 could not contact; tutoring 3 no capacity.
    for days in (3, 5, 5, 8, 9, 30):
        closings(service, world.lincoln, 1, terms=[COUNSELLING], days_open=days)
    closings(service, world.lincoln, 2, terms=[ANXIETY], outcome="could_not_contact")
    closings(service, world.lincoln, 3, terms=[MATH], outcome="no_capacity")
    event = closed_event(world.lincoln["id"], terms=[MATH])
    assert service.on_referral_closed([event, event]) == {"counted": 1, "duplicate": 1}  # redelivery
    assert service.on_referral_closed([{**event, "student_id": str(uuid.uuid4())}]) == {"rejected": 1}
    report = service.report(admin(world.lincoln), "outcomes", {"period": "month", "to": "2026-11-30"})
    rows = {(r["category_name"], r["outcome"]): r for r in report["rows"]}
    mental = rows[("Mental health", "connected")]
    assert (mental["count"], mental["connected_rate"], mental["median_days_to_connect"]) == (6, 0.75, 6.5)
    assert rows[("Mental health", "could_not_contact")]["count"] == 2
    assert rows[("Tutoring", "no_capacity")]["count"] == 3
    assert rows[("Tutoring", "connected")]["count"] == 1 and rows[("Tutoring", "connected")]["connected_rate"] == 0.25
    assert {r["outcome"] for r in report["rows"]} == {
        "connected", "could_not_contact", "not_eligible", "no_capacity", "no_longer_interested"}
    assert "outcomes" in service.dashboard(admin(world.lincoln), {"period": "month", "to": "2026-11-30"})["reports"]


def test_outcomes_leaving_a_school_are_suppressed_with_no_rate_from_hidden_cells(service, world):
    closings(service, world.lincoln, 12, terms=[COUNSELLING])
    closings(service, world.lincoln, 2, terms=[COUNSELLING], outcome="not_eligible")  # under 10: hidden
    district = admin(world.district, "district_admin")
    rows = service.report(district, "outcomes", {"period": "month", "to": "2026-11-30"})["rows"]
    lincoln = [r for r in rows if r["tenant_id"] == world.lincoln["id"]]
    # A hidden cell would be worked out from the others and the rate: the category is left out.
    assert lincoln == [] and not any(r.get("connected_rate") is not None and r["count"] is None for r in rows)
    assert all(r["count"] is None or r["count"] >= 10 or r["count"] == 0 for r in rows)


def test_a_tenant_termination_deletes_its_outcome_counters_too(service, world, session):
    from services.analytics.models import OutcomeCount
    closings(service, world.lincoln, 3, terms=[COUNSELLING])
    service.delete_for({"scope": "tenant", "tenant_ids": [world.lincoln["id"]]})
    session.commit()
    assert session.query(OutcomeCount).count() == 0
    assert service.on_referral_closed([closed_event(world.lincoln["id"])]) == {"fenced": 1}
