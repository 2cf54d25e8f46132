"""Sign-in cost: argon2id hash and verify per core (median ms, sign-ins/s per core).

Runs in this process on one core with the parameters identity uses
(services.identity.passwords.HASHER); the baseline in the same run is the
SHA-256 of a session token, which is what every authenticated request costs.

    python -m bench login [--rounds 50]
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
    args = parser.parse_args(argv)

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
