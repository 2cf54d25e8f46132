"""Report dates are bounded so a period and the one before it are real dates: ``to=0001-01-01``
made the previous month year 0, a 500 (found by tests/security/test_openapi_fuzz.py)."""
import pytest
from marshmallow import ValidationError

from services.analytics.schemas import DashboardQuerySchema, ReportQuerySchema


@pytest.mark.parametrize("schema", [DashboardQuerySchema, ReportQuerySchema])
@pytest.mark.parametrize("field, value", [("to", "0001-01-01"), ("from", "0001-01-01"), ("to", "9999-12-31")])
def test_a_date_at_the_edge_of_the_calendar_is_invalid_input(schema, field, value):
    with pytest.raises(ValidationError) as raised:
        schema().load({field: value})
    assert field in raised.value.messages

