"""A load client in its own process (plain threads, no eventlet), so it does not share a
core's event loop with the services it measures.

``python -m bench.http_load --url URL --token T --body FILE.json --n 2000 --concurrency 16``
prints ``{"latencies": [...], "statuses": {...}, "wall_seconds": ...}`` as JSON.

Closed loop by default: ``concurrency`` clients, each sending its next request when the
last one is answered. With ``--rate R``: open loop, request ``i`` is due at ``i / R``
seconds, whatever happened to the others (``concurrency`` threads send them), and its
latency counts from when it was due, so a slow answer also charges the requests queued
behind it (no "coordinated omission").
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import threading
import time
import uuid
from urllib.parse import urlsplit


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--method", default="POST")
    parser.add_argument("--body", default=None, help="JSON file with a list of bodies, used round-robin")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=0.0, help="open loop: requests per second offered")
    parser.add_argument("--idempotency-keys", action="store_true",
                        help="send a fresh Idempotency-Key with each request, as the web app does")
    args = parser.parse_args()
    bodies = json.load(open(args.body)) if args.body else [None]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    counter = iter(range(args.n))
    start_at = [0.0]

    target = urlsplit(args.url)
    path = target.path + (f"?{target.query}" if target.query else "")
    encoded = [None if b is None else json.dumps(b).encode() for b in bodies]

    def worker():
        # http.client, one kept-alive connection per thread: the load client shares the
        # 2 cores with what it measures, and requests' machinery cost it twice the CPU.
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        headers = {"Authorization": f"Bearer {args.token}", "Content-Type": "application/json"}
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            started = time.perf_counter()
            if args.rate:
                due = start_at[0] + i / args.rate
                if due > started:
                    time.sleep(due - started)
                started = due
            if args.idempotency_keys:
                headers["Idempotency-Key"] = str(uuid.uuid4())
            try:
                conn.request(args.method, path, body=encoded[i % len(encoded)], headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()  # reconnects on the next request
                status = 0
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    cpu_before = os.times()
    started = start_at[0] = time.perf_counter()
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
