"""HTTP plumbing of the gateway: one entrypoint class, one route decorator.

``@route`` declares a JSON endpoint once: nameko registers it, the request body
and query string are validated with marshmallow (unknown fields are a 400), the
caller is authenticated through identity, errors become JSON through the one
table in ``gateway/errors.py``, and the OpenAPI document is generated from the
same declaration.

Example::

    class DirectoryRoutes:
        @route("GET", "/api/v1/me", response=MeSchema, summary="Who am I")
        def me(self, request, auth):
            return auth.to_dict()
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import time
import uuid
from datetime import date, datetime, timezone
from typing import Any, Callable

import eventlet
from marshmallow import Schema, ValidationError
from nameko.events import BROADCAST
from nameko.exceptions import RpcTimeout
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from prometheus_client import Histogram
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Request, Response

from gateway import cors
from gateway.errors import error_response
from gateway.sessions import SessionCache
from weintervene.auth import AuthContext, Role
from weintervene.bounded_json import JsonRefused, loads_bounded
from weintervene.config import settings
from weintervene.context_signing import sign_context
from weintervene.contracts import SESSIONS_ENDED, SessionsEnded
from weintervene.hashing import keyed_hash, verify_keyed_hash
from weintervene.messaging import event_handler
from weintervene.errors import BadRequest, Forbidden, Unauthorized, one_line

log = logging.getLogger(__name__)

SESSION_COOKIE = "wi_session"
CSRF_COOKIE = "wi_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_MAX_BODY = 1 * 1024 * 1024

HTTP_SECONDS = Histogram(
    "weintervene_http_request_seconds", "Gateway request time", ["route", "method", "status"],
    buckets=(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "geolocation=(), camera=(), microphone=()",
}


def _json_default(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_response(payload: Any, status: int = 200, headers: dict | None = None) -> Response:
    body = json.dumps(payload, default=_json_default, separators=(",", ":"))
    response = Response(body, status=status, mimetype="application/json", headers=headers)
    response.headers["Cache-Control"] = "no-store"
    return response


def hsts_header(environ) -> str | None:
    """``Strict-Transport-Security`` for a request served over HTTPS, else None.

    HTTPS is the request's scheme (``X-Forwarded-Proto`` counts only behind
    ``trusted_proxy_hops`` proxies: ProxyFix has set it) or a ``public_base_url`` that is
    https (TLS ended by something this gateway does not see). Local HTTP never gets it:
    a browser that saw it on 127.0.0.1 would refuse plain HTTP there for a year.

    Example: hsts_header({"wsgi.url_scheme": "https"}) -> "max-age=31536000; includeSubDomains"
    """
    cfg = settings()
    if cfg.hsts_max_age_seconds <= 0:
        return None
    if environ.get("wsgi.url_scheme") != "https" and not cfg.public_base_url.lower().startswith("https://"):
        return None
    return f"max-age={cfg.hsts_max_age_seconds}; includeSubDomains"


def secure_headers(response: Response, environ=None) -> Response:
    headers = response.headers
    present = {name.lower() for name, _ in headers.items()}  # one pass, not one scan per header
    for name, value in SECURITY_HEADERS.items():
        if name.lower() not in present:
            headers.add(name, value)
    hsts = hsts_header(environ or {})
    if hsts and "strict-transport-security" not in present:
        headers.add("Strict-Transport-Security", hsts)
    return response


class JsonWsgiApp(WsgiApp):
    """nameko's WSGI app, with JSON bodies for 404/405 and security headers on everything."""

    def __call__(self, environ, start_response):
        request = Request(environ, shallow=True)
        answered = cors.preflight(request)
        if answered is not None:
            return secure_headers(answered, environ)(environ, start_response)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
            request.path_values = values
            response = provider.handle_request(request)
        except HTTPException as exc:
            log_answer(request.method, repr(request.path[:200]), exc.code, exc)
            response = json_response(
                {"error": {"code": exc.name.lower().replace(" ", "_"), "message": exc.description}},
                status=exc.code,
                headers=dict(exc.get_headers()) if exc.code == 405 else None,
            )
            response.headers["Content-Type"] = "application/json"
        return secure_headers(cors.allow(request, response), environ)(environ, start_response)


