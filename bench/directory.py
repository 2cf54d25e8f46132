"""Directory search at scale: gateway and service RPC vs the same SQL run directly; import rate.

Builds a directory from the real shared datasets (dc-orservices, ilao, ohana-sanmateo,
imported through the importer: that gives the import rate) plus the generated demo,
then scales it to ``--services`` (default 100,000) with copies of the real services
under varied names and coordinates (bulk inserted). Then it starts identity,
directory and the gateway in their own process on that database and measures a
mix of realistic searches three ways, in alternating blocks:

* gateway: ``GET /api/v1/directory/services?...`` with a bearer token;
* service: the ``directory.search`` RPC (nameko standalone client);
* direct SQL: the same statement the service runs (``search.build_statement``: the
  page and the facet/total groups in one pass; the spelling lookup for a misspelt
  query) plus the page's cards, executed on the same database by this process.

Targets: gateway p95 <= 50 ms and <= 2x the direct SQL. Also printed: CPU per search
(this process for direct SQL, the server process for the service and the gateway;
PostgreSQL's own CPU in neither), steadier than times on a shared machine.

    python -m bench directory [--services 100000] [--queries 300] [--database sqlite|postgres|both]
"""
from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import requests

from bench.support import ServerProcess, Vhost, cpu_seconds, print_table, summary

TARGET_P95_MS = 50.0
TARGET_RATIO = 2.0
PG_TEMPLATE = "postgresql+psycopg2://postgres@127.0.0.1:5432/wi_bench_{service}"
QUERIES = [
    {"q": "tutoring", "postcode": "20001", "radius_miles": 5, "sort": "distance"},
    {"q": "food pantry", "postcode": "20002", "radius_miles": 10},
    {"q": "counseling", "language": "es", "cost": "free"},
    {"q": "mentoring", "age": 13, "postcode": "20001", "radius_miles": 10, "sort": "distance"},
    {"q": "housing help"},
    {"q": "after school", "open_day": "TU", "open_time": "16:30"},
    {"category": None, "postcode": "20001", "radius_miles": 3},  # category filled in: Education
    {"q": "legal aid", "grade": "10"},
    {"q": "tutorng"},  # a typo, corrected
    {"postcode": "20001", "radius_miles": 2, "sort": "distance"},
]
CITIES = [(38.9122, -77.0177), (41.8781, -87.6298), (37.7749, -122.4194), (40.7128, -74.0060),
          (33.7490, -84.3880), (29.7604, -95.3698), (47.6062, -122.3321), (39.7392, -104.9903)]
PREFIXES = ["North", "South", "East", "West", "Central", "Community", "Family", "Youth", "Neighborhood", "Metro",
            "Riverside", "Hillside", "Park", "Valley", "Lakeside", "Harbor", "Union", "Liberty", "Unity", "Hope"]


def shared_dir() -> Path:
    from tests.support.shared_data import shared_dir as find

    return find()


