"""marshmallow schemas of break-glass recovery requests (identity's RPCs and the gateway's
OpenAPI document)."""
from marshmallow import Schema, fields, validate

from services.identity.schemas import PageQuerySchema, StrictSchema

ACTIONS = ("invite_administrator",)
STATUSES = ("pending", "approved", "refused", "expired")


def _text(max_length: int, min_length: int = 1):
    # A reason that says nothing records nothing: blank is refused.
    return validate.And(validate.Length(min=min_length, max=max_length),
                        validate.Regexp(r"\s*\S", error="Must not be blank."))


class BreakGlassCreateSchema(StrictSchema):
    tenant_id = fields.UUID(required=True, metadata={"description": "The tenant to recover."})
    action = fields.Str(load_default="invite_administrator", validate=validate.OneOf(ACTIONS),
                        metadata={"description": "What takes effect once approved."})
    email = fields.Email(required=True, validate=validate.Length(max=254),
                         metadata={"description": "Whom to invite as the tenant's administrator."})
    display_name = fields.Str(required=True, validate=_text(200))
    reason = fields.Str(required=True, validate=_text(1000, 10),
                        metadata={"description": "Why, for the record and for the approvers (10+ characters)."})


class BreakGlassDecisionSchema(StrictSchema):
    note = fields.Str(load_default=None, allow_none=True, validate=validate.Length(max=1000))


class BreakGlassListQuerySchema(PageQuerySchema):
    status = fields.Str(load_default=None, validate=validate.OneOf(STATUSES))
    tenant_id = fields.UUID(load_default=None)


class BreakGlassSchema(Schema):
    id = fields.Str()
    tenant_id = fields.Str()
    tenant_name = fields.Str()
    action = fields.Str()
    email = fields.Str(allow_none=True)
    display_name = fields.Str(allow_none=True)
    reason = fields.Str()
    status = fields.Str(metadata={"description": "pending | approved | refused | expired"})
    requested_by = fields.Str(allow_none=True)
    requested_by_name = fields.Str(allow_none=True)
    requested_at = fields.DateTime()
    expires_at = fields.DateTime()
    decided_by = fields.Str(allow_none=True)
    decided_by_name = fields.Str(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    approval = fields.Str(allow_none=True, metadata={"description": "tenant_administrator | second_operator"})
    decision_note = fields.Str(allow_none=True)
    created_user_id = fields.Str(allow_none=True)
    approvers = fields.Str(metadata={"description": "Who may approve it now: tenant_administrator or "
                                                    "second_operator (the tenant has no active administrator)."})


class BreakGlassPageSchema(Schema):
    items = fields.List(fields.Nested(BreakGlassSchema))
    total = fields.Int()
    page = fields.Int()
    per_page = fields.Int()
