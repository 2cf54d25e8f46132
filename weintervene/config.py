"""Typed settings, read once from the environment, carried in nameko's config.

Every service reads its settings with :func:`settings`, which returns the
:class:`Settings` object stored under ``config["WEINTERVENE"]``. Tests patch that
object (``dataclasses.replace``) instead of setting environment variables.

Example::

    >>> s = Settings.from_env({"WEINTERVENE_DATA_DIR": "/tmp/wi"})
    >>> s.database_url("identity")
    'sqlite:////tmp/wi/identity.db'
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Mapping

from nameko import config as nameko_config

SERVICES = ("identity", "directory", "referrals", "analytics", "retention")
"""Every service that owns a database (the gateway owns none)."""

DEFAULT_AMQP_URI = "amqp://guest:guest@localhost:5672/"
DEFAULT_SECRET_KEY = "dev-only-secret-change-me"
DEFAULT_SMS_TOKEN = "demo-token"


@dataclasses.dataclass(frozen=True)
class SecretSetting:
    """A setting that must be a real secret outside development mode.

    ``defaults`` are values published in this repository (never secret); ``used_by``
    names the components (services, "gateway", "migrate") that refuse to start without it.

    Example: SecretSetting("sms_token", (DEFAULT_SMS_TOKEN,), ("referrals",))
    """

    field: str
    defaults: tuple[str, ...]
    used_by: tuple[str, ...]

    @property
    def variable(self) -> str:
        return "WEINTERVENE_" + self.field.upper()


COMPONENTS = SERVICES + ("gateway",)

# The auth-context signing key pair for development and tests only (weintervene.context_signing):
# "<key id>:<urlsafe base64 of the raw 32-byte key>". Production sets its own: the gateway (and
# the operator CLI) WEINTERVENE_CONTEXT_SIGNING_KEY, every service WEINTERVENE_CONTEXT_VERIFY_KEYS.
DEV_CONTEXT_SIGNING_KEY = "dev-1:0KEi63VHcBKIuHNgZKuuZj2KP0d4Iwfc-Dc_KhEccEg="
DEV_CONTEXT_VERIFY_KEYS = "dev-1:H5Fmsc-OLD_yZGmfleox5-dom4Fxe9JLD_uLer4GQ2I="

SECRET_SETTINGS: list[SecretSetting] = [
    # Keyed hashes (identity's fences, retention's subject references), CSRF tokens.
    # "migrate": the migrations compute keyed hashes too.
    SecretSetting("secret_key", (DEFAULT_SECRET_KEY,), COMPONENTS + ("migrate",)),
    # The SMS provider's account token: it authenticates our sends and signs its callbacks.
    SecretSetting("sms_token", (DEFAULT_SMS_TOKEN,), ("referrals",)),
    # The gateway signs callers' contexts (weintervene.context_signing); every component verifies.
    SecretSetting("context_signing_key", (DEV_CONTEXT_SIGNING_KEY,), ("gateway",)),
    SecretSetting("context_verify_keys", (DEV_CONTEXT_VERIFY_KEYS,), COMPONENTS),
]
"""Every secret setting, in one list: a new one (a signing key…) is appended here and is
then refused at start-up outside development mode when left at its default or empty."""


class DefaultSecretError(SystemExit):
    """Raised at start-up outside development mode; its message names the variables."""


def missing_secrets(cfg: "Settings", components) -> list[str]:
    """The variables of the secret settings ``components`` use that are empty or a published default.

    Example: missing_secrets(Settings(), ["referrals"]) -> ["WEINTERVENE_SECRET_KEY", "WEINTERVENE_SMS_TOKEN"]
    """
    wanted = set(components)
    missing = []
    for secret in SECRET_SETTINGS:
        if not wanted & set(secret.used_by):
            continue
        value = str(getattr(cfg, secret.field) or "").strip()
        if not value or value in secret.defaults:
            missing.append(secret.variable)
    return missing


def require_secrets(cfg: "Settings", components) -> None:
    """Refuse to start outside development mode with a default or empty secret.

    Raises :class:`DefaultSecretError` (a ``SystemExit``: exit status 1, its one line on
    stderr) naming every variable to set. Development mode (``WEINTERVENE_DEV_MODE=1``) accepts them.

    Example: require_secrets(Settings(), ["gateway"]) -> SystemExit("refusing to start: ...")
    """
    from weintervene.hashing import KeyringError, keyring_of

    try:
        keyring_of(cfg)  # a malformed key list is refused at start, not at the first hash
    except KeyringError as exc:
        raise DefaultSecretError(f"refusing to start: {exc}") from None
    if cfg.dev_mode:
        return
    missing = missing_secrets(cfg, components)
    if missing:
        raise DefaultSecretError(
            f"refusing to start: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} empty or a published "
            "default; set a secret value (or WEINTERVENE_DEV_MODE=1 for local development only)"
        )



@dataclasses.dataclass(frozen=True)
class Settings:
    amqp_uri: str = DEFAULT_AMQP_URI
    data_dir: Path = Path("data")
    # Per service database URL; a service missing here gets SQLite under data_dir.
    database_urls: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # "postgresql+psycopg2://postgres@127.0.0.1:5432/wi_{service}" gives each service
    # its own database on one server; {service} is replaced by the service name.
    database_url_template: str = ""
    auto_migrate: bool = True
    gateway_address: str = "127.0.0.1:8000"
    # The address every link the system makes starts with (banner, print, share, reset,
    # the SMS status callback). Empty (the default): the address the gateway listens on,
    # ``http://<gateway_address>`` (a wildcard host as ``localhost``); set it behind a proxy.
    # Derived once: ``dataclasses.replace(s, gateway_address=…)`` keeps the derived URL unless
    # it also passes ``public_base_url=""``.
    public_base_url: str = ""
    # Proxies in front of the gateway that append to X-Forwarded-For (1 behind the
    # Kubernetes ingress). 0 ignores the header: a client cannot pick its own
    # address and slip past the per-address sign-in throttle.
    trusted_proxy_hops: int = 0
    # Strict-Transport-Security on every response served over HTTPS (the request's
    # scheme after ``trusted_proxy_hops``) or when ``public_base_url`` is https; 0 turns
    # it off (local HTTP never gets it either way).
    hsts_max_age_seconds: int = 365 * 24 * 3600
    # Development mode (``make run``'s demo, the test suite): the published defaults of
    # the secret settings below are accepted. Off by default: a production process
    # refuses to start with any of them (``require_secrets``).
    dev_mode: bool = False
    # The current key of keyed hashes and CSRF tokens, and its id (recorded in every
    # value made with it); older keys, still accepted to verify and look up what was
    # made under them, as "id:key,id:key" (``weintervene rotate-key`` prints them).
    secret_key: str = DEFAULT_SECRET_KEY
    secret_key_id: str = "0"
    previous_secret_keys: str = ""
    # The gateway signs the auth context it forwards with this Ed25519 private key ("<key id>:
    # <base64>"); only the gateway and the operator CLI need it. Every service verifies with
    # the public keys listed here ("<key id>:<base64>,<key id>:<base64>": the current one
    # and, while rotating, the previous). See docs/SECURITY.md, "The broker".
    context_signing_key: str = DEV_CONTEXT_SIGNING_KEY
    context_verify_keys: str = DEV_CONTEXT_VERIFY_KEYS
    # Allowance for clocks that differ between the gateway's host and a service's.
    context_clock_skew_seconds: float = 5.0
    # Per-service broker users (weintervene.broker). `weintervene run` (all of it) creates them
    # on the local broker through the management API with this administrator's credentials,
    # keeps their generated passwords in <data_dir>/broker-credentials.json (mode 0600) and
    # runs each service in its own process with its own user; off: one process, AMQP_URI's user.
    broker_per_service_users: bool = True
    broker_management_url: str = "http://guest:guest@127.0.0.1:15672"
    broker_user_prefix: str = "wi-"
    # Sessions (ASVS V3): idle and absolute lifetimes.
    session_idle_seconds: int = 30 * 60
    session_absolute_seconds: int = 12 * 3600
    # Login throttling (ASVS V2.2.1): per account and per client address.
    # The per-account limit spares addresses the owner signed in from before, so
    # an attacker cannot lock the owner out (journey 9).
    max_failed_logins_per_account_hour: int = 100
    max_failed_logins_per_account_ip_hour: int = 10
    max_failed_logins_per_ip_hour: int = 100
    password_reset_ttl_seconds: int = 30 * 60
    # Roster CSV imports: larger files are refused with 413 before parsing.
    roster_max_bytes: int = 5 * 1024 * 1024
    roster_max_rows: int = 20000
    # OneRoster packages (services/identity/oneroster.py): the zip may be roster_max_bytes;
    # what it unpacks to, and the rows of any one file (enrollments: ~6 per student).
    oneroster_max_unpacked_bytes: int = 64 * 1024 * 1024
    oneroster_max_rows: int = 200_000
    # JSON bodies from outside (weintervene.bounded_json): deeper nesting is a 400. No
    # request of the API nests more than 4 levels; an HSDS document for import, 10.
    json_max_depth: int = 32
    directory_import_json_max_depth: int = 64
    # Directory import archives (services/directory/importer.py): what a zip may unpack
    # to in all, and how many times its compressed size one member may grow (a zip bomb
    # inflates ~1000x; real HSDS CSVs compress 5-20x).
    directory_import_max_unpacked_bytes: int = 512 * 1024 * 1024
    directory_import_max_ratio: int = 100
    # Directory keyword search ranks and counts at most this many matches exactly; a
    # broader search ranks the first ones found (name matches first) and estimates its
    # total and facet counts (``total_is_estimate``), so its cost stays bounded.
    directory_search_exact_limit: int = 500
    # An operator's own search synonyms (CSV like services/directory/data/search_synonyms.csv),
    # merged with the shipped list; empty: the shipped list alone.
    directory_search_synonyms_file: str = ""
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_sender: str = "WeIntervene <no-reply@weintervene.local>"
    sms_base_url: str = "http://127.0.0.1:1026"
    sms_account: str = "AC-demo"
    sms_token: str = DEFAULT_SMS_TOKEN
    # The provider's signed status callbacks: each one seen is remembered (a digest of
    # its signature, nothing else) this long, so a replay changes nothing and is
    # answered as the first was (services/referrals/sms_callbacks.py).
    sms_callback_replay_hours: int = 72
    sms_sender: str = "+15550000000"
    sms_timeout_seconds: float = 10.0
    # Referrals: delivery retries (exponential backoff from the base, capped),
    # follow-up reminders to the sharer, and the lifetime of shared links.
    delivery_max_attempts: int = 6
    delivery_backoff_seconds: float = 30.0
    delivery_backoff_max_seconds: float = 3600.0
    # A delivery left "sending" this long was interrupted mid-send (a crash).
    delivery_stale_seconds: float = 300.0
    referral_reminder_days: int = 14
    referral_link_ttl_days: int = 30
    # A share's Idempotency-Key is answered with the same share for at least this long;
    # referrals' hourly purge then removes it (the same key then makes a new share).
    idempotency_key_ttl_hours: int = 24
    hsds_public: bool = True
    rpc_timeout_seconds: float = 10.0
    # Every gateway request is answered within this (504 otherwise); exports take longer.
    gateway_request_timeout_seconds: float = 30.0
    # How long a gateway process trusts identity's answer about a session token (0: ask on
    # every request). Revocations reach every gateway at once as ``sessions_ended``; this
    # bounds how long a gateway that missed that event (cut off from the broker) lags.
    gateway_session_cache_seconds: float = 15.0
    # Retention: re-send a deletion to services that have not confirmed after this;
    # retry the identity fence after this; a request not complete by due is overdue;
    # how often a retention policy runs.
    deletion_resend_seconds: float = 30.0
    deletion_fence_retry_seconds: float = 5.0
    deletion_due_hours: int = 72
    retention_policy_interval_seconds: int = 24 * 3600
    # Every service's outbox: rows already published are deleted after this many days
    # (retention's own, which carry subject ids, go after an hour).
    outbox_retention_days: int = 7
    # Every service's outbox relay: after a commit wakes it, it waits this long for the
    # commits that follow, so they go out as one batch (one publish, one UPDATE; and the
    # consumers take them as one batch). The events wait that much longer.
    outbox_relay_linger_seconds: float = 0.1
    metrics_port: int = 0  # 0: no separate metrics listener (the gateway serves /metrics)
    # Analytics: counts below this are suppressed in any figure that leaves a
    # school, unless the district sets its own (identity tenant_info).
    analytics_suppression_threshold: int = 10
    # Analytics unmet need: directory services counted within this radius of the school.
    analytics_unmet_need_radius_miles: float = 10.0
    # Analytics: rows per item list (top services, top categories, unmet need).
    analytics_top_n: int = 10
    # The taxonomy level dashboards count categories at, unless a report asks for another
    # (``category_level``): 1 is Open Eligibility's top ("Care", "Education"), 2 its groups
    # ("Support Network", "More Education"), 3 what people recognise ("Counseling",
    # "Tutoring"; a term on a shallower branch stands for itself: "Food Pantry").
    analytics_category_level: int = 3
    # Analytics intake: share events applied (one transaction, one ack) per batch,
    # at most this many; and how many unacknowledged events the broker may send
    # ahead, so the next batch is already waiting while one commits (twice the batch).
    analytics_batch_size: int = 200
    analytics_prefetch: int = 400
    # nameko's concurrent workers per service container (its default is 10). Most of a
    # worker's life is waiting on another service, the broker or the database; with 10,
    # the gateway and referrals each capped a 16-client share load at ~85 shares/s with
    # both cores a third idle (bench/referrals.py). Each service's pool allows 30
    # database connections (weintervene.db.make_engine).
    max_workers: int = 32
    # Referrals: share batches written at once (services/referrals/batching.py). One
    # batch at a time amortises most, but serialises identity's and the database's round
    # trips; a few at once overlap them. bench/referrals.py measures the trade: since a
    # batch takes one exchange with PostgreSQL (COMMIT included) and no confirm waits,
    # one at a time is the fastest (session 7: 305-368 shares/s vs 233-248 with 4, and
    # 4.5-5.4 ms of CPU per share vs 7.1-7.6). More per process only pay where a
    # batch waits long on something other than this machine's cores.
    share_batches_in_flight: int = 1

    def __post_init__(self):
        if not self.public_base_url:
            object.__setattr__(self, "public_base_url", gateway_base_url(self.gateway_address))

    @property
    def broker_credentials_file(self) -> Path:
        """Where `weintervene run` keeps the per-service broker users' generated passwords."""
        return Path(self.data_dir) / "broker-credentials.json"

    def database_url(self, service: str) -> str:
        """The SQLAlchemy URL of one service's own database."""
        if service in self.database_urls:
            return self.database_urls[service]
        if self.database_url_template:
            return self.database_url_template.format(service=service)
        return f"sqlite:///{Path(self.data_dir).resolve() / (service + '.db')}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Build settings from ``WEINTERVENE_*`` variables (and ``AMQP_URI``)."""
        env = os.environ if env is None else env
        values: dict = {}
        for field in dataclasses.fields(cls):
            key = "WEINTERVENE_" + field.name.upper()
            if field.name == "amqp_uri":
                raw = env.get("AMQP_URI", env.get(key))
            else:
                raw = env.get(key)
            if raw is None or field.name == "database_urls":
                continue
            values[field.name] = _coerce(field.type, raw)
        urls = {
            name: env[f"WEINTERVENE_{name.upper()}_DATABASE_URL"]
            for name in SERVICES
            if f"WEINTERVENE_{name.upper()}_DATABASE_URL" in env
        }
        return cls(database_urls=urls, **values)

    def nameko_config(self) -> dict:
        """The dict nameko runs with: its own keys plus this object."""
        return {
            "AMQP_URI": self.amqp_uri,
            "WEB_SERVER_ADDRESS": self.gateway_address,
            "serializer": "json",
            # Persistent messages and confirms are nameko's defaults; say so.
            "PERSISTENT": True,
            # Concurrency, and as many messages prefetched as workers to take them.
            "max_workers": self.max_workers,
            "PREFETCH_COUNT": self.max_workers,
            "WEINTERVENE": self,
        }


def gateway_base_url(gateway_address: str) -> str:
    """The base URL of a gateway listening on ``gateway_address`` ("host:port").

    A wildcard host (``0.0.0.0``, ``::``, empty) is reached as ``localhost``.

    Example: gateway_base_url("0.0.0.0:8080") -> "http://localhost:8080"
    """
    host, _, port = gateway_address.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}" if port else f"http://{host}"


def _coerce(type_name, raw: str):
    if type_name in ("bool", bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if type_name in ("int", int):
        return int(raw)
    if type_name in ("float", float):
        return float(raw)
    if type_name in ("Path", Path):
        return Path(raw)
    return raw


def settings() -> Settings:
    """The settings of the running process (defaults when nothing was set up)."""
    value = nameko_config.get("WEINTERVENE")
    if value is None:
        value = Settings.from_env()
        nameko_config["WEINTERVENE"] = value
    return value