def build(url: str, services: int, seed: int = 7) -> dict:
    """Create and fill the directory database; returns import figures."""
    from sqlalchemy import select, text
    from sqlalchemy.orm import Session

    from services.directory.demo import load_demo
    from services.directory.ids import stable_id
    from services.directory.importer import import_path
    from services.directory.models import Service, ServiceCard, ServiceHours, ServiceSearch
    from services.directory.taxonomy import load_open_eligibility
    from weintervene.db import bulk_insert, ensure_database, make_engine, migrate

    ensure_database(url)
    engine = make_engine(url)
    migrate("directory", engine)
    session = Session(engine)
    load_open_eligibility(session)
    figures = {}
    started, imported = time.perf_counter(), 0
    for name in ("dc-orservices", "ilao", "ohana-sanmateo"):
        report = import_path(session, shared_dir() / "datasets" / name, source=name)
        imported += report["totals"].get("service", {}).get("created", 0)
    seconds = time.perf_counter() - started
    figures["import"] = {"services": imported, "seconds": seconds, "services_per_second": imported / seconds if seconds else 0}
    started = time.perf_counter()
    again = sum(import_path(session, shared_dir() / "datasets" / n, source=n)["totals"].get("service", {}).get("unchanged", 0)
                for n in ("dc-orservices", "ilao", "ohana-sanmateo"))
    seconds = time.perf_counter() - started
    figures["reimport"] = {"services": again, "seconds": seconds, "services_per_second": again / seconds if seconds else 0}
    load_demo(session, count=300)

    have = session.scalar(select(text("count(*)")).select_from(ServiceSearch))
    wanted = max(0, services - have)
    rng = random.Random(seed)
    columns = [c.key for c in ServiceSearch.__table__.columns if c.key != "id"]
    templates = [dict(zip(columns, row)) for row in session.execute(select(*[getattr(ServiceSearch, c) for c in columns]))]
    template_cards = dict(session.execute(select(ServiceCard.service_id, ServiceCard.card)).all())
    hours = {}
    for h in session.scalars(select(ServiceHours)):
        hours.setdefault(h.service_id, []).append((h.day, h.opens_at, h.closes_at))
    orgs = dict(session.execute(select(Service.id, Service.organization_id)).all())
    started = time.perf_counter()
    chunk = 5000
    for start in range(0, wanted, chunk):
        svc_rows, docs, hour_rows, card_rows = [], [], [], []
        for i in range(start, min(wanted, start + chunk)):
            t = templates[rng.randrange(len(templates))]
            sid = stable_id("bench-copy", i)
            name = f"{rng.choice(PREFIXES)} {t['name']} {i}"
            lat, lon = CITIES[rng.randrange(len(CITIES))]
            lat, lon = lat + rng.gauss(0, 0.15), lon + rng.gauss(0, 0.15)
            docs.append({**t, "service_id": sid, "name": name, "latitude": lat, "longitude": lon})
            card_rows.append({"service_id": sid, "card": dict(template_cards[t["service_id"]], id=sid, name=name)})
            svc_rows.append({"id": sid, "name": name, "status": t["status"], "organization_id": orgs.get(t["service_id"]),
                             "description": t["body"][:2000], "published_to": "tenant"})
            hour_rows += [{"service_id": sid, "day": d, "opens_at": o, "closes_at": c} for d, o, c in hours.get(t["service_id"], [])]
        bulk_insert(session, Service, svc_rows)
        bulk_insert(session, ServiceSearch, docs)
        bulk_insert(session, ServiceCard, card_rows)
        if hour_rows:
            bulk_insert(session, ServiceHours, hour_rows)
        if engine.dialect.name == "sqlite":
            ids = [d["service_id"] for d in docs]
            rows = session.execute(select(ServiceSearch.id, ServiceSearch.name, ServiceSearch.body, ServiceSearch.tags)
                                   .where(ServiceSearch.service_id.in_(ids))).all()
            session.execute(text("INSERT INTO service_fts (rowid, name, body, tags) VALUES (:i, :n, :b, :t)"),
                            [{"i": r[0], "n": r[1], "b": r[2], "t": r[3]} for r in rows])
        session.commit()
    if engine.dialect.name == "postgresql":
        # What autovacuum does soon after a bulk load in production: statistics, and
        # the visibility map that lets "open at" read the hours index alone.
        session.commit()
        autocommit = make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
        with autocommit.connect() as conn:
            conn.execute(text("VACUUM ANALYZE"))
        autocommit.dispose()
    else:
        session.execute(text("ANALYZE"))
        session.commit()
    figures["scale"] = {"copies": wanted, "seconds": time.perf_counter() - started,
                        "total": session.scalar(select(text("count(*)")).select_from(ServiceSearch))}
    session.close()
    engine.dispose()
    return figures


