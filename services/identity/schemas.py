"""marshmallow schemas of identity's RPC inputs and outputs (also used by the gateway's OpenAPI)."""
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from weintervene.auth import Role, TenantKind
from weintervene.contracts import ACCESS_ACTIONS


def StrictBool(**kwargs):
    """JSON true/false only: "no" or "yes" are errors, not guesses."""
    return fields.Bool(truthy={True}, falsy={False}, **kwargs)


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


# -- passwords ----------------------------------------------------------------

class PasswordChangeSchema(StrictSchema):
    current_password = fields.Str(required=True, validate=validate.Length(min=1, max=1024))
    new_password = fields.Str(required=True, validate=validate.Length(min=1, max=1024))


class PasswordResetRequestSchema(StrictSchema):
    email = fields.Email(required=True, validate=validate.Length(max=254))


class PasswordResetCompleteSchema(StrictSchema):
    token = fields.Str(required=True, validate=validate.Length(min=20, max=200))
    new_password = fields.Str(required=True, validate=validate.Length(min=1, max=1024))


class AcceptedSchema(Schema):
    accepted = fields.Bool()
    message = fields.Str()


class PasswordChangedSchema(Schema):
    changed = fields.Bool()
    other_sessions_ended = fields.Int()


class SignedOutSchema(Schema):
    """``DELETE /api/v1/sessions/current`` -> ``{"signed_out": true}`` (the cookies are cleared too)."""

    signed_out = fields.Bool(required=True)
    provider_sign_out_url = fields.Str(allow_none=True, metadata={
        "description": "A session from single sign-on: the provider's end-session address, to sign out there too."})


# -- tenants ------------------------------------------------------------------

class PageQuerySchema(StrictSchema):
    page = fields.Int(load_default=1, validate=validate.Range(min=1, max=100000))
    per_page = fields.Int(load_default=50, validate=validate.Range(min=1, max=200))


class TenantListQuerySchema(PageQuerySchema):
    kind = fields.Str(load_default=None, validate=validate.OneOf([k.value for k in TenantKind]))


class TenantIdsSchema(StrictSchema):
    """``tenants_info``'s input: at most 1,000 tenant ids per call."""

    tenant_ids = fields.List(fields.Str(validate=validate.Length(min=1, max=64)), required=True,
                             validate=validate.Length(max=1000))


class TenantInfoSchema(Schema):
    """Tenant facts (no personal data): what ``identity.tenant_info`` returns."""

    id = fields.Str()
    kind = fields.Str()
    name = fields.Str()
    parent_id = fields.Str(allow_none=True)
    district_id = fields.Str(allow_none=True)
    postcode = fields.Str(allow_none=True)
    latitude = fields.Float(allow_none=True)
    longitude = fields.Float(allow_none=True)
    timezone = fields.Str()
    student_ids_enabled = fields.Bool()
    analytics_consent = fields.Bool()
    suppression_threshold = fields.Int()
    status = fields.Str()


class TenantPageSchema(Schema):
    items = fields.List(fields.Nested(TenantInfoSchema))
    total = fields.Int()
    page = fields.Int()
    per_page = fields.Int()


class TenantSettingsSchema(StrictSchema):
    student_ids_enabled = StrictBool()
    analytics_consent = StrictBool()
    # Counts below this are suppressed in reports that leave the school (>= 5 keeps
    # small groups unidentifiable).
    suppression_threshold = fields.Int(validate=validate.Range(min=5, max=100))

    @validates_schema
    def not_empty(self, data, **_):
        if not data:
            raise ValidationError("Give at least one setting.", "_schema")


# -- users --------------------------------------------------------------------

class UserListQuerySchema(PageQuerySchema):
    tenant_id = fields.UUID(load_default=None)
    search = fields.Str(load_default=None, validate=validate.Length(max=100))


class AccessLogQuerySchema(PageQuerySchema):
    """``GET /api/v1/access-log``: one tenant of those the caller reads, one action."""

    tenant_id = fields.UUID(load_default=None)
    action = fields.Str(load_default=None, validate=validate.OneOf(ACCESS_ACTIONS))


