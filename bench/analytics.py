"""Analytics: share events/s for one and two workers; report latency at 10k vs 10M stored shares.

    python -m bench analytics [--events 6000] [--runs 3] [--batch-size 200] [--prefetch 400]
                              [--iterations 100] [--skip-throughput] [--skip-reports]

Needs RabbitMQ (management API on 15672) and PostgreSQL on this machine, as the
test suite does; everything is created in a vhost and databases of its own and
dropped at the end.

Throughput: the queue is filled first, then N worker processes (``weintervene
run --service analytics``, each its own process and database pool) drain it;
the rate is measured between 10% and 90% drained, so start-up is not counted.
One and two workers are measured in turn, ``--runs`` times, so machine noise
hits both alike; the load average is printed with each run (the machine is
shared). Baseline: the same counting code called in a loop on one connection
(no broker), in batches of the same size.

Reports: the counters are bulk-loaded with SQL to stand for 10 thousand and for
10 million shares (pre-aggregated: 10 million shares are 1.75 million counter
rows, because a counter row is a (tenant, day, service, channel) key, not a
share). The measured school has the same 5,110 shares in its school year in
both databases; everyone else's volume grows 2,000x. Baseline: the raw GROUP BY
query behind top-services on the same database.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date

from kombu import Connection, Producer
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from bench.support import Vhost, summary
from services.analytics import counting, reports
from services.analytics.scope import Scope
from tests.support.infra import PostgresDatabases, postgres_available
from weintervene.config import Settings
from weintervene.contracts import SHARE_RECORDED, ShareRecorded
from weintervene.db import ensure_database, make_engine, migrate
from weintervene.messaging import declare_topology, event_exchange

def fmt(stats: dict) -> str:
    return f"median {stats['median']:.2f} ms  p95 {stats['p95']:.2f} ms  p99 {stats['p99']:.2f} ms"


SCHOOL = "00000000-0000-4000-8000-0000000005c1"
YEAR_START = date(2025, 7, 1)
CHANNELS = ("email", "sms", "print", "link")


# -- throughput -----------------------------------------------------------------

def make_events(n: int, seed: int = 1) -> list[dict]:
    import random

    rng = random.Random(seed)
    tenants = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(50)]
    services = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(40)]
    terms = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(12)]
    return [
        ShareRecorded().dump({
            "event_id": uuid.uuid4(), "tenant_id": rng.choice(tenants), "district_id": None,
            "service_id": rng.choice(services), "taxonomy_term_ids": rng.sample(terms, 2),
            "channel": rng.choice(CHANNELS), "occurred_on": date(2026, 11, rng.randint(1, 28)),
        })
        for _ in range(n)
    ]


def publish(amqp_uri: str, events: list[dict]) -> None:
    with Connection(amqp_uri) as conn:
        producer = Producer(conn.channel(), exchange=event_exchange("referrals"), serializer="json")
        for event in events:
            producer.publish(event, routing_key=SHARE_RECORDED, delivery_mode=2)


def processed(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(text("SELECT count(*) FROM processed_event"))


def cpu_seconds(pids) -> float | None:
    """User + system CPU seconds of processes so far (Linux /proc; None elsewhere)."""
    total = 0
    try:
        for pid in pids:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    except (OSError, IndexError, ValueError):
        return None
    return total / os.sysconf("SC_CLK_TCK")


def drain_rate(amqp_uri: str, db_url: str, workers: int, events: int, data_dir: str, intake: dict) -> dict:
    """Fill the queue with ``events`` shares, start ``workers`` processes, time the drain.

    ``intake``: extra WEINTERVENE_* settings for the processes, e.g.
    {"ANALYTICS_BATCH_SIZE": "200", "ANALYTICS_PREFETCH": "400"}.

    Besides events/s (wall clock, so it depends on what else runs on the
    machine), the workers' own CPU time per event over the same window: a
    figure the other helpers' load hardly moves, and 1,000 / it is what one
    worker would do with a core to itself.
    """
    engine = make_engine(db_url)
    start_count = processed(engine)
    publish(amqp_uri, make_events(events, seed=workers + start_count))
    env = {**os.environ, "AMQP_URI": amqp_uri, "WEINTERVENE_ANALYTICS_DATABASE_URL": db_url,
           "WEINTERVENE_DATA_DIR": data_dir, **{f"WEINTERVENE_{k}": str(v) for k, v in intake.items()}}
    procs = [
        subprocess.Popen([sys.executable, "-m", "weintervene.cli", "run", "--service", "analytics"],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    pids = [proc.pid for proc in procs]
    marks: list[tuple[float, int, float | None]] = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            done = processed(engine) - start_count
            marks.append((time.perf_counter(), done, cpu_seconds(pids)))
            if done >= events:
                break
            time.sleep(0.05)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
        engine.dispose()
    low = next(m for m in marks if m[1] >= events * 0.1)
    high = next(m for m in marks if m[1] >= events * 0.9)
    cpu_ms = None
    if low[2] is not None and high[2] is not None:
        cpu_ms = (high[2] - low[2]) * 1000 / (high[1] - low[1])
    return {"workers": workers, "events": events, "per_second": (high[1] - low[1]) / (high[0] - low[0]),
            "cpu_ms_per_event": cpu_ms, "load": os.getloadavg()[0]}


def in_process_rate(db_url: str, events: int, batch: int) -> float:
    """Baseline: the counting code in a loop on one connection, no broker, no nameko."""
    engine = make_engine(db_url)
    session = sessionmaker(engine)()
    loaded = [counting.load_share(p) for p in make_events(events, seed=99 + batch)]
    started = time.perf_counter()
    for i in range(0, len(loaded), batch):
        counting.count_shares(session, loaded[i:i + batch])
    elapsed = time.perf_counter() - started
    session.close()
    engine.dispose()
    return events / elapsed


# -- report latency ---------------------------------------------------------------

# The measured school: 14 shares a day for a school year (5,110), 30 services, 2 terms each
# (one term set per service).
SCHOOL_YEAR_SQL = """
INSERT INTO service_share_count (tenant_id, day, service_id, channel, district_id, count)
SELECT :school, DATE '2025-07-01' + d, md5('svc' || mod(d * 7 + k, 30))::uuid::text,
       (ARRAY['email','sms','print','link'])[mod(k, 4) + 1], NULL, count(*)
