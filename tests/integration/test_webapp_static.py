"""The gateway serves the web app: the HTML shell on client-side routes, assets
with the right types and revalidation, and nothing outside gateway/static."""
import re

import pytest
import requests

from gateway.routes.webapp import release

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("path", ["/", "/search", "/services/2b1f7c1e-8a0b-4c39-9d7e-3b7a1f0c9e11", "/admin/roster", "/audit", "/reset"])
def test_client_routes_return_the_shell(system, path):
    r = requests.get(system.url(path), timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert re.search(r'<script type="module" src="/static/v-[0-9a-f]{12}/js/app\.js"></script>', r.text)
    assert r.headers["Cache-Control"] == "no-cache"
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]


@pytest.mark.parametrize("path, content_type", [
    ("/static/js/app.js", "text/javascript"),
    ("/static/js/pages/search.js", "text/javascript"),
    ("/static/app.css", "text/css"),
    ("/static/js/policy.js", "text/javascript"),
    ("/static/favicon.svg", "image/svg+xml"),
])
def test_assets_have_types_and_revalidate(system, path, content_type):
    r = requests.get(system.url(path), timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith(content_type)
    assert r.headers["Cache-Control"] == "no-cache"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    etag = r.headers["ETag"]
    again = requests.get(system.url(path), headers={"If-None-Match": etag}, timeout=10)
    assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize("path", [
    "/static/../routes/webapp.py",
    "/static/%2e%2e/routes/webapp.py",
    "/static/js/..%2f..%2fhttp.py",
    "/static/%2fetc%2fpasswd",
    "/static//etc/passwd",
    "/static/js",
    "/static/nothing.js",
])
def test_no_file_outside_static_is_served(system, path):
    r = requests.get(system.url(path), timeout=10, allow_redirects=False)
    if r.status_code == 308:  # werkzeug merges "//" first; the target stays under /static/
        target = r.json()["error"]["message"]
        assert target.startswith(system.url("/static/")), target
        r = requests.get(target, timeout=10)
    assert r.status_code == 404, (path, r.status_code, r.text[:200])
    assert "import" not in r.text and "root:" not in r.text


def test_unknown_paths_stay_json_404s(system):
    for path in ("/api/v1/nothing-here", "/nothing", "/searching"):
        r = requests.get(system.url(path), timeout=10)
        assert r.status_code == 404
        assert r.headers["Content-Type"].startswith("application/json")


def test_a_release_is_cached_for_good_under_its_own_prefix(system):
    shell = requests.get(system.url("/"), timeout=10).text
    css = re.search(r'href="(/static/v-[0-9a-f]{12}/app\.css)"', shell).group(1)
    assert css == f"/static/{release()}/app.css"
    r = requests.get(system.url(css), timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/css")
    assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    module = requests.get(system.url(f"/static/{release()}/js/pages/search.js"), timeout=10)
    assert module.status_code == 200 and "import" in module.text
    assert requests.get(system.url("/static/v-000000000000/app.css"), timeout=10).status_code == 404
    assert requests.get(system.url(f"/static/{release()}/../routes/webapp.py"), timeout=10).status_code == 404
