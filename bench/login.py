"""Sign-in cost: argon2id hash and verify per core (median ms, sign-ins/s per core).

Runs in this process on one core with the parameters identity uses
(services.identity.passwords.HASHER); the baseline in the same run is the
SHA-256 of a session token, which is what every authenticated request costs.

``--round-trip N``: the whole sign-in over HTTP, N of each, interleaved in blocks in the
same run: a password sign-in (``POST /api/v1/sessions``) against a single sign-on round trip
through a real OpenID provider (tests/support/oidc: start, the provider's login and consent
forms, the callback with its token exchange and ID token checks). Identity and the gateway
run in one server process (``bench.servers system``, in development mode so the provider may
be on http://127.0.0.1); wall ms per sign-in, and CPU ms per sign-in of our server process
and of the provider's.

    python -m bench login [--rounds 50] [--round-trip 40]
"""
from __future__ import annotations

import argparse
import hashlib
import secrets
import time

from bench.support import print_table, summary


def timed(fn, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench login", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--round-trip", type=int, default=0, metavar="N",
                        help="also N password and N single sign-on sign-ins over HTTP, interleaved")
    parser.add_argument("--block", type=int, default=5, help="sign-ins per alternating block")
    args = parser.parse_args(argv)
    if args.round_trip:
        round_trip(args.round_trip, args.block)

    from services.identity.passwords import HASHER, verify_password

    password = "a typical passphrase 2026"
    stored = HASHER.hash(password)
    token = secrets.token_urlsafe(32)
    timed(lambda: HASHER.verify(stored, password), 3)  # warm-up
    rows = {
        "sha256(session token)": summary(timed(lambda: hashlib.sha256(token.encode()).hexdigest(), args.rounds * 20)),
        "argon2id hash": summary(timed(lambda: HASHER.hash(password), args.rounds)),
        "argon2id verify (sign-in)": summary(timed(lambda: verify_password(stored, password), args.rounds)),
        "argon2id verify (wrong pw)": summary(timed(lambda: verify_password(stored, "wrong guess"), args.rounds)),
    }
    print(f"\nbench login: argon2id t={HASHER.time_cost}, m={HASHER.memory_cost} KiB, p={HASHER.parallelism}; "
          f"{args.rounds} rounds, one core")
    print_table(rows)
    verify = rows["argon2id verify (sign-in)"]["median"]
    print(f"\nsign-ins per second per core: {1000 / verify:.1f}")
    print(f"argon2id verify / sha256 token check: {verify / rows['sha256(session token)']['median']:.0f}x")
    return 0


def round_trip(n: int, block: int) -> None:
    """Password sign-in against single sign-on, over HTTP, interleaved (see the module's doc)."""
    import tempfile

    import requests
    from nameko.standalone.rpc import ClusterRpcClient

    from bench.support import ServerProcess, Vhost, cpu_seconds, free_port
    from tests.support.oidc_provider import OidcProvider

    vhost = Vhost()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"AMQP_URI": vhost.uri, "WEINTERVENE_DATA_DIR": tempfile.mkdtemp(prefix="wi-bench-sso-"),
           "WEINTERVENE_GATEWAY_ADDRESS": f"127.0.0.1:{port}", "WEINTERVENE_DEV_MODE": "1"}
    system = provider = None
    try:
        system = ServerProcess("system", env)
        provider = OidcProvider()
        provider.set_clients([{"client_id": "bench", "client_secret": "bench-secret",
                               "redirect_uris": [f"{base}/api/v1/sso/callback"]}])
        operator = requests.Session()
        operator.headers["Authorization"] = f"Bearer {system.info}"
        district = operator.post(f"{base}/api/v1/tenants", json={"kind": "district", "name": "Bench District"}).json()
        school = operator.post(f"{base}/api/v1/tenants", json={"kind": "school", "name": "Bench School",
                                                               "parent_id": district["id"]}).json()
        password = "bench passphrase 2026"
        with ClusterRpcClient(uri=vhost.uri) as rpc:
            for email, role, tenant in (("admin@bench-district.example", "district_admin", district),
                                        ("teacher@bench-district.example", "teacher", school)):
                rpc.identity.bootstrap_user({"email": email, "display_name": role, "role": role,
                                             "tenant_id": tenant["id"]}, password)
        admin = requests.post(f"{base}/api/v1/sessions", json={"email": "admin@bench-district.example",
                                                               "password": password}).json()["token"]
        configured = requests.put(f"{base}/api/v1/tenants/{district['id']}/sso", headers={"Authorization": f"Bearer {admin}"},
                                  json={"preset": "generic", "issuer_url": provider.issuer, "client_id": "bench",
                                        "client_secret": "bench-secret", "allowed_domains": ["bench-district.example"]})
        configured.raise_for_status()
        provider.set_account("teacher", email="teacher@bench-district.example", email_verified=True)

        def by_password():
            r = requests.post(f"{base}/api/v1/sessions", json={"email": "teacher@bench-district.example",
                                                               "password": password}, timeout=30)
            assert r.status_code == 201, r.text

        def by_sso():
            start = requests.get(f"{base}/api/v1/sso/{district['id']}/start", allow_redirects=False, timeout=30)
            back = provider.sign_in(start.headers["Location"], "teacher")
            r = requests.get(back, headers={"Cookie": f"wi_sso_flow={start.cookies['wi_sso_flow']}"},
                             allow_redirects=False, timeout=30)
            assert r.status_code == 200 and "wi_session" in r.cookies, r.text[:300]

        kinds = {"password sign-in": by_password, "single sign-on round trip": by_sso}
        for fn in kinds.values():  # warm-up: discovery, JWKS, connections
            fn()
            fn()
        wall = {k: [] for k in kinds}
        ours = {k: 0.0 for k in kinds}
        theirs = {k: 0.0 for k in kinds}
        done = 0
        while done < n:
            for name, fn in kinds.items():
                for _ in range(min(block, n - done)):
                    cpu0, prov0 = cpu_seconds(system.proc.pid), cpu_seconds(provider.process.pid)
                    started = time.perf_counter()
                    fn()
                    wall[name].append((time.perf_counter() - started) * 1000)
                    ours[name] += cpu_seconds(system.proc.pid) - cpu0
                    theirs[name] += cpu_seconds(provider.process.pid) - prov0
            done += min(block, n - done)
        rows = {name: summary(times) for name, times in wall.items()}
        print(f"\nbench login --round-trip {n}: over HTTP, interleaved in blocks of {block}")
        print_table(rows)
        for name in kinds:
            print(f"{name}: our server CPU {ours[name] / n * 1000:.1f} ms/sign-in, "
                  f"provider CPU {theirs[name] / n * 1000:.1f} ms/sign-in")
        sso, pw = rows["single sign-on round trip"]["median"], rows["password sign-in"]["median"]
        print(f"single sign-on / password, median wall: {sso / pw:.2f}x; our CPU: "
              f"{ours['single sign-on round trip'] / max(ours['password sign-in'], 1e-9):.2f}x")
    finally:
        if provider is not None:
            provider.stop()
        if system is not None:
            system.stop()
        vhost.delete()
