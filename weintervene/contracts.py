"""Message contracts: one marshmallow schema per message, imported by both sides.

Publishers dump with these schemas; consumers load with ``unknown=RAISE`` so a
field outside the contract (a student id slipped into an analytics event) is
rejected, never stored.

Events travel on nameko's ``{source}.events`` topic exchanges. ``SUBSCRIPTIONS``
lists every durable consumer queue, so the topology can be declared before any
consumer first starts (a service that was never started still gets its copy).

Example::

    >>> ShareRecorded().load({"event_id": "5d7c…", "tenant_id": "…", "service_id": "…",
    ...     "taxonomy_term_ids": [], "channel": "sms", "occurred_on": "2026-11-28"})
"""
from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from weintervene.config import SERVICES

CHANNELS = ("email", "sms", "print", "link")

SHARE_RECORDED = "share_recorded"  # published by referrals
DELETION_REQUESTED = "deletion_requested"  # published by retention
DELETION_COMPLETED = "deletion_completed"  # published by every data-holding service
SESSIONS_ENDED = "sessions_ended"  # published by identity, broadcast to every gateway
PLATFORM_ACTION = "platform_action"  # published by retention: an operator acted on a tenant
REFERRAL_CLOSED = "referral_closed"  # published by referrals: a referral ended with an outcome

# How a referral ended (referrals' outcomes; analytics counts them by category).
OUTCOMES = ("connected", "could_not_contact", "not_eligible", "no_capacity", "no_longer_interested")
MAX_DAYS_OPEN = 365  # days from share to close, counted up to this (a year is "a year or more")

DELETION_SCOPES = ("tenant", "student", "user", "contact", "policy")

# What a per-tenant retention policy can expire (scope "policy", with older_than).
# "left_students": students a bulk roster import marked left (identity's ``Student.left_at``)
# longer ago than the policy's age; retention deletes each with a scope "student" request.
POLICY_RECORD_KINDS = ("closed_referrals", "login_records", "delivery_logs", "left_students")

DATA_SERVICES = tuple(s for s in SERVICES if s != "retention")
"""Services that hold data about tenants and people, and so must confirm deletions."""


class Contract(Schema):
    class Meta:
        unknown = RAISE


class ShareRecorded(Contract):
    """referrals → analytics. Nothing here may identify a person or a message."""

    event_id = fields.UUID(required=True)
    tenant_id = fields.UUID(required=True)  # the school or program that shared
    district_id = fields.UUID(required=False, allow_none=True, load_default=None)
    service_id = fields.UUID(required=True)  # the directory service shared
    taxonomy_term_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(max=50))
    channel = fields.Str(required=True, validate=validate.OneOf(CHANNELS))
    occurred_on = fields.Date(required=True)


class ReferralClosed(Contract):
    """referrals → analytics: a referral closed with an outcome. Like ``ShareRecorded``,
    nothing here may identify a person or a message: no student, contact, user, note or
    referral id; only the school, the service, its terms, the outcome and how many whole
    days it took (capped at ``MAX_DAYS_OPEN``)."""

    event_id = fields.UUID(required=True)
    tenant_id = fields.UUID(required=True)  # the school or program that shared
    district_id = fields.UUID(required=False, allow_none=True, load_default=None)
    service_id = fields.UUID(required=True)
    taxonomy_term_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(max=50))
    outcome = fields.Str(required=True, validate=validate.OneOf(OUTCOMES))
    days_open = fields.Int(required=True, validate=validate.Range(0, MAX_DAYS_OPEN))
    occurred_on = fields.Date(required=True)  # the day it closed


