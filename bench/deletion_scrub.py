"""Deletion scrub: what rewriting a table after a deletion (VACUUM FULL) costs at realistic
sizes, against plain VACUUM, and how long it holds the table's readers off.

    python -m bench deletion_scrub [--shares 100000] [--students 100000] [--runs 3]

Needs PostgreSQL here (as the test suite does). Makes two scratch databases with
referrals' and identity's schemas (their migrations), fills them with SQL (every share
with its referral, status history, delivery and attempt, recipient; a tenth with a note;
students with two contacts each), then, per run, deletes one student's rows and times
each way of vacuuming the tables, while a reader looks rows up by id every 5 ms on
another connection: its slowest lookup is how long the rewrite's ACCESS EXCLUSIVE lock
held the table. The databases are dropped at the end.
"""
from __future__ import annotations

import argparse
import statistics
import threading
import time

from sqlalchemy import text

from tests.support.infra import scratch_postgres_database
from weintervene.db import make_engine, migrate


def fill_referrals(engine, shares: int) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TEMP TABLE new_share ON COMMIT DROP AS SELECT gen_random_uuid()::text AS id, "
                          "g AS i FROM generate_series(0, :n - 1) AS g"), {"n": shares})
        conn.execute(text(
            "INSERT INTO share (id, tenant_id, district_id, sharer_id, sharer_role, student_id, channel, language, "
            "note, created_at) SELECT id, md5(mod(i, 50)::text)::uuid::text, NULL, gen_random_uuid()::text, "
            "'teacher', md5(mod(i, 50000)::text || 's')::uuid::text, 'email', 'en', "
            "CASE WHEN mod(i, 10) = 0 THEN 'Asked about tutoring after school, call the mother' END, now() "
            "FROM new_share"))
        conn.execute(text("INSERT INTO share_recipient (share_id, contact_id) "
                          "SELECT id, gen_random_uuid()::text FROM new_share"))
        conn.execute(text(
            "INSERT INTO referral (id, share_id, position, tenant_id, service_id, service_info, status, "
            "last_update_at, created_at) SELECT gen_random_uuid()::text, id, 0, md5(mod(i, 50)::text)::uuid::text, "
            "gen_random_uuid()::text, CAST('{\"name\": \"Homework Club\", \"phone\": \"217-555-0100\"}' AS json), "
            "'requested', now(), now() FROM new_share"))
        conn.execute(text(
            "INSERT INTO status_change (id, referral_id, status, changed_by_tenant_id, at) "
            "SELECT gen_random_uuid()::text, r.id, 'requested', r.tenant_id, now() FROM referral r"))
        conn.execute(text(
            "INSERT INTO delivery (id, share_id, purpose, channel, recipient_kind, recipient_id, language, state, "
            "attempts, next_attempt_at, created_at) SELECT gen_random_uuid()::text, id, 'share', 'email', "
            "'contact', gen_random_uuid()::text, 'en', 'sent', 1, now(), now() FROM new_share"))
        conn.execute(text(
            "INSERT INTO delivery_attempt (id, delivery_id, number, started_at, finished_at, result) "
            "SELECT gen_random_uuid()::text, d.id, 1, now(), now(), 'sent' FROM delivery d"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def fill_identity(engine, students: int) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenant (id, kind, name, timezone, student_ids_enabled, analytics_consent, "
                          "suppression_threshold, status, created_at) VALUES ('t', 'school', 'School', "
                          "'America/New_York', true, false, 10, 'active', now())"))
        conn.execute(text(
            "INSERT INTO student (id, tenant_id, roster_key, first_name, last_name, grade, date_of_birth, "
            "preferred_language, created_at, updated_at) SELECT md5(g::text || 's')::uuid::text, 't', 'K' || g, "
            "'First' || g, 'Last' || g, '7', date '2012-01-01' + mod(g, 365), 'en', now(), now() "
            "FROM generate_series(0, :n - 1) g"), {"n": students})
        conn.execute(text(
            "INSERT INTO family_contact (id, student_id, tenant_id, name, relationship_to_student, email, mobile, "
            "preferred_language, authorised) SELECT gen_random_uuid()::text, s.id, 't', 'Parent ' || s.last_name, "
            "rel, lower(s.last_name) || '.' || rel || '@family.example', '+1555' || lpad(mod(abs(hashtext(s.id "
            "|| rel)), 10000000)::text, 7, '0'), 'en', true FROM student s, (VALUES ('mother'), ('father')) r(rel)"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


class Reader(threading.Thread):
    """Looks a row of ``table`` up by id every 5 ms until stopped; keeps the slowest lookup."""

    def __init__(self, engine, table: str, ids: list[str]):
        super().__init__(daemon=True)
        self.engine, self.table, self.ids = engine, table, ids
        self.stop_event, self.slowest, self.lookups = threading.Event(), 0.0, 0

    def run(self):
        with self.engine.connect() as conn:
            n = 0
            while not self.stop_event.is_set():
                started = time.perf_counter()
                conn.execute(text(f"SELECT * FROM {self.table} WHERE id = :i"), {"i": self.ids[n % len(self.ids)]})
                conn.rollback()
                self.slowest = max(self.slowest, time.perf_counter() - started)
                self.lookups += 1
                n += 1
                time.sleep(0.005)


def timed_vacuum(engine, statement: str, table: str, reader_ids: list[str]) -> tuple[float, float]:
    """Seconds ``statement`` took and the reader's slowest lookup meanwhile."""
    reader = Reader(engine, table, reader_ids)
    reader.start()
    time.sleep(0.05)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        started = time.perf_counter()
        conn.execute(text(statement))
        took = time.perf_counter() - started
    reader.stop_event.set()
    reader.join()
    return took, reader.slowest


def size_mb(engine, table: str) -> float:
    with engine.connect() as conn:
        return conn.scalar(text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": table}) / 1e6


def bench_tables(engine, tables: dict[str, str], delete_one, runs: int) -> None:
    """``tables``: table -> the table its reader looks up (itself)."""
    with engine.connect() as conn:
        ids = {t: list(conn.scalars(text(f"SELECT id FROM {t} ORDER BY random() LIMIT 200"))) for t in tables}
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(runs):
        for table in tables:
            for how in ("VACUUM", "VACUUM (INDEX_CLEANUP ON)", "VACUUM (FULL)"):
                delete_one()
                results.setdefault((table, how), []).append(timed_vacuum(engine, f"{how} {table}", table, ids[table]))
    for table in tables:
        print(f"  {table} ({size_mb(engine, table):.1f} MB with its indexes and TOAST):")
        for how in ("VACUUM", "VACUUM (INDEX_CLEANUP ON)", "VACUUM (FULL)"):
            samples = results[(table, how)]
            took = statistics.median(s[0] for s in samples) * 1000
            stall = max(s[1] for s in samples) * 1000
            print(f"    {how:<27} median {took:7.0f} ms; a reader's slowest lookup meanwhile {stall:6.0f} ms")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench deletion_scrub")
    parser.add_argument("--shares", type=int, default=100_000)
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    with scratch_postgres_database("wit_scrub_referrals") as referrals_url, \
            scratch_postgres_database("wit_scrub_identity") as identity_url:
        referrals, identity = make_engine(referrals_url), make_engine(identity_url)
        migrate("referrals", referrals)
        migrate("identity", identity)
        started = time.perf_counter()
        fill_referrals(referrals, args.shares)
        fill_identity(identity, args.students)
        print(f"filled {args.shares} shares and {args.students} students (2 contacts each) "
              f"in {time.perf_counter() - started:.1f} s")

        def delete_a_students_shares():
            with referrals.begin() as conn:
                student = conn.scalar(text("SELECT student_id FROM share WHERE note IS NOT NULL LIMIT 1"))
                shares = "SELECT id FROM share WHERE student_id = :s"
                referral_ids = f"SELECT id FROM referral WHERE share_id IN ({shares})"
                conn.execute(text(f"DELETE FROM status_change WHERE referral_id IN ({referral_ids})"), {"s": student})
                conn.execute(text(f"DELETE FROM delivery_attempt WHERE delivery_id IN "
                                  f"(SELECT id FROM delivery WHERE share_id IN ({shares}))"), {"s": student})
                for table in ("delivery", "referral", "share_recipient"):
                    conn.execute(text(f"DELETE FROM {table} WHERE share_id IN ({shares})"), {"s": student})
                conn.execute(text("DELETE FROM share WHERE student_id = :s"), {"s": student})

        def delete_a_student():
            with identity.begin() as conn:
                student = conn.scalar(text("SELECT id FROM student LIMIT 1"))
                conn.execute(text("DELETE FROM family_contact WHERE student_id = :s"), {"s": student})
                conn.execute(text("DELETE FROM student WHERE id = :s"), {"s": student})

        print("referrals, after deleting one student's shares:")
        bench_tables(referrals, {t: t for t in ("share", "referral", "status_change", "delivery",
                                                "delivery_attempt")}, delete_a_students_shares, args.runs)
        print("identity, after deleting one student and the contacts:")
        bench_tables(identity, {"student": "student", "family_contact": "family_contact"}, delete_a_student, args.runs)
        referrals.dispose()
        identity.dispose()
    return 0
