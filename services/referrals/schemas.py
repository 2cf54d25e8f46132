"""marshmallow schemas of referrals's RPC inputs and outputs."""
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.referrals.models import DELIVERY_STATES, OUTCOMES, STATUSES
from services.referrals.localization import SHIPPED
from weintervene.contracts import CHANNELS

# The languages families can be written to (services/referrals/locale/, docs/LANGUAGES.md).
LANGUAGES = SHIPPED
MAX_SERVICES_PER_SHARE = 10
MAX_CONTACTS_PER_SHARE = 5
E164 = validate.Regexp(r"^\+[1-9]\d{6,14}$", error="Give the mobile number in E.164 form, e.g. +15551234567.")


class ConsentSchema(Schema):
    """Who consented to disclosing student information to an outside program, and how."""

    given_by = fields.Str(required=True, validate=validate.OneOf(("parent", "guardian", "eligible_student")))
    method = fields.Str(required=True, validate=validate.OneOf(("written", "electronic", "verbal")))
    given_on = fields.Date(required=True)
    note = fields.Str(load_default=None, allow_none=True, validate=validate.Length(max=500))


class ShareRequestSchema(Schema):
    """``POST /api/v1/referrals``.

    Example: ``{"student_id": "…", "contact_ids": ["…"], "service_ids": ["…"],
    "channel": "sms", "note": "Ask for Ana"}``; a walk-in share has no student_id
    (and, for email/SMS, a ``recipient_email`` / ``recipient_mobile`` that is
    used once and not kept).
    """

    student_id = fields.UUID(load_default=None, allow_none=True)
    contact_ids = fields.List(fields.UUID(), load_default=list,
                              validate=validate.Length(max=MAX_CONTACTS_PER_SHARE))
    service_ids = fields.List(fields.UUID(), load_default=list,
                              validate=validate.Length(max=MAX_SERVICES_PER_SHARE))
    list_id = fields.UUID(load_default=None, allow_none=True)
    channel = fields.Str(required=True, validate=validate.OneOf(CHANNELS))
    language = fields.Str(load_default=None, allow_none=True, validate=validate.OneOf(LANGUAGES))
    note = fields.Str(load_default=None, allow_none=True, validate=validate.Length(max=1000))
    recipient_email = fields.Email(load_default=None, allow_none=True)
    recipient_mobile = fields.Str(load_default=None, allow_none=True, validate=E164)
    consent = fields.Nested(ConsentSchema, load_default=None, allow_none=True)

    @validates_schema
    def check_shape(self, data, **_):
        if bool(data.get("service_ids")) == bool(data.get("list_id")):
            raise ValidationError("Give service_ids or a list_id (one of them).", "service_ids")
        if len(set(data.get("contact_ids") or [])) != len(data.get("contact_ids") or []):
            raise ValidationError("A contact is listed twice.", "contact_ids")
        walk_in = data.get("student_id") is None
        channel = data["channel"]
        if walk_in:
            if data.get("contact_ids"):
                raise ValidationError("A walk-in share (no student) has no roster contacts.", "contact_ids")
            if channel == "email" and not data.get("recipient_email"):
                raise ValidationError("Give the family's email address.", "recipient_email")
            if channel == "sms" and not data.get("recipient_mobile"):
                raise ValidationError("Give the family's mobile number.", "recipient_mobile")
        else:
            if data.get("recipient_email") or data.get("recipient_mobile"):
                raise ValidationError(
                    "For a student, choose authorised contacts; typed addresses are for walk-ins only.",
                    "recipient_email")
            if channel in ("email", "sms") and not data.get("contact_ids"):
                raise ValidationError("Choose at least one authorised contact.", "contact_ids")
        if channel != "email" and data.get("recipient_email"):
            raise ValidationError("recipient_email is for the email channel.", "recipient_email")
        if channel != "sms" and data.get("recipient_mobile"):
            raise ValidationError("recipient_mobile is for the sms channel.", "recipient_mobile")


class StatusUpdateSchema(Schema):
    """``POST /api/v1/referrals/{id}/status``: ``{"status": "completed", "outcome": "connected"}``."""

    status = fields.Str(required=True, validate=validate.OneOf(STATUSES))
    outcome = fields.Str(load_default=None, allow_none=True, validate=validate.OneOf(OUTCOMES))
    note = fields.Str(load_default=None, allow_none=True, validate=validate.Length(max=1000))


