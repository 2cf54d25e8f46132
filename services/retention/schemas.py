"""marshmallow schemas of retention's RPC inputs and outputs (also the gateway's OpenAPI).

The permanent record must not name anyone, so a request's reason is a code from
:data:`REASONS` plus an optional short note (at most 200 characters) that is
refused if it carries an email address or a phone-like number (dates such as
"letter received 2026-12-03" or "12/03/2026" are not phone numbers and pass); the web
app warns "no names" next to the field. Names themselves cannot be detected reliably, which
is why the code is required and the note optional.
"""
import re
from datetime import date

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from weintervene.contracts import DATA_SERVICES, POLICY_RECORD_KINDS

REQUEST_SCOPES = ("student", "tenant", "user")
ALL_SCOPES = REQUEST_SCOPES + ("policy",)
STATUSES = ("pending", "waiting_ferpa_inspection", "dispatched", "completed")
REASONS = (
    "parent_opt_out",        # a parent's written request, verified by the school
    "adult_student_request",  # an 18+ student's own request
    "contract_ended",        # a tenant's termination
    "account_closed",        # a user's departure
    "data_owner_request",    # the district/school/program asked
    "retention_policy",      # a policy expired the records
    "other",
)
VERIFICATION_METHODS = (
    "in_person_photo_id",     # the parent came in and showed photo ID
    "signed_letter_on_file",  # a signed letter matched the signature on file
    "phone_callback",         # a call back to the number on file
    "email_from_address_on_file",
    "other",
)
INSPECTION_KINDS = ("inspection", "amendment")
INSPECTION_OUTCOMES = ("provided", "amended", "refused", "withdrawn")
NOTE_MAX = 200
NOTE_WARNING = "Kept forever in the audit record: no names, emails or phone numbers."

_EMAIL = re.compile(r"[^\s@]+@[^\s@]+")
_PHONE = re.compile(r"(?:\d[\s().-]?){7,}")
# A written date, ISO (2026-12-03) or US/European with slashes or dots (12/03/2026,
# 3.12.2026), standing alone: only the digits of a real calendar date are taken out
# before the phone check, so "2026-12-03" passes and "555-123-4567" does not.
_DATE = re.compile(
    r"(?<![\d.-])(?:(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})"
    r"|(?P<a>\d{1,2})[/.](?P<b>\d{1,2})[/.](?P<yy>\d{4}))(?![\d.-])"
)


def _is_calendar_date(match) -> bool:
    try:
        if match["y"]:
            date(int(match["y"]), int(match["m"]), int(match["d"]))
        else:  # month/day or day/month: either order that is a real date
            a, b, year = int(match["a"]), int(match["b"]), int(match["yy"])
            try:
                date(year, a, b)
            except ValueError:
                date(year, b, a)
        return True
    except ValueError:
        return False


def _without_dates(value: str) -> str:
    return _DATE.sub(lambda m: " " if _is_calendar_date(m) else m[0], value)


def check_note(value):
    """Refuse what would put personal data into the permanent record.

    Example: check_note("letter received 2026-12-03") passes;
    check_note("call 555 123 4567") raises ValidationError.
    """
    if value is None:
        return
    if _EMAIL.search(value):
        raise ValidationError(f"Remove the email address. {NOTE_WARNING}")
    if _PHONE.search(_without_dates(value)):
        raise ValidationError(f"Remove the phone-like number. {NOTE_WARNING}")


class StrictSchema(Schema):
    class Meta:
        unknown = "raise"


Note = lambda: fields.Str(  # noqa: E731 - one definition of the note field
    allow_none=True, load_default=None,
    validate=[validate.Length(max=NOTE_MAX), check_note],
    metadata={"description": NOTE_WARNING},
)


class VerificationSchema(StrictSchema):
    method = fields.Str(required=True, validate=validate.OneOf(VERIFICATION_METHODS))
    verified_by = fields.UUID(required=True, metadata={"description": "the staff user who verified the parent"})


class DeletionRequestInput(StrictSchema):
    """``{"scope": "student", "subject_id": "…", "reason": "parent_opt_out",
    "verification": {"method": "in_person_photo_id", "verified_by": "<user id>"}}``"""

    scope = fields.Str(required=True, validate=validate.OneOf(REQUEST_SCOPES))
    subject_id = fields.UUID(required=True, metadata={"description": "student, tenant or user id"})
    reason = fields.Str(required=True, validate=validate.OneOf(REASONS))
    note = Note()
    verification = fields.Nested(VerificationSchema, allow_none=True, load_default=None)
    export_id = fields.UUID(allow_none=True, load_default=None,
                            metadata={"description": "tenant scope: the export taken before termination"})

    @validates_schema
    def parent_opt_out_is_verified(self, data, **_):
        if data["scope"] == "student" and not data.get("verification"):
            raise ValidationError(
                "Say how the school verified that the request came from the parent, and who verified it.",
                "verification",
            )
        if data.get("export_id") and data["scope"] != "tenant":
            raise ValidationError("Only a tenant termination refers to an export.", "export_id")


class ConfirmationSchema(Schema):
    service = fields.Str()
    counts = fields.Dict(keys=fields.Str(), values=fields.Int())
    completed_at = fields.DateTime()
    received_at = fields.DateTime()
    attempt = fields.Int()


