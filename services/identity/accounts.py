"""Sign-in, sessions and throttling: the rules behind identity's login RPCs.

Tokens are 256 random bits (``secrets.token_urlsafe(32)``), given to the client
once and stored only as SHA-256. A session ends at logout, on password change,
when the user is disabled, after ``session_idle_seconds`` without use, and
``session_absolute_seconds`` after sign-in.

Example::

    >>> token, session = start_session(db, user)
    >>> authenticate(db, token).user_id == user.id
    True
"""
from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime, timedelta

from prometheus_client import Counter
from sqlalchemy import String, bindparam, cast, delete, func, or_, select, update

from services.identity.exceptions import (
    AccountDisabled, AccountEnded, InvalidCredentials, InvalidResetToken, LoginThrottled, PasswordSignInDisabled,
    SessionExpired, WrongCurrentPassword,
)
from services.identity.models import LoginAttempt, OutboxMessage, PasswordReset, Tenant, User, UserSession
from services.identity import mailing
from services.identity.passwords import check_policy, hash_password, verify_password
from weintervene.auth import AuthContext, Role, TenantKind
from weintervene.config import settings
from weintervene.contracts import SESSIONS_ENDED, SessionsEnded
from weintervene.db import utcnow
from weintervene.messaging import outbox_add

LOGIN_FAILURES = Counter("weintervene_login_failures_total", "Failed sign-in attempts")
LOGIN_THROTTLED = Counter("weintervene_login_throttled_total", "Sign-ins refused by throttling", ["limit"])
LOGIN_SUCCESSES = Counter("weintervene_login_successes_total", "Successful sign-ins")

# Touch last_seen_at at most this often: the idle timeout needs no finer grain
# and every authenticated request would otherwise be a write.
TOUCH_INTERVAL = timedelta(seconds=30)

KNOWN_ADDRESS_DAYS = 90