class DeletionRequested(Contract):
    """retention → every data-holding service: delete what the scope names."""

    request_id = fields.UUID(required=True)
    scope = fields.Str(required=True, validate=validate.OneOf(DELETION_SCOPES))
    tenant_id = fields.UUID(required=True)
    # The opaque id of the subject within the scope (a student id, a user id…);
    # for a tenant termination it equals tenant_id.
    subject_id = fields.UUID(required=True)
    # For tenant termination: every tenant id covered (a district and its schools).
    tenant_ids = fields.List(fields.UUID(), load_default=list)
    # For retention policies: delete records older than this instant.
    older_than = fields.AwareDateTime(required=False, allow_none=True, load_default=None)
    attempt = fields.Int(load_default=1)
    # A re-send addresses only the services that have not confirmed yet; empty
    # (the first send) means every data-holding service.
    services = fields.List(
        fields.Str(validate=validate.OneOf(DATA_SERVICES)), load_default=list,
        validate=validate.Length(max=len(DATA_SERVICES)),
    )
    # For retention policies: which kind of record expires (each service acts
    # only on the kinds it holds and confirms the others with no counts).
    record_kind = fields.Str(
        required=False, allow_none=True, load_default=None, validate=validate.OneOf(POLICY_RECORD_KINDS)
    )


class DeletionCompleted(Contract):
    """a service → retention: what it deleted for one request."""

    request_id = fields.UUID(required=True)
    service = fields.Str(required=True, validate=validate.OneOf(DATA_SERVICES))
    counts = fields.Dict(keys=fields.Str(), values=fields.Int(), required=True)
    completed_at = fields.AwareDateTime(required=True)


class SessionsEnded(Contract):
    """identity → every gateway instance: sessions that no longer sign anyone in.

    A gateway keeps a session check for a few seconds (``gateway_session_cache_seconds``);
    this tells it to forget the sessions named, every session of the users named, and
    every session in the tenants named, at once. Ids only: no token, no address.
    """

    session_ids = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=10_000))
    user_ids = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=10_000))
    tenant_ids = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=10_000))
    reason = fields.Str(required=True, validate=validate.Length(max=40))


# The access-transparency log's vocabulary (services.identity.access_log): what a
# platform account (operator, auditor) did to a tenant.
ACCESS_ACTIONS = (
    "tenant_created", "user_created", "user_changed", "user_disabled", "settings_changed",
    "export_created", "directory_import", "directory_service_changed", "deletion_requested",
    "retention_policy_set", "break_glass_requested", "break_glass_approved", "break_glass_refused",
    # An account created by single sign-on's just-in-time provisioning (identity records it itself).
    "user_provisioned",
)


class PlatformAction(Contract):
    """another service → identity: a platform account acted on a tenant, for that tenant's
    access-transparency log. Ids and a short description only: no student data, no names
    (identity knows its own accounts' names)."""

    event_id = fields.UUID(required=True)
    tenant_id = fields.UUID(required=True)
    actor_user_id = fields.UUID(required=True)
    action = fields.Str(required=True, validate=validate.OneOf(ACCESS_ACTIONS))
    description = fields.Str(required=True, validate=validate.Length(min=1, max=300))
    occurred_at = fields.AwareDateTime(required=True)


BROADCASTS = frozenset({SESSIONS_ENDED})
"""Events for whoever listens right now (each gateway's own queue), not for a durable
consumer: when no queue is bound (no gateway is running) there is nobody to tell, and the
outbox counts the event as sent instead of retrying it for ever."""


def queue_name(source: str, event_type: str, consumer: str, method: str) -> str:
    """The durable queue nameko's SERVICE_POOL handler consumes from."""
    return f"evt-{source}-{event_type}--{consumer}.{method}"


# (source service, event type) -> [(consumer service, handler method)]
SUBSCRIPTIONS: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("referrals", SHARE_RECORDED): [("analytics", "on_share_recorded")],
    ("referrals", REFERRAL_CLOSED): [("analytics", "on_referral_closed")],
    ("retention", PLATFORM_ACTION): [("identity", "on_retention_platform_action")],
    ("retention", DELETION_REQUESTED): [
        (service, "on_deletion_requested") for service in DATA_SERVICES
    ],
    **{
        (service, DELETION_COMPLETED): [("retention", f"on_{service}_deletion_completed")]
        for service in DATA_SERVICES
    },
}
