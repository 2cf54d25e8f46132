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
    assert r.headers["Cache-Control"] == "no-store"  # it may name the signed-in user
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


@pytest.fixture
def bootstrap_user(system):
    """A user with a password, made through identity's trusted bootstrap RPC."""
    from tests.support.signing import ClusterRpcClient  # signs the contexts it passes, as the gateway does

    from tests.support.infra import random_suffix

    def create(role: str, display_name: str = "Boot Tester") -> dict:
        email = f"boot.{random_suffix(8)}@webapp.example"
        password = "boot passphrase 2026 ok"
        with ClusterRpcClient(uri=system.settings.amqp_uri) as rpc:
            tenant = rpc.identity.bootstrap_user({"email": f"ops.{email}", "display_name": "Ops", "role": "operator",
                                                  "tenant_id": None}, password)
            op = {"user_id": tenant["id"], "tenant_id": tenant["tenant_id"], "role": "operator"}
            school = rpc.identity.create_tenant(op, {"kind": "school", "name": f"Boot School {random_suffix(4)}"})
            rpc.identity.bootstrap_user({"email": email, "display_name": display_name, "role": role,
                                         "tenant_id": school["id"]}, password)
        return {"email": email, "password": password}

    return create


def boot_data(text: str):
    import html
    import json

    found = re.search(r'<meta name="wi-boot" content="([^"]*)">', text)
    return json.loads(html.unescape(found.group(1))) if found else None


def test_the_shell_preloads_every_start_up_module(system):
    from gateway.routes.webapp import module_graph

    modules = module_graph()
    assert {"js/dom.js", "js/api.js", "js/routes.js", "js/session.js", "js/policy.js"} <= set(modules)
    assert not any(m.startswith("js/pages/") for m in modules)  # pages load on use
    shell = requests.get(system.url("/search"), timeout=10).text
    preloaded = re.findall(r'<link rel="modulepreload" href="/static/(v-[0-9a-f]{12})/(js/[\w/-]+\.js)">', shell)
    assert {m for _, m in preloaded} == set(modules) | {"js/pages/search.js", "js/page.js"}  # the app's, the page's
    assert {v for v, _ in preloaded} == {release()}
    for _, module in preloaded:
        assert requests.get(system.url(f"/static/{release()}/{module}"), timeout=10).status_code == 200


def test_the_shell_brings_the_signed_in_user_and_the_notices(system, bootstrap_user):
    notices = requests.get(system.url("/api/v1/notices"), timeout=10).json()
    anonymous = boot_data(requests.get(system.url("/search"), timeout=10).text)
    assert anonymous == {"me": None, "notices": notices}

    user = bootstrap_user("teacher")
    session = system.login(user["email"], user["password"])
    r = session.get(system.url("/referrals"), timeout=10)
    assert r.headers["Cache-Control"] == "no-store"
    boot = boot_data(r.text)
    assert boot["me"] == session.get(system.url("/api/v1/me"), timeout=10).json()
    assert boot["notices"] == session.get(system.url("/api/v1/notices"), timeout=10).json()
    assert boot["notices"]["acknowledged"] in (True, False)
    # An ended session is a visitor, exactly as GET /api/v1/me's 401 would say.
    session.delete(system.url("/api/v1/sessions/current"), timeout=10)
    assert boot_data(session.get(system.url("/referrals"), timeout=10).text)["me"] is None


def test_a_name_cannot_break_out_of_the_boot_attribute(system, bootstrap_user):
    user = bootstrap_user("teacher", display_name='Ann "><script>alert(1)</script> O\'Neil')
    session = system.login(user["email"], user["password"])
    text = session.get(system.url("/"), timeout=10).text
    assert "<script>alert(1)" not in text
    assert boot_data(text)["me"]["display_name"] == 'Ann "><script>alert(1)</script> O\'Neil'


@pytest.mark.parametrize("path", ["/static/js/app.js", f"/static/{{release}}/app.css", "/"])
def test_text_is_gzipped_for_clients_that_accept_it(system, path):
    import gzip as gz

    url = system.url(path.format(release=release()))
    plain = requests.get(url, headers={"Accept-Encoding": "identity"}, timeout=10)
    zipped = requests.get(url, headers={"Accept-Encoding": "gzip, deflate"}, stream=True, timeout=10)
    raw = zipped.raw.read(decode_content=False)
    assert plain.status_code == zipped.status_code == 200
    assert "Content-Encoding" not in plain.headers and zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"] and "Accept-Encoding" in plain.headers["Vary"]
    assert len(raw) < len(plain.content) / 2
    if path != "/":  # the shell differs per request only in its boot data; files are byte for byte the same
        assert gz.decompress(raw) == plain.content
        assert plain.headers["ETag"] != zipped.headers["ETag"]
        again = requests.get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]}, timeout=10)
        assert again.status_code == 304


