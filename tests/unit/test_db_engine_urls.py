"""weintervene.db.make_engine reaches PostgreSQL through psycopg2 only, green (no connection is made here)."""
from __future__ import annotations

import pytest
from psycopg2 import extensions

from weintervene.db import make_engine


@pytest.mark.parametrize("url", ["postgresql+psycopg2://nobody@127.0.0.1:1/none", "postgresql://nobody@127.0.0.1:1/none"])
def test_postgresql_urls_get_psycopg2_with_a_wait_callback(url):
    engine = make_engine(url)
    assert engine.dialect.driver == "psycopg2"
    assert extensions.get_wait_callback() is not None  # green: weintervene.db._green_psycopg2
    engine.dispose()


def test_another_driver_is_refused_by_name():
    with pytest.raises(ValueError, match=r"psycopg2.*not postgresql\+pg8000"):
        make_engine("postgresql+pg8000://nobody@127.0.0.1:1/none")
