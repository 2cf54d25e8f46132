"""marshmallow schemas of policy versions, acknowledgements and incident notices
(identity's RPCs and the gateway's OpenAPI document)."""
from marshmallow import Schema, fields, validate

from services.identity.schemas import StrictSchema

SEVERITIES = ("info", "warning")


def _text(max_length: int):
    # Blank or whitespace-only text says nothing to anyone: refused.
    return validate.And(validate.Length(min=1, max=max_length),
                        validate.Regexp(r"\s*\S", error="Must not be blank."))


class PolicyVersionCreateSchema(StrictSchema):
    last_updated = fields.Date(required=True, metadata={"description": "The policy's Last Updated date (ISO)."})
    summary = fields.Str(required=True, validate=_text(500), metadata={"description": "What changed, in one line."})


class PolicyVersionSchema(Schema):
    id = fields.Str()
    version = fields.Str(metadata={"description": "What to acknowledge (the version's id)."})
    last_updated = fields.Date()
    summary = fields.Str()
    published_at = fields.DateTime()


class PolicyVersionPageSchema(Schema):
    items = fields.List(fields.Nested(PolicyVersionSchema))


class AcknowledgementCreateSchema(StrictSchema):
    version = fields.Str(required=True, validate=validate.Length(min=1, max=36),
                         metadata={"description": "The version read (the banner's policy.version)."})


class AcknowledgementSchema(Schema):
    version = fields.Str(metadata={"description": "The current policy version."})
    last_updated = fields.Date()
    acknowledged = fields.Bool()
    acknowledged_at = fields.DateTime(allow_none=True)


class IncidentNoticeCreateSchema(StrictSchema):
    message = fields.Str(required=True, validate=_text(500))
    severity = fields.Str(load_default="warning", validate=validate.OneOf(SEVERITIES))
    ends_at = fields.AwareDateTime(allow_none=True, load_default=None,
                                   metadata={"description": "When it ends by itself (ISO 8601 with offset); "
                                                            "none: until an operator ends it."})


class IncidentNoticeSchema(Schema):
    id = fields.Str()
    message = fields.Str()
    severity = fields.Str()
    starts_at = fields.DateTime()
    ends_at = fields.DateTime(allow_none=True)
    active = fields.Bool()


class IncidentNoticePageSchema(Schema):
    items = fields.List(fields.Nested(IncidentNoticeSchema))


class CurrentNoticesSchema(Schema):
    policy = fields.Nested(PolicyVersionSchema, allow_none=True)
    incidents = fields.List(fields.Nested(IncidentNoticeSchema))
    acknowledged = fields.Bool(allow_none=True, metadata={
        "description": "Whether the signed-in caller acknowledged the current policy; null when not signed in."})