def behind_proxies(app, hops: int):
    """Take the client address (and scheme) from the last ``hops`` proxies' headers.

    Behind the ingress every request comes from the ingress pod; without this, the
    per-address sign-in throttle would count the whole district as one address.
    ``hops=0`` leaves the app as is, so forged headers change nothing.

    Example: behind_proxies(app, 1) with "X-Forwarded-For: 198.51.100.7" -> remote_addr "198.51.100.7"
    """
    return ProxyFix(app, x_for=hops, x_proto=hops) if hops > 0 else app


class JsonWebServer(WebServer):
    def get_wsgi_app(self):
        return behind_proxies(JsonWsgiApp(self), settings().trusted_proxy_hops)


def error_to_response(exc: BaseException) -> Response:
    """A JSON error response for ``exc``, through the one table."""
    if isinstance(exc, RequestEntityTooLarge):
        return json_response({"error": {"code": "payload_too_large", "message": "The request body is too large."}}, 413)
    status, body = error_response(exc)
    retry_after = RETRY_AFTER_SECONDS.get(status)
    return json_response(body, status, {"Retry-After": retry_after} if retry_after else None)


def log_answer(method: str, path: str, status: int, exc: BaseException) -> None:
    """One line for a refused request (4xx) or a service that did not answer (mapped 5xx).

    No traceback: the caller's mistake is not ours, and a mapped 5xx was logged with its
    traceback where it happened (an unmapped error is, by :func:`gateway.errors.error_response`).
    ``path`` is the route's template (``/api/v1/students/<student_id>``), so no id lands in the log.

    Example line: ``GET /api/v1/students/<student_id> -> 404 NotFound student_not_found: No such student.``
    """
    if 400 <= status < 500:
        log.info("%s %s -> %d %s", method, path, status, one_line(exc))
    elif status != 500:
        log.warning("%s %s -> %d %s", method, path, status, one_line(exc))


# When a client may try again (RFC 9110 10.2.3): a throttled login after a minute; a
# service or database that refused the work for now (503: restarting, too many
# connections) after a few seconds, so clients that retry do not hammer it meanwhile.
RETRY_AFTER_SECONDS = {429: "60", 503: "5"}


class HttpEntrypoint(HttpRequestHandler):
    """nameko's HTTP entrypoint on our server, its errors answered through the one error table."""

    server = JsonWebServer()

    def response_from_exception(self, exc):
        return error_to_response(exc)


http = HttpEntrypoint.decorator


@dataclasses.dataclass(frozen=True)
class Header:
    """A request header a route reads: checked (length) and documented with the route.

    The handler gets ``headers={name: value or None}``.

    Example: Header("Idempotency-Key", "One key per request you mean; send it again with every retry.")
    """

    name: str
    description: str
    required: bool = False
    max_length: int = 255

    def value(self, request: Request) -> str | None:
        value = request.headers.get(self.name)
        if value is None:
            if self.required:
                raise BadRequest(f"The {self.name} header is required.", code="invalid_header",
                                 details={self.name: ["Missing."]})
            return None
        if not 1 <= len(value) <= self.max_length:
            raise BadRequest(f"The {self.name} header must be 1 to {self.max_length} characters.",
                             code="invalid_header", details={self.name: ["Wrong length."]})
        return value


@dataclasses.dataclass(frozen=True)
class ErrorPage:
    """An error status a route answers with a body that is not the JSON error (a public HTML page).

    Example: ErrorPage("The link expired or never existed: an HTML page saying so.", "text/html")
    """

    description: str
    content_type: str | None  # None: the answer has no body (the web server's own 414)


