"""The web app: one HTML shell for every client-side page, and its static assets.

The single-page app in ``gateway/static`` talks to the same public JSON API as
everyone else; these routes only hand out files. Client-side paths (``/search``,
``/referrals/<id>``...) all answer with ``index.html`` so that a reload or a
bookmark lands on the right page. Unknown paths stay JSON 404s (the API's
contract), so only the sections below are served as the shell.

Assets have no build step, so no fingerprinted names: instead the shell points at
``/static/v-<hash of every file>/...`` and every relative ``import`` inherits that
prefix, so a whole release is cached for a year (``immutable``: not even a
revalidation) and a new release is a new prefix. Unversioned ``/static/...`` URLs
still work, revalidated each time (``no-cache`` + ETag). Text assets go gzipped to
clients that accept it (compressed once per file version, kept in memory).

What makes a full page load fast (issue 7: a page in under 200 ms):

- the shell lists every module the app starts with, and the page's own module and its
  imports (the path's page is read from ``static/js/routes.js``), as
  ``<link rel="modulepreload">``: the browser fetches them all at once instead of
  discovering them import by import;
- the shell carries what every page needs first, in ``<meta name="wi-boot">``: who is
  signed in (what ``GET /api/v1/me`` answers) and the current policy and incident notices
  (what ``GET /api/v1/notices`` answers), fetched from identity while the HTML is made.
  The app then asks the API only for the page's own data: one round trip after the
  shell instead of two or three in a row. Signed in, the shell is ``no-store`` (it names
  the user); if identity does not answer in time the shell goes without, and the app
  asks the API itself;
- and that one round trip starts with the HTML, not after the app has started: each route
  in routes.js names the API calls its page makes first (``preload``), and the shell lists
  them for the signed-in user's role as ``<link rel="preload" as="fetch">``. The page's own
  ``fetch`` of the same URL takes the preloaded answer (measured: the call starts ~20 ms
  after the first byte instead of ~65 ms).

Example::

    GET /search                   -> index.html (no-store), assets under /static/v-3f2a.../,
                                     <meta name="wi-boot" content="{&quot;me&quot;: {...}, ...}">
    GET /static/v-3f2a.../app.css -> the file, Cache-Control: public, max-age=31536000, immutable
    GET /static/js/app.js         -> the module, text/javascript, gzip, ETag, revalidated
    GET /static/../x              -> 404
"""
from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import html
import json
import logging
import mimetypes
import re
from pathlib import Path

import eventlet
from werkzeug.security import safe_join
from werkzeug.wrappers import Response

from gateway.http import http, json_response, session_token
from weintervene.config import settings

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

# Client-side routes of the app (see static/js/router.js); each also takes sub-paths.
SECTIONS = (
    "signin", "signout", "password", "reset", "reset-password", "privacy", "search", "services", "referrals",
    "lists", "students", "admin", "dashboard", "incoming", "operator", "audit", "account",
    "messages",
)

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
}


IMMUTABLE = "public, max-age=31536000, immutable"
COMPRESSIBLE = frozenset({".html", ".js", ".css", ".json", ".svg", ".txt"})
MIN_GZIP_BYTES = 512  # below this, gzip's header and a round of inflate cost more than they save
# How long the shell waits for identity before it goes without the boot data.
BOOT_TIMEOUT_SECONDS = 2.0
BOOT_MARKER = "<!-- wi:boot -->"
IMPORT = re.compile(r"""^\s*(?:import|export)\b[^"';]*?\bfrom\s*["'](\.{1,2}/[^"']+)["']|^\s*import\s*["'](\.{1,2}/[^"']+)["']""",
                    re.MULTILINE)


