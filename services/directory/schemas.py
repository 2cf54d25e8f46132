"""marshmallow schemas of directory's RPC inputs and outputs (shared with the gateway).

Example::

    >>> SearchQuerySchema().load({"q": "tutoring", "postcode": "20001", "per_page": "10"})
    {'q': 'tutoring', 'postcode': '20001', 'per_page': 10, 'page': 1, 'sort': 'relevance'}
"""
import datetime

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.directory.geo import is_postcode

DAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
DAY_WORDS = {"mon": "MO", "tue": "TU", "wed": "WE", "thu": "TH", "fri": "FR", "sat": "SA", "sun": "SU"}
HHMM = validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", error="Use 24-hour HH:MM.")
LANGUAGE = validate.Regexp(r"^[a-zA-Z]{2,3}$", error="Use an ISO 639 language code such as 'es'.")


def _postcode(value):
    if not is_postcode(value):
        raise ValidationError("Use a 5-digit US ZIP code.")


class Day(fields.String):
    """MO..SU, or mon..sun, or a full day name; loaded as MO..SU."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        code = text.upper()[:2] if text.upper()[:2] in DAY_CODES and len(text) == 2 else DAY_WORDS.get(text.lower()[:3])
        if code is None:
            raise ValidationError("Use a day such as MO or monday.")
        return code


class SearchQuerySchema(Schema):
    """Query of ``GET /api/v1/directory/services`` (unknown parameters are a 400)."""

    q = fields.String(validate=validate.Length(max=200))
    category = fields.UUID()
    age = fields.Integer(validate=validate.Range(0, 120))
    grade = fields.String(validate=validate.OneOf(["K"] + [str(g) for g in range(0, 13)]))
    language = fields.String(validate=LANGUAGE)
    cost = fields.String(validate=validate.OneOf(["free", "low"]))
    postcode = fields.String(validate=_postcode)
    latitude = fields.Float(validate=validate.Range(-90, 90))
    longitude = fields.Float(validate=validate.Range(-180, 180))
    radius_miles = fields.Float(validate=validate.Range(min=0.1, max=500))
    covers_postcode = fields.String(validate=_postcode)
    open_now = fields.Boolean()
    open_day = Day()
    open_time = fields.String(validate=HHMM)
    sort = fields.String(load_default="relevance", validate=validate.OneOf(["relevance", "distance"]))
    page = fields.Integer(load_default=1, validate=validate.Range(1, 10000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(1, 100))

    @validates_schema
    def _pairs(self, data, **_):
        if "age" in data and "grade" in data:
            raise ValidationError("Give age or grade, not both.", "grade")
        if "postcode" in data and ("latitude" in data or "longitude" in data):
            raise ValidationError("Give a postcode or a point, not both.", "postcode")


class SearchCardSchema(Schema):
    """One search result: the compact card (the full service is ``GET .../services/{id}``)."""

    id = fields.UUID(required=True)
    name = fields.String(required=True)
    organization_name = fields.String(allow_none=True)
    description = fields.String(metadata={"description": "At most 180 characters."})
    address = fields.String(allow_none=True)
    hours_text = fields.String(allow_none=True)
    cost = fields.String(metadata={"description": "free, low, paid or unknown"})
    languages = fields.List(fields.String())
    categories = fields.List(fields.String())
    distance_miles = fields.Float(allow_none=True)
    relevance = fields.Float()


class FacetCountSchema(Schema):
    id = fields.UUID(metadata={"description": "Category facets: the top-level term."})
    name = fields.String(metadata={"description": "Category facets: the term's name."})
    code = fields.String(metadata={"description": "Language facets: the ISO 639 code."})
    value = fields.String(metadata={"description": "Cost facets: free, low, paid or unknown."})
    count = fields.Integer(required=True)


class SearchFacetsSchema(Schema):
    categories = fields.List(fields.Nested(FacetCountSchema))
    languages = fields.List(fields.Nested(FacetCountSchema))
    cost = fields.List(fields.Nested(FacetCountSchema))


class SearchResultSchema(Schema):
    """Answer of ``GET /api/v1/directory/services`` (documents the shape; search builds it)."""

    items = fields.List(fields.Nested(SearchCardSchema), required=True)
    total = fields.Integer(required=True, metadata={"description": "Services matching; an estimate when total_is_estimate."})
    total_is_estimate = fields.Boolean(required=True, metadata={
        "description": "True for a broad keyword search (more matches than the server ranks exactly, 500 by default): "
                       "the results are the best of the matches read, name matches first, and total and every facet "
                       "count are estimates to two significant figures. False: total and facets are exact."})
    pages = fields.Integer(required=True, metadata={
        "description": "Pages of per_page results that can be requested: every match when exact, the ranked best "
                       "matches of a broad search."})
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    facets = fields.Nested(SearchFacetsSchema, required=True)
    corrected_query = fields.String(allow_none=True, metadata={"description": "The query searched instead of a misspelt one."})
    measured_from = fields.String(metadata={
        "description": "Present when a radius or distance sort came without a postcode or point: the caller's "
                       "school (name and postcode) that distances were measured from."})
    relaxed = fields.Boolean(metadata={
        "description": "True when no service matched every part of the query (its words, their synonyms and the "
                       "categories they name): the results then match some of them, those matching the most first. "
                       "Stop words (\"for\", \"the\", \"help with\") never count."})


class AddressSchema(Schema):
    address_1 = fields.String(required=True, validate=validate.Length(1, 500))
    address_2 = fields.String(validate=validate.Length(max=500))
    city = fields.String(required=True, validate=validate.Length(1, 255))
    state_province = fields.String(required=True, validate=validate.Length(2, 100))
    postal_code = fields.String(required=True, validate=_postcode)


class LocationInputSchema(Schema):
    name = fields.String(validate=validate.Length(max=500))
    address = fields.Nested(AddressSchema)
    latitude = fields.Float(validate=validate.Range(-90, 90), allow_none=True)
    longitude = fields.Float(validate=validate.Range(-180, 180), allow_none=True)


class ScheduleInputSchema(Schema):
    days = fields.List(Day(), required=True, validate=validate.Length(min=1))
    opens_at = fields.String(required=True, validate=HHMM)
    closes_at = fields.String(required=True, validate=HHMM)

    @validates_schema
    def _order(self, data, **_):
        if data.get("opens_at") and data.get("closes_at") and data["opens_at"] >= data["closes_at"]:
            raise ValidationError("closes_at must be after opens_at.", "closes_at")


class ServiceInputSchema(Schema):
    """Body of ``POST /api/v1/directory/services`` (PATCH: every field optional)."""

    name = fields.String(required=True, validate=validate.Length(1, 500))
    description = fields.String(validate=validate.Length(max=10000))
    organization_id = fields.UUID()
    organization_name = fields.String(validate=validate.Length(1, 500))
    url = fields.Url(schemes={"http", "https"}, allow_none=True)
    email = fields.Email(allow_none=True)
    status = fields.String(validate=validate.OneOf(["active", "inactive", "defunct", "temporarily closed"]))
    eligibility_description = fields.String(validate=validate.Length(max=5000), allow_none=True)
    application_process = fields.String(validate=validate.Length(max=5000), allow_none=True)
    fees = fields.String(validate=validate.Length(max=2000), allow_none=True)
    minimum_age = fields.Integer(validate=validate.Range(0, 120), allow_none=True)
    maximum_age = fields.Integer(validate=validate.Range(0, 120), allow_none=True)
    languages = fields.List(fields.String(validate=LANGUAGE))
    cost = fields.String(validate=validate.OneOf(["free", "low", "paid"]), allow_none=True)
    taxonomy_term_ids = fields.List(fields.UUID())
    location = fields.Nested(LocationInputSchema, allow_none=True)
    phones = fields.List(fields.String(validate=validate.Regexp(r"^[0-9+()\-.\s x]{7,30}$", error="Not a phone number.")))
    schedules = fields.List(fields.Nested(ScheduleInputSchema))
    # Who else sees a tenant's own service: "tenant" (nobody), "district", "schools" (programs).
    published_to = fields.String(validate=validate.OneOf(["tenant", "district", "schools"]))

    @validates_schema
    def _ages(self, data, **_):
        lo, hi = data.get("minimum_age"), data.get("maximum_age")
        if lo is not None and hi is not None and lo > hi:
            raise ValidationError("maximum_age must not be below minimum_age.", "maximum_age")


class ImportStartSchema(Schema):
    filename = fields.String(required=True, validate=validate.Regexp(r"^[\w.\- ]{1,120}\.(zip|json)$", error="A .zip of CSV files or a .json file."))
    # The package's identity when its datapackage.json names none (services/directory/sources.py).
    source = fields.String(validate=validate.Regexp(r"^[^\x00-\x1f/\\]{1,120}$", error="1 to 120 printable characters without / or \\."))


class HsdsPageSchema(Schema):
    """Parameters every HSDS list takes."""

    search = fields.String(validate=validate.Length(max=200))
    page = fields.Integer(load_default=1, validate=validate.Range(1, 100000))
    per_page = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "ndjson"]))


class HsdsServicesQuerySchema(HsdsPageSchema):
    taxonomy_term_id = fields.UUID()
    taxonomy_id = fields.UUID()
    organization_id = fields.UUID()
    modified_after = fields.AwareDateTime(default_timezone=datetime.timezone.utc)
    minimal = fields.Boolean()
    full = fields.Boolean()
    postcode = fields.String(validate=_postcode)
    proximity = fields.Float(validate=validate.Range(min=1, max=805000))  # metres, up to ~500 miles

    @validates_schema
    def _proximity(self, data, **_):
        if "proximity" in data and "postcode" not in data:
            raise ValidationError("proximity needs a postcode.", "proximity")


class HsdsOrganizationsQuerySchema(HsdsPageSchema):
    full = fields.Boolean()
    full_service = fields.Boolean()
    taxonomy_term_id = fields.UUID()  # HSDS 3.1
    taxonomy_id = fields.UUID()  # HSDS 3.1


class HsdsOrganizationQuerySchema(Schema):
    full_service = fields.Boolean()


class HsdsTaxonomyTermsQuerySchema(HsdsPageSchema):
    taxonomy_id = fields.UUID()
    parent_id = fields.UUID()
    top_only = fields.Boolean()
