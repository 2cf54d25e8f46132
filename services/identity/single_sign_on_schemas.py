"""marshmallow schemas of single sign-on's RPCs (``single_sign_on``), also the gateway's OpenAPI."""
from marshmallow import Schema, fields, validate

from services.identity.schemas import MeSchema, StrictBool, StrictSchema

PRESET_NAMES = ("google", "entra", "clever", "classlink", "generic")


class SsoConfigurationSchema(StrictSchema):
    """What a district's (or independent school's, or program's) administrator sets.

    Example: {"preset": "entra", "provider_tenant": "riverside.onmicrosoft.com", "client_id": "…",
    "client_secret": "…", "allowed_domains": ["riverside.k12.example"], "password_sign_in_allowed": false,
    "jit_role": "teacher", "jit_tenant_id": lincoln_id}
    """

    preset = fields.Str(required=True, validate=validate.OneOf(PRESET_NAMES))
    issuer_url = fields.Str(validate=validate.Length(min=8, max=500),
                            metadata={"description": "Generic OIDC only: the issuer (discovery at <issuer>/.well-known/openid-configuration)."})
    provider_tenant = fields.Str(validate=validate.Length(min=1, max=100),
                                 metadata={"description": "Microsoft Entra ID only: the directory (tenant) id."})
    client_id = fields.Str(required=True, validate=validate.Length(min=1, max=255))
    client_secret = fields.Str(validate=validate.Length(min=1, max=500), load_only=True,
                               metadata={"description": "Stored encrypted; never shown again. Leave out to keep the current one."})
    allowed_domains = fields.List(fields.Str(validate=validate.Length(min=3, max=253)), required=True,
                                  validate=validate.Length(min=1, max=20))
    password_sign_in_allowed = StrictBool(load_default=True)
    enabled = StrictBool(load_default=True)
    jit_role = fields.Str(allow_none=True, load_default=None, validate=validate.OneOf(["teacher", "program_staff"]),
                          metadata={"description": "Just-in-time provisioning: the staff role an unknown address of an allowed domain gets (off when null)."})
    jit_tenant_id = fields.UUID(allow_none=True, load_default=None)


class SsoConfigurationOutSchema(Schema):
    tenant_id = fields.Str()
    preset = fields.Str()
    provider_name = fields.Str()
    issuer_url = fields.Str()
    provider_tenant = fields.Str(allow_none=True)
    client_id = fields.Str()
    client_secret_set = fields.Bool()
    allowed_domains = fields.List(fields.Str())
    password_sign_in_allowed = fields.Bool()
    enabled = fields.Bool()
    jit_role = fields.Str(allow_none=True)
    jit_tenant_id = fields.Str(allow_none=True)
    redirect_uri = fields.Str(metadata={"description": "Register this redirect URI at your provider."})
    updated_at = fields.DateTime()


class SsoRemovedSchema(Schema):
    removed = fields.Bool()


class SsoLookupSchema(StrictSchema):
    email = fields.Email(required=True, validate=validate.Length(max=254))


class SsoLookupOutSchema(Schema):
    tenant_id = fields.Str()
    provider_name = fields.Str()
    start_url = fields.Str(metadata={"description": "Open this address in the browser to sign in."})


class SsoSessionSchema(Schema):
    token = fields.Str()
    expires_at = fields.DateTime()
    user = fields.Nested(MeSchema)
