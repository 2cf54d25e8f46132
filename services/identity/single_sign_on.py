"""Single sign-on with OpenID Connect: each tenant's provider, the ID token's checks, account linking.

A district, an independent school or a youth program configures its provider (Google
Workspace, Microsoft Entra ID, Clever, ClassLink or any OpenID provider by its issuer URL);
a district's covers its schools' users. The gateway carries the browser to the provider
and back (``gateway/routes/single_sign_on.py``, which keeps ``state``, ``nonce`` and the
PKCE verifier in a short-lived signed cookie); everything that decides who signs in is here:

1. ``begin``: the provider's discovery document (its ``issuer`` must be the one configured),
   a fresh ``state``, ``nonce`` and PKCE verifier, the authorization URL (code flow, S256).
2. ``complete``: the code exchanged at the token endpoint (client secret, PKCE verifier);
   the ID token's signature checked against the provider's JWKS (a ``kid`` the cached set
   lacks fetches the set once more: the provider rotated its keys), then ``iss``, ``aud``,
   ``exp``/``iat`` and ``nonce`` (Authlib's ``CodeIDToken``), then ``email_verified`` is true
   and the address's domain is one the tenant allows.
3. The address finds the tenant's account (never another tenant's); a disabled account, or
   one of a terminated tenant, stays out whatever the provider says. The first sign-in links
   the provider's ``sub`` to the account; a different ``sub`` with that address later is
   refused. Without an account nothing is created, unless the administrator turned on
   just-in-time provisioning for a staff role, and then the new account is in the access log.
4. The session is ``accounts.start_session``'s, the same as a password sign-in's.

Outbound HTTP (discovery, token, JWKS) has timeouts; a provider that does not answer is
``SsoProviderUnavailable`` (503), never a 500.

Example::

    >>> flow = begin(db, district_id, "https://app.example.org/api/v1/sso/callback")
    >>> flow["authorization_url"]
    'https://accounts.google.com/o/oauth2/v2/auth?response_type=code&client_id=…&code_challenge=…'
    >>> token, session, user = complete(db, district_id, code, flow["code_verifier"], flow["nonce"], redirect_uri)
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from urllib.parse import urlencode, urlsplit

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.integrations.base_client.errors import OAuthError
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import ClaimError, ExpiredTokenError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from sqlalchemy import delete, select

from services.identity import access_log, accounts
from services.identity.exceptions import (
    SsoNotConfigured, SsoProviderUnavailable, SsoRefused,
)
from services.identity.models import SsoConfiguration, SsoLink, Tenant, User
from weintervene.auth import AuthContext, Role, TenantKind
from weintervene.config import settings
from weintervene.errors import BadRequest, Forbidden, NotFound
from weintervene.sealing import SealError, reseal, seal, sealed_key_id, unseal

log = logging.getLogger(__name__)

SECRET_PURPOSE = "sso-client-secret"
SCOPE = "openid email profile"
# (connect, read) seconds for every call to a provider.
HTTP_TIMEOUT = (3.05, 10)
# The discovery document is kept this long; the JWKS until a token names a key it lacks.
DISCOVERY_SECONDS = 3600
# Signatures only by the provider's published keys: never "none", never HMAC with the secret.
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
# Clock skew tolerated on exp / iat.
LEEWAY_SECONDS = 60


@dataclasses.dataclass(frozen=True)
class Preset:
    label: str
    issuer: str | None  # None: the administrator gives it; "{tenant}" is Entra ID's tenant id


PRESETS = {
    "google": Preset("Google Workspace", "https://accounts.google.com"),
    "entra": Preset("Microsoft Entra ID", "https://login.microsoftonline.com/{tenant}/v2.0"),
    "clever": Preset("Clever", "https://clever.com"),
    "classlink": Preset("ClassLink", "https://launchpad.classlink.com"),
    "generic": Preset("OpenID Connect", None),
}

# The staff role just-in-time provisioning may give, by the kind of tenant the account joins.
# Administrators' roles are never given this way.
JIT_ROLE_BY_KIND = {TenantKind.SCHOOL.value: Role.TEACHER.value, TenantKind.PROGRAM.value: Role.PROGRAM_STAFF.value}

CONFIGURERS = (Role.DISTRICT_ADMIN, Role.SCHOOL_ADMIN, Role.PROGRAM_ADMIN)
ADMIN_ROLES = tuple(r.value for r in CONFIGURERS)


# -- configuration -------------------------------------------------------------

def _configurable_tenant(db, auth: AuthContext, tenant_id: str) -> Tenant:
    """The caller's own district, independent school or program; 404 for any other."""
    auth.require(*CONFIGURERS)
    tenant = db.get(Tenant, str(tenant_id))
    if tenant is None or tenant.id != auth.tenant_id:
        raise NotFound("No such tenant.", code="tenant_not_found")
    if tenant.kind == TenantKind.SCHOOL.value and tenant.parent_id:
        raise Forbidden("A school in a district signs in with its district's single sign-on; "
                        "the district's administrator configures it.", code="sso_configured_by_district")
    return tenant


