"""Identity's errors. Each is a registered remote error (see weintervene.errors)."""
from weintervene.errors import (
    BadRequest, Conflict, Forbidden, NotFound, RateLimited, Unauthorized, Unavailable, remote,
)


@remote
class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"


@remote
class AccountEnded(Unauthorized):
    """The password was right but the account's school or program left the platform.

    Said only after a correct password: to anyone else it is ``InvalidCredentials``.
    """

    code = "account_ended"


@remote
class AccountDisabled(Unauthorized):
    """The password was right but an administrator disabled the account (said only then)."""

    code = "account_disabled"


@remote
class SessionExpired(Unauthorized):
    code = "session_expired"


@remote
class LoginThrottled(RateLimited):
    code = "login_throttled"


@remote
class WeakPassword(BadRequest):
    code = "weak_password"


@remote
class OutOfScope(Forbidden):
    code = "out_of_scope"


@remote
class InvalidResetToken(BadRequest):
    code = "invalid_reset_token"


@remote
class StudentForbidden(Forbidden):
    code = "student_forbidden"


@remote
class StudentNotFound(NotFound):
    code = "student_not_found"


@remote
class SubjectFenced(Conflict):
    code = "subject_fenced"


@remote
class RosterRejected(BadRequest):
    """The whole file is unusable (encoding, header, size): nothing was stored."""

    code = "roster_rejected"


@remote
class WrongCurrentPassword(BadRequest):
    code = "wrong_current_password"


@remote
class OperatorRefused(Forbidden):
    """A platform operator asked what only a tenant's administrators may do (staff_rules)."""

    code = "operator_refused"


@remote
class BreakGlassNotFound(NotFound):
    code = "break_glass_not_found"


@remote
class BreakGlassClosed(Conflict):
    """The recovery was already decided, or has expired: nothing more happens to it."""

    code = "break_glass_closed"


@remote
class BreakGlassRefused(Forbidden):
    """This caller may not approve this recovery (its own, or the tenant has administrators)."""

    code = "break_glass_not_yours"


@remote
class EmailUnavailable(BadRequest):
    """An address no new account may have; the same answer whatever the reason
    (services.identity.conflicts), so it tells nobody where another account is."""

    code = "email_unavailable"


@remote
class PasswordSignInDisabled(Forbidden):
    """The user's organisation signs in with single sign-on only (its administrator's choice)."""

    code = "password_sign_in_disabled"


@remote
class SsoNotConfigured(NotFound):
    code = "sso_not_configured"


@remote
class SsoRefused(Unauthorized):
    """The provider's answer does not sign anyone in (an ID token check failed, an unverified
    or foreign address, no account, a disabled one); ``code`` says which (sso_*)."""

    code = "sso_refused"


@remote
class SsoProviderUnavailable(Unavailable):
    """The provider did not answer (or answered unusably): try again later, never a 500."""

    code = "sso_provider_unavailable"
