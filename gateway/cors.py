"""CORS for the public HSDS API (``/hsds/``): read-only methods, no credentials.

A county partner's web app on another origin may read the directory from the browser:
``GET``/``HEAD`` answers carry ``Access-Control-Allow-Origin: *`` and a preflight
(``OPTIONS`` with ``Access-Control-Request-Method``) for ``GET``/``HEAD`` is answered 204.
Never ``Access-Control-Allow-Credentials``: with ``*`` a browser sends no cookie, so a
cross-origin page only ever reads what an anonymous caller reads (global services).
A preflight for any other method (``POST``, ``PUT``, ``DELETE``…) is refused (403,
without the allow headers), so no write — nor the POST search, which carries a JSON
body — is made cross-origin; other paths (``/api/``) get no CORS headers at all.

Example::

    OPTIONS /hsds/services  Origin: https://partner.example  Access-Control-Request-Method: GET
    -> 204  Access-Control-Allow-Origin: *  Access-Control-Allow-Methods: GET, HEAD, OPTIONS
"""
from __future__ import annotations

import json

from werkzeug.wrappers import Request, Response

CORS_PREFIX = "/hsds/"
ALLOWED_METHODS = ("GET", "HEAD", "OPTIONS")
ALLOWED_HEADERS = "Accept, Accept-Language, Content-Language"
MAX_AGE_SECONDS = "600"


def applies(request: Request) -> bool:
    return request.path.startswith(CORS_PREFIX) or request.path == CORS_PREFIX.rstrip("/")


def preflight(request: Request) -> Response | None:
    """The answer to a CORS preflight on ``/hsds/``, or None when the request is not one."""
    if request.method != "OPTIONS" or not applies(request) or "Origin" not in request.headers:
        return None
    asked = request.headers.get("Access-Control-Request-Method", "").upper()
    if asked not in ALLOWED_METHODS:
        body = {"error": {"code": "cors_method_refused",
                          "message": "The HSDS API answers cross-origin GET, HEAD and OPTIONS only."}}
        return Response(json.dumps(body), status=403, mimetype="application/json")
    response = Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = ", ".join(ALLOWED_METHODS)
    response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response.headers["Access-Control-Max-Age"] = MAX_AGE_SECONDS
    return allow(request, response)


def allow(request: Request, response: Response) -> Response:
    """Mark a read-only ``/hsds/`` answer readable by any origin (no credentials)."""
    if applies(request) and request.method in ALLOWED_METHODS:
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers.add("Vary", "Origin")
    return response
