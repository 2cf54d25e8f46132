"""Authenticated gateway GET (/api/v1/me) vs a bare nameko HTTP->RPC echo, same run.

Both run in their own processes against a RabbitMQ vhost of this run; identity
uses SQLite in a temporary folder (the embedded default) unless
``--database-url-template`` names PostgreSQL. After a warm-up, requests are
sent one at a time over a keep-alive connection, alternating blocks between the
two targets so drift hits both alike. Target: median ratio <= 1.3.

    python -m bench gateway [--requests 2000] [--warmup 200] [--block 100]
        [--database-url-template postgresql+psycopg2://postgres@127.0.0.1:5432/wi_bench_{service}]
"""
from __future__ import annotations

import argparse
import tempfile
import time

import requests

from bench.support import ServerProcess, Vhost, cpu_seconds, free_port, print_table, summary

TARGET_RATIO = 1.3


def timed_gets(session: requests.Session, url: str, n: int, headers: dict | None = None) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        r = session.get(url, headers=headers, timeout=30)
        elapsed = (time.perf_counter() - started) * 1000
        if r.status_code != 200:
            raise RuntimeError(f"{url} answered {r.status_code}: {r.text[:200]}")
        times.append(elapsed)
    return times


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per target")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--block", type=int, default=100, help="requests per alternating block")
    parser.add_argument("--database-url-template", default="")
    args = parser.parse_args(argv)

    vhost = Vhost()
    data_dir = tempfile.mkdtemp(prefix="wi-bench-")
    gateway_port, echo_port = free_port(), free_port()
    env = {"AMQP_URI": vhost.uri, "WEINTERVENE_DATA_DIR": data_dir,
           "WEINTERVENE_GATEWAY_ADDRESS": f"127.0.0.1:{gateway_port}"}
    if args.database_url_template:
        env["WEINTERVENE_DATABASE_URL_TEMPLATE"] = args.database_url_template
    servers = []
    try:
        system = ServerProcess("system", env)
        servers.append(system)
        echo_server = ServerProcess("echo", env, "--port", str(echo_port))
        servers.append(echo_server)
        token = system.info
        gateway_url = f"http://127.0.0.1:{gateway_port}/api/v1/me"
        echo_url = f"http://127.0.0.1:{echo_port}/echo"
        auth = {"Authorization": f"Bearer {token}"}
        gw, echo = requests.Session(), requests.Session()
        timed_gets(gw, gateway_url, args.warmup, auth)
        timed_gets(echo, echo_url, args.warmup)
        gw_times, echo_times = [], []
        gw_cpu = echo_cpu = 0.0
        while len(gw_times) < args.requests:
            n = min(args.block, args.requests - len(gw_times))
            before = cpu_seconds(echo_server.proc.pid)
            echo_times += timed_gets(echo, echo_url, n)
            echo_cpu += cpu_seconds(echo_server.proc.pid) - before
            before = cpu_seconds(system.proc.pid)
            gw_times += timed_gets(gw, gateway_url, n, auth)
            gw_cpu += cpu_seconds(system.proc.pid) - before
        rows = {"bare HTTP->RPC echo": summary(echo_times), "gateway GET /api/v1/me": summary(gw_times)}
        print(f"\nbench gateway: {args.requests} sequential requests each after {args.warmup} warm-up "
              f"(identity on {'PostgreSQL' if args.database_url_template else 'SQLite'})")
        print_table(rows)
        ratio = rows["gateway GET /api/v1/me"]["median"] / rows["bare HTTP->RPC echo"]["median"]
        ratio99 = rows["gateway GET /api/v1/me"]["p99"] / rows["bare HTTP->RPC echo"]["p99"]
        print(f"\nratio of medians {ratio:.2f}  (target <= {TARGET_RATIO}: {'met' if ratio <= TARGET_RATIO else 'NOT met'})")
        print(f"ratio of p99s    {ratio99:.2f}")
        # CPU spent by the serving process per request: what contention multiplies.
        print(f"server CPU per request: echo {echo_cpu / len(echo_times) * 1000:.2f} ms, "
              f"gateway+identity {gw_cpu / len(gw_times) * 1000:.2f} ms")
    finally:
        for server in servers:
            server.stop()
        vhost.delete()
    return 0