def issuer_for(preset: str, issuer_url: str | None, provider_tenant: str | None) -> str:
    """The issuer a preset means. Example: issuer_for("entra", None, "contoso.onmicrosoft.com")
    -> "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0"."""
    template = PRESETS[preset].issuer
    if template is None:
        issuer = (issuer_url or "").strip().rstrip("/")
    elif "{tenant}" in template:
        if not provider_tenant:
            raise BadRequest("Microsoft Entra ID needs your directory (tenant) id.", code="invalid_input",
                             details={"provider_tenant": ["Required for Microsoft Entra ID."]})
        issuer = template.format(tenant=provider_tenant.strip())
    else:
        issuer = template
    _check_issuer(issuer)
    return issuer


def _check_issuer(issuer: str) -> None:
    parts = urlsplit(issuer)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if not parts.hostname or parts.query or parts.fragment or not (
            parts.scheme == "https" or (parts.scheme == "http" and loopback and settings().dev_mode)):
        raise BadRequest("The issuer must be an https:// URL without a query (the provider's discovery "
                         "document is at <issuer>/.well-known/openid-configuration).", code="invalid_input",
                         details={"issuer_url": ["Not an https URL."]})


def _domains(values) -> str:
    domains = sorted({d.strip().lower().lstrip("@") for d in values if d and d.strip()})
    if not domains or any("." not in d or "@" in d or " " in d for d in domains):
        raise BadRequest("List the email domains your staff sign in with, e.g. lincoln.k12.example.",
                         code="invalid_input", details={"allowed_domains": ["One domain or more, like example.org."]})
    return ",".join(domains)


def configure(db, auth: AuthContext, tenant_id: str, values: dict) -> dict:
    """Create or replace the tenant's configuration (the secret is kept when none is sent).

    Example: configure(db, admin, district_id, {"preset": "google", "client_id": "…",
    "client_secret": "…", "allowed_domains": ["riverside.k12.example"],
    "password_sign_in_allowed": False}) -> configuration_dict(…)
    """
    tenant = _configurable_tenant(db, auth, tenant_id)
    config = db.scalar(select(SsoConfiguration).where(SsoConfiguration.tenant_id == tenant.id))
    preset = values["preset"]
    issuer = issuer_for(preset, values.get("issuer_url"), values.get("provider_tenant"))
    secret = values.get("client_secret")
    if config is None and not secret:
        raise BadRequest("The client secret is required.", code="invalid_input",
                         details={"client_secret": ["Required the first time."]})
    jit_role, jit_tenant_id = _jit(db, tenant, values.get("jit_role"), values.get("jit_tenant_id"))
    domains = _domains(values["allowed_domains"])
    # Everything is checked before the row is touched: a refusal leaves nothing half-written.
    if config is None:
        config = SsoConfiguration(tenant_id=tenant.id)
        db.add(config)
    config.preset = preset
    config.issuer_url = issuer
    config.provider_tenant = values.get("provider_tenant") if preset == "entra" else None
    config.client_id = values["client_id"].strip()
    if secret:
        config.client_secret_sealed = seal(SECRET_PURPOSE, secret)
    config.allowed_domains = domains
    config.password_sign_in_allowed = values.get("password_sign_in_allowed", True)
    config.enabled = values.get("enabled", True)
    config.jit_role, config.jit_tenant_id = jit_role, jit_tenant_id
    db.flush()
    db.commit()
    forget_provider(issuer)  # a corrected issuer or client is used from the next sign-in on
    return configuration_dict(config)