@functools.lru_cache(maxsize=1)
def release() -> str:
    """A short hash of every file under static/: the version prefix of this release."""
    digest = hashlib.sha256()
    for path in sorted(p for p in STATIC_DIR.rglob("*") if p.is_file()):
        digest.update(path.relative_to(STATIC_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return "v-" + digest.hexdigest()[:12]


def module_graph(entry: str = "js/app.js") -> list[str]:
    """Every module ``entry`` imports statically, directly or not (paths under static/), in
    discovery order. Dynamic ``import()`` (the pages) is left out: each page is fetched on use.

    Example: module_graph() -> ["js/dom.js", "js/api.js", "js/routes.js", "js/session.js", "js/policy.js"]
    """
    seen: list[str] = []
    queue = [entry]
    while queue:
        current = queue.pop(0)
        source = (STATIC_DIR / current).read_text(encoding="utf-8")
        for match in IMPORT.finditer(source):
            target = (Path(current).parent / (match.group(1) or match.group(2))).as_posix()
            target = Path(target).as_posix()
            parts: list[str] = []
            for part in target.split("/"):  # normalise "js/pages/../dom.js" -> "js/dom.js"
                if part == "..":
                    parts.pop()
                elif part != ".":
                    parts.append(part)
            target = "/".join(parts)
            if target != entry and target not in seen and (STATIC_DIR / target).is_file():
                seen.append(target)
                queue.append(target)
    return seen


ROUTE_LINE = re.compile(r'^\s*\{\s*path:\s*"([^"]+)",\s*page:\s*"([\w-]+)"(.*)\},?\s*$', re.MULTILINE)
ROLE_LIST = re.compile(r'^export const ([A-Z_]+) = \[([^\]]*)\];', re.MULTILINE)
ROLES = re.compile(r'\broles:\s*(\[[^\]]*\]|[A-Z_]+)')
PRELOAD = re.compile(r'\bpreload:\s*\[([^\]]*)\]')
STRING = re.compile(r'"([^"]*)"')
UUID_PATTERN = "[0-9a-fA-F-]{36}"
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@dataclasses.dataclass(frozen=True)
class PageRoute:
    """One client-side route of static/js/routes.js, as the shell needs it."""

    pattern: re.Pattern
    page: str
    public: bool
    roles: frozenset[str] | None  # None: every signed-in user
    preload: tuple[tuple[frozenset[str] | None, str], ...]  # (for these roles or all, URL template)

    def allows(self, role: str | None) -> bool:
        return self.public or (role is not None and (self.roles is None or role in self.roles))


def _roles(expression: str, lists: dict[str, list[str]]) -> frozenset[str]:
    """``ADMINS`` or ``[...SCHOOL, "district_admin"]`` (routes.js's role lists) -> the roles."""
    roles: set[str] = set()
    for part in expression.strip().strip("[]").split(","):
        part = part.strip()
        if part.startswith('"'):
            roles.add(part.strip('"'))
        elif part:
            roles.update(lists[part.lstrip(".")])
    return frozenset(roles)


def _preload(entry: str) -> tuple[frozenset[str] | None, str]:
    """"/api/v1/x" -> (None, "/api/v1/x"); "teacher,school_admin:/api/v1/x" -> ({...}, "/api/v1/x")."""
    if entry.startswith("/"):
        return None, entry
    roles, _, url = entry.partition(":")
    return frozenset(r.strip() for r in roles.split(",")), url


@functools.lru_cache(maxsize=1)
def page_routes() -> list[PageRoute]:
    """Every client-side route, read from static/js/routes.js (the app's one table of routes,
    one route a line) and matched the way its ``match()`` does.

    Example: page_routes()[0] -> PageRoute(pattern=re.compile("^/signin$"), page="signin", public=True, ...)
    """
    source = (STATIC_DIR / "js" / "routes.js").read_text(encoding="utf-8")
    lists = {name: STRING.findall(body) for name, body in ROLE_LIST.findall(source)}
    routes = []
    for path, page, rest in ROUTE_LINE.findall(source):
        pattern = re.sub(r":([a-z_]+)", rf"(?P<\1>{UUID_PATTERN})", re.escape(path).replace("\\:", ":"))
        roles = ROLES.search(rest)
        preload = PRELOAD.search(rest)
        routes.append(PageRoute(
            re.compile(f"^{pattern}$"), page, public="public: true" in rest,
            roles=_roles(roles.group(1), lists) if roles else None,
            preload=tuple(_preload(e) for e in STRING.findall(preload.group(1))) if preload else (),
        ))
    return routes


def route_for(path: str) -> tuple[PageRoute, dict] | None:
    """The route shown at ``path`` and its path values (None for no page: the app shows "not found")."""
    path = path.rstrip("/") if len(path) > 1 else path
    for route in page_routes():
        found = route.pattern.match(path)
        if found:
            return route, found.groupdict()
    return None


def page_for(path: str) -> str | None:
    """The page module shown at ``path`` (None for no page)."""
    found = route_for(path)
    return found[0].page if found else None


def preloads_for(path: str, me: dict | None) -> list[str]:
    """The API calls the page at ``path`` makes first for ``me`` (the signed-in user or None),
    as URLs: what the shell preloads. Nothing for a page ``me`` may not open (the app shows
    "access denied" or the sign-in page and asks for nothing). Path values are UUIDs (the
    route's pattern), tenant and user ids the server's own: nothing typed reaches a URL.

    Example: preloads_for("/admin/settings", {"role": "school_admin", "tenant_id": "f8ba…"})
    -> ["/api/v1/tenants/f8ba…"]
    """
    found = route_for(path)
    role = (me or {}).get("role")
    if found is None or not found[0].allows(role):
        return []
    route, values = found
    values = {**values, "tenant_id": (me or {}).get("tenant_id"), "user_id": (me or {}).get("user_id")}
    urls = []
    for roles, template in route.preload:
        if roles is not None and role not in roles:
            continue
        wanted = PLACEHOLDER.findall(template)
        if all(values.get(name) for name in wanted):
            urls.append(PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template))
    return urls


@functools.lru_cache(maxsize=64)
def shell_html(page: str | None = None) -> str:
    """index.html with versioned asset URLs and a modulepreload for every module the app
    starts with, and for ``page``'s module and what it imports."""
    text = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    versioned = f"/static/{release()}/"
    for attr in ('href="/static/', 'src="/static/'):
        text = text.replace(attr, attr.replace("/static/", versioned))
    modules = module_graph()
    if page is not None and (STATIC_DIR / "js" / "pages" / f"{page}.js").is_file():
        entry = f"js/pages/{page}.js"
        modules = modules + [m for m in [entry, *module_graph(entry)] if m not in modules and m != "js/app.js"]
    preloads = "".join(f'\n  <link rel="modulepreload" href="{versioned}{module}">' for module in modules)
    script = f'<script type="module" src="{versioned}js/app.js"></script>'
    return text.replace(script, script + preloads, 1)


def data_preloads(urls: list[str]) -> str:
    """``<link rel="preload" as="fetch">`` for each URL. ``crossorigin`` (anonymous: cookies go
    to our own origin) makes its mode and credentials those of the app's ``fetch``, so the
    browser hands the answer to that fetch instead of asking twice."""
    return "".join(f'<link rel="preload" as="fetch" href="{html.escape(url, quote=True)}" crossorigin="anonymous">\n  '
                   for url in urls)


class Asset:
    """One static file as served: its bytes, gzipped bytes (when worth it) and ETag."""

    def __init__(self, path: Path):
        self.raw = path.read_bytes()
        self.etag = hashlib.sha256(self.raw).hexdigest()[:20]
        self.gzipped = None
        if path.suffix in COMPRESSIBLE and len(self.raw) >= MIN_GZIP_BYTES:
            self.gzipped = gzip.compress(self.raw, compresslevel=9, mtime=0)


@functools.lru_cache(maxsize=256)
def _asset(path: Path, mtime_ns: int, size: int) -> Asset:
    return Asset(path)


def _content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _accepts_gzip(request) -> bool:
    return "gzip" in request.accept_encodings


def _send(request, path: Path, cache_control: str):
    stat = path.stat()
    asset = _asset(path, stat.st_mtime_ns, stat.st_size)
    zipped = asset.gzipped is not None and _accepts_gzip(request)
    response = Response(asset.gzipped if zipped else asset.raw, content_type=_content_type(path))
    if asset.gzipped is not None:
        response.vary.add("Accept-Encoding")
    if zipped:
        response.headers["Content-Encoding"] = "gzip"
    # A different representation, a different validator (RFC 9110 8.8.3).
    response.set_etag(asset.etag + ("-gz" if zipped else ""))
    response.headers["Cache-Control"] = cache_control
    return response.make_conditional(request.environ)


def dev_messages_mode() -> str | None:
    """Who the app offers "Messages sent" to: "demo" (every signed-in user: the demo's catcher
    runs), "operator" (development mode without it), None (not development mode: nobody).

    Example: dev_messages_mode() -> "demo" under ``make run``
    """
    from weintervene.catcher import CAUGHT_FILE

    cfg = settings()
    if not cfg.dev_mode:
        return None
    return "demo" if (Path(cfg.data_dir) / CAUGHT_FILE).exists() else "operator"


class WebAppRoutes:
    def _boot_data(self, request) -> dict | None:
        """What the app asks first on every page load, asked here instead (see the module's
        docstring): ``{"me": <GET /api/v1/me> or None, "notices": <GET /api/v1/notices>}``.
        None when identity does not answer: the app then asks the API itself."""
        # One RPC: identity authenticates the session (an ended one is a visitor, as
        # GET /api/v1/me would say with a 401) and reads the notices for that person.
        token, _from_cookie = session_token(request)
        try:
            with eventlet.Timeout(BOOT_TIMEOUT_SECONDS):
                return self.identity_rpc.web_boot(token)
        except (Exception, eventlet.Timeout) as exc:  # noqa: BLE001 - the page still loads without it
            log.warning("web app shell without boot data: %r", exc)
            return None

    def _shell(self, request):
        boot = self._boot_data(request)
        text = shell_html(page_for(request.path))
        dev_messages = dev_messages_mode()
        if dev_messages:
            # Development mode: the app offers "Messages sent" (gateway/routes/dev.py).
            meta = f'<meta name="wi-dev-messages" content="{dev_messages}">'
            text = text.replace(BOOT_MARKER, f"{meta}\n  {BOOT_MARKER}", 1)
        if boot is not None:
            payload = html.escape(json.dumps(boot, separators=(",", ":"), default=str), quote=True)
            # The page's first API calls go before the stylesheet: they start first.
            preloads = data_preloads(preloads_for(request.path, boot.get("me")))
            text = text.replace(BOOT_MARKER, f'<meta name="wi-boot" content="{payload}">\n  {preloads}'.rstrip(), 1)
        body = text.encode("utf-8")
        response = Response(body, content_type=CONTENT_TYPES[".html"])
        # It may name the signed-in user: kept by no cache, shared or private.
        response.headers["Cache-Control"] = "no-store"
        response.vary.add("Accept-Encoding")
        if _accepts_gzip(request):
            response.set_data(gzip.compress(body, compresslevel=6))
            response.headers["Content-Encoding"] = "gzip"
        return response

    @http("GET", "/")
    def webapp_home(self, request, **_):
        return self._shell(request)

    @http("GET", "/<any(" + ", ".join(f'"{s}"' for s in SECTIONS) + "):section>")
    def webapp_section(self, request, **_):
        return self._shell(request)

    @http("GET", "/<any(" + ", ".join(f'"{s}"' for s in SECTIONS) + "):section>/<path:rest>")
    def webapp_section_subpath(self, request, **_):
        return self._shell(request)

    @http("GET", "/static/<path:asset>")
    def webapp_static(self, request, asset, **_):
        """A file under gateway/static; anything outside it (``..``, absolute) is a 404."""
        cache_control = "no-cache"
        first, _, rest = asset.partition("/")
        if first.startswith("v-") and rest:
            if first != release():  # an old release's URL: the file may have changed since
                return json_response({"error": {"code": "not_found", "message": "No such release."}}, 404)
            asset, cache_control = rest, IMMUTABLE
        joined = safe_join(str(STATIC_DIR), asset)
        path = Path(joined).resolve() if joined is not None else None
        if path is None or not path.is_file() or STATIC_DIR not in path.parents:
            return json_response({"error": {"code": "not_found", "message": "No such file."}}, 404)
        return _send(request, path, cache_control)
