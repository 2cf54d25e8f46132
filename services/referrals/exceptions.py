"""referrals's errors (registered remote errors; see weintervene.errors)."""
from weintervene.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable, remote


@remote
class ReferralNotFound(NotFound):
    code = "referral_not_found"


@remote
class ListNotFound(NotFound):
    code = "list_not_found"


@remote
class LinkNotFound(NotFound):
    """Unknown or expired link: the same answer, so tokens cannot be probed."""

    code = "link_not_found"


@remote
class ContactUnreachable(BadRequest):
    """The contact has no address for the chosen channel (no email, no mobile)."""

    code = "contact_unreachable"


@remote
class ConsentRequired(BadRequest):
    """Student information would go to an outside organisation without recorded consent."""

    code = "consent_required"


@remote
class InvalidTransition(Conflict):
    code = "invalid_transition"


@remote
class NotYourReferral(Forbidden):
    code = "referral_forbidden"


@remote
class BadSignature(Forbidden):
    """A provider callback whose signature does not match: not from our provider."""

    code = "bad_signature"


@remote
class IdempotencyKeyReused(Unprocessable):
    """The caller sent this Idempotency-Key before with another request: nothing is done
    (the key names one request; a new request needs a new key)."""

    code = "idempotency_key_reused"


@remote
class IdempotencyKeyInUse(Conflict):
    """Another request with this Idempotency-Key won the race and its share went away
    before it could be answered (deleted meanwhile): send the request again."""

    code = "idempotency_key_in_use"