def _jit(db, tenant: Tenant, role: str | None, target_id) -> tuple[str | None, str | None]:
    if not role:
        return None, None
    target = db.get(Tenant, str(target_id)) if target_id else (tenant if tenant.kind != TenantKind.DISTRICT.value else None)
    if target is None or not (target.id == tenant.id or target.parent_id == tenant.id):
        raise BadRequest("Choose the school new accounts join (one of the district's).", code="invalid_input",
                         details={"jit_tenant_id": ["A school of this district, or this school or program."]})
    if JIT_ROLE_BY_KIND.get(target.kind) != role:
        raise BadRequest(f"Just-in-time provisioning gives only the staff role of a {target.kind}.",
                         code="invalid_input",
                         details={"jit_role": [f"Allowed: {JIT_ROLE_BY_KIND.get(target.kind, 'none')}."]})
    return role, target.id


def configuration_dict(config: SsoConfiguration) -> dict:
    """What the administrator sees: everything but the secret (only whether one is set)."""
    return {
        "tenant_id": config.tenant_id, "preset": config.preset, "provider_name": PRESETS[config.preset].label,
        "issuer_url": config.issuer_url, "provider_tenant": config.provider_tenant, "client_id": config.client_id,
        "client_secret_set": bool(config.client_secret_sealed),
        "allowed_domains": config.allowed_domains.split(","),
        "password_sign_in_allowed": config.password_sign_in_allowed, "enabled": config.enabled,
        "jit_role": config.jit_role, "jit_tenant_id": config.jit_tenant_id,
        "redirect_uri": callback_url(), "updated_at": config.updated_at,
    }


def callback_url() -> str:
    """The redirect URI to register at the provider (one for every tenant: the gateway's callback)."""
    return f"{settings().public_base_url.rstrip('/')}/api/v1/sso/callback"


def get_configuration(db, auth: AuthContext, tenant_id: str) -> dict:
    tenant = _configurable_tenant(db, auth, tenant_id)
    config = db.scalar(select(SsoConfiguration).where(SsoConfiguration.tenant_id == tenant.id))
    if config is None:
        raise SsoNotConfigured("Single sign-on is not configured here.")
    return configuration_dict(config)


def remove_configuration(db, auth: AuthContext, tenant_id: str) -> dict:
    """Turn single sign-on off for good: its links go; password sign-in is allowed again."""
    tenant = _configurable_tenant(db, auth, tenant_id)
    removed = db.execute(delete(SsoConfiguration).where(SsoConfiguration.tenant_id == tenant.id)).rowcount
    db.commit()
    return {"removed": bool(removed)}


def configuration_for_user(db, user: User) -> SsoConfiguration | None:
    """The configuration covering ``user``: their tenant's, else their district's."""
    ids = [user.tenant_id] + ([user.tenant.parent_id] if user.tenant.parent_id else [])
    configs = {c.tenant_id: c for c in db.scalars(select(SsoConfiguration).where(
        SsoConfiguration.tenant_id.in_(ids), SsoConfiguration.enabled.is_(True)))}
    return next((configs[i] for i in ids if i in configs), None)


def password_sign_in_refused(db, user: User) -> str | None:
    """The provider's name when ``user``'s tenant turned password sign-in off, else None.

    Administrators keep their password: repairing a broken configuration (a rotated client
    secret, a provider that is down) and the break-glass recovery depend on it.
    """
    if user.role in ADMIN_ROLES:
        return None
    config = configuration_for_user(db, user)
    if config is None or config.password_sign_in_allowed:
        return None
    return PRESETS[config.preset].label


def lookup(db, email: str) -> dict:
    """Which tenant's single sign-on an address uses (by its domain), for the sign-in page.

    Example: lookup(db, "rivera@riverside.k12.example") -> {"tenant_id": …, "provider_name":
    "Google Workspace"}; SsoNotConfigured when no tenant signs that domain in.
    """
    domain = accounts.normalise_email(email).rpartition("@")[2]
    if domain:
        for config in db.scalars(select(SsoConfiguration).where(SsoConfiguration.enabled.is_(True))
                                 .order_by(SsoConfiguration.created_at)):
            if domain in config.allowed_domains.split(","):
                return {"tenant_id": config.tenant_id, "provider_name": PRESETS[config.preset].label}
    raise SsoNotConfigured("Your organisation does not sign in with single sign-on here: use your password.")


def _enabled_configuration(db, tenant_id: str) -> SsoConfiguration:
    config = db.scalar(select(SsoConfiguration).where(SsoConfiguration.tenant_id == str(tenant_id)))
    if config is None or not config.enabled or config.tenant.status != "active":
        raise SsoNotConfigured("Single sign-on is not configured for this organisation.")
    return config


