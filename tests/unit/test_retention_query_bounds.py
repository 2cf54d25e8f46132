"""The deletion-request list's query is bounded where the database is: a page past the
bigint OFFSET was a 500 (found by tests/security/test_openapi_fuzz.py)."""
import pytest
from marshmallow import ValidationError

from services.retention.schemas import DeletionQuery


def test_a_page_beyond_any_offset_is_invalid_input_not_a_database_error():
    with pytest.raises(ValidationError) as raised:
        DeletionQuery().load({"page": "288230376151711744", "per_page": "125"})
    assert "page" in raised.value.messages


def test_the_last_allowed_page_still_loads():
    assert DeletionQuery().load({"page": "100000", "per_page": "500"})["page"] == 100_000