FROM generate_series(0, 364) d, generate_series(0, 13) k GROUP BY 1, 2, 3, 4;
INSERT INTO term_set_share_count (tenant_id, day, channel, taxonomy_term_ids, district_id, count)
SELECT s.tenant_id, s.day, s.channel, x.term_set, NULL, sum(s.count)
FROM service_share_count s, LATERAL (
    SELECT string_agg(t, ',' ORDER BY t) AS term_set
    FROM (VALUES (md5('term1' || substr(s.service_id, 1, 1))::uuid::text),
                 (md5('term2' || substr(s.service_id, 1, 1))::uuid::text)) v(t)) x
WHERE s.tenant_id = :school GROUP BY 1, 2, 3, 4;
"""

# Everyone else: tenants x 365 days x services x 4 channels keys, the other shares spread
# over them (base each, one more for the first `remainder` keys).
OTHERS_SQL = """
INSERT INTO service_share_count (tenant_id, day, service_id, channel, district_id, count)
SELECT md5('tenant' || t)::uuid::text, DATE '2025-07-01' + d, md5('svc' || s)::uuid::text,
       (ARRAY['email','sms','print','link'])[c + 1], NULL,
       :base + CASE WHEN (((t * 365 + d) * :services + s) * 4 + c) < :remainder THEN 1 ELSE 0 END
FROM generate_series(0, :tenants - 1) t, generate_series(0, 364) d,
     generate_series(0, :services - 1) s, generate_series(0, 3) c