# -- the provider: discovery and keys ------------------------------------------

@dataclasses.dataclass
class _Provider:
    metadata: dict
    fetched_at: float
    jwks: dict | None = None


_PROVIDERS: dict[str, _Provider] = {}
_PROVIDERS_LOCK = threading.Lock()


def forget_provider(issuer: str) -> None:
    with _PROVIDERS_LOCK:
        _PROVIDERS.pop(issuer, None)


def _get_json(url: str, what: str) -> dict:
    try:
        response = requests.get(url, timeout=HTTP_TIMEOUT, headers={"Accept": "application/json"})
        response.raise_for_status()
        data = response.json()
    except (requests.RequestException, ValueError) as exc:
        log.warning("sso provider %s unreachable: %s", what, type(exc).__name__)
        raise SsoProviderUnavailable(
            "Your organisation's sign-in provider is not answering. Try again in a few minutes, "
            "or sign in with your password if your organisation allows it.") from None
    if not isinstance(data, dict):
        raise SsoProviderUnavailable("Your organisation's sign-in provider answered something unusable.")
    return data


def provider_metadata(issuer: str) -> dict:
    """The issuer's discovery document (kept ``DISCOVERY_SECONDS``); its ``issuer`` must match."""
    with _PROVIDERS_LOCK:
        known = _PROVIDERS.get(issuer)
    if known is not None and time.monotonic() - known.fetched_at < DISCOVERY_SECONDS:
        return known.metadata
    metadata = _get_json(f"{issuer}/.well-known/openid-configuration", "discovery")
    if metadata.get("issuer") != issuer or not all(
            isinstance(metadata.get(k), str) for k in ("authorization_endpoint", "token_endpoint", "jwks_uri")):
        raise SsoProviderUnavailable("Your organisation's sign-in provider is not set up as configured "
                                     "(its discovery document names another issuer). Tell your administrator.",
                                     code="sso_provider_misconfigured")
    with _PROVIDERS_LOCK:
        _PROVIDERS[issuer] = _Provider(metadata=metadata, fetched_at=time.monotonic())
    return metadata


def _key_set(issuer: str, metadata: dict, refresh: bool = False) -> KeySet:
    with _PROVIDERS_LOCK:
        known = _PROVIDERS.get(issuer)
        jwks = known.jwks if known is not None and not refresh else None
    if jwks is None:
        jwks = _get_json(metadata["jwks_uri"], "jwks")
        with _PROVIDERS_LOCK:
            if issuer in _PROVIDERS:
                _PROVIDERS[issuer].jwks = jwks
    try:
        return KeySet.import_key_set(jwks)
    except (JoseError, ValueError, KeyError, TypeError):
        raise SsoProviderUnavailable("Your organisation's sign-in provider publishes unusable keys.") from None


def verify_id_token(config: SsoConfiguration, metadata: dict, token: dict, nonce: str) -> dict:
    """The ID token's claims once its signature, issuer, audience, expiry and nonce hold.

    A ``kid`` the cached JWKS lacks fetches it once more (the provider rotated its keys).
    Example: verify_id_token(config, metadata, {"id_token": "eyJ…", "access_token": "…"}, nonce)
    -> {"iss": …, "sub": "248289761001", "aud": client_id, "email": "…", "email_verified": True, …}
    """
    raw = token.get("id_token")
    if not isinstance(raw, str):
        raise SsoRefused("The provider sent no ID token.", code="sso_token_invalid")
    algorithms = [a for a in metadata.get("id_token_signing_alg_values_supported", ["RS256"]) if a in SIGNING_ALGORITHMS]
    registry = JWSRegistry(algorithms=algorithms or ["RS256"], strict_check_header=False)
    try:
        try:
            decoded = jwt.decode(raw, _key_set(config.issuer_url, metadata), registry=registry)
        except InvalidKeyIdError:
            decoded = jwt.decode(raw, _key_set(config.issuer_url, metadata, refresh=True), registry=registry)
    except JoseError as exc:
        log.info("sso id token refused: %s", type(exc).__name__)
        raise SsoRefused("The sign-in could not be verified (the ID token's signature is not the provider's).",
                         code="sso_token_invalid") from None
    claims = CodeIDToken(
        decoded.claims, decoded.header,
        {"iss": {"essential": True, "values": [config.issuer_url]},
         "aud": {"essential": True, "values": [config.client_id]},
         "exp": {"essential": True}},
        {"nonce": nonce, "client_id": config.client_id, "access_token": token.get("access_token")},
    )
    try:
        claims.validate(leeway=LEEWAY_SECONDS)
    except ClaimError as exc:
        claim = "exp" if isinstance(exc, ExpiredTokenError) else (getattr(exc, "claim", None) or exc.error)
        log.info("sso id token refused: %s", claim)
        raise SsoRefused(f"The sign-in could not be verified (the ID token's {claim} is not right).",
                         code="sso_token_invalid", details={"claim": claim}) from None
    return dict(claims)