class AccessLogEntrySchema(Schema):
    id = fields.Str()
    tenant_id = fields.Str()
    tenant_name = fields.Str()
    action = fields.Str()
    description = fields.Str()
    actor_user_id = fields.Str(allow_none=True)
    actor_name = fields.Str()
    actor_role = fields.Str()
    source = fields.Str()
    occurred_at = fields.Str()


class AccessLogPageSchema(Schema):
    items = fields.List(fields.Nested(AccessLogEntrySchema))
    total = fields.Int()
    page = fields.Int()
    per_page = fields.Int()


class ConflictQuerySchema(PageQuerySchema):
    pass


class AccountConflictSchema(Schema):
    id = fields.Str()
    tenant_id = fields.Str()
    tenant_name = fields.Str()
    requested_by = fields.Str()
    email = fields.Str()
    role = fields.Str()
    created_at = fields.Str()


class AccountConflictPageSchema(Schema):
    items = fields.List(fields.Nested(AccountConflictSchema))
    total = fields.Int()
    page = fields.Int()
    per_page = fields.Int()


class UserOutSchema(Schema):
    id = fields.Str()
    tenant_id = fields.Str()
    email = fields.Str()
    display_name = fields.Str()
    role = fields.Str()
    is_active = fields.Bool()
    invited = fields.Bool()


class UserPageSchema(Schema):
    items = fields.List(fields.Nested(UserOutSchema))
    total = fields.Int()
    page = fields.Int()
    per_page = fields.Int()


class UserUpdateSchema(StrictSchema):
    role = fields.Str(validate=validate.OneOf([r.value for r in Role]))
    is_active = StrictBool()
    display_name = fields.Str(validate=validate.Length(min=1, max=200))

    @validates_schema
    def not_empty(self, data, **_):
        if not data:
            raise ValidationError("Give at least one of role, is_active, display_name.", "_schema")


class UserInfoSchema(Schema):
    id = fields.Str()
    tenant_id = fields.Str()
    display_name = fields.Str()
    email = fields.Str()
    role = fields.Str()


# -- students -----------------------------------------------------------------

class StudentListQuerySchema(PageQuerySchema):
    search = fields.Str(load_default=None, validate=validate.Length(max=100))
    tenant_id = fields.UUID(load_default=None)


class ContactSchema(Schema):
    id = fields.Str()
    name = fields.Str()
    relationship = fields.Str()
    email = fields.Str(allow_none=True)
    mobile = fields.Str(allow_none=True)
    preferred_language = fields.Str()
    authorised = fields.Bool()


class StaffRefSchema(Schema):
    id = fields.Str()
    display_name = fields.Str()
    role = fields.Str()


class StudentSchema(Schema):
    id = fields.Str()
    tenant_id = fields.Str()
    roster_key = fields.Str()
    first_name = fields.Str()
    last_name = fields.Str()
    grade = fields.Str(allow_none=True)
    date_of_birth = fields.Str(allow_none=True, metadata={"format": "date"})
    is_adult = fields.Bool()
    student_number = fields.Str(allow_none=True, metadata={"description": "Only while the school uses student IDs"})


class StudentDetailSchema(StudentSchema):
    contacts = fields.List(fields.Nested(ContactSchema))
    staff = fields.List(fields.Nested(StaffRefSchema))


class StudentListItemSchema(StudentSchema):
    staff_count = fields.Int(metadata={"description": "How many active staff serve the student"})


class StudentPageSchema(Schema):
    items = fields.List(fields.Nested(StudentListItemSchema))
    total = fields.Int()
    page = fields.Int()
    per_page = fields.Int()


class StaffAssignmentSchema(StrictSchema):
    user_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(max=200))


class StudentAccessSchema(Schema):
    student_id = fields.Str()
    tenant_id = fields.Str()
    district_id = fields.Str(allow_none=True)
    is_adult = fields.Bool()
    first_name = fields.Str()


