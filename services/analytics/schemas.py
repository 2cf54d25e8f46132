"""marshmallow schemas of analytics's RPC inputs and outputs."""
from datetime import date

from marshmallow import Schema, fields, validate

from services.analytics.periods import PERIODS
from services.analytics.reports import REPORTS

# Days a report may name: every period and the one before it must be real dates (``to=0001-01-01``
# made the previous month year 0, a ValueError and a 500; the fuzz found it).
REPORT_DATES = validate.Range(min=date(1900, 1, 1), max=date(9998, 12, 31))


class DashboardQuerySchema(Schema):
    """``?period=semester&to=2026-11-28&tenant_id=…``.

    Preset periods are the one containing ``to`` (default: the school's today);
    ``custom`` takes ``from`` and ``to`` (inclusive, local days).
    """

    period = fields.Str(load_default="month", validate=validate.OneOf(PERIODS))
    from_ = fields.Date(data_key="from", attribute="from", load_default=None, validate=REPORT_DATES)
    to = fields.Date(load_default=None, validate=REPORT_DATES)
    tenant_id = fields.UUID(load_default=None)
    category_level = fields.Int(load_default=None, validate=validate.Range(1, 4), metadata={
        "description": "Taxonomy level categories are counted at: 1 the top (\"Care\"), 2 its groups "
                       "(\"Support Network\"), 3 what people recognise (\"Counseling\", \"Tutoring\"; the "
                       "default, a term on a shallower branch stands for itself), 4 finer."})


class ReportQuerySchema(DashboardQuerySchema):
    """``?period=month&to=2026-11-28&tenant_id=…&format=csv``: the dashboard's query and a format."""

    format = fields.Str(load_default="json", validate=validate.OneOf(("json", "csv")))


class ReportRowSchema(Schema):
    tenant_id = fields.Str(allow_none=True)
    tenant_name = fields.Str(allow_none=True)
    level = fields.Str()
    rank = fields.Int()
    count = fields.Int(allow_none=True)
    count_suppressed = fields.Bool()
    previous_count = fields.Int(allow_none=True)
    previous_suppressed = fields.Bool()
    change_pct = fields.Float(allow_none=True)
    # Each report's own item fields (reports.ITEM_COLUMNS); a row has those of its report only.
    service_id = fields.Str()
    service_name = fields.Str(allow_none=True)
    category_id = fields.Str()
    category_name = fields.Str(allow_none=True)
    category_ids = fields.List(fields.Str(), metadata={
        "description": "Every term counted under this name (one category named alike in two taxonomies is one row)"})
    bucket = fields.Str()
    bucket_start = fields.Str()
    channel = fields.Str()
    services_nearby = fields.Int(allow_none=True)
    need_score = fields.Float(allow_none=True)
    outcome = fields.Str(metadata={"description": "outcomes: connected, could_not_contact, not_eligible, "
                                                  "no_capacity or no_longer_interested"})
    connected_rate = fields.Float(allow_none=True, metadata={
        "description": "outcomes, connected rows: connected of all referrals closed in the category"})
    median_days_to_connect = fields.Float(allow_none=True, metadata={
        "description": "outcomes, connected rows: median whole days from share to connected"})


class ReportSchema(Schema):
    """The answer of every report (rows carry the report's own item fields too)."""

    report = fields.Str(validate=validate.OneOf(REPORTS))
    period = fields.Dict()
    previous_period = fields.Dict()
    scope = fields.Dict()
    columns = fields.List(fields.Str())
    rows = fields.List(fields.Nested(ReportRowSchema))


class DashboardSchema(Schema):
    """Every report of a leader's dashboard, each as ``ReportSchema``, for one scope and period."""

    period = fields.Dict()
    previous_period = fields.Dict()
    scope = fields.Dict()
    reports = fields.Dict(keys=fields.Str(validate=validate.OneOf(REPORTS)), values=fields.Nested(ReportSchema))