# -- the flow --------------------------------------------------------------------

def begin(db, tenant_id: str, redirect_uri: str) -> dict:
    """Where to send the browser, and what the callback must bring back.

    Example: begin(db, district_id, callback) -> {"authorization_url": "https://…", "state": "…",
    "nonce": "…", "code_verifier": "…", "provider_name": "Google Workspace"}
    """
    config = _enabled_configuration(db, tenant_id)
    metadata = provider_metadata(config.issuer_url)
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    with OAuth2Session(config.client_id, redirect_uri=redirect_uri, scope=SCOPE,
                       code_challenge_method="S256") as client:
        url, _state = client.create_authorization_url(metadata["authorization_endpoint"], state=state,
                                                      nonce=nonce, code_verifier=verifier)
    return {"authorization_url": url, "state": state, "nonce": nonce, "code_verifier": verifier,
            "provider_name": PRESETS[config.preset].label}


def _exchange_code(config: SsoConfiguration, metadata: dict, code: str, verifier: str, redirect_uri: str) -> dict:
    try:
        secret = unseal(SECRET_PURPOSE, config.client_secret_sealed)
    except SealError:
        log.error("sso client secret of a configuration cannot be opened (key %s)", sealed_key_id(config.client_secret_sealed))
        raise SsoProviderUnavailable("Single sign-on is misconfigured here (its client secret cannot be read): "
                                     "ask your administrator to enter it again.", code="sso_provider_misconfigured") from None
    try:
        with OAuth2Session(config.client_id, secret, redirect_uri=redirect_uri, scope=SCOPE,
                           token_endpoint_auth_method="client_secret_basic") as client:
            return dict(client.fetch_token(metadata["token_endpoint"], grant_type="authorization_code",
                                           code=code, code_verifier=verifier, timeout=HTTP_TIMEOUT))
    except (OAuth2Error, OAuthError) as exc:
        error = getattr(exc, "error", None) or "error"
        log.info("sso token endpoint refused the code: %s", error)
        raise SsoRefused("The provider did not accept this sign-in (the code was used already or has expired). "
                         "Start again from the sign-in page.", code="sso_code_rejected",
                         details={"provider_error": str(error)[:64]}) from None
    except (requests.RequestException, ValueError):
        raise SsoProviderUnavailable(
            "Your organisation's sign-in provider is not answering. Try again in a few minutes.") from None


def complete(db, tenant_id: str, code: str, verifier: str, nonce: str, redirect_uri: str,
             client_ip: str = "unknown", callback_issuer: str | None = None):
    """The callback's code -> (token, session, user): a session as a password sign-in's.

    ``callback_issuer``: the ``iss`` the provider put on the redirect (RFC 9207), when it did;
    another issuer's answer (a mix-up) is refused before its code goes anywhere.
    """
    config = _enabled_configuration(db, tenant_id)
    if callback_issuer is not None and callback_issuer != config.issuer_url:
        raise SsoRefused("This answer came from another sign-in provider. Start again from the sign-in page.",
                         code="sso_issuer_mismatch")
    metadata = provider_metadata(config.issuer_url)
    token = _exchange_code(config, metadata, code, verifier, redirect_uri)
    claims = verify_id_token(config, metadata, token, nonce)
    user = _account_for(db, config, claims)
    accounts.record_attempt(db, accounts.account_key(user.email), client_ip, succeeded=True)
    token_value, session = accounts.start_session(db, user)
    session.sso_configuration_id = config.id
    db.commit()
    accounts.LOGIN_SUCCESSES.inc()
    return token_value, session, user


NO_ACCOUNT = "No WeIntervene account of {tenant} has this address. Ask your administrator to add you."