def direct_search(engine, params: dict, viewer: dict, exact_limit: int | None) -> int:
    """The service's SQL for one search, run directly: the search statement (``search.build_statement``
    run by ``search.run_statement`` on the understood query, ``search.plan_query``; the spelling lookup
    and the corrected statement for a misspelt query; the relaxed statement when few services match
    every concept), then the page's cards (``views.cards``' query)."""
    from sqlalchemy import bindparam, text
    from sqlalchemy.orm import Session

    from services.directory.query_terms import loosened, synonyms
    from services.directory.search import RELAX_BELOW, build_statement, plan_query, resolve_origin, run_statement, suggest
    from services.directory.taxonomy import TermTree

    with Session(engine) as session:
        origin = resolve_origin(params)
        clauses = [("*", params["open_day"], params["open_time"])] if params.get("open_day") else None
        plan = plan_query(session, params.get("q"))
        sql, binds = build_statement(engine.dialect.name, params, viewer, origin, plan, clauses, exact_limit=exact_limit)
        rows, groups, _ = run_statement(session, sql, binds, plan)
        if not groups and plan is not None:
            corrected = suggest(session, params["q"])
            if corrected:
                plan = plan_query(session, corrected)
                sql, binds = build_statement(engine.dialect.name, params, viewer, origin, plan, clauses, exact_limit=exact_limit)
                rows, groups, _ = run_statement(session, sql, binds, plan)
        if plan is not None and sum(n for *_, n in groups) < RELAX_BELOW:
            loose = loosened(plan, synonyms(), TermTree.load(session))
            if len(loose.concepts) > 1:
                sql, binds = build_statement(engine.dialect.name, params, viewer, origin, loose, clauses,
                                             exact_limit=exact_limit, relaxed=True)
                rows, groups, _ = run_statement(session, sql, binds, loose)
        ids = [r[0] for r in rows]
        if ids:
            session.execute(text("SELECT service_id, card FROM service_card WHERE service_id IN :ids")
                            .bindparams(bindparam("ids", expanding=True)), {"ids": ids}).all()
        return sum(n for *_, n in groups)


def measure(kind: str, url: str, args, vhost_uri: str, data_dir: str, template: str) -> dict:
    from nameko.standalone.rpc import ClusterRpcClient

    from bench.support import free_port
    from services.directory import visibility
    from services.directory.schemas import SearchQuerySchema
    from services.directory.taxonomy import term_id
    from weintervene.config import settings
    from weintervene.context_signing import sign_context
    from weintervene.db import make_engine

    exact_limit = settings().directory_search_exact_limit
    queries = []
    for q in QUERIES:
        q = dict(q)
        if "category" in q:
            q["category"] = term_id("109")
        queries.append(q)
    port = free_port()
    env = {"AMQP_URI": vhost_uri, "WEINTERVENE_DATA_DIR": data_dir, "WEINTERVENE_GATEWAY_ADDRESS": f"127.0.0.1:{port}"}
    if template:
        env["WEINTERVENE_DATABASE_URL_TEMPLATE"] = template
    server = ServerProcess("directory", env, timeout=180)
    try:
        token = server.info
        http = requests.Session()
        headers = {"Authorization": f"Bearer {token}"}
        base = f"http://127.0.0.1:{port}/api/v1/directory/services"
        engine = make_engine(url)
        with ClusterRpcClient(uri=vhost_uri, timeout=60) as rpc:
            # Signed as the gateway signs it (services refuse an unsigned context), for the whole run.
            auth = sign_context(rpc.identity.authenticate(token), lifetime=3600)
            viewer = visibility.viewer_for(auth)
            loaded = [{k: (str(v) if k == "category" else v) for k, v in SearchQuerySchema().load({k: str(v) for k, v in q.items()}).items()} for q in queries]

            def gateway(i):
                r = http.get(base, params=queries[i % len(queries)], headers=headers, timeout=30)
                if r.status_code != 200:
                    raise RuntimeError(f"gateway answered {r.status_code}: {r.text[:200]}")

            def service(i):
                rpc.directory.search(auth, queries[i % len(queries)])

            def direct(i):
                direct_search(engine, loaded[i % len(loaded)], viewer, exact_limit)

            targets = {"direct SQL": direct, "service RPC": service, "gateway HTTP": gateway}
            for fn in targets.values():
                for i in range(args.warmup):
                    fn(i)
            times = {name: [] for name in targets}
            cpu = dict.fromkeys(targets, 0.0)
            by_shape = {}
            done = 0

            def cpu_now(name):
                # Direct SQL runs in this process; the service and the gateway in the server's.
                return time.process_time() if name == "direct SQL" else cpu_seconds(server.proc.pid)

            while done < args.queries:
                n = min(len(queries), args.queries - done)
                for name, fn in targets.items():
                    cpu_before = cpu_now(name)
                    for i in range(done, done + n):
                        started = time.perf_counter()
                        fn(i)
                        times[name].append((time.perf_counter() - started) * 1000)
                        by_shape.setdefault((name, i % len(queries)), []).append(times[name][-1])
                    cpu[name] += cpu_now(name) - cpu_before
                done += n
        engine.dispose()
        shapes = [(queries[k], {name: statistics.median(by_shape.get((name, k), [0])) for name in targets})
                  for k in range(len(queries))]
        rows = {name: summary(v) for name, v in times.items()}
        for name in rows:
            rows[name]["cpu_ms"] = cpu[name] * 1000 / len(times[name])
        return rows, shapes
    finally:
        server.stop()