# -- rosters ------------------------------------------------------------------

class RowMessageSchema(Schema):
    row = fields.Int(metadata={"description": "Row number in the file; the header is row 1"})
    column = fields.Str(allow_none=True)
    message = fields.Str()


class RosterResultSchema(Schema):
    preview = fields.Bool()
    columns_kept = fields.List(fields.Str())
    columns_dropped = fields.List(fields.Str(), metadata={"description": "Not in the allow-list: never stored"})
    headers = fields.List(fields.Dict(), metadata={
        "description": "[{header, field}]: each header of the file and the field it was read as (null: dropped)"})
    rows_total = fields.Int()
    created = fields.Int()
    updated = fields.Int()
    unchanged = fields.Int()
    applied_rows = fields.List(fields.Int())
    skipped_rows = fields.List(fields.Int())
    errors = fields.List(fields.Nested(RowMessageSchema))
    warnings = fields.List(fields.Nested(RowMessageSchema))


# -- roster column mappings and OneRoster packages -------------------------------

ROSTER_FIELDS = (
    "student_key", "first_name", "last_name", "grade", "date_of_birth", "student_number",
    "student_email", "student_mobile", "student_language",
    "contact_name", "contact_relationship", "contact_email", "contact_mobile",
    "contact_language", "contact_authorised", "staff_email",
)


class RosterMappingSchema(Schema):
    """``{"mapping": {"Student ID": "student_key", "Home Address": null}}``: the SIS's header
    -> one of the roster's fields, or null to drop that column."""

    class Meta:
        unknown = RAISE

    mapping = fields.Dict(
        keys=fields.Str(validate=validate.Length(min=1, max=200)),
        values=fields.Str(allow_none=True, validate=validate.OneOf(ROSTER_FIELDS)),
        required=True, validate=validate.Length(max=100),
    )


class RosterMappingOutSchema(Schema):
    mapping = fields.Dict(keys=fields.Str(), values=fields.Str(allow_none=True))
    fields_ = fields.List(fields.Str(), data_key="fields", metadata={"description": "The roster's fields, in order"})


class OneRosterOptionsSchema(Schema):
    class Meta:
        unknown = RAISE

    contacts_authorised = fields.Bool(load_default=False, metadata={
        "description": "The administrator confirms the school's records authorise the package's family contacts"})
    birth_dates = fields.Bool(load_default=False, metadata={
        "description": "Read birthDate (only) from demographics.csv"})


class PackageProblemSchema(Schema):
    file = fields.Str(allow_none=True)
    row = fields.Int(allow_none=True)
    column = fields.Str(allow_none=True)
    message = fields.Str()


class OneRosterResultSchema(Schema):
    preview = fields.Bool()
    imported = fields.Bool(metadata={"description": "The package was applied (an import without errors)"})
    can_import = fields.Bool(metadata={"description": "No errors: importing applies the whole package"})
    format = fields.Str()
    package_sha256 = fields.Str()
    modes = fields.Dict(keys=fields.Str(), values=fields.Str(), metadata={"description": "file -> bulk | delta"})
    files_read = fields.List(fields.Str())
    files_not_read = fields.List(fields.Str(), metadata={"description": "Present in the package, never read"})
    columns_dropped = fields.List(fields.Dict(), metadata={
        "description": "[{file, column, values}]: columns not on the allow-list, with how many cells held a value"})
    orgs = fields.List(fields.Dict())
    contacts_authorised = fields.Bool()
    students = fields.Dict(keys=fields.Str(), values=fields.Int())
    contacts = fields.Dict(keys=fields.Str(), values=fields.Int())
    staff = fields.Dict(keys=fields.Str(), values=fields.Int())
    serves_links = fields.Dict(keys=fields.Str(), values=fields.Int())
    skipped = fields.List(fields.Dict(), metadata={"description": "Rows of orgs the administrator does not manage"})
    errors = fields.List(fields.Nested(PackageProblemSchema))
    warnings = fields.List(fields.Nested(PackageProblemSchema))
