"""Shares per second end to end through the gateway, with delivery and outbox lag.

``python -m bench referrals [--n 2000] [--concurrency 16] [--rate 200] [--session-cache S] [--processes each|one]
[--no-analytics] [--no-idempotency-keys]``

What runs: a fresh RabbitMQ vhost and PostgreSQL databases; identity, directory,
referrals, analytics, retention and the gateway each in its own process
(``weintervene run --service NAME``, as deployed; ``--processes one`` runs the first
four in this process, as the embedded ``weintervene run`` does); the SMTP sink and
the SMS endpoint as subprocesses at the lowest priority (``--providers-niceness``,
19: they stand in for providers that run elsewhere; their CPU is printed apart),
and the HTTP load client in its own process. Each
share is an email to a student's authorised contact, sent with an Idempotency-Key as
the web app sends it: sign-in check, identity access check and contacts, directory
lookup, one transaction (share, key, referral, history, delivery job, outbox event),
201. Meanwhile the delivery timer sends the emails to the sink, the relay publishes
the events and analytics counts them.

Measured in the same run, as baselines: a bare nameko RPC round trip, a raw
SQL insert+commit on the same database, and an authenticated gateway request
that does nothing (``GET /api/v1/me``) at the same concurrency.

Students come from a real roster import into the real identity service; the
services are created through the real directory (via the gateway, by their
owners) and read by referrals with directory's ``get_service``.
"""
from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from eventlet.green import subprocess  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench.support import summary as summary_ms  # noqa: E402


def http_load(url: str, token: str, bodies, n: int, concurrency: int, method: str = "POST", rate: float = 0,
              idempotency_keys: bool = False) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(bodies, f)
    cmd = [sys.executable, "-m", "bench.http_load", "--url", url, f"--token={token}", "--n", str(n),
           "--concurrency", str(concurrency), "--method", method, "--rate", str(rate)]
    if idempotency_keys:
        cmd.append("--idempotency-keys")
    if bodies is not None:
        cmd += ["--body", f.name]
    # eventlet's green subprocess: the services keep running while the client loads them.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=Path(__file__).parents[1])
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"load client failed: {err.decode()[-2000:]}")
    return json.loads(out)


