"""Retention benchmark: a student opt-out until every service confirmed, and a tenant
termination with 1,000 students and 100,000 shares (and at 10% and 50% of that, for linearity).

    python -m bench retention [--opt-outs 30] [--students 1000] [--shares 100000]

Needs RabbitMQ (management API on 15672) and PostgreSQL here, as the test suite
does; runs every service in this process against a vhost and databases of its
own, all dropped at the end. Rows are bulk-inserted with SQL for the setup
(reflected tables, so it follows each service's schema).

With every team's service merged, the opt-out is a real ``scope=student`` request
(identity fences, every service deletes) and the termination a real
``scope=tenant``. While a data service has no deletion handler yet, a stand-in
participant (tests/integration/test_retention.py) holds that service's rows, and
the requests are retention-policy runs (same dispatch, confirmation and completion
path, without identity's fence RPC): the output says which.

Baselines in the same run: a bare nameko RPC round trip (retention.health) and
one SQL INSERT + DELETE of a row on the retention database.
"""
from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import random  # noqa: E402
import string  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from datetime import date, datetime, timezone  # noqa: E402

from nameko import config as nameko_config  # noqa: E402
from nameko.containers import ServiceContainer  # noqa: E402
from nameko.standalone.rpc import ClusterRpcClient  # noqa: E402
from sqlalchemy import (  # noqa: E402
    JSON, Boolean, Date, DateTime, Float, Integer, MetaData, Numeric, String, Text, create_engine, text,
)

from bench.support import summary  # noqa: E402
from tests.support.infra import PostgresDatabases, Vhost, postgres_available  # noqa: E402
from weintervene.config import SERVICES, Settings  # noqa: E402
from weintervene.contracts import DATA_SERVICES  # noqa: E402
from weintervene.deletion import DeletionParticipant  # noqa: E402
from weintervene.runner import build_runner, service_class  # noqa: E402

NOW = datetime.now(timezone.utc)


def percentiles(samples_ms: list[float]) -> dict:
    """{"median", "p95", "p99"} in milliseconds (bench.support.summary's figures)."""
    return summary(samples_ms)


def fmt(stats: dict) -> str:
    return f"median {stats['median']:.2f} ms  p95 {stats['p95']:.2f} ms  p99 {stats['p99']:.2f} ms"


# -- bulk rows for any reflected table ----------------------------------------------------

def _value(column, i: int):
    """A plausible value for a NOT NULL column without a default (unique where it must be)."""
    t = column.type
    if isinstance(t, Boolean):
        return False
    if isinstance(t, (Integer, Numeric, Float)):
        return 0
    if isinstance(t, DateTime):
        return NOW
    if isinstance(t, Date):
        return date.today()
    if isinstance(t, JSON):
        return []
    length = getattr(t, "length", None) or 36
    if isinstance(t, (String, Text)):
        if length >= 36:
            return str(uuid.uuid4())
        return (f"{i:x}" + "".join(random.choices(string.ascii_lowercase, k=length)))[:length]
    return None