def test_a_small_file_is_not_compressed(system):
    r = requests.get(system.url("/static/favicon.svg"), headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert r.status_code == 200 and "Content-Encoding" not in r.headers


@pytest.mark.parametrize("path, modules", [
    ("/operator/tenants", {"js/pages/tenants.js", "js/page.js"}),
    ("/services/2b1f7c1e-8a0b-4c39-9d7e-3b7a1f0c9e11", {"js/pages/service.js", "js/share.js", "js/students.js"}),
    ("/", {"js/pages/home.js"}),
])
def test_the_shell_also_preloads_the_page_of_its_path(system, path, modules):
    shell = requests.get(system.url(path), timeout=10).text
    preloaded = set(re.findall(r'<link rel="modulepreload" href="/static/v-[0-9a-f]{12}/(js/[\w/-]+\.js)">', shell))
    assert modules <= preloaded
    assert not any(m.startswith("js/pages/") and m not in modules for m in preloaded)  # only this page's


def test_every_client_route_names_an_existing_page_module():
    from gateway.routes.webapp import STATIC_DIR, page_routes

    routes = page_routes()
    source = (STATIC_DIR / "js" / "routes.js").read_text(encoding="utf-8")
    assert len(routes) == source.count("{ path:")  # the table was read whole
    assert len([r for r in routes if r.preload]) == source.count("preload: [")
    for route in routes:
        assert (STATIC_DIR / "js" / "pages" / f"{route.page}.js").is_file(), route.page
        for roles, url in route.preload:
            assert url.startswith("/api/v1/"), url
            assert roles is None or (route.roles is not None and roles <= route.roles), (route.page, roles)


def test_preloads_follow_the_role_the_user_and_the_path():
    from gateway.routes.webapp import preloads_for

    admin = {"role": "school_admin", "tenant_id": "T-1", "user_id": "U-1"}
    teacher = {**admin, "role": "teacher"}
    student = "2b1f7c1e-8a0b-4c39-9d7e-3b7a1f0c9e11"
    assert preloads_for("/admin/settings", admin) == ["/api/v1/tenants/T-1"]
    assert preloads_for("/admin/settings/", admin) == ["/api/v1/tenants/T-1"]
    assert preloads_for("/dashboard", admin) == ["/api/v1/analytics/dashboard?period=semester"]
    assert preloads_for("/referrals", teacher) == ["/api/v1/students?per_page=200&page=1", "/api/v1/referrals?scope=mine"]
    assert preloads_for("/referrals", admin) == ["/api/v1/students?per_page=200&page=1", "/api/v1/referrals?scope=school"]
    assert preloads_for(f"/students/{student}", admin) == [
        f"/api/v1/students/{student}/disclosures", "/api/v1/users?page=1", "/api/v1/inspection-requests",
        f"/api/v1/students/{student}"]
    assert preloads_for("/admin/users", {**admin, "role": "operator"}) == ["/api/v1/users?page=1", "/api/v1/tenants?page=1"]
    # Nothing for a page the user may not open, for a visitor, for no page at all.
    assert preloads_for("/dashboard", teacher) == []
    assert preloads_for("/audit", admin) == []
    assert preloads_for("/dashboard", None) == []
    assert preloads_for("/", admin) == []
    assert preloads_for("/nowhere", admin) == []


def test_the_signed_in_shell_preloads_the_pages_first_api_calls(system, bootstrap_user):
    user = bootstrap_user("school_admin")
    session = system.login(user["email"], user["password"])
    me = session.get(system.url("/api/v1/me"), timeout=10).json()
    text = session.get(system.url("/admin/settings"), timeout=10).text
    preloads = re.findall(r'<link rel="preload" as="fetch" href="([^"]+)" crossorigin="anonymous">', text)
    assert preloads == [f"/api/v1/tenants/{me['tenant_id']}"]
    assert text.index('rel="preload"') < text.index('rel="stylesheet"')  # asked first
    assert session.get(system.url(preloads[0]), timeout=10).status_code == 200
    assert 'as="fetch"' not in requests.get(system.url("/admin/settings"), timeout=10).text  # a visitor
    assert 'as="fetch"' not in session.get(system.url("/audit"), timeout=10).text  # not this role's page
