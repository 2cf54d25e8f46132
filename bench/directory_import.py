"""Directory import rate on a real export made large, against a raw bulk load of the same rows.

The shared DC directory (HSDS 2.0-style CSVs, 501 services, ~14.5 rows a service over 15 files)
is copied under new ids to ``--services`` (``bench.scaled_export``) and imported with
``importer.import_path`` into a fresh, migrated directory database: every row read, cleaned,
checked, written with its history and indexed for search, in one transaction. Then, in the same
run and on the same database server, the baseline loads the same CSV files raw into staging
tables of text columns: PostgreSQL ``COPY … FROM STDIN (FORMAT csv)`` through the DBAPI
connection (psycopg2's ``copy_expert``), SQLite one ``executemany`` per file. A re-import of the same
files (every row unchanged) is timed as well.

Printed per size and database: services/s, wall and CPU (this process; PostgreSQL's own CPU
is in neither), and the ratio to the baseline. Targets (issue 15): 4,000 services < 10 s on
SQLite; >= 2,000 services/s on PostgreSQL for a large import.

    python -m bench directory_import [--services 4000,100000] [--database sqlite|postgres|both]
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import shutil
import tempfile
import time
from pathlib import Path



PG_TEMPLATE = "postgresql+psycopg2://postgres@127.0.0.1:5432/wi_bench_import_{size}"
TARGET_SQLITE_4K_S = 10.0
TARGET_PG_RATE = 2000.0


def _fresh_session(url: str):
    """A migrated directory database with Open Eligibility (``bench.relevance``'s), and the
    ZIP index built as the service builds it at start, not inside an import."""
    from bench.relevance import directory_session
    from services.directory.geo import postcode_centroid

    engine, session = directory_session(url)
    postcode_centroid("20001")
    return engine, session


def _drop_pg(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}"'))
    admin.dispose()


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def raw_load(engine, folder: Path) -> int:
    """The baseline: every CSV row of ``folder`` into a staging table of text columns, raw."""
    rows = 0
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for path in sorted(folder.glob("*.csv")):
            with path.open(newline="", encoding="utf-8") as handle:
                header = next(csv.reader(handle))
            table = f"raw_{path.stem}"
            columns = ", ".join(f'"{c}" text' for c in header)
            cursor.execute(f'DROP TABLE IF EXISTS "{table}"')
            cursor.execute(f'CREATE TABLE "{table}" ({columns})')
            if engine.dialect.name == "postgresql":
                sql = f'COPY "{table}" FROM STDIN WITH (FORMAT csv, HEADER true)'
                with path.open("rb") as handle:
                    cursor.copy_expert(sql, handle)  # psycopg2's COPY
                cursor.execute(f'SELECT count(*) FROM "{table}"')
                rows += cursor.fetchone()[0]
            else:
                with path.open(newline="", encoding="utf-8") as handle:
                    reader = csv.reader(handle)
                    next(reader)
                    records = [(r + [""] * len(header))[:len(header)] for r in reader]
                marks = ", ".join("?" for _ in header)
                cursor.executemany(f'INSERT INTO "{table}" VALUES ({marks})', records)
                rows += len(records)
        raw.commit()
    finally:
        raw.close()
    return rows


def measure(kind: str, size: int, work: Path, template: str) -> dict:
    from services.directory.importer import import_path

    from bench.scaled_export import write_scaled_dc

    folder = work / f"dc-{size}"
    if not folder.exists():
        write_scaled_dc(folder, math.ceil(size / 501))
    url = template.format(size=size) if kind == "postgres" else f"sqlite:///{work}/directory-{size}.db"
    if kind == "postgres":
        _drop_pg(url)
    elif Path(url[len("sqlite:///"):]).exists():
        os.remove(url[len("sqlite:///"):])
    engine, session = _fresh_session(url)
    try:
        load = os.getloadavg()[0]
        report, wall, cpu = timed(lambda: import_path(session, folder, source=f"dc-scaled-{size}"))
        services = report["totals"]["service"]["created"]
        rows = sum(t["created"] for t in report["totals"].values())
        _again, rewall, recpu = timed(lambda: import_path(session, folder, source=f"dc-scaled-{size}"))
        session.close()
        raw_rows, base_wall, base_cpu = timed(lambda: raw_load(engine, folder))
    finally:
        session.close()
        engine.dispose()
        if kind == "postgres":
            _drop_pg(url)
    return {"kind": kind, "size": size, "services": services, "rows": rows, "wall": wall, "cpu": cpu,
            "rewall": rewall, "recpu": recpu, "raw_rows": raw_rows, "base_wall": base_wall, "base_cpu": base_cpu,
            "load": load, "load_after": os.getloadavg()[0]}


def show(r: dict) -> None:
    rate = r["services"] / r["wall"]
    print(f"{r['kind']:<8} {r['services']:>7} services ({r['rows']:>8} rows): import {r['wall']:7.1f} s wall, "
          f"{r['cpu']:6.1f} s CPU = {rate:6.0f} services/s ({r['services'] / r['cpu']:6.0f}/s of CPU); "
          f"re-import (unchanged) {r['rewall']:6.1f} s wall, {r['recpu']:6.1f} s CPU")
    print(f"{'':<8} baseline raw {'COPY' if r['kind'] == 'postgres' else 'executemany'} of the same "
          f"{r['raw_rows']} CSV rows: {r['base_wall']:6.2f} s wall, {r['base_cpu']:5.2f} s CPU; "
          f"import / baseline = {r['wall'] / r['base_wall']:5.1f}x wall   (load {r['load']:.1f} -> {r['load_after']:.1f})")
    if r["kind"] == "sqlite" and r["size"] <= 4100:
        print(f"{'':<8} target: 4,000 services < {TARGET_SQLITE_4K_S:.0f} s on SQLite: "
              f"{'met' if r['wall'] < TARGET_SQLITE_4K_S else 'NOT met'}")
    if r["kind"] == "postgres":
        print(f"{'':<8} target: >= {TARGET_PG_RATE:.0f} services/s on PostgreSQL: {'met' if rate >= TARGET_PG_RATE else 'NOT met'}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench directory_import", description=__doc__.splitlines()[0])
    parser.add_argument("--services", default="4000,100000", help="comma-separated sizes (default 4000,100000)")
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--postgres-template", default=PG_TEMPLATE, help="database URL with {size}")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.services.split(",") if s.strip()]
    kinds = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    work = Path(tempfile.mkdtemp(prefix="wi-bench-import-"))
    try:
        for size in sizes:
            for kind in kinds:
                if kind == "sqlite" and size > 20000:
                    continue  # the SQLite target is the 4,000-service export
                show(measure(kind, size, work, args.postgres_template))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0