def fill(engine, table_name: str, n: int, **overrides) -> list[str]:
    """Insert ``n`` rows in ``table_name`` (overrides per column, callables get the index); returns ids."""
    metadata = MetaData()
    metadata.reflect(bind=engine, only=[table_name])
    table = metadata.tables[table_name]
    rows, ids = [], []
    for i in range(n):
        row = {}
        for column in table.columns:
            if column.name in overrides:
                v = overrides[column.name]
                row[column.name] = v(i) if callable(v) else v
            elif column.primary_key and column.name == "id":
                row[column.name] = str(uuid.uuid4())
            elif not column.nullable and column.server_default is None:
                row[column.name] = _value(column, i)
        rows.append(row)
        ids.append(row.get("id"))
    # Multi-row INSERTs, each under PostgreSQL's 65,535 bind parameters.
    chunk = max(1, 30000 // max(1, len(rows[0]) if rows else 1))
    with engine.begin() as conn:
        for start in range(0, n, chunk):
            conn.execute(table.insert().values(rows[start:start + chunk]))
    return ids


def has_table(engine, name: str) -> bool:
    metadata = MetaData()
    metadata.reflect(bind=engine)
    return name in metadata.tables


# -- the running system -----------------------------------------------------------------------

class System:
    def __init__(self):
        if not postgres_available():
            raise SystemExit("PostgreSQL is needed at 127.0.0.1:5432 (as for the test suite).")
        self.vhost = Vhost()
        self.databases = PostgresDatabases(SERVICES)
        self.folder = tempfile.mkdtemp(prefix="bench-retention-")
        self.settings = Settings(amqp_uri=self.vhost.uri, data_dir=self.folder,
                                 database_url_template=self.databases.template, secret_key="bench")
        nameko_config.setup(self.settings.nameko_config())
        self.runner = build_runner(list(SERVICES))
        self.runner.start()
        self.stand_ins = []
        self.stand_in_names = []
        self.real = all(issubclass(service_class(s), DeletionParticipant) for s in DATA_SERVICES) and all(
            hasattr(service_class("identity"), m) for m in ("fence_subject", "check_student_access"))
        if not self.real:
            from tests.integration.test_retention import stand_in_participant

            for name in DATA_SERVICES:
                if not issubclass(service_class(name), DeletionParticipant):
                    container = ServiceContainer(stand_in_participant(name, self.folder))
                    container.start()
                    self.stand_ins.append(container)
                    self.stand_in_names.append(name)
        self.rpc = ClusterRpcClient(uri=self.settings.amqp_uri, timeout=120)
        self.proxy = self.rpc.start()
        self.retention = create_engine(self.settings.database_url("retention"))

    def engine(self, service):
        return create_engine(self.settings.database_url(service))

    def stand_in_engine(self, service):
        return create_engine(f"sqlite:///{self.folder}/stand_in_{service}.db")

    def stop(self):
        self.rpc.stop()
        for container in self.stand_ins:
            container.stop()
        self.runner.stop()
        self.retention.dispose()
        self.databases.drop()
        self.vhost.delete()

    def wait_completed(self, request_id: str, timeout: float = 600.0) -> float:
        """Seconds until the request is completed (polled on retention's database)."""
        deadline = time.monotonic() + timeout
        with self.retention.connect() as conn:
            while time.monotonic() < deadline:
                status = conn.execute(text("SELECT status FROM deletion_request WHERE id = :i"),
                                      {"i": request_id}).scalar()
                conn.commit()
                if status == "completed":
                    return time.monotonic()
                time.sleep(0.005)
        raise RuntimeError(f"request {request_id} did not complete in {timeout}s")


def admin_auth(tenant_id, role="school_admin"):
    return {"user_id": str(uuid.uuid4()), "tenant_id": tenant_id, "role": role}


# -- scenarios --------------------------------------------------------------------------------

def policy_request(system: System, tenant_id: str) -> str:
    """A retention-policy run for ``tenant_id`` (the branch-only path)."""
    auth = admin_auth(tenant_id)
    system.proxy.retention.create_policy(auth, {"record_kind": "login_records", "max_age_days": 365})
    started = time.monotonic()
    ids = system.proxy.retention.run_due_policies()
    return ids[0], started


def opt_out(system: System, identity, tenant_id: str, verifier: str, student_id: str):
    started = time.monotonic()
    result = system.proxy.retention.request_deletion(admin_auth(tenant_id), {
        "scope": "student", "subject_id": student_id, "reason": "parent_opt_out",
        "verification": {"method": "in_person_photo_id", "verified_by": verifier},
    })
    return result["id"], started


def bench_opt_outs(system: System, n: int) -> list[float]:
    samples = []
    identity = system.engine("identity")
    if system.real:
        [school] = fill(identity, "tenant", 1, kind="school", parent_id=None, status="active")
        [verifier] = fill(identity, "user_account", 1, tenant_id=school, role="teacher",
                          email=lambda i: f"v{uuid.uuid4().hex}@bench.example", is_active=True)
        students = fill(identity, "student", n, tenant_id=school)
        referrals = system.engine("referrals")
        if has_table(referrals, "share"):
            for sid in students:
                fill(referrals, "share", 5, tenant_id=school, student_id=sid, channel="email", sharer_role="teacher")
        for sid in students:
            request_id, started = opt_out(system, identity, school, verifier, sid)
            samples.append((system.wait_completed(request_id) - started) * 1000)
    else:
        for _ in range(n):
            tenant = str(uuid.uuid4())
            request_id, started = policy_request(system, tenant)
            samples.append((system.wait_completed(request_id) - started) * 1000)
    return samples


def bench_termination(system: System, students: int, shares: int) -> tuple[float, dict]:
    """Seconds from the termination request to every service confirmed, and rows deleted."""
    if system.real:
        identity, referrals = system.engine("identity"), system.engine("referrals")
        [district] = fill(identity, "tenant", 1, kind="district", parent_id=None, status="active")
        [school] = fill(identity, "tenant", 1, kind="school", parent_id=district, status="active")
        student_ids = fill(identity, "student", students, tenant_id=school)
        fill(referrals, "share", shares, tenant_id=school, district_id=district, channel="email",
             sharer_role="teacher", student_id=lambda i: student_ids[i % len(student_ids)])
        started = time.monotonic()
        result = system.proxy.retention.request_deletion(
            {"user_id": str(uuid.uuid4()), "tenant_id": str(uuid.uuid4()), "role": "operator"},
            {"scope": "tenant", "subject_id": district, "reason": "contract_ended"})
        request_id = result["id"]
    else:
        tenant = str(uuid.uuid4())
        # The stand-ins hold the rows: identity's students, referrals' shares (where stood in).
        for service, n in (("identity", students), ("referrals", shares)):
            if service in system.stand_in_names:
                fill(system.stand_in_engine(service), "record", n, tenant_id=tenant, id=lambda i: None)
        request_id, started = policy_request(system, tenant)
    elapsed = system.wait_completed(request_id) - started
    with system.retention.connect() as conn:
        counts = {svc: sum((c or {}).values()) for svc, c in conn.execute(text(
            "SELECT service, counts FROM deletion_confirmation WHERE request_id = :i"), {"i": request_id})}
    return elapsed, counts


def stages(system: System) -> dict:
    """Median milliseconds between the audit entries of each completed request (where time goes)."""
    from collections import defaultdict

    times = defaultdict(dict)
    with system.retention.connect() as conn:
        for request_id, event, at, data in conn.execute(text(
                "SELECT request_id, event, at, data FROM audit_entry WHERE request_id IS NOT NULL ORDER BY seq")):
            key = f"confirmed:{(data or {}).get('service')}" if event == "confirmed" else event
            times[request_id].setdefault(key, at)
    gaps = defaultdict(list)
    for events in times.values():
        if "completed" not in events or "dispatched" not in events:
            continue
        start = events["request_created"]
        for key, at in events.items():
            gaps[key].append((at - start).total_seconds() * 1000)
    return {k: round(percentiles(v)["median"], 1) for k, v in gaps.items()}


def baselines(system: System, n: int = 200) -> tuple[dict, dict]:
    rpc, sql = [], []
    for _ in range(n):
        t = time.perf_counter()
        system.proxy.retention.health()
        rpc.append((time.perf_counter() - t) * 1000)
    with system.retention.connect() as conn:
        for _ in range(n):
            t = time.perf_counter()
            conn.execute(text("INSERT INTO processed_event (event_id) VALUES (:e)"), {"e": uuid.uuid4().hex})
            conn.execute(text("DELETE FROM processed_event"))
            conn.commit()
            sql.append((time.perf_counter() - t) * 1000)
    return percentiles(rpc), percentiles(sql)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench retention")
    parser.add_argument("--opt-outs", type=int, default=30)
    parser.add_argument("--students", type=int, default=1000)
    parser.add_argument("--shares", type=int, default=100_000)
    args = parser.parse_args(argv)
    system = System()
    try:
        mode = "real services (scope=student / scope=tenant)" if system.real else (
            f"branch mode: stand-in participants for {', '.join(system.stand_in_names)}, "
            "retention-policy requests (no identity fence RPC)")
        print(f"retention benchmark - {mode}; vhost {system.vhost.name}, databases {system.databases.prefix}_*")
        rpc, sql = baselines(system)
        print(f"baseline RPC round trip (retention.health): {fmt(rpc)}")
        print(f"baseline SQL insert+delete on retention DB:  {fmt(sql)}")
        system.proxy.retention.health()
        bench_opt_outs(system, 3)  # warm-up
        samples = percentiles(bench_opt_outs(system, args.opt_outs))
        print(f"opt-out -> every service confirmed ({args.opt_outs} runs): {fmt(samples)}"
              f"  = {samples['median'] / rpc['median']:.1f}x an RPC round trip (target median < 1000 ms)")
        print(f"  median ms after request_created, per audit entry: {stages(system)}")
        print("termination (students, shares) -> every service confirmed:")
        for fraction in (0.1, 0.5, 1.0):
            students, shares = int(args.students * fraction), int(args.shares * fraction)
            elapsed, counts = bench_termination(system, students, shares)
            rows = sum(counts.values())
            print(f"  {students:>6} students {shares:>7} shares: {elapsed:7.2f} s  rows deleted {rows:>7}  "
                  f"{elapsed / max(rows, 1) * 1e6:8.1f} us/row  {counts}")
        print("(target: < 30 s at 1,000 students and 100,000 shares, linear in the rows)")
    finally:
        system.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