class DeletionRequestSchema(Schema):
    """A request as auditors see it: no personal data."""

    id = fields.Str()
    scope = fields.Str()
    tenant_id = fields.Str()
    tenant_ids = fields.List(fields.Str())
    subject_ref = fields.Str(metadata={"description": "opaque: HMAC of the subject id, as \"<key id>:<64 hex>\""})
    older_than = fields.DateTime(allow_none=True)
    record_kind = fields.Str(allow_none=True)
    policy_id = fields.Str(allow_none=True)
    export_id = fields.Str(allow_none=True)
    requested_by = fields.Str()
    verified_by = fields.Str(allow_none=True)
    verification_method = fields.Str(allow_none=True)
    tenant_name = fields.Str(allow_none=True, metadata={"description": "null when the tenant was deleted since"})
    requested_by_name = fields.Str(allow_none=True, metadata={
        "description": "the staff account's current name; null when it was removed since"})
    requested_by_role = fields.Str(allow_none=True)
    verified_by_name = fields.Str(allow_none=True)
    verified_by_role = fields.Str(allow_none=True)
    names_available = fields.Bool(metadata={"description": "false when identity did not answer: ids only"})
    reason = fields.Str()
    note = fields.Str(allow_none=True)
    status = fields.Str()
    status_reason = fields.Str(allow_none=True)
    attempt = fields.Int()
    created_at = fields.DateTime()
    due_at = fields.DateTime()
    fenced_at = fields.DateTime(allow_none=True)
    dispatched_at = fields.DateTime(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)
    overdue = fields.Bool()
    confirmations = fields.List(fields.Nested(ConfirmationSchema))
    missing_services = fields.List(fields.Str())


class DeletionRequestList(Schema):
    items = fields.List(fields.Nested(DeletionRequestSchema))
    total = fields.Int()
    page = fields.Int()
    per_page = fields.Int()


class DeletionQuery(StrictSchema):
    tenant_id = fields.UUID(load_default=None)
    scope = fields.Str(load_default=None, validate=validate.OneOf(ALL_SCOPES))
    status = fields.Str(load_default=None, validate=validate.OneOf(STATUSES + ("open",)),
                        metadata={"description": "open = every status but completed"})
    overdue = fields.Bool(load_default=None)
    from_ = fields.Date(data_key="from", load_default=None)
    to = fields.Date(load_default=None)
    format = fields.Str(load_default="json", validate=validate.OneOf(("json", "csv")))
    # Bounded: (page - 1) * per_page is the query's OFFSET, and a page past PostgreSQL's
    # bigint was a 500 (the fuzz found ?page=288230376151711744).
    page = fields.Int(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Int(load_default=50, validate=validate.Range(min=1, max=500))

    @validates_schema
    def period_in_order(self, data, **_):
        if data.get("from_") and data.get("to") and data["from_"] > data["to"]:
            raise ValidationError("'from' is after 'to'.", "from")


class AuditVerifySchema(Schema):
    ok = fields.Bool()
    entries = fields.Int()
    first_broken = fields.Dict(allow_none=True)
    head_hash = fields.Str(allow_none=True)


class PolicyInput(StrictSchema):
    """``{"record_kind": "closed_referrals", "max_age_days": 1095}`` (operators add ``tenant_id``)."""

    tenant_id = fields.UUID(load_default=None)
    record_kind = fields.Str(required=True, validate=validate.OneOf(POLICY_RECORD_KINDS))
    max_age_days = fields.Int(required=True, validate=validate.Range(min=1, max=36500))


class PolicySchema(Schema):
    id = fields.Str()
    tenant_id = fields.Str()
    record_kind = fields.Str()
    max_age_days = fields.Int()
    created_by = fields.Str()
    created_at = fields.DateTime()
    last_applied_at = fields.DateTime(allow_none=True)


class InspectionInput(StrictSchema):
    """``{"student_id": "…", "kind": "inspection"}``: a parent asked (through the school)."""

    student_id = fields.UUID(required=True)
    kind = fields.Str(load_default="inspection", validate=validate.OneOf(INSPECTION_KINDS))
    note = Note()


class InspectionClose(StrictSchema):
    outcome = fields.Str(required=True, validate=validate.OneOf(INSPECTION_OUTCOMES))
    note = Note()


class InspectionSchema(Schema):
    id = fields.Str()
    kind = fields.Str()
    tenant_id = fields.Str()
    student_id = fields.Str(allow_none=True)
    status = fields.Str()
    outcome = fields.Str(allow_none=True)
    note = fields.Str(allow_none=True)
    opened_by = fields.Str()
    closed_by = fields.Str(allow_none=True)
    opened_at = fields.DateTime()
    closed_at = fields.DateTime(allow_none=True)


class ExportInput(StrictSchema):
    tenant_id = fields.UUID(required=True)


class ExportSchema(Schema):
    id = fields.Str()
    tenant_id = fields.Str()
    tenant_ids = fields.List(fields.Str())
    requested_by = fields.Str()
    created_at = fields.DateTime()
    downloaded_at = fields.DateTime(allow_none=True)
    services = fields.List(fields.Str(), dump_default=list(DATA_SERVICES))


class PolicyPageSchema(Schema):
    """``GET /api/v1/retention-policies``: every policy the caller may read, as one page."""

    items = fields.List(fields.Nested(PolicySchema), required=True)
    total = fields.Int(required=True)
    page = fields.Int(required=True)
    per_page = fields.Int(required=True)


class InspectionPageSchema(Schema):
    """``GET /api/v1/inspection-requests``: the caller's tenants' requests, as one page."""

    items = fields.List(fields.Nested(InspectionSchema), required=True)
    total = fields.Int(required=True)
    page = fields.Int(required=True)
    per_page = fields.Int(required=True)