def run(kind: str, args) -> None:
    vhost = Vhost()
    data_dir = tempfile.mkdtemp(prefix="wi-bench-directory-")
    if kind == "postgres":
        import sqlalchemy

        template = args.postgres_template
        url = template.format(service="directory")
        from sqlalchemy.engine import make_url

        admin = sqlalchemy.create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for service in ("directory", "identity"):
                conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{make_url(template.format(service=service)).database}"'))
        admin.dispose()
    else:
        template = ""
        url = f"sqlite:///{Path(data_dir).resolve() / 'directory.db'}"
    try:
        started = time.perf_counter()
        figures = build(url, args.services)
        print(f"\n=== bench directory on {kind}: {figures['scale']['total']} services "
              f"(built in {time.perf_counter() - started:.0f} s)")
        i, r = figures["import"], figures["reimport"]
        print(f"import of the real datasets: {i['services']} services in {i['seconds']:.1f} s = {i['services_per_second']:.0f} services/s "
              f"(every row of every file; re-import, all unchanged: {r['services_per_second']:.0f} services/s)")
        rows, shapes = measure(kind, url, args, vhost.uri, data_dir, template)
        print(f"{args.queries} searches per target ({len(QUERIES)} query shapes, interleaved), after {args.warmup} warm-up each")
        print_table(rows)
        g, d = rows["gateway HTTP"], rows["direct SQL"]
        print(f"gateway p95 {g['p95']:.1f} ms (target <= {TARGET_P95_MS:.0f}: {'met' if g['p95'] <= TARGET_P95_MS else 'NOT met'}); "
              f"gateway/direct: median {g['median'] / d['median']:.2f}x, p95 {g['p95'] / d['p95']:.2f}x "
              f"(target <= {TARGET_RATIO:.0f}x: {'met' if g['p95'] / d['p95'] <= TARGET_RATIO else 'NOT met'})")
        s = rows["service RPC"]
        print(f"service RPC/direct: median {s['median'] / d['median']:.2f}x, p95 {s['p95'] / d['p95']:.2f}x")
        print(f"CPU per search (PostgreSQL's own excluded): direct SQL {d['cpu_ms']:.1f} ms in this process; "
              f"service RPC {s['cpu_ms']:.1f} ms, gateway HTTP {g['cpu_ms']:.1f} ms in the server process "
              f"(identity, directory and gateway); gateway/direct {g['cpu_ms'] / d['cpu_ms']:.2f}x")
        print("median per query shape (ms): direct SQL / service RPC / gateway HTTP")
        for query, medians in shapes:
            print(f"  {medians['direct SQL']:8.1f} {medians['service RPC']:8.1f} {medians['gateway HTTP']:8.1f}   {query}")
    finally:
        vhost.delete()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench directory", description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=100000, help="directory size after scaling (default 100000)")
    parser.add_argument("--queries", type=int, default=300, help="measured searches per target")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--postgres-template", default=PG_TEMPLATE)
    args = parser.parse_args(argv)
    for kind in (["sqlite", "postgres"] if args.database == "both" else [args.database]):
        run(kind, args)
    return 0
