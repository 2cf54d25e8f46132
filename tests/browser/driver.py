"""Headless Chromium, driven by Playwright in a process of its own.

The test process is eventlet-monkey-patched (nameko), and Playwright's sync API
runs its own event loop on greenlets: the two must not share a process. So the
tests talk to this script over stdin/stdout, one JSON command per line:

    {"op": "page", "method": "goto", "args": ["http://127.0.0.1:8123/"], "kwargs": {}}
    -> {"ok": true, "value": null}

``op`` is ``page`` (any ``Page`` method that takes selectors), ``context``
(cookies, clear_cookies...) or one of the helpers below (``console``,
``storage``, ``axe``, ``new_context``). Run: ``python -m tests.browser.driver``.
"""
from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
AXE = Path(__file__).with_name("vendor") / "axe.min.js"


class Driver:
    def __init__(self, playwright):
        self.browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        self.context = None
        self.page = None
        self.console: list[dict] = []
        self.sent: list[dict] = []
        self.new_context({})

    def new_context(self, options: dict):
        if self.context is not None:
            self.context.close()
        self.console = []
        self.context = self.browser.new_context(**options)
        self.context.set_default_timeout(15000)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.console.append({"type": m.type, "text": m.text}))
        self.page.on("pageerror", lambda e: self.console.append({"type": "pageerror", "text": str(e)}))
        return None

    def handle(self, command: dict):
        op = command["op"]
        args = command.get("args", [])
        kwargs = command.get("kwargs", {})
        if op == "page":
            return getattr(self.page, command["method"])(*args, **kwargs)
        if op == "context":
            return getattr(self.context, command["method"])(*args, **kwargs)
        if op == "new_context":
            return self.new_context(kwargs)
        if op == "console":
            messages, self.console = self.console, [] if kwargs.get("clear") else self.console
            return messages
        if op == "storage":
            return self.page.evaluate(
                "() => ({local: Object.assign({}, localStorage), session: Object.assign({}, sessionStorage),"
                " url: location.href, history: history.length})"
            )
        if op == "lose_next_answer":
            return self.lose_next_answer(kwargs["url"], kwargs.get("method", "POST"))
        if op == "sent":
            return self.sent
        if op == "axe":
            # evaluate() runs through the DevTools protocol, which the page's CSP does
            # not govern; injecting a <script> would (rightly) be blocked.
            if not self.page.evaluate("() => typeof window.axe !== 'undefined'"):
                self.page.evaluate(AXE.read_text(encoding="utf-8"))
            return self.page.evaluate(
                "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
                " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
                " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})); }"
            )
        raise ValueError(f"unknown op {op!r}")


    def lose_next_answer(self, url: str, method: str):
        """The next ``method`` request to ``url`` reaches the server, but its answer is lost
        on the way back (the connection resets): the page sees a network error. Every such
        request's headers are kept for ``sent``."""
        self.sent = []

        def handle(route):
            if route.request.method != method:
                return route.continue_()
            self.sent.append(route.request.headers)
            if len(self.sent) > 1:
                return route.continue_()
            route.fetch()  # the server answers…
            route.abort("connectionreset")  # …and the page never hears it

        self.page.route(url, handle)


def _jsonable(value):
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, bytes):
        return None
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)


def main() -> None:
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing but replies on the protocol stream
    with sync_playwright() as playwright:
        driver = Driver(playwright)
        out.write(json.dumps({"ok": True, "value": "ready"}) + "\n")
        out.flush()
        for line in sys.stdin:
            if not line.strip():
                continue
            command = json.loads(line)
            if command.get("op") == "quit":
                break
            try:
                reply = {"ok": True, "value": _jsonable(driver.handle(command))}
            except Exception as exc:  # noqa: BLE001 - reported to the test, which fails
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc(limit=3)}
            out.write(json.dumps(reply) + "\n")
            out.flush()
        driver.browser.close()


if __name__ == "__main__":
    main()
