"""A load client in its own process (plain threads, no eventlet), so it does not share a
core's event loop with the services it measures.

``python -m bench.http_load --url URL --token T --body FILE.json --n 2000 --concurrency 16``
prints ``{"latencies": [...], "statuses": {...}, "wall_seconds": ...}`` as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

import requests


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--method", default="POST")
    parser.add_argument("--body", default=None, help="JSON file with a list of bodies, used round-robin")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    bodies = json.load(open(args.body)) if args.body else [None]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    counter = iter(range(args.n))

    def worker():
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {args.token}"
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            body = bodies[i % len(bodies)]
            started = time.perf_counter()
            r = session.request(args.method, args.url, json=body, timeout=60)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    cpu_before = os.times()
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu_after = os.times()
    # The client's own CPU: on a 2-core machine it competes with the services it loads.
    cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    json.dump({"latencies": latencies, "statuses": statuses, "wall_seconds": time.perf_counter() - started,
               "cpu_seconds": cpu}, sys.stdout)


if __name__ == "__main__":
    main()
