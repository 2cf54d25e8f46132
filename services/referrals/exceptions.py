"""referrals's errors (registered remote errors; see weintervene.errors)."""
from weintervene.errors import BadRequest, Conflict, Forbidden, NotFound, remote


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