class ReferralQuerySchema(Schema):
    """``GET /api/v1/referrals?scope=mine&status=requested&due=true``."""

    scope = fields.Str(load_default="mine", validate=validate.OneOf(("mine", "school", "incoming")))
    status = fields.Str(load_default=None, validate=validate.OneOf(STATUSES))
    due = fields.Bool(load_default=None)
    student_id = fields.UUID(load_default=None)
    service_id = fields.UUID(load_default=None)
    page = fields.Int(load_default=1, validate=validate.Range(min=1, max=10_000))
    per_page = fields.Int(load_default=25, validate=validate.Range(min=1, max=100))


class SavedListCreateSchema(Schema):
    name = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    shared = fields.Bool(load_default=False)
    service_ids = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=50))


class SavedListItemSchema(Schema):
    service_id = fields.UUID(required=True)


# -- outputs ------------------------------------------------------------------

class StatusChangeSchema(Schema):
    status = fields.Str()
    outcome = fields.Str(allow_none=True)
    note = fields.Str(allow_none=True)
    changed_by = fields.Str(allow_none=True)
    at = fields.AwareDateTime()


class DeliveryAttemptSchema(Schema):
    number = fields.Int()
    started_at = fields.AwareDateTime()
    finished_at = fields.AwareDateTime(allow_none=True)
    result = fields.Str()
    reason = fields.Str(allow_none=True)


class DeliverySchema(Schema):
    id = fields.Str()
    purpose = fields.Str()
    channel = fields.Str()
    recipient_kind = fields.Str()
    recipient_id = fields.Str(allow_none=True)
    language = fields.Str()
    state = fields.Str(validate=validate.OneOf(DELIVERY_STATES))
    attempts = fields.Int()
    next_attempt_at = fields.AwareDateTime(allow_none=True)
    last_error = fields.Str(allow_none=True)
    sent_at = fields.AwareDateTime(allow_none=True)
    attempt_log = fields.List(fields.Nested(DeliveryAttemptSchema))


class ReferralSchema(Schema):
    id = fields.Str()
    share_id = fields.Str()
    tenant_id = fields.Str()
    sharer_id = fields.Str(allow_none=True)
    student_id = fields.Str(allow_none=True)
    contact_ids = fields.List(fields.Str())
    service_id = fields.Str()
    service = fields.Dict()
    channel = fields.Str()
    language = fields.Str()
    note = fields.Str(allow_none=True)
    status = fields.Str()
    outcome = fields.Str(allow_none=True)
    follow_up_on = fields.Date(allow_none=True)
    incoming = fields.Bool()
    receiving_tenant_id = fields.Str(allow_none=True)
    disclosed = fields.Dict(allow_none=True)
    created_at = fields.AwareDateTime()
    last_update_at = fields.AwareDateTime()
    link_url = fields.Str(allow_none=True)
    link_expires_at = fields.AwareDateTime(allow_none=True)
    print_url = fields.Str()
    history = fields.List(fields.Nested(StatusChangeSchema))
    deliveries = fields.List(fields.Nested(DeliverySchema))


class SavedListSchema(Schema):
    id = fields.Str()
    tenant_id = fields.Str()
    owner_id = fields.Str()
    name = fields.Str()
    shared = fields.Bool()
    created_at = fields.AwareDateTime()
    items = fields.List(fields.Dict())


class DisclosureSchema(Schema):
    id = fields.Str()
    student_id = fields.Str()
    referral_id = fields.Str(allow_none=True)
    recipient_tenant_id = fields.Str()
    recipient_name = fields.Str()
    disclosed_by = fields.Str(allow_none=True)
    disclosed_at = fields.AwareDateTime()
    information = fields.List(fields.Str())
    basis = fields.Str()
    consent = fields.Dict(allow_none=True)


class _PageSchema(Schema):
    """What every list answer of referrals has besides its items: ``{"items": [...], "total": 3,
    "page": 1, "per_page": 25}`` (a list that is not paged answers page 1 of all its items)."""

    total = fields.Int(required=True)
    page = fields.Int(required=True)
    per_page = fields.Int(required=True)


class ReferralPageSchema(_PageSchema):
    """``GET /api/v1/referrals``."""

    items = fields.List(fields.Nested(ReferralSchema), required=True)


class DisclosurePageSchema(_PageSchema):
    """``GET /api/v1/students/{student_id}/disclosures``."""

    items = fields.List(fields.Nested(DisclosureSchema), required=True)


class SavedListPageSchema(_PageSchema):
    """``GET /api/v1/lists``."""

    items = fields.List(fields.Nested(SavedListSchema), required=True)


class ShareResultSchema(Schema):
    """``POST /api/v1/referrals``: one referral per service shared, ``{"items": [referral…]}``."""

    items = fields.List(fields.Nested(ReferralSchema), required=True)