log = logging.getLogger(__name__)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def account_key(email: str) -> str:
    """Throttling key for an email, so the attempts table holds no address."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def _failures_since(db, since, **where):
    query = select(func.count()).select_from(LoginAttempt).where(
        LoginAttempt.at >= since, LoginAttempt.succeeded.is_(False)
    )
    for column, value in where.items():
        query = query.where(getattr(LoginAttempt, column) == value)
    return db.scalar(query)


def check_throttle(db, key: str, client_ip: str) -> None:
    """Refuse before any password work when a limit is reached."""
    cfg = settings()
    hour_ago = utcnow() - timedelta(hours=1)
    if _failures_since(db, hour_ago, client_ip=client_ip) >= cfg.max_failed_logins_per_ip_hour:
        LOGIN_THROTTLED.labels("ip").inc()
        raise LoginThrottled("Too many failed sign-ins from this address. Try again later.")
    if _failures_since(db, hour_ago, account_key=key, client_ip=client_ip) >= cfg.max_failed_logins_per_account_ip_hour:
        LOGIN_THROTTLED.labels("account_ip").inc()
        raise LoginThrottled("Too many failed sign-ins for this account. Try again later.")
    if _failures_since(db, hour_ago, account_key=key) >= cfg.max_failed_logins_per_account_hour:
        known_address = db.scalar(
            select(func.count()).select_from(LoginAttempt).where(
                LoginAttempt.account_key == key,
                LoginAttempt.client_ip == client_ip,
                LoginAttempt.succeeded.is_(True),
            )
        )
        if not known_address:
            LOGIN_THROTTLED.labels("account").inc()
            raise LoginThrottled("Too many failed sign-ins for this account. Try again later.")


def record_attempt(db, key: str, client_ip: str, succeeded: bool) -> None:
    db.add(LoginAttempt(account_key=key, client_ip=client_ip, succeeded=succeeded))
    # Successful attempts are kept (they mark known addresses); failures
    # older than an hour serve no limit and are pruned.
    db.execute(
        delete(LoginAttempt).where(
            LoginAttempt.succeeded.is_(False), LoginAttempt.at < utcnow() - timedelta(hours=1)
        )
    )
    # A known address is one used within KNOWN_ADDRESS_DAYS; older successes go.
    db.execute(
        delete(LoginAttempt).where(
            LoginAttempt.succeeded.is_(True), LoginAttempt.at < utcnow() - timedelta(days=KNOWN_ADDRESS_DAYS)
        )
    )


def login(db, email: str, password: str, client_ip: str) -> tuple[str, UserSession, User]:
    email = normalise_email(email)
    key = account_key(email)
    check_throttle(db, key, client_ip)
    user = db.scalar(select(User).where(User.email == email))
    matches, needs_rehash = verify_password(user.password_hash if user else None, password or "")
    if not (matches and user.is_active and user.tenant.status == "active"):
        record_attempt(db, key, client_ip, succeeded=False)
        db.commit()
        LOGIN_FAILURES.inc()
        if not matches:
            raise InvalidCredentials("Email or password is not right.")
        # Only someone who knows the password learns why they cannot sign in.
        if user.tenant.status != "active":
            raise AccountEnded(
                f"This account has ended: {user.tenant.name} no longer uses WeIntervene. "
                "If you think this is a mistake, ask your school's or program's office.")
        raise AccountDisabled("This account is disabled. Ask your school's or program's administrator.")
    from services.identity.single_sign_on import password_sign_in_refused  # late: it imports accounts

    provider = password_sign_in_refused(db, user)
    if provider is not None:
        # Said only after the password matched: the answer tells a stranger nothing about the account.
        raise PasswordSignInDisabled(
            f"Your organisation signs in with single sign-on ({provider}): use \"Sign in with single sign-on\" "
            "instead of a password.")
    if needs_rehash:
        user.password_hash = hash_password(password)
    record_attempt(db, key, client_ip, succeeded=True)
    token, session = start_session(db, user)
    db.commit()
    LOGIN_SUCCESSES.inc()
    return token, session, user


def start_session(db, user: User) -> tuple[str, UserSession]:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session = UserSession(
        user_id=user.id,
        token_hash=token_hash(token),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=settings().session_absolute_seconds),
    )
    db.add(session)
    return token, session


# Built once: authenticate runs on every request, and building the statement
# (and its cache key) cost as much as running it. Plain columns, not ORM
# entities, so nothing is loaded into the session's identity map either.
_AUTHENTICATE = (
    select(
        UserSession.id, UserSession.revoked_at, UserSession.last_seen_at, UserSession.expires_at,
        User.id.label("user_id"), User.tenant_id, User.role, User.email, User.display_name, User.is_active,
        Tenant.kind.label("tenant_kind"), Tenant.parent_id.label("tenant_parent_id"),
        Tenant.status.label("tenant_status"),
    )
    .join(User, User.id == UserSession.user_id)
    .join(Tenant, Tenant.id == User.tenant_id)
    .where(UserSession.token_hash == bindparam("token_hash"))
)


def authenticate(db, token: str) -> AuthContext:
    """The caller behind ``token``, or SessionExpired (see :func:`check_session`)."""
    return check_session(db, token)[0]


def check_session(db, token: str) -> tuple[AuthContext, datetime]:
    """The caller behind ``token`` and the instant the session ends unless used again
    (its absolute end, or its idle end, whichever is first); SessionExpired otherwise.

    Checked against the database on every call. The gateway may keep the answer a few
    seconds, never past that instant (``gateway.sessions``).

    Example: check_session(db, token) -> (AuthContext(user_id="…", …), datetime(2026, 11, 28, 21, 30, …))
    """
    if not token or len(token) > 200:
        raise SessionExpired("Not signed in.", code="not_authenticated")
    # Core execution on the session's connection: the ORM layer adds nothing for plain columns.
    row = db.connection().execute(_AUTHENTICATE, {"token_hash": token_hash(token)}).first()
    now = utcnow()
    if row is None or row.revoked_at is not None:
        raise SessionExpired("Your session has ended. Please sign in again.")
    idle_limit = row.last_seen_at + timedelta(seconds=settings().session_idle_seconds)
    if now >= row.expires_at or now >= idle_limit:
        db.execute(update(UserSession).where(UserSession.id == row.id, UserSession.revoked_at.is_(None))
                   .values(revoked_at=now, revoked_reason="timeout"))
        db.commit()
        raise SessionExpired("Your session has timed out. Please sign in again.")
    if not row.is_active or row.tenant_status != "active":
        raise SessionExpired("Your session has ended. Please sign in again.")
    if now - row.last_seen_at >= TOUCH_INTERVAL:
        db.execute(update(UserSession).where(UserSession.id == row.id).values(last_seen_at=now))
        db.commit()
    caller = AuthContext(
        user_id=row.user_id,
        tenant_id=row.tenant_id,
        role=Role(row.role),
        district_id=row.tenant_id if row.tenant_kind == TenantKind.DISTRICT.value else row.tenant_parent_id,
        session_id=row.id,
        email=row.email,
        display_name=row.display_name,
    )
    return caller, min(row.expires_at, idle_limit)


def auth_context(user: User, session_id: str | None = None) -> AuthContext:
    tenant = user.tenant
    if tenant.kind == TenantKind.DISTRICT.value:
        district_id = tenant.id
    else:
        district_id = tenant.parent_id
    return AuthContext(
        user_id=user.id,
        tenant_id=user.tenant_id,
        role=Role(user.role),
        district_id=district_id,
        session_id=session_id,
        email=user.email,
        display_name=user.display_name,
    )


def announce_sessions_ended(db, reason: str, *, session_ids=(), user_ids=(), tenant_ids=()) -> None:
    """Stage ``sessions_ended`` in the caller's transaction, for every gateway's session cache.

    Gateways keep a session check for a few seconds; this event (sent right after the
    commit, with the revocation) makes them forget it at once.

    Example: announce_sessions_ended(db, "logout", session_ids=[session.id])
    """
    outbox_add(db, OutboxMessage, SESSIONS_ENDED, SessionsEnded().dump({
        "session_ids": list(session_ids), "user_ids": list(user_ids), "tenant_ids": list(tenant_ids),
        "reason": reason,
    }))


def forget_session_notices(db, published_before: datetime | None = None, naming=None) -> int:
    """Delete ``sessions_ended`` events: those published before ``published_before``, or
    every one naming any of the ids in ``naming`` (users, tenants), sent or not.

    They name users and tenants and are worth something only until every gateway has
    heard them (milliseconds); the outbox's week-long keeping is not for them. A
    deletion removes those naming its subjects, so no id outlives its subject here.

    Example: forget_session_notices(db, utcnow() - timedelta(minutes=1)) -> 3;
    forget_session_notices(db, naming=[user_id]) -> 1
    """
    query = delete(OutboxMessage).where(OutboxMessage.event_type == SESSIONS_ENDED)
    if published_before is not None:
        query = query.where(OutboxMessage.published_at.is_not(None), OutboxMessage.published_at < published_before)
    if naming is not None:
        if not naming:
            return 0
        # Ids are UUIDs: their text appears in a payload only where the payload names them.
        payload = cast(OutboxMessage.payload, String)
        query = query.where(or_(*(payload.contains(str(i)) for i in naming)))
    return db.execute(query.execution_options(synchronize_session=False)).rowcount


def revoke_sessions(db, user_id: str, reason: str, except_session_id: str | None = None,
                    announce: bool = True) -> int:
    """End the user's live sessions (but ``except_session_id``); returns how many ended.

    ``announce=False`` when the caller tells the gateways itself (a whole tenant at once).
    """
    query = (
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )
    if except_session_id:
        query = query.where(UserSession.id != except_session_id)
    ended = db.execute(query).rowcount
    if ended and announce:
        announce_sessions_ended(db, reason, user_ids=[user_id])
    return ended


def logout(db, token: str) -> str | None:
    """End the session; returns its single sign-on configuration's id (None for a password session)."""
    session = db.scalar(select(UserSession).where(UserSession.token_hash == token_hash(token or "")))
    if session is not None and session.revoked_at is None:
        session.revoked_at = utcnow()
        session.revoked_reason = "logout"
        announce_sessions_ended(db, "logout", session_ids=[session.id])
        db.commit()
        return session.sso_configuration_id
    return None


