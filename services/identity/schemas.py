"""marshmallow schemas of identity's RPC inputs and outputs (also used by the gateway's OpenAPI)."""
from marshmallow import Schema, fields, validate

from weintervene.auth import Role, TenantKind


class StrictSchema(Schema):
    """Unknown fields are an error (RAISE is marshmallow's default; say so)."""

    class Meta:
        unknown = "raise"


class LoginSchema(StrictSchema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.Str(required=True, validate=validate.Length(min=1, max=1024))


class TenantSchema(StrictSchema):
    id = fields.Str(dump_only=True)
    kind = fields.Str(required=True, validate=validate.OneOf([k.value for k in TenantKind]))
    name = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    parent_id = fields.UUID(allow_none=True, load_default=None)
    postcode = fields.Str(allow_none=True, load_default=None, validate=validate.Regexp(r"^\d{5}$"))
    latitude = fields.Float(allow_none=True, load_default=None, validate=validate.Range(-90, 90))
    longitude = fields.Float(allow_none=True, load_default=None, validate=validate.Range(-180, 180))
    timezone = fields.Str(load_default="America/New_York", validate=validate.Length(max=64))
    student_ids_enabled = fields.Bool(dump_only=True)
    analytics_consent = fields.Bool(dump_only=True)
    suppression_threshold = fields.Int(dump_only=True)
    status = fields.Str(dump_only=True)


class UserSchema(StrictSchema):
    id = fields.Str(dump_only=True)
    tenant_id = fields.UUID(required=True)
    email = fields.Email(required=True, validate=validate.Length(max=254))
    display_name = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    role = fields.Str(required=True, validate=validate.OneOf([r.value for r in Role]))
    is_active = fields.Bool(dump_only=True)


class MeSchema(Schema):
    user_id = fields.Str()
    tenant_id = fields.Str()
    district_id = fields.Str(allow_none=True)
    role = fields.Str()
    email = fields.Str()
    display_name = fields.Str()
    session_id = fields.Str()


class SessionSchema(Schema):
    token = fields.Str(metadata={"description": "Bearer token; also set as the session cookie."})
    expires_at = fields.DateTime()  # ISO 8601, absolute end of the session
    user = fields.Nested(MeSchema)
