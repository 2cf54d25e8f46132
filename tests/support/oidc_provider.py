"""A real OpenID provider for the tests: panva's ``oidc-provider`` (npm, pinned with its lock
file in ``tests/support/oidc/``) run by the machine's Node.js on a loopback port the OS picks.

``npm ci`` installs it on first use (npm's cache in the system's temp folder, never the
user's home). The provider is real: discovery, the authorization endpoint with its own
login and consent pages, PKCE, the token endpoint, the JWKS. A test also drives it through
its ``/__test/`` control paths (``provider.mjs``): register clients and accounts, rotate the
signing keys, have the next ID token re-signed wrongly (a wrong audience, expired, a key not
the provider's).

Example::

    with OidcProvider() as provider:
        provider.set_clients([{"client_id": "wi", "client_secret": "s", "redirect_uris": [callback]}])
        provider.set_account("ana", email="ana@lincoln.example", email_verified=True)
        location = provider.sign_in(authorization_url, "ana")   # -> callback?code=…&state=…
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import threading
from html import unescape
from pathlib import Path
from urllib.parse import urljoin

import requests

HERE = Path(__file__).parent / "oidc"


def node_available() -> bool:
    return shutil.which("node") is not None and shutil.which("npm") is not None


def install() -> None:
    """``npm ci`` once (the lock file decides every version); quick when already installed."""
    marker = HERE / "node_modules" / ".package-lock.json"
    if marker.exists() and marker.stat().st_mtime >= (HERE / "package-lock.json").stat().st_mtime:
        return
    cache = Path(tempfile.gettempdir()) / "weintervene-npm-cache"
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--cache", str(cache)], cwd=HERE, check=True,
                   stdout=subprocess.DEVNULL, timeout=300)


class OidcProvider:
    def __init__(self):
        install()
        self.process = subprocess.Popen(["node", str(HERE / "provider.mjs")], cwd=HERE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.issuer = None
        for line in self.process.stdout:  # warnings first, then {"issuer": …}
            if line.startswith('{"issuer"'):
                self.issuer = json.loads(line)["issuer"]
                break
        if self.issuer is None:
            raise RuntimeError(f"oidc-provider did not start: {self.process.stderr.read()[:2000]}")
        # Keep reading its output so a full pipe never blocks it.
        for stream in (self.process.stdout, self.process.stderr):
            threading.Thread(target=stream.read, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def _control(self, method: str, path: str, body=None) -> dict:
        response = requests.request(method, f"{self.issuer}/__test/{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def set_clients(self, clients: list[dict]) -> None:
        self._control("PUT", "clients", clients)

    def set_account(self, account_id: str, **claims) -> None:
        self._control("PUT", f"accounts/{account_id}", claims)

    def rotate_keys(self) -> list[str]:
        return self._control("POST", "rotate-keys")["kids"]

    def tamper_next(self, how: str) -> None:
        self._control("POST", "tamper-next", {"how": how})

    def stats(self) -> dict:
        return self._control("GET", "stats")

    def sign_in(self, authorization_url: str, account_id: str, session: requests.Session | None = None) -> str:
        """Through the provider's own login and consent forms, as a browser would; returns
        the address it finally redirects to (the relying party's callback with code and state)."""
        session = session or requests.Session()
        url = authorization_url
        for _ in range(12):
            response = session.get(url, allow_redirects=False, timeout=10)
            while response.is_redirect:
                url = urljoin(url, response.headers["Location"])
                if not url.startswith(self.issuer):
                    return url
                response = session.get(url, allow_redirects=False, timeout=10)
            form = re.search(r'<form[^>]*action="([^"]+)"[^>]*method="post"', response.text)
            if not form:
                raise AssertionError(f"no form on the provider's page: {response.status_code} {response.text[:500]}")
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', response.text))
            if 'name="login"' in response.text:
                fields.update(login=account_id, password="any password")
            response = session.post(urljoin(url, unescape(form.group(1))), data=fields, allow_redirects=False,
                                    timeout=10)
            url = urljoin(url, response.headers["Location"])
            if not url.startswith(self.issuer):
                return url
        raise AssertionError("the provider never redirected back")


