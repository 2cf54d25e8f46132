"""weintervene.db parses PostgreSQL DATE values fast, and to exactly what pg8000 gives."""
from __future__ import annotations

from datetime import date, timedelta

import pg8000.converters as converters
import pytest

from weintervene.db import make_engine

PG8000_DATE_IN = converters.date_in


@pytest.fixture(scope="module")
def fast_date_in():
    make_engine("postgresql+pg8000://nobody@127.0.0.1:1/none")  # no connection is made
    parser = converters.PG_TYPES[converters.DATE]
    assert parser is not PG8000_DATE_IN
    return parser


@pytest.mark.parametrize("text", [
    "2012-03-04", "0001-01-01", "9999-12-31", "2008-02-29",
    # Not the fast path's form: pg8000's own parser answers (a string where it cannot).
    "infinity", "-infinity", "0044-03-15 BC", "10000-01-01", "2012-02-30", "2012-13-01", "2012-00-10",
    "2012-3-4", "20120304", "2012-W01-1", "03/04/2012", "-001-01-01", "2012-03-04x",
])
def test_the_same_value_as_pg8000(fast_date_in, text):
    expected, got = PG8000_DATE_IN(text), fast_date_in(text)
    assert got == expected and type(got) is type(expected)


def test_every_day_of_a_leap_year_and_then_some(fast_date_in):
    day = date(2023, 12, 25)
    for _ in range(400):
        assert fast_date_in(day.isoformat()) == PG8000_DATE_IN(day.isoformat()) == day
        day += timedelta(days=1)


def test_patched_once(fast_date_in):
    make_engine("postgresql+pg8000://nobody@127.0.0.1:1/none")
    assert converters.PG_TYPES[converters.DATE] is fast_date_in