@dataclasses.dataclass
class RouteSpec:
    """What the OpenAPI document says of one endpoint."""

    method: str
    path: str  # OpenAPI style: /api/v1/students/{student_id}
    summary: str
    tags: list[str]
    auth: bool
    roles: tuple[Role, ...] | None
    body: type[Schema] | None
    query: type[Schema] | None
    # Lists answer a page object (``{"items": [...], "total", "page", "per_page"}``), never a
    # bare array: a list route names its page schema here.
    response: type[Schema] | None
    status: int
    description: str
    content_type: str = "application/json"
    # For raw bodies that are not JSON (a CSV upload): documented as a string body.
    request_content_type: str | None = None
    headers: tuple[Header, ...] = ()
    # Other types the success answer may come in (``?format=csv``: "text/csv"), documented as text.
    also_content_types: tuple[str, ...] = ()
    # Error statuses particular to this endpoint: {409: "What it means"} (a JSON error body), or
    # {404: ErrorPage("What it means", "text/html")} for an error answered in another type.
    errors: dict[int, str | ErrorPage] = dataclasses.field(default_factory=dict)


ROUTES: list[RouteSpec] = []


def _openapi_path(werkzeug_path: str) -> str:
    import re

    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", werkzeug_path)


def session_token(request: Request) -> tuple[str | None, bool]:
    """(token, from_cookie). An Authorization header wins over the cookie."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip(), False
    cookie = request.cookies.get(SESSION_COOKIE)
    return (cookie, True) if cookie else (None, False)


def csrf_token_for(session_token_value: str) -> str:
    """The CSRF token bound to a session (double submit, HMAC of the session token under
    the current key, ``"<key id>:<hex>"``)."""
    return keyed_hash("csrf", session_token_value)


def check_csrf(request: Request, token: str) -> None:
    """The token sent is the session's under the key it names: one made before a key
    rotation still passes while that key is kept; an unknown key id does not."""
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent or not verify_keyed_hash("csrf", token, sent):
        raise Forbidden("Missing or wrong CSRF token.", code="csrf_failed")


def client_ip(request: Request) -> str:
    return request.remote_addr or "unknown"


def parse_json_body(request: Request, max_body: int) -> Any:
    request.max_content_length = max_body
    if request.content_length and request.content_length > max_body:
        raise RequestEntityTooLarge()
    raw = request.get_data(cache=True)
    if len(raw) > max_body:
        raise RequestEntityTooLarge()
    if not raw:
        return {}
    if request.mimetype != "application/json":
        raise BadRequest("Send the body as application/json.", code="unsupported_media_type")
    try:
        return loads_bounded(raw.decode("utf-8"), max_depth=settings().json_max_depth)
    except JsonRefused as exc:  # deep nesting, 100,000-digit numbers, NaN, a key twice...
        raise BadRequest(f"The body is refused: {exc}", code="malformed_json") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}", code="malformed_json") from None


def refuse_nul_characters(value: Any, where: str) -> None:
    """A 400 for text holding U+0000 anywhere in ``value`` (a parsed body, query or path value).

    No field means it, and PostgreSQL cannot store it in text: it reached the database and
    came back a 500 (``invalid byte sequence for encoding "UTF8": 0x00``; the fuzz found it).

    Example: refuse_nul_characters({"name": "a\\x00b"}, "body") -> BadRequest invalid_input,
    details {"name": ["Text may not contain the NUL character (U+0000)."]}
    """
    found = _nul_paths(value, where)
    if found:
        raise BadRequest("Text may not contain the NUL character (U+0000).", code="invalid_input",
                         details={path: ["Text may not contain the NUL character (U+0000)."] for path in found[:20]})


def _nul_paths(value: Any, path: str) -> list[str]:
    if isinstance(value, str):
        return [path] if "\x00" in value else []
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            name = str(key)
            if "\x00" in name:
                found.append(path)
            found += _nul_paths(item, name if path in ("body", "query", "path") else f"{path}.{name}")
        return found
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _nul_paths(item, f"{path}.{i}")]
    return []


def parse_query(request: Request, schema: type[Schema] | Schema | None) -> dict:
    if schema is None:
        if request.args:
            raise BadRequest(
                "Unknown query parameters.", code="invalid_input",
                details={k: ["Unknown field."] for k in request.args},
            )
        return {}
    refuse_nul_characters({key: "".join(request.args.getlist(key)) for key in request.args}, "query")
    instance = schema() if isinstance(schema, type) else schema
    data = {}
    for key in request.args:
        values = request.args.getlist(key)
        field = instance.fields.get(key)
        is_list = field is not None and field.__class__.__name__ in ("List", "DelimitedList")
        data[key] = values if is_list else values[-1]
    try:
        return instance.load(data)
    except ValidationError as exc:
        raise BadRequest("Invalid query parameters.", code="invalid_input", details=exc.messages) from None


@functools.lru_cache(maxsize=4096)
def _timer(path: str, method: str, status_code: int):
    """The histogram child for one route and status (``labels`` takes a lock and builds a key each call)."""
    return HTTP_SECONDS.labels(path, method, str(status_code))


def route(
    method: str,
    path: str,
    *,
    summary: str,
    tags: list[str] | None = None,
    auth: bool = True,
    roles: tuple[Role, ...] | None = None,
    body: type[Schema] | None = None,
    query: type[Schema] | None = None,
    response: type[Schema] | None = None,
    status: int = 200,
    max_body: int = DEFAULT_MAX_BODY,
    raw: bool = False,
    content_type: str = "application/json",
    request_content_type: str | None = None,
    timeout: float | None = None,
    headers: tuple[Header, ...] = (),
    errors: dict[int, str | ErrorPage] | None = None,
    also_content_types: tuple[str, ...] = (),
    body_loaded_by_service: bool = False,
) -> Callable:
    """Declare a gateway endpoint.

    The handler is called as ``handler(self, request, auth=..., body=...,
    query=..., **path_values)`` (only the keywords it declares a use for are
    meaningful; all are passed), plus ``headers={name: value}`` when the route
    declares ``headers``. It returns JSON-able data, or a werkzeug
    Response when ``raw`` is set. The whole request is answered within ``timeout``
    seconds (``gateway_request_timeout_seconds`` unless given) or gets a 504.
    ``errors`` documents the endpoint's own error statuses in the OpenAPI document.

    ``body_loaded_by_service``: the service the handler calls loads the body with the
    same ``body`` schema (and answers the same 400 ``invalid_input`` with reasons), so
    the gateway checks only that the body is a JSON object of an allowed size and
    passes it on. Loading it here too cost the busiest endpoint, sharing, a tenth of
    the gateway's CPU per request, to find what the service finds anyway.
    """

    # One schema instance per route, made once: marshmallow builds a schema's fields on
    # every instantiation (a deep copy), which cost more than the load itself. Loading
    # keeps no state on the instance, so every request can use the same one.
    body_schema = body() if body is not None else None
    query_schema = query() if query is not None else None

    def decorator(fn):
        ROUTES.append(
            RouteSpec(
                method=method, path=_openapi_path(path), summary=summary,
                tags=tags or [], auth=auth, roles=roles, body=body, query=query,
                response=response, status=status,
                description=(fn.__doc__ or "").strip(), content_type=content_type,
                request_content_type=request_content_type, headers=tuple(headers), errors=dict(errors or {}),
                also_content_types=tuple(also_content_types),
            )
        )

        @functools.wraps(fn)
        def handler(self, request, **path_values):
            started = time.perf_counter()
            status_code = 500
            try:
                caller = None
                if auth:
                    # Signed for as long as this request may take (its timeout).
                    caller = self.authenticate_request(request, lifetime=timeout)
                    if roles is not None and caller.role not in roles:
                        raise Forbidden("Your role may not do this.", code="role_forbidden")
                refuse_nul_characters(path_values, "path")
                for name, value in path_values.items():
                    if name.endswith("_id"):
                        try:
                            path_values[name] = str(uuid.UUID(value))
                        except ValueError:
                            raise BadRequest(f"{name} is not a valid UUID.", code="invalid_id") from None
                data = None
                if body is not None:
                    data = parse_json_body(request, max_body)
                    if not isinstance(data, dict):
                        raise BadRequest("The body must be a JSON object.", code="invalid_input")
                    refuse_nul_characters(data, "body")
                    if not body_loaded_by_service:
                        try:
                            data = body_schema.load(data)
                        except ValidationError as exc:
                            raise BadRequest("Invalid input.", code="invalid_input", details=exc.messages) from None
                        data = json.loads(json.dumps(data, default=_json_default))
                elif method not in SAFE_METHODS and not raw:
                    parse_json_body(request, max_body)  # size check; content ignored
                params = parse_query(request, query_schema)
                if params:
                    # Dates and UUIDs as the strings services expect over RPC.
                    params = json.loads(json.dumps(params, default=_json_default))
                extra = {"headers": {h.name: h.value(request) for h in headers}} if headers else {}
                # A call whose request or reply was lost (a broker restart drops the transient
                # requests, weintervene.rpc) would otherwise hold the caller forever.
                limit = timeout if timeout is not None else settings().gateway_request_timeout_seconds
                with eventlet.Timeout(limit, RpcTimeout(f"no answer within {limit:g} s")):
                    result = fn(self, request, auth=caller, body=data, query=params, **extra, **path_values)
                if raw:
                    status_code = result.status_code
                    return result
                # ``response`` documents the shape; services already dumped their
                # results with that same schema, so it is not applied twice.
                status_code = status
                return json_response(result, status)
            except Exception as exc:  # noqa: BLE001 - mapped through the one table
                error = error_to_response(exc)
                status_code = error.status_code
                log_answer(method, path, status_code, exc)
                return error
            finally:
                _timer(path, method, status_code).observe(time.perf_counter() - started)

        return http(method, path)(handler)

    return decorator


class Authenticated:
    """Mixin for the gateway service: resolves the caller of a request via identity,
    remembering the answer a few seconds (:mod:`gateway.sessions`)."""

    session_cache = SessionCache()

    def authenticate_request(self, request: Request, lifetime: float | None = None) -> AuthContext:
        """The caller, signed for ``lifetime`` seconds (the request's timeout) for the services.

        Example: self.authenticate_request(request).to_dict() -> {"user_id": …, "expires_at": …,
        "signature": "dev-1.…"}
        """
        caller = self.session_caller(request)
        limit = lifetime if lifetime is not None else settings().gateway_request_timeout_seconds
        return AuthContext.from_dict(sign_context(caller.to_dict(), lifetime=limit))

    def session_caller(self, request: Request) -> AuthContext:
        """The caller of a request as identity answered (unsigned), remembered a few seconds."""
        token, from_cookie = session_token(request)
        if not token:
            raise Unauthorized("Sign in first.", code="not_authenticated")
        if from_cookie and request.method not in SAFE_METHODS:
            check_csrf(request, token)
        known = self.session_cache.get(token)
        if known is not None:
            return known
        asked_at = self.session_cache.epoch
        with eventlet.Timeout(settings().rpc_timeout_seconds):
            answer = self.identity_rpc.authenticate(token)
        caller = AuthContext.from_dict(answer)
        if answer.get("session_valid_until"):
            left = (datetime.fromisoformat(answer["session_valid_until"]) - datetime.now(timezone.utc))
            self.session_cache.put(token, caller, left.total_seconds(), asked_at_epoch=asked_at)
        return caller

    @event_handler("identity", SESSIONS_ENDED, handler_type=BROADCAST, reliable_delivery=False)
    def on_sessions_ended(self, payload):
        """Forget the sessions identity ended (every gateway process has its own queue)."""
        try:
            ended = SessionsEnded().load(payload)
        except ValidationError as exc:
            log.error("sessions_ended outside the contract: %s", exc.messages)
            return
        self.session_cache.forget(ended["session_ids"], ended["user_ids"], ended["tenant_ids"])
