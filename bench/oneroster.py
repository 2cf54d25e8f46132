"""OneRoster benchmark: a generated 5,000-student district package imported, against the
roster CSV import of the same students, interleaved in the same run.

    python -m bench oneroster [--students 5000] [--schools 5] [--runs 3] [--postgres-template URL]

Runs identity's import code in this process (``oneroster.import_package`` and
``rosters.import_roster``, what the two RPCs call) on a PostgreSQL database of its own,
migrated by identity's chain and dropped at the end; no broker (the RPC in front of both
is the same). Each run makes a fresh district (its schools, admin and teacher accounts),
then, alternating which goes first: the OneRoster package of the whole district (one
call: parse the zip, check every reference, students, guardians as contacts, enrollments,
serves links) and the roster CSV of each school (one call per school; one row per student
with its guardian as the contact and its class's teacher as staff_email), into a second,
identical district. Then each is re-imported unchanged (the idempotent path). Wall and
this process's CPU seconds (the database server's own CPU is not in it) per phase; the
ratio OneRoster / CSV; the load average at start and end.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import random
import statistics
import string
import sys
import time

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from services.identity import oneroster, rosters
from services.identity.models import Tenant, User
from tests.support.oneroster_package import District
from weintervene.auth import AuthContext, Role
from weintervene.db import ensure_database, make_engine, migrate

DEFAULT_TEMPLATE = "postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"


def build_district(db, names: list[str], teacher_emails: dict, label: str) -> tuple[AuthContext, list[AuthContext], list[Tenant]]:
    district = Tenant(kind="district", name=f"District {label}")
    db.add(district)
    db.flush()
    schools = [Tenant(kind="school", name=n, parent_id=district.id) for n in names]
    db.add_all(schools)
    db.flush()
    admin = User(tenant_id=district.id, email=f"da.{label}@bench.example", display_name="DA", role="district_admin")
    db.add(admin)
    school_admins = []
    for n, school in enumerate(schools):
        sa = User(tenant_id=school.id, email=f"sa{n}.{label}@bench.example", display_name="SA", role="school_admin")
        db.add(sa)
        school_admins.append(sa)
        for email in teacher_emails[n]:
            db.add(User(tenant_id=school.id, email=f"{label}.{email}", display_name="T", role="teacher"))
    db.commit()
    return (AuthContext(user_id=admin.id, tenant_id=district.id, role=Role.DISTRICT_ADMIN),
            [AuthContext(user_id=a.id, tenant_id=s.id, role=Role.SCHOOL_ADMIN) for a, s in zip(school_admins, schools)],
            schools)


def roster_csvs(package: District, schools: int, label: str) -> list[bytes]:
    """The same students as the package, one roster CSV per school (with its dropped columns too)."""
    users = {u["sourcedId"]: u for u in package.users}
    teacher_of_class = {e["classSourcedId"]: e["userSourcedId"] for e in package.enrollments if e["role"] == "teacher"}
    class_of = {e["userSourcedId"]: e["classSourcedId"] for e in package.enrollments if e["role"] == "student"}
    out = []
    for s in range(schools):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["student_key", "first_name", "last_name", "grade", "student_number", "contact_name",
                         "contact_relationship", "contact_email", "contact_mobile", "staff_email", "pronouns", "home_address"])
        for sid in package.student_ids(s):
            u = users[sid]
            g = users[u["agentSourcedIds"]]
            teacher = users[teacher_of_class[class_of[sid]]]
            writer.writerow([sid, u["givenName"], u["familyName"], str(int(u["grades"])), u["identifier"],
                             f"{g['givenName']} {g['familyName']}", "guardian", g["email"], g["sms"],
                             f"{label}.{teacher['email']}", u["pronouns"], u["metadata.homeAddress"]])
        out.append(buffer.getvalue().encode())
    return out


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench oneroster", description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=5000)
    parser.add_argument("--schools", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--teachers-per-school", type=int, default=40)
    parser.add_argument("--postgres-template", default=os.environ.get("WEINTERVENE_BENCH_POSTGRES", DEFAULT_TEMPLATE))
    args = parser.parse_args(argv)
    name = "wi_bench_oneroster_" + "".join(random.choice(string.ascii_lowercase) for _ in range(8))
    url = args.postgres_template.format(name=name, service=name)
    ensure_database(url)
    engine = make_engine(url)
    print(f"load at start: {os.getloadavg()}", flush=True)
    try:
        migrate("identity", engine)
        db = sessionmaker(engine, expire_on_commit=False)()
        per_school = args.students // args.schools
        names = [f"School {n}" for n in range(args.schools)]
        emails = {n: [f"teacher{n}.{t}@sis.example" for t in range(args.teachers_per_school)] for n in range(args.schools)}
        package = District.generate(names, students_per_school=per_school, classes_per_school=args.teachers_per_school,
                                    teacher_emails=emails)
        raw_zip = package.zip()
        figures = {k: {"wall": [], "cpu": []} for k in ("oneroster", "csv", "oneroster_again", "csv_again")}
        print(f"{args.students} students in {args.schools} schools; package zip {len(raw_zip) / 1e6:.2f} MB, "
              f"users.csv {len(package.files()['users.csv']) / 1e6:.2f} MB", flush=True)
        for run in range(args.runs):
            label_a, label_b = f"r{run}a", f"r{run}b"
            district_auth, _, _ = build_district(db, names, emails, label_a)
            # The package's teacher emails carry the run's label so they match this district's accounts.
            run_package = District.generate(names, students_per_school=per_school, classes_per_school=args.teachers_per_school,
                                            teacher_emails={n: [f"{label_a}.{e}" for e in emails[n]] for n in emails})
            run_zip = run_package.zip()
            _, school_auths, _ = build_district(db, names, emails, label_b)
            csvs = roster_csvs(package, args.schools, label_b)

            def import_oneroster():
                files = oneroster.files_of_upload({"package.zip": run_zip})
                result = oneroster.import_package(db, district_auth, oneroster.read_package(files), preview=False,
                                                  contacts_authorised=True)
                assert not result["errors"], result["errors"][:3]
                return result

            def import_csvs():
                results = [rosters.import_roster(db, auth, raw, preview=False) for auth, raw in zip(school_auths, csvs)]
                assert not any(r["errors"] for r in results), [r["errors"][:3] for r in results]
                return results

            order = [("oneroster", import_oneroster), ("csv", import_csvs)]
            if run % 2:
                order.reverse()
            for again in (False, True):
                for kind, fn in order:
                    result, wall, cpu = timed(fn)
                    key = kind + ("_again" if again else "")
                    figures[key]["wall"].append(wall)
                    figures[key]["cpu"].append(cpu)
                    if kind == "oneroster":
                        detail = f"students {result['students']}, links {result['serves_links']}"
                    else:
                        detail = f"created {sum(r['created'] for r in result)}, unchanged {sum(r['unchanged'] for r in result)}"
                    print(f"run {run} {key:<16} {wall:7.2f} s wall {cpu:7.2f} s CPU  {detail}  load {os.getloadavg()[0]:.1f}", flush=True)
        db.close()
        print(f"\n{'median of ' + str(args.runs):<22}{'wall s':>10}{'CPU s':>10}")
        for key, v in figures.items():
            print(f"{key:<22}{statistics.median(v['wall']):>10.2f}{statistics.median(v['cpu']):>10.2f}")
        for a, b in (("oneroster", "csv"), ("oneroster_again", "csv_again")):
            ratio_wall = statistics.median(x / y for x, y in zip(figures[a]["wall"], figures[b]["wall"]))
            ratio_cpu = statistics.median(x / y for x, y in zip(figures[a]["cpu"], figures[b]["cpu"]))
            print(f"ratio {a} / {b}: wall {ratio_wall:.2f}, CPU {ratio_cpu:.2f}")
        print(f"load at end: {os.getloadavg()}")
    finally:
        engine.dispose()
        admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
