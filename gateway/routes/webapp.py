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
still work, revalidated each time (``no-cache`` + ETag).

Example::

    GET /search                   -> index.html (no-cache), assets under /static/v-3f2a.../
    GET /static/v-3f2a.../app.css -> the file, Cache-Control: public, max-age=31536000, immutable
    GET /static/js/app.js         -> the module, text/javascript, ETag, revalidated
    GET /static/../x              -> 404
"""
from __future__ import annotations

import functools
import hashlib
import mimetypes
from pathlib import Path

from werkzeug.security import safe_join
from werkzeug.utils import send_file
from werkzeug.wrappers import Response

from gateway.http import http, json_response

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

# Client-side routes of the app (see static/js/router.js); each also takes sub-paths.
SECTIONS = (
    "signin", "signout", "password", "reset", "reset-password", "privacy", "search", "services", "referrals",
    "lists", "students", "admin", "dashboard", "incoming", "operator", "audit", "account",
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


@functools.lru_cache(maxsize=1)
def release() -> str:
    """A short hash of every file under static/: the version prefix of this release."""
    digest = hashlib.sha256()
    for path in sorted(p for p in STATIC_DIR.rglob("*") if p.is_file()):
        digest.update(path.relative_to(STATIC_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return "v-" + digest.hexdigest()[:12]


@functools.lru_cache(maxsize=1)
def shell_html() -> bytes:
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    versioned = f"/static/{release()}/"
    for attr in ('href="/static/', 'src="/static/'):
        html = html.replace(attr, attr.replace("/static/", versioned))
    return html.encode("utf-8")


def _send(request, path: Path, cache_control: str):
    mimetype = CONTENT_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    response = send_file(path, request.environ, mimetype=mimetype, conditional=True, etag=True, max_age=None)
    response.headers["Cache-Control"] = cache_control
    return response


def _shell(request):
    response = Response(shell_html(), mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    return response


class WebAppRoutes:
    @http("GET", "/")
    def webapp_home(self, request, **_):
        return _shell(request)

    @http("GET", "/<any(" + ", ".join(f'"{s}"' for s in SECTIONS) + "):section>")
    def webapp_section(self, request, **_):
        return _shell(request)

    @http("GET", "/<any(" + ", ".join(f'"{s}"' for s in SECTIONS) + "):section>/<path:rest>")
    def webapp_section_subpath(self, request, **_):
        return _shell(request)

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
