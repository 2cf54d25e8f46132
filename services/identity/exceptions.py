"""Identity's errors. Each is a registered remote error (see weintervene.errors)."""
from weintervene.errors import BadRequest, Forbidden, RateLimited, Unauthorized, remote


@remote
class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"


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