def _account_for(db, config: SsoConfiguration, claims: dict) -> User:
    email = accounts.normalise_email(claims.get("email") if isinstance(claims.get("email"), str) else "")
    if claims.get("email_verified") is not True:
        raise SsoRefused("Your provider has not verified this email address, so it cannot sign you in here.",
                         code="sso_email_unverified")
    domain = email.rpartition("@")[2]
    if not email or domain not in config.allowed_domains.split(","):
        raise SsoRefused(f"Addresses at {domain or 'this domain'} may not sign in to {config.tenant.name}.",
                         code="sso_domain_not_allowed")
    subject = str(claims["sub"])[:255]
    user = db.scalar(select(User).where(User.email == email))
    if user is not None and config.tenant_id not in (user.tenant_id, user.tenant.parent_id):
        # Another tenant's account: never reached through this tenant's provider (nor named).
        raise SsoRefused(NO_ACCOUNT.format(tenant=config.tenant.name), code="sso_no_account")
    if user is None:
        user = _provision(db, config, email, claims)
    if not user.is_active or user.tenant.status != "active":
        raise SsoRefused("Your WeIntervene account is disabled. Ask your administrator.", code="sso_account_disabled")
    link = db.get(SsoLink, user.id)
    holder = db.scalar(select(SsoLink).where(SsoLink.configuration_id == config.id, SsoLink.subject == subject))
    if (link is not None and link.configuration_id == config.id and link.subject != subject) or (
            holder is not None and holder.user_id != user.id):
        raise SsoRefused("This address is linked to another account at your provider. Ask your administrator.",
                         code="sso_account_mismatch")
    if link is None or link.configuration_id != config.id:
        if link is not None:
            db.delete(link)
            db.flush()
        db.add(SsoLink(user_id=user.id, configuration_id=config.id, subject=subject))
    return user


def _provision(db, config: SsoConfiguration, email: str, claims: dict) -> User:
    """Just-in-time: an account with the configured staff role, recorded in the access log."""
    if not config.jit_role or not config.jit_tenant_id:
        raise SsoRefused(NO_ACCOUNT.format(tenant=config.tenant.name), code="sso_no_account")
    target = db.get(Tenant, config.jit_tenant_id)
    if target is None or JIT_ROLE_BY_KIND.get(target.kind) != config.jit_role:
        raise SsoRefused(NO_ACCOUNT.format(tenant=config.tenant.name), code="sso_no_account")
    name = claims.get("name") if isinstance(claims.get("name"), str) and claims.get("name").strip() else email.partition("@")[0]
    user = User(tenant_id=target.id, email=email, display_name=name.strip()[:200], role=config.jit_role)
    db.add(user)
    db.flush()
    access_log.record_provisioning(db, target, user, PRESETS[config.preset].label)
    return user


def end_session_url(db, session_configuration_id: str | None) -> str | None:
    """The provider's RP-initiated logout URL for a session from single sign-on, if it has one."""
    if not session_configuration_id:
        return None
    config = db.get(SsoConfiguration, session_configuration_id)
    if config is None:
        return None
    try:
        endpoint = provider_metadata(config.issuer_url).get("end_session_endpoint")
    except SsoProviderUnavailable:
        return None
    if not isinstance(endpoint, str):
        return None
    query = urlencode({"client_id": config.client_id,
                       "post_logout_redirect_uri": f"{settings().public_base_url.rstrip('/')}/signout"})
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


# -- erasure and key rotation -----------------------------------------------------

def forget_users(db, user_ids: list[str]) -> int:
    """Their provider links (a ``sub`` is an identifier of the person)."""
    if not user_ids:
        return 0
    return db.execute(delete(SsoLink).where(SsoLink.user_id.in_(user_ids))).rowcount or 0


def delete_for_tenants(db, tenant_ids: list[str]) -> int:
    if not tenant_ids:
        return 0
    return db.execute(delete(SsoConfiguration).where(SsoConfiguration.tenant_id.in_(tenant_ids))).rowcount or 0


def reseal_secrets(db, current_key_id: str) -> int:
    """Client secrets sealed under an older key, sealed again under the current one."""
    changed = 0
    for config in db.scalars(select(SsoConfiguration)):
        if sealed_key_id(config.client_secret_sealed) != current_key_id:
            config.client_secret_sealed = reseal(SECRET_PURPOSE, config.client_secret_sealed)
            changed += 1
    return changed
