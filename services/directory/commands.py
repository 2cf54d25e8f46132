"""The directory's ``weintervene`` commands: ``import-directory`` and ``export-directory``.

Declared in ``pyproject.toml`` as the ``weintervene.commands`` entry point ``directory``, so the
shared library's CLI (:mod:`weintervene.cli`) carries them without importing the directory.

Example::

    weintervene import-directory data/ohana --source ohana
    weintervene export-directory out/ --category 1102
"""
from __future__ import annotations

import json
import sys

from weintervene.config import Settings


def register(subparsers) -> None:
    """Add the directory's commands to ``weintervene``'s subcommand parser."""
    imp = subparsers.add_parser("import-directory", help="import HSDS 3.0 CSV/JSON or HSDS 2.0/1.x/Ohana CSV files")
    imp.add_argument("path", help="a folder of CSV files, a datapackage.json, a .zip or an HSDS .json file")
    imp.add_argument("--source", help="the package's identity, which keeps re-imports on the same records: needed when it has no "
                     "datapackage.json with an id or a name (never taken from the folder or file name)")
    imp.add_argument("--layout", choices=["hsds3-csv", "hsds-json", "hsds2-csv", "hsds1-csv", "ohana-csv"])
    imp.add_argument("--json", action="store_true", help="print the whole report as JSON")
    imp.add_argument("--show-skipped", type=int, default=20, help="skipped rows to list (default 20)")
    imp.add_argument("--report", metavar="FILE", help="write every skipped row (file, row, table, id, reason) to FILE as CSV")
    imp.set_defaults(func=cmd_import_directory)

    exp = subparsers.add_parser("export-directory", help="export the global directory as HSDS 3.0 (CSV datapackage or JSON)")
    exp.add_argument("path", help="a folder (csv) or a .json file")
    exp.add_argument("--format", choices=["csv", "json"], default="csv")
    exp.add_argument("--category", help="only services in this taxonomy term (and below it)")
    exp.set_defaults(func=cmd_export_directory)


def _directory_session(settings):
    """A session on the directory's own database, migrated, with its taxonomy loaded."""
    from sqlalchemy.orm import Session

    from services.directory.taxonomy import load_open_eligibility
    from weintervene.db import ensure_database, make_engine, migrate

    url = settings.database_url("directory")
    ensure_database(url)
    engine = make_engine(url)
    migrate("directory", engine)
    session = Session(engine)
    load_open_eligibility(session)
    return session


def cmd_import_directory(args) -> int:
    from pathlib import Path

    from services.directory.importer import import_path
    from services.directory.layouts import LayoutError
    from weintervene.runner import configure

    settings = Settings.from_env()
    configure(settings)
    session = _directory_session(settings)
    bar = None

    def progress(done, total):
        nonlocal bar
        if bar is None and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(total=total, unit="row", desc="import")
        if bar is not None:
            bar.update(done - bar.n)

    try:
        report = import_path(session, Path(args.path), source=args.source, progress=progress, layout=args.layout)
    except LayoutError as exc:
        print(f"cannot import {args.path}: {exc}", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()
        session.close()
    if args.report:
        from services.directory.import_report import write_skipped_rows

        with open(args.report, "w", newline="", encoding="utf-8") as out:
            written = write_skipped_rows(report, out)
        print(f"wrote {written} skipped rows to {args.report}", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(f"{report['layout']}: created {report['created']}, updated {report['updated']}, "
              f"unchanged {report['unchanged']}, skipped {report['skipped']}")
        for table, t in report["totals"].items():
            print(f"  {table:<20} created {t['created']:>6}  updated {t['updated']:>6}  unchanged {t['unchanged']:>6}  skipped {t['skipped']:>6}")
        print("files:")
        for f in report["files"]:
            rows = "-" if f["rows"] is None else f["rows"]
            if f["status"] == "read" and f["table"]:
                line = (f"  {f['file']:<36} read as {f['table']}: {rows} rows in, created {f['created']}, "
                        f"updated {f['updated']}, unchanged {f['unchanged']}, skipped {f['skipped']}")
                for table, d in f["derived"].items():
                    line += f"; gave {table}: created {d['created']}, updated {d['updated']}, unchanged {d['unchanged']}, skipped {d['skipped']}"
            elif f["status"] == "read":
                line = f"  {f['file']:<36} read ({f['note']})"
            else:
                line = f"  {f['file']:<36} NOT UNDERSTOOD, {rows} rows not imported: {f['note']}"
            if f.get("encoding"):
                line += f" [read in {f['encoding']}]"
            print(line)
        for file, columns in report["columns_dropped"].items():
            print(f"  dropped from {file}: {', '.join(columns)}")
        for note, n in report["notes"].items():
            print(f"  note: {note} ({n})")
        for s in report["skipped_rows"][: args.show_skipped]:
            print(f"  skipped {s['file']} row {s['row']}: {s['reason']}")
        hidden = len(report["skipped_rows"]) - args.show_skipped
        if hidden > 0:  # never a silent cut: say how many and where the rest goes
            print(f"  … and {hidden} more skipped rows (--show-skipped N lists more; --report FILE writes them all)")
    return 0


def cmd_export_directory(args) -> int:
    from pathlib import Path

    from services.directory.exporter import export_csv, export_json, services_in_category
    from weintervene.runner import configure

    settings = Settings.from_env()
    configure(settings)
    session = _directory_session(settings)
    try:
        ids = services_in_category(session, args.category) if args.category else None
        if args.format == "json":
            n = export_json(session, Path(args.path), ids)
            print(f"wrote {n} services to {args.path}")
        else:
            problems: list = []
            counts = export_csv(session, Path(args.path), ids, problems=problems)
            print(f"wrote {args.path}/datapackage.json: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
            # Written anyway (nothing lost), but a validator of HSDS 3.1 will name these rows.
            for p in problems:
                print(f"{p['file']} row {p['row']} ({p['id']}): {p['field']} breaks the spec's {p['reason']!r} constraint",
                      file=sys.stderr)
    finally:
        session.close()
    return 0