WHERE :base > 0 OR (((t * 365 + d) * :services + s) * 4 + c) < :remainder;
INSERT INTO term_set_share_count (tenant_id, day, channel, taxonomy_term_ids, district_id, count)
SELECT tenant_id, day, channel, md5('term1' || substr(service_id, 1, 1))::uuid::text, NULL, sum(count)
FROM service_share_count WHERE tenant_id <> :school GROUP BY 1, 2, 3, 4;
"""

ROLLUP_SQL = """
INSERT INTO daily_share_count (tenant_id, day, channel, district_id, count)
SELECT tenant_id, day, channel, NULL, sum(count) FROM service_share_count GROUP BY 1, 2, 3
"""


def load_counters(db_url: str, total_events: int, tenants: int, services: int) -> dict:
    engine = make_engine(db_url)
    ensure_database(db_url)
    migrate("analytics", engine)
    others = total_events - 365 * 14
    keys = tenants * 365 * services * 4
    base, remainder = divmod(others, keys) if others >= keys else (0, others)
    started = time.perf_counter()
    with engine.begin() as conn:
        for sql, params in ((SCHOOL_YEAR_SQL, {"school": SCHOOL}),
                            (OTHERS_SQL, {"school": SCHOOL, "tenants": tenants, "services": services,
                                          "base": base, "remainder": remainder}),
                            (ROLLUP_SQL, {})):
            for statement in filter(str.strip, sql.split(";")):
                conn.execute(text(statement), params)
    maintenance = create_engine(db_url, isolation_level="AUTOCOMMIT")
    with maintenance.connect() as conn:
        conn.execute(text("VACUUM ANALYZE"))  # steady state: visibility map and hint bits set
    maintenance.dispose()
    with engine.connect() as conn:
        figures = {
            "events": conn.scalar(text("SELECT sum(count) FROM daily_share_count")),
            "service_rows": conn.scalar(text("SELECT count(*) FROM service_share_count")),
            "term_rows": conn.scalar(text("SELECT count(*) FROM term_set_share_count")),
            "load_seconds": time.perf_counter() - started,
        }
    engine.dispose()
    return figures


class LocalSources:
    """Tenant facts and taxonomy without identity/directory: the bench times analytics only."""

    def __init__(self, tenants: dict):
        self.tenants = tenants

    def tenant_info(self, tenant_id):
        return self.tenants[tenant_id]

    def tenants_info(self, tenant_ids):
        return {t: self.tenants[t] for t in tenant_ids if t in self.tenants}

    def list_tenants_in(self, tenant_id):
        return [self.tenants[tenant_id]]

    def tenants_with_counts(self):
        return list(self.tenants)

    def get_terms(self, term_ids):
        return {t: {"id": t, "name": t[:4], "top_level_id": t[:1], "top_level_name": t[:1]} for t in term_ids}

    def count_services(self, *args):
        return {}

    def service_names(self, service_ids):
        return {s: None for s in service_ids}

    def remember(self, key, compute):
        # Sources keeps a result for one RPC call; this one lives across timed calls: keep nothing.
        return compute()


def school_info(tenant_id: str) -> dict:
    return {"id": tenant_id, "kind": "school", "name": tenant_id[:8], "timezone": "America/Chicago",
            "latitude": 41.0, "longitude": -87.0, "analytics_consent": True, "suppression_threshold": 10,
            "district_id": None}


def time_calls(fns: dict, iterations: int) -> dict:
    """{label: stats}, calling the functions in turn so machine noise hits them alike."""
    for fn in fns.values():
        for _ in range(5):
            fn()
    samples = {label: [] for label in fns}
    for _ in range(iterations):
        for label, fn in fns.items():
            started = time.perf_counter()
            fn()
            samples[label].append((time.perf_counter() - started) * 1000)
    return {label: summary(values) for label, values in samples.items()}


class ReportBench:
    """Report calls on one database, for one tenant."""

    def __init__(self, db_url: str):
        self.engine = make_engine(db_url)
        self.session = sessionmaker(self.engine, expire_on_commit=False)()

    def raw(self, tenant_id: str):
        def call():
            with self.engine.connect() as conn:
                conn.execute(text(
                    "SELECT service_id, sum(count) FROM service_share_count WHERE tenant_id = :t "
                    "AND day BETWEEN :a AND :b GROUP BY service_id"),
                    {"t": tenant_id, "a": date(2025, 11, 1), "b": date(2025, 11, 30)}).all()
        return call

    def report(self, tenant_id: str, name: str, query: dict):
        info = school_info(tenant_id)
        sources = LocalSources({tenant_id: info})
        scope = Scope("school", [info], None, None, info["timezone"])

        def call():
            reports.build_report(self.session, name, scope, query, sources, Settings())
            self.session.rollback()
        return call

    def close(self):
        self.session.close()
        self.engine.dispose()


MONTH = {"period": "month", "to": "2025-11-15"}
REPORT_CASES = (("top-services", MONTH), ("top-categories", MONTH), ("channels", MONTH), ("schools", MONTH),
                ("trends", {"period": "school_year", "to": "2025-11-15"}))


def report_latencies(small_url: str, large_url: str, iterations: int, saturated: str) -> list[tuple]:
    """[(label, stats at 10k, stats at 10M or None)], 10k and 10M measured in alternation."""
    small, large = ReportBench(small_url), ReportBench(large_url)
    rows = []
    try:
        stats = time_calls({"10k": small.raw(SCHOOL), "10M": large.raw(SCHOOL)}, iterations)
        rows.append(("raw SQL top-services query (baseline)", stats["10k"], stats["10M"]))
        for name, query in REPORT_CASES:
            stats = time_calls({"10k": small.report(SCHOOL, name, query),
                                "10M": large.report(SCHOOL, name, query),
                                "sat": large.report(saturated, name, query)}, iterations)
            rows.append((f"school: {name} ({query['period']})", stats["10k"], stats["10M"]))
            rows.append((f"saturated school: {name} ({query['period']})", None, stats["sat"]))
    finally:
        small.close()
        large.close()
    return rows


def district_latency(db_url: str, iterations: int, schools: int) -> dict:
    """A district admin's side-by-side top services with suppression, over ``schools`` schools."""
    engine = make_engine(db_url)
    session = sessionmaker(engine, expire_on_commit=False)()
    ids = [str(uuid.UUID(bytes=__import__("hashlib").md5(f"tenant{t}".encode()).digest())) for t in range(schools)]
    infos = [school_info(t) for t in ids]
    scope = Scope("district", infos, {"id": "d", "name": "District", "level": "district"}, 10, "America/Chicago")
    sources = LocalSources({i["id"]: i for i in infos})

    def call():
        reports.build_report(session, "top-services", scope, {"period": "month", "to": "2025-11-15"}, sources, Settings())
        session.rollback()

    stats = time_calls({"d": call}, max(10, iterations // 5))["d"]
    session.close()
    engine.dispose()
    return stats


# -- main ---------------------------------------------------------------------------

def cpu(result: dict) -> str:
    ms = result["cpu_ms_per_event"]
    return "cpu n/a" if ms is None else f"{ms:.3f} ms CPU/event"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench analytics", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=6000, help="events per worker for the throughput runs")
    parser.add_argument("--iterations", type=int, default=100, help="timed calls per report")
    parser.add_argument("--runs", type=int, default=3, help="throughput runs (1 then 2 workers, each run)")
    parser.add_argument("--batch-size", type=int, default=Settings().analytics_batch_size,
                        help="events per transaction and ack (WEINTERVENE_ANALYTICS_BATCH_SIZE)")
    parser.add_argument("--prefetch", type=int, default=Settings().analytics_prefetch,
                        help="unacknowledged events the broker sends ahead (WEINTERVENE_ANALYTICS_PREFETCH)")
    parser.add_argument("--max-workers", type=int, default=0,
                        help="nameko workers per process (WEINTERVENE_MAX_WORKERS; default: the setting's)")
    parser.add_argument("--others", type=int, default=100, help="other tenants in the 10M database")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-reports", action="store_true")
    args = parser.parse_args(argv)
    if not postgres_available():
        print("PostgreSQL is not reachable on 127.0.0.1:5432", file=sys.stderr)
        return 2

    databases = PostgresDatabases(["analytics", "analytics10k", "analytics10m"])
    vhost = Vhost() if not args.skip_throughput else None
    try:
        if not args.skip_throughput:
            amqp_uri = vhost.uri
            declare_topology(amqp_uri)
            db_url = databases.url("analytics")
            ensure_database(db_url)
            engine = make_engine(db_url)
            migrate("analytics", engine)
            engine.dispose()
            print("== share_recorded throughput (broker and PostgreSQL on this machine)")
            print(f"batch size {args.batch_size}, prefetch {args.prefetch}; "
                  f"load average at start {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
            single = in_process_rate(db_url, 300, 1)
            baseline = in_process_rate(db_url, 3000, args.batch_size)
            print(f"baseline, counting code in a loop, no broker, one event a transaction: {single:8.0f} events/s")
            print(f"baseline, counting code in a loop, no broker, {args.batch_size} events a transaction: "
                  f"{baseline:8.0f} events/s")
            intake = {"ANALYTICS_BATCH_SIZE": args.batch_size, "ANALYTICS_PREFETCH": args.prefetch}
            if args.max_workers:
                intake["MAX_WORKERS"] = args.max_workers
            ones, twos = [], []
            with tempfile.TemporaryDirectory() as data_dir:
                for run in range(1, args.runs + 1):
                    one = drain_rate(amqp_uri, db_url, 1, args.events, data_dir, intake)
                    two = drain_rate(amqp_uri, db_url, 2, args.events * 2, data_dir, intake)
                    ones.append(one)
                    twos.append(two)
                    print(f"run {run}: 1 worker {one['per_second']:6.0f} events/s, {cpu(one)} (load {one['load']:.1f});  "
                          f"2 workers {two['per_second']:6.0f} events/s, {cpu(two)} (load {two['load']:.1f}); "
                          f"ratio {two['per_second'] / one['per_second']:.2f}")
            one_median = statistics.median(r["per_second"] for r in ones)
            two_median = statistics.median(r["per_second"] for r in twos)
            print(f"median of {args.runs}: 1 worker {one_median:.0f} events/s; 2 workers {two_median:.0f} "
                  f"events/s ({two_median / 2:.0f} per worker); ratio 2/1 {two_median / one_median:.2f}; "
                  f"1 worker / in-process baseline {one_median / baseline:.2f}")
            cpu_costs = [r["cpu_ms_per_event"] for r in ones + twos if r["cpu_ms_per_event"] is not None]
            if cpu_costs:
                per_event = statistics.median(cpu_costs)
                print(f"worker CPU per event, median of {len(cpu_costs)}: {per_event:.3f} ms "
                      f"(one worker with a core to itself: ~{1000 / per_event:.0f} events/s)")

        if not args.skip_reports:
            print("\n== report latency (in-process report code on PostgreSQL)")
            small = load_counters(databases.url("analytics10k"), 10_000, 20, 12)
            large = load_counters(databases.url("analytics10m"), 10_000_000, args.others, 12)
            for label, figures in (("10k", small), ("10M", large)):
                print(f"{label}: {figures['events']:,} events in {figures['service_rows']:,} service rows, "
                      f"{figures['term_rows']:,} term-set rows (loaded in {figures['load_seconds']:.1f} s)")
            saturated = str(uuid.UUID(bytes=__import__("hashlib").md5(b"tenant0").digest()))
            rows = report_latencies(databases.url("analytics10k"), databases.url("analytics10m"),
                                    args.iterations, saturated)
            print(f"{'':44} {'10k':>46}   {'10M':>46}  ratio")
            for label, at_small, at_large in rows:
                ratio = f"{at_large['median'] / at_small['median']:.2f}" if at_small else ""
                print(f"{label:44} {fmt(at_small) if at_small else '':>46}   {fmt(at_large):>46}  {ratio}")
            print(f"district view, 20 saturated schools side by side, top-services (month), 10M: "
                  f"{fmt(district_latency(databases.url('analytics10m'), args.iterations, 20))}")
    finally:
        databases.drop()
        if vhost is not None:
            vhost.delete()
    return 0


if __name__ == "__main__":
    sys.exit(main())