def token_of(rs, email: str) -> str:
    return rs.login(email).headers["Authorization"].split(" ", 1)[1]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench referrals")
    parser.add_argument("--n", type=int, default=2000, help="shares to make")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rate", type=float, default=200.0,
                        help="then offer shares at this rate (open loop, --n of them; 0 skips it)")
    parser.add_argument("--session-cache", type=float, default=None, metavar="SECONDS",
                        help="gateway_session_cache_seconds (default: the setting's; 0 asks identity on "
                             "every request, as for teachers who each share once)")
    parser.add_argument("--processes", choices=("each", "one"), default="each",
                        help="each service in its own process (as deployed), or all in this one")
    parser.add_argument("--profile", metavar="DIR", default=None,
                        help="sample each service's process with py-spy while sharing (raw stacks and a "
                             "summary of where the CPU goes in DIR; needs py-spy: pip install -e '.[profile]')")
    parser.add_argument("--providers-niceness", type=int, default=19, metavar="N",
                        help="niceness of the SMTP sink and SMS endpoint, the outside providers' stand-ins "
                             "(default 19, the lowest priority: they take only the CPU the services leave; "
                             "0 makes them compete with the services for the two cores)")
    parser.add_argument("--batches-in-flight", type=int, default=None, metavar="K",
                        help="share_batches_in_flight: share batches referrals writes at once (default: the setting's)")
    parser.add_argument("--analytics", action=argparse.BooleanOptionalAction, default=True,
                        help="run analytics and retention too, in processes of their own, as deployed (default; "
                             "with --processes each only): analytics counts every share_recorded event meanwhile")
    parser.add_argument("--idempotency-keys", action=argparse.BooleanOptionalAction, default=True,
                        help="send a fresh Idempotency-Key with every share, as the web app does (default); "
                             "--no-idempotency-keys shares as an API client that sends none")
    args = parser.parse_args(argv)
    keys = args.idempotency_keys
    logging.basicConfig(level=logging.ERROR)

    from nameko.standalone.rpc import ClusterRpcClient

    from tests.support.infra import SmsEndpoint, SmtpSink
    from tests.support.referrals_system import ANALYTICS_QUEUE, ReferralsSystem

    # The mail and SMS providers' stand-ins run at the lowest priority (--providers-niceness):
    # a provider's work is done on its own machines, not on the two cores the services are
    # measured on. Their CPU is shown apart (aiosmtpd costs ~0.8 ms per email).
    smtp = SmtpSink(niceness=args.providers_niceness)
    sms = SmsEndpoint(niceness=args.providers_niceness)
    try:
        overrides = {} if args.session_cache is None else {"gateway_session_cache_seconds": args.session_cache}
        if args.batches_in_flight is not None:
            overrides["share_batches_in_flight"] = args.batches_in_flight
        analytics_runs = args.analytics and args.processes == "each"  # in processes of their own only
        rs = ReferralsSystem(Path(tempfile.mkdtemp(prefix="bench-referrals-")), smtp.port, sms.base_url,
                             separate_processes=args.processes == "each",
                             extra_services=("analytics", "retention") if analytics_runs else (), **overrides)
    except BaseException:
        smtp.stop()
        sms.stop()
        raise
    try:
        world = rs.make_world("bench")
        token = token_of(rs, world.emails["teacher"])
        url = rs.url("/api/v1/referrals")
        services = [world.services[k] for k in ("counseling", "pantry1", "pantry2", "pantry3")]
        contacts = [world.mother, world.father]
        bodies = [
            {"student_id": world.student, "contact_ids": [contacts[i % 2]], "service_ids": [services[i % 4]],
             "channel": "email", "note": "Bench share"}
            for i in range(8)
        ]
        engine = rs.referrals_engine()
        print(f"database: {engine.dialect.name}; directory: the real DirectoryService "
              f"({len(world.services)} services); services in {'one process each' if rs.processes else 'this process'}; "
              f"gateway session cache {rs.settings.gateway_session_cache_seconds:g} s; "
              f"{rs.settings.max_workers} workers per service; "
              f"share batches in flight {rs.settings.share_batches_in_flight}; "
              f"{'an Idempotency-Key with every share (as the web app)' if keys else 'no Idempotency-Key'}; "
              f"{'analytics and retention running' if analytics_runs else 'analytics not running'}")

        # -- baselines -------------------------------------------------------------
        rpc_times = []
        with ClusterRpcClient(uri=rs.settings.amqp_uri) as rpc:
            for _ in range(300):
                started = time.perf_counter()
                rpc.referrals.health()
                rpc_times.append(time.perf_counter() - started)
        sql_times = []
        with engine.connect() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS bench_baseline (id serial PRIMARY KEY, v text)"
                              if engine.dialect.name == "postgresql" else
                              "CREATE TABLE IF NOT EXISTS bench_baseline (id integer PRIMARY KEY, v text)"))
            conn.commit()
            for _ in range(300):
                started = time.perf_counter()
                conn.execute(text("INSERT INTO bench_baseline (v) VALUES ('x')"))
                conn.commit()
                sql_times.append(time.perf_counter() - started)
        others = other_pids(rs, engine)
        me_cpu_before = {**process_cpu(rs), **pids_cpu(others)} if rs.processes else {}
        me = http_load(rs.url("/api/v1/me"), token, None, args.n // 2, args.concurrency, method="GET")
        me_cpu = {}
        if rs.processes:
            me_cpu_after = {**process_cpu(rs), **pids_cpu(other_pids(rs, engine, others))}
            me_cpu = {k: me_cpu_after[k] - me_cpu_before.get(k, 0.0) for k in me_cpu_after}
            me_cpu["client"] = me.get("cpu_seconds", 0.0)

        # -- shares ----------------------------------------------------------------
        analytics = AnalyticsCounter(rs) if analytics_runs else None
        http_load(url, token, bodies, args.warmup, args.concurrency, idempotency_keys=keys)
        wait_for_deliveries(engine, timeout=120)
        settle_events(rs, analytics, args.warmup)
        with engine.connect() as conn:
            mark = conn.scalar(text("SELECT now()" if engine.dialect.name == "postgresql" else "SELECT CURRENT_TIMESTAMP"))
        # One client alone: the latency of a share when nothing queues.
        alone = http_load(url, token, bodies, 100, 1, idempotency_keys=keys)
        wait_for_deliveries(engine, timeout=120)
        settle_events(rs, analytics, args.warmup + 100)
        with engine.connect() as conn:
            mark = conn.scalar(text("SELECT now()" if engine.dialect.name == "postgresql" else "SELECT CURRENT_TIMESTAMP"))
        sinks_before = len(smtp.files(".eml"))
        before = entrypoint_seconds()
        cpu_before = os.times()
        others = other_pids(rs, engine)
        providers = {"smtp sink": {smtp.proc.pid}, "sms endpoint": {sms.proc.pid}}
        processes_before = {**process_cpu(rs), **pids_cpu(others)}
        providers_before = pids_cpu(providers)
        profilers = start_profilers(rs, args.profile) if args.profile else {}
        counted_before = analytics.count() if analytics else 0
        sampler = eventlet.spawn(analytics.sample_until, counted_before + args.n) if analytics else None
        started = time.perf_counter()
        result = http_load(url, token, bodies, args.n, args.concurrency, idempotency_keys=keys)
        http_done = time.perf_counter()
        cpu_after = os.times()
        others = other_pids(rs, engine, others)
        processes_after = {**process_cpu(rs), **pids_cpu(others)}
        if profilers:
            stop_profilers(profilers, args.profile)
        after = entrypoint_seconds()
        delivered = wait_for_sink(smtp, sinks_before + args.n, timeout=300)
        all_sent = time.perf_counter()
        providers_after = pids_cpu(providers)  # after the last email: the sink's whole share of the work
        wait_for_deliveries(engine, timeout=60)  # the last rows' "sent" commits just after their SMTP accept
        with engine.connect() as conn:
            deliveries = [r[0] for r in conn.execute(text(
                "SELECT EXTRACT(EPOCH FROM (sent_at - created_at)) FROM delivery "
                "WHERE created_at >= :m AND state = 'sent'"), {"m": mark})]
            wait_outbox(conn)
            outbox = [r[0] for r in conn.execute(text(
                "SELECT EXTRACT(EPOCH FROM (published_at - created_at)) FROM outbox_message "
                "WHERE created_at >= :m AND event_type = 'share_recorded'"), {"m": mark})]
            created = sorted(float(r[0]) for r in conn.execute(text(
                "SELECT EXTRACT(EPOCH FROM created_at) FROM outbox_message "
                "WHERE created_at >= :m AND event_type = 'share_recorded'"), {"m": mark}))
        if sampler is not None:
            samples = sampler.wait()
            counted = samples[-1][1] - counted_before if samples else 0
            to_analytics = lags_to_count(created, samples, counted_before)
        else:
            counted, to_analytics = len(rs.drain(ANALYTICS_QUEUE)), []

        latencies = result["latencies"]
        share_rate = len(latencies) / result["wall_seconds"]
        s, m = summary(latencies), summary(me["latencies"])
        print()
        print(f"shares: {args.n} at concurrency {args.concurrency}; statuses {result['statuses']}")
        print(line("baseline: nameko RPC round trip", rpc_times))
        print(line("baseline: SQL insert+commit", sql_times))
        print(line(f"baseline: GET /api/v1/me (c={args.concurrency})", me["latencies"])
              + f"  {len(me['latencies']) / me['wall_seconds']:.0f} req/s")
        if me_cpu:
            count = len(me["latencies"])
            print("  CPU per GET /api/v1/me (the floor of any authenticated request: HTTP + one RPC): "
                  + ", ".join(f"{k} {v / count * 1000:.1f}" for k, v in me_cpu.items() if v > 0)
                  + f"; all {sum(me_cpu.values()) / count * 1000:.1f} ms")
        print(line("POST /api/v1/referrals, one client", alone["latencies"])
              + f"  {len(alone['latencies']) / alone['wall_seconds']:.0f} shares/s")
        print(line(f"POST /api/v1/referrals (c={args.concurrency})", latencies) + f"  {share_rate:.0f} shares/s")
        print(line("share queued -> email accepted by SMTP", [float(d) for d in deliveries]))
        print(line("outbox row -> published to broker", [float(o) for o in outbox]))
        print(f"emails in the sink: {delivered - sinks_before}/{args.n} "
              f"({args.n / (all_sent - started):.0f}/s end to end; last one {all_sent - http_done:.2f} s after the "
              f"last 201)")
        if analytics:
            print(line("outbox row -> counted by analytics", to_analytics))
            print(f"share_recorded events counted by analytics: {counted}/{args.n}")
        else:
            print(f"share_recorded events waiting in analytics' queue (analytics not running): {counted}/{args.n}")
        print(f"ratios: share median / GET me median = {s['median_ms'] / m['median_ms']:.1f}x; "
              f"share median / RPC median = {s['median_ms'] / summary(rpc_times)['median_ms']:.1f}x")
        elapsed = http_done - started
        if rs.processes:
            print(f"CPU per share while sharing (each process; load average now "
                  f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores):")
            total = services_total = 0.0
            for name in processes_after:
                cpu = processes_after[name] - processes_before.get(name, 0.0)
                total += cpu
                services_total += cpu if name in rs.processes else 0.0
                print(f"  {name:<10} {cpu / args.n * 1000:6.2f} ms per share ({cpu / elapsed * 100:3.0f}% of one core)")
            client = result.get("cpu_seconds", 0.0)
            total += client
            print(f"  {'client':<10} {client / args.n * 1000:6.2f} ms per share (the HTTP load client)")
            print(f"  {'services':<10} {services_total / args.n * 1000:6.2f} ms per share (our Python processes)")
            print(f"  {'all':<10} {total / args.n * 1000:6.2f} ms per share; 2 cores at 200 shares/s allow "
                  f"{os.cpu_count() / 200 * 1000:.0f} ms (the broker is shared with other users of this machine, "
                  f"so its figure is an upper bound)")
            for name, cpu in providers_after.items():
                cpu -= providers_before.get(name, 0.0)
                print(f"  {name:<10} {cpu / args.n * 1000:6.2f} ms per share until the last email (an outside "
                      f"provider's stand-in at niceness {args.providers_niceness}; not in 'all')")
        else:
            cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
            print(f"CPU of the services' process while sharing: {cpu / args.n * 1000:.1f} ms per share "
                  f"({cpu / elapsed * 100:.0f}% of one core; load average now {os.getloadavg()[0]:.1f} "
                  f"on {os.cpu_count()} cores)")
        if after:
            print("mean time in each entrypoint while sharing (wall, includes waiting):")
        for key in sorted(after, key=lambda k: -(after[k][0] - before.get(k, (0, 0))[0])):
            total, count = after[key][0] - before.get(key, (0, 0))[0], after[key][1] - before.get(key, (0, 0))[1]
            if count:
                print(f"  {key:<40} calls={int(count):<6} mean={total / count * 1000:8.2f} ms")
        target_ok = share_rate >= 200 and s["p99_ms"] < 100
        print(f"target, closed loop (>= 200 shares/s, p99 < 100 ms): {'met' if target_ok else 'NOT met'}")
        if args.rate:
            # Open loop: shares offered at a steady rate, as many teachers would, each
            # latency counted from when it was due.
            wait_for_deliveries(engine, timeout=300)
            offered = http_load(url, token, bodies, args.n, 64, rate=args.rate, idempotency_keys=keys)
            o = summary(offered["latencies"])
            achieved = len(offered["latencies"]) / offered["wall_seconds"]
            print(line(f"POST /api/v1/referrals offered {args.rate:g}/s", offered["latencies"])
                  + f"  {achieved:.0f} shares/s answered; statuses {offered['statuses']}")
            ok = achieved >= 0.98 * args.rate and o["p99_ms"] < 100
            print(f"target, open loop ({args.rate:g} shares/s offered, p99 < 100 ms): {'met' if ok else 'NOT met'}")
    finally:
        rs.stop()
        smtp.stop()
        sms.stop()
    return 0


def summary(seconds: list[float]) -> dict:
    """Median/p95/p99 in milliseconds of timings given in seconds."""
    if not seconds:
        return {"n": 0, "median_ms": float("nan"), "p95_ms": float("nan"), "p99_ms": float("nan")}
    s = summary_ms([v * 1000 for v in seconds])
    return {"n": s["n"], "median_ms": s["median"], "p95_ms": s["p95"], "p99_ms": s["p99"]}


def line(label: str, seconds: list[float]) -> str:
    s = summary(seconds)
    return (f"{label:<38} n={s['n']:<6} median={s['median_ms']:8.2f} ms  p95={s['p95_ms']:8.2f} ms  "
            f"p99={s['p99_ms']:8.2f} ms")


def entrypoint_seconds() -> dict:
    """{service.entrypoint: (total seconds, count)} from the services' Prometheus histograms."""
    from prometheus_client import REGISTRY

    out = {}
    for metric in REGISTRY.collect():
        if metric.name != "weintervene_entrypoint_seconds":
            continue
        for sample in metric.samples:
            key = f"{sample.labels['service']}.{sample.labels['entrypoint']}"
            total, count = out.get(key, (0.0, 0.0))
            if sample.name.endswith("_sum"):
                out[key] = (sample.value, count)
            elif sample.name.endswith("_count"):
                out[key] = (total, sample.value)
    return out


def process_cpu(rs) -> dict:
    """{service: CPU seconds (user + system) so far} of each service's own process."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, process in rs.processes.items():
        with open(f"/proc/{process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        out[name] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def pids_cpu(pids: dict) -> dict:
    """{label: CPU seconds so far} summed over each label's process ids (gone ones count 0)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for label, group in pids.items():
        total = 0.0
        for pid in group:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / ticks
        out[label] = total
    return out


def other_pids(rs, engine, known: dict | None = None) -> dict:
    """The processes a share also costs: RabbitMQ's node, and the PostgreSQL backends
    serving this run's databases (those connected now, plus ``known`` ones)."""
    out = {label: set(pids) for label, pids in (known or {}).items()}
    try:
        import requests

        from bench.support import RABBIT_API

        nodes = requests.get(f"{RABBIT_API.rstrip('/')}/api/nodes", timeout=5).json()
        out.setdefault("rabbitmq", set()).update(int(n["os_pid"]) for n in nodes if n.get("os_pid"))
    except Exception:  # noqa: BLE001 - no management API: the broker is not counted
        pass
    if engine.dialect.name == "postgresql" and rs.databases is not None:
        with engine.connect() as conn:
            backends = conn.execute(text("SELECT pid, datname FROM pg_stat_activity WHERE datname LIKE :p"),
                                    {"p": rs.databases.prefix + "%"}).all()
        # One label per service's database: which service's statements cost PostgreSQL what.
        for pid, datname in backends:
            out.setdefault(f"pg:{datname[len(rs.databases.prefix):].strip('_')}", set()).add(pid)
    return out


def start_profilers(rs, folder: str) -> dict:
    """One ``py-spy record`` per service process (raw stacks, not pausing the process)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    spies = {}
    for name, process in rs.processes.items():
        spies[name] = subprocess.Popen(
            [_py_spy(), "record", "--pid", str(process.pid), "--rate", "250", "--format", "raw", "--nonblocking", "--full-filenames",
             "--output", str(Path(folder) / f"{name}.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)  # py-spy attaches
    return spies


def _py_spy() -> str:
    import shutil

    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if not found:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install -e '.[profile]'")
    return found


def stop_profilers(spies: dict, folder: str) -> None:
    import signal

    for spy in spies.values():
        spy.send_signal(signal.SIGINT)
    for spy in spies.values():
        spy.wait(timeout=60)
    from bench.profile_summary import summarise

    for name in spies:
        path = Path(folder) / f"{name}.txt"
        if path.exists():
            report = summarise(path)
            (Path(folder) / f"{name}.summary.txt").write_text(report)
            print(f"\n-- profile of {name} ({path}) --\n" + "\n".join(report.splitlines()[:30]))


def wait_for_sink(smtp, count: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    n = len(smtp.files(".eml"))
    while n < count and time.monotonic() < deadline:
        time.sleep(0.2)
        n = len(smtp.files(".eml"))
    return n


def wait_for_deliveries(engine, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if not conn.scalar(text("SELECT count(*) FROM delivery WHERE state IN ('queued', 'sending')")):
                return
        time.sleep(0.2)


class AnalyticsCounter:
    """How many shares analytics has counted so far, read from its own database."""

    def __init__(self, rs):
        from weintervene.db import make_engine

        self.engine = make_engine(rs.settings.database_url("analytics"))

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(text("SELECT COALESCE(SUM(count), 0) FROM daily_share_count")))

    def sample_until(self, total: int, timeout: float = 300, every: float = 0.05) -> list[tuple[float, int]]:
        """``[(unix time, count)]`` every ``every`` s until the count reaches ``total``."""
        samples, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            samples.append((time.time(), self.count()))
            if samples[-1][1] >= total:
                break
            time.sleep(every)
        return samples


def lags_to_count(created: list[float], samples: list[tuple[float, int]], base: int) -> list[float]:
    """Seconds from each event's outbox row to the first sample whose count includes it.

    Analytics keeps counts only (no per-event record, by design), so the k-th event
    created is taken as counted when the count first reaches ``base + k``: exact when
    events are counted in the order they were written, close otherwise.
    """
    lags, i = [], 0
    for k, at in enumerate(created, start=1):
        while i < len(samples) and samples[i][1] < base + k:
            i += 1
        if i == len(samples):
            break
        lags.append(max(0.0, samples[i][0] - at))
    return lags


def settle_events(rs, analytics, expected: int, timeout: float = 120) -> None:
    """Wait until analytics has counted ``expected`` shares (or drain its queue when it is not running)."""
    if analytics is None:
        from tests.support.referrals_system import ANALYTICS_QUEUE

        rs.drain(ANALYTICS_QUEUE)
        return
    deadline = time.monotonic() + timeout
    while analytics.count() < expected and time.monotonic() < deadline:
        time.sleep(0.2)


def wait_outbox(conn, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not conn.scalar(text("SELECT count(*) FROM outbox_message WHERE published_at IS NULL")):
            return
        conn.commit()
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
