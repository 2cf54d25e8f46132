"""The import report's skipped rows as CSV: every one, for the CLI's ``--report FILE`` and
the API's ``GET /api/v1/directory/imports/{id}/skipped.csv``.

One line per skipped row (header row = row 1 of its file, as in the JSON report), written
through ``weintervene.spreadsheets`` so a cell copied from a hostile export cannot start a
formula in the operator's spreadsheet.

Example::

    >>> skipped_rows_csv({"skipped_rows": [{"file": "services.csv", "row": 3, "table": "service",
    ...                                     "id": "11", "reason": "organization_id 99 refers to …"}]})
    'file,row,table,id,reason\\r\\nservices.csv,3,service,11,organization_id 99 refers to …\\r\\n'
"""
from __future__ import annotations

import io

from weintervene import spreadsheets

COLUMNS = ("file", "row", "table", "id", "reason")


def write_skipped_rows(report: dict, out) -> int:
    """Every skipped row of ``report`` to the text stream ``out``; returns how many."""
    writer = spreadsheets.writer(out)
    writer.writerow(COLUMNS)
    rows = report.get("skipped_rows") or []
    for skipped in rows:
        writer.writerow(["" if skipped.get(c) is None else skipped.get(c) for c in COLUMNS])
    return len(rows)


def skipped_rows_csv(report: dict) -> str:
    out = io.StringIO()
    write_skipped_rows(report, out)
    return out.getvalue()
