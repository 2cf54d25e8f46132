"""The web app: one HTML shell for every client-side page, and its static assets.

The single-page app in ``gateway/static`` talks to the same public JSON API as
everyone else; these routes only hand out files. Client-side paths (``/search``,
``/referrals/<id>``...) all answer with ``index.html`` so that a reload or a
bookmark lands on the right page. Unknown paths stay JSON 404s (the API's
contract), so only the sections below are served as the shell.

Example::

    GET /search            -> index.html (no-cache)
    GET /static/js/app.js  -> the module, text/javascript, ETag, revalidated
    GET /static/../x       -> 404
"""
from __future__ import annotations

import mimetypes
from pathlib import Path

from werkzeug.security import safe_join
from werkzeug.utils import send_file

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


def _send(request, path: Path, cache_control: str):
    mimetype = CONTENT_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    response = send_file(path, request.environ, mimetype=mimetype, conditional=True, etag=True, max_age=None)
    # Assets have no fingerprint in their names (no build step): let the browser keep
    # them but revalidate with the ETag each time, which costs a 304 and no body.
    response.headers["Cache-Control"] = cache_control
    return response


def _shell(request):
    return _send(request, STATIC_DIR / "index.html", "no-cache")


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
        joined = safe_join(str(STATIC_DIR), asset)
        path = Path(joined).resolve() if joined is not None else None
        if path is None or not path.is_file() or STATIC_DIR not in path.parents:
            return json_response({"error": {"code": "not_found", "message": "No such file."}}, 404)
        return _send(request, path, "no-cache")
