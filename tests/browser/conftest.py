"""Browser tests: the system runs in this (eventlet) process, Chromium in a driver subprocess.

``browser`` is one Chromium for the session; ``page`` gives each test a fresh
context (no cookies) and checks, after the test, that the page logged no CSP
violation or script error. Screenshots go to ``test-artifacts/browser/``.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.support.infra import ROOT, random_suffix

ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "correct horse battery staple 42"


# Chromium's words for a <link rel=preload> nobody used, or one a fetch could not take.
UNUSED_PRELOAD = re.compile(r"preloaded using link preload but not used|A preload for .* is found, but is not used")


class BrowserError(AssertionError):
    pass


class Browser:
    """The driver subprocess, spoken to one JSON line at a time."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.browser.driver"], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        ready = self._read()
        assert ready == "ready", ready

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise BrowserError(f"the browser driver exited ({self.proc.poll()})")
        reply = json.loads(line)
        if not reply["ok"]:
            raise BrowserError(reply["error"] + "\n" + reply.get("trace", ""))
        return reply["value"]

    def send(self, op: str, method: str | None = None, *args, **kwargs):
        self.proc.stdin.write(json.dumps({"op": op, "method": method, "args": list(args), "kwargs": kwargs}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        try:
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.flush()
            self.proc.wait(10)
        except Exception:
            self.proc.kill()


class Page:
    """Playwright's Page methods by name (``page.click("#x")``), plus app helpers."""

    def __init__(self, browser: Browser, base_url: str):
        self.browser = browser
        self.base_url = base_url

    def __getattr__(self, name):
        return lambda *args, **kwargs: self.browser.send("page", name, *args, **kwargs)

    def open(self, path: str):
        self.browser.send("page", "goto", self.base_url + path)
        self.browser.send("page", "wait_for_selector", "main h1")

    def go(self, path: str):
        """Navigate inside the app the way a user does (link click, no reload)."""
        self.browser.send("page", "evaluate", "p => { history.pushState(null, '', p); dispatchEvent(new PopStateEvent('popstate')); }", path)

    def heading(self) -> str:
        self.browser.send("page", "wait_for_selector", "main h1")
        return self.browser.send("page", "text_content", "main h1").strip()

    def wait_heading(self, text: str, timeout: int = 15000):
        self.browser.send("page", "wait_for_function",
                          "t => { const h = document.querySelector('main h1'); return h && h.textContent.includes(t); }",
                          arg=text, timeout=timeout)

    def path(self) -> str:
        return self.browser.send("page", "evaluate", "() => location.pathname + location.search")

    def sign_in(self, email: str, password: str = PASSWORD):
        if not self.path().startswith("/signin"):
            self.open("/signin")
        self.fill("input[name=email]", email)
        self.fill("input[name=password]", password)
        self.click("form button[type=submit]")
        self.wait_for_function("() => !location.pathname.startsWith('/signin')")
        self.wait_for_selector("#sign-out", state="attached")

    def banners_loaded(self):
        """Wait until the banners show what GET /api/v1/notices said (they never delay a page)."""
        self.browser.send("page", "wait_for_selector", "#banners[data-loaded=true]", state="attached")

    def dismiss_policy_banner(self):
        """Acknowledge the current policy if this user has not yet (acknowledgements are per
        user on the server, so a user seen by an earlier test has no banner any more)."""
        self.banners_loaded()
        if self.browser.send("page", "query_selector", "#policy-ack") is not None:
            self.browser.send("page", "click", "#policy-ack")
            self.browser.send("page", "wait_for_selector", ".banner-policy", state="detached")

    def console(self, clear: bool = False) -> list[dict]:
        return self.browser.send("console", clear=clear)

    def storage(self) -> dict:
        return self.browser.send("storage")

    def cookies(self) -> list[dict]:
        return self.browser.send("context", "cookies")

    def axe(self) -> list[dict]:
        return self.browser.send("axe")

    def shot(self, name: str):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.browser.send("page", "screenshot", path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def assert_accessible(self, name: str = ""):
        serious = [v for v in self.axe() if v["impact"] in ("serious", "critical")]
        assert not serious, f"axe on {name or self.path()}: {json.dumps(serious, indent=1)}"

    def assert_clean_console(self):
        """No CSP violation, no script error, no wasted preload. Chromium also logs every 4xx
        fetch as a console error ("Failed to load resource"); those are the API answering, not
        faults. A preload the page did not use (routes.js lists a URL the page does not fetch
        exactly so) is a warning from Chromium, and a fault here."""
        bad = [m for m in self.console() if m["type"] == "pageerror"
               or (m["type"] == "error" and not m["text"].startswith("Failed to load resource"))
               or UNUSED_PRELOAD.search(m["text"])]
        assert not bad, f"console errors (CSP violations, script errors, unused preloads): {bad}"

    def api_calls(self, prefix: str = "/api/") -> list[str]:
        """The API URLs this document fetched, in order (each once, even when preloaded)."""
        return self.browser.send("page", "evaluate",
                                 "p => performance.getEntriesByType('resource').map(r => r.name.replace(location.origin, ''))"
                                 ".filter(n => n.startsWith(p))", prefix)

    def settle(self):
        """Wait until the page's requests are done (async panels, lists)."""
        # wait_for_load_state() is about the document's first load: useless in a
        # single-page app. The app says what it is doing instead: <main aria-busy>
        # while a page renders, <html data-pending> while API calls are in flight.
        self.browser.send("page", "wait_for_function",
                          "() => document.documentElement.dataset.pending === '0'"
                          " && !document.querySelector('[aria-busy=true]')")


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is needed at /usr/bin/chromium: apt-get install -y chromium")
    b = Browser()
    yield b
    b.close()


@pytest.fixture
def page(browser, system):
    browser.send("new_context", viewport={"width": 1280, "height": 860})
    p = Page(browser, system.base_url)
    yield p
    p.assert_clean_console()


@pytest.fixture(scope="session")
def bootstrap(system):
    """Create users with passwords through identity's trusted bootstrap RPC."""
    from tests.support.signing import ClusterRpcClient  # signs the contexts it passes, as the gateway does

    def create(role: str, tenant_id: str | None, name: str) -> dict:
        email = f"{role}.{random_suffix(6)}@browser.example"
        with ClusterRpcClient(uri=system.settings.amqp_uri) as rpc:
            user = rpc.identity.bootstrap_user(
                {"email": email, "display_name": name, "role": role, "tenant_id": tenant_id}, PASSWORD)
        return {"email": email, "password": PASSWORD, **user}

    return create


@pytest.fixture(scope="session")
def people(system, bootstrap):
    """A district with a school, and one person of each role the browser tests use."""
    operator = bootstrap("operator", None, "Olivia Operator")
    ops = system.login(operator["email"], PASSWORD)
    district = ops.post(system.url("/api/v1/tenants"), json={"kind": "district", "name": f"Browser District {random_suffix(4)}"}).json()
    school = ops.post(system.url("/api/v1/tenants"), json={
        "kind": "school", "name": f"Lincoln Middle {random_suffix(4)}", "parent_id": district["id"],
        "postcode": "10001", "latitude": 40.75, "longitude": -73.99}).json()
    program = ops.post(system.url("/api/v1/tenants"), json={"kind": "program", "name": f"Youth Program {random_suffix(4)}"}).json()
    return {
        "district": district, "school": school, "program": program,
        "operator": operator,
        "teacher": bootstrap("teacher", school["id"], "Ms Rivera"),
        "school_admin": bootstrap("school_admin", school["id"], "Sam Admin"),
        "district_admin": bootstrap("district_admin", district["id"], "Dana District"),
        "program_staff": bootstrap("program_staff", program["id"], "Pat Program"),
        "program_admin": bootstrap("program_admin", program["id"], "Priya Program"),
        "auditor": bootstrap("auditor", None, "Avery Auditor"),
    }


ROUTING_404 = "The requested URL was not found"


def endpoint_exists(system, method: str, path: str) -> bool:
    """Does the running gateway route ``method path``? Probed with OPTIONS, which no
    route declares: 405 means the path is routed (for some method), a routing 404
    means it is not. No handler runs, so the probe changes nothing."""
    r = requests.options(system.url(path), timeout=30)
    if r.status_code == 404 and ROUTING_404 in r.text:
        return False
    allowed = r.headers.get("Allow", "")
    return not allowed or method in allowed


def require_endpoints(system, *endpoints: tuple[str, str]) -> None:
    """Fail the calling test at once, with a clear reason, when an endpoint it drives is not
    routed on the running system (rather than timing out somewhere in the page)."""
    missing = [f"{m} {p}" for m, p in endpoints if not endpoint_exists(system, m, p)]
    assert not missing, "endpoints not routed: " + ", ".join(missing)