# -- password change and reset ---------------------------------------------

def change_password(db, auth: AuthContext, current_password: str, new_password: str) -> int:
    """Change the caller's password; every other session of the user ends.

    Example: change_password(db, auth, "old passphrase", "a new passphrase") -> 2
    (two other sessions revoked).
    """
    user = db.get(User, auth.user_id)
    if user is None or not user.is_active:
        raise SessionExpired("Your session has ended. Please sign in again.")
    matches, _ = verify_password(user.password_hash, current_password or "")
    if not matches:
        LOGIN_FAILURES.inc()
        # 400, not 401: the session is fine, only the form is wrong.
        raise WrongCurrentPassword("The current password is not right.")
    check_policy(new_password, email=user.email)
    set_password(user, new_password)
    revoked = revoke_sessions(db, user.id, "password_changed", except_session_id=auth.session_id)
    db.commit()
    return revoked


def set_password(user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()


def issue_reset(db, user: User, ttl_seconds: int | None = None) -> str:
    """A one-time reset token for ``user`` (stored hashed); earlier unused ones end."""
    now = utcnow()
    db.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
    )
    token = secrets.token_urlsafe(32)
    ttl = ttl_seconds if ttl_seconds is not None else settings().password_reset_ttl_seconds
    db.add(PasswordReset(user_id=user.id, token_hash=token_hash(token), expires_at=now + timedelta(seconds=ttl)))
    return token


def reset_link(token: str) -> str:
    return f"{settings().public_base_url.rstrip('/')}/reset-password#token={token}"


def request_reset(db, email: str) -> None:
    """Stage a reset link for ``email`` and commit; nothing is looked up here.

    The same work (one INSERT, one COMMIT) whether or not the address has an account,
    so the answer (202 either way) and its timing reveal no accounts; identity's mail
    worker resolves the address and sends after the answer (``services.identity.mailing``).
    """
    mailing.stage_reset(db, email)
    db.commit()


def complete_reset(db, token: str, new_password: str) -> User:
    """Set a new password with a reset token: once, before it expires; all sessions end."""
    reset = db.scalar(select(PasswordReset).where(PasswordReset.token_hash == token_hash(token or "")))
    now = utcnow()
    if reset is None or reset.used_at is not None or now >= reset.expires_at:
        raise InvalidResetToken("This reset link is not valid any more. Ask for a new one.")
    user = db.get(User, reset.user_id)
    if user is None or not user.is_active or user.tenant.status != "active":
        raise InvalidResetToken("This reset link is not valid any more. Ask for a new one.")
    check_policy(new_password, email=user.email)
    reset.used_at = now
    set_password(user, new_password)
    revoke_sessions(db, user.id, "password_reset")
    db.commit()
    return user
