"""weintervene.spreadsheets: defusedcsv's escaping plus a leading tab and carriage return."""
from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from weintervene import spreadsheets


def written(row) -> list[str]:
    out = io.StringIO()
    spreadsheets.writer(out).writerow(row)
    return next(csv.reader(io.StringIO(out.getvalue(), newline="")))


@pytest.mark.parametrize("cell", ['=HYPERLINK("https://x.example","y")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1",
                                  "|cmd", "%0A", "+1 217 555 0100"])
def test_a_formula_start_is_escaped_and_reads_back(cell):
    [out] = written([cell])
    assert out.startswith("'") and not spreadsheets.unsafe_cell(out)
    assert spreadsheets.unescape(out) == cell


@pytest.mark.parametrize("value, text", [(-77.03, "-77.03"), ("-77.03", "-77.03"), (-2, "-2"), ("1,234.5", "1,234.5"),
                                         (Decimal("-1.50"), "-1.50"), (-1e-05, "-1e-05"), ("Ana", "Ana"), (None, ""),
                                         ("'tis", "'tis")])
def test_numbers_and_plain_text_are_left_alone(value, text):
    assert written([value]) == [text]
    assert spreadsheets.unescape(text) == text


def test_dict_writer_escapes_values_and_header():
    out = io.StringIO()
    writer = spreadsheets.DictWriter(out, fieldnames=["name", "=x"], lineterminator="\n")
    writer.writeheader()
    writer.writerow({"name": "\t=1", "=x": 5})
    assert out.getvalue() == "name,'=x\n'\t=1,5\n"


def test_no_csv_is_written_any_other_way():
    """Every CSV writer is this module's: a new export with ``csv.writer`` fails here."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    writers = re.compile(r"\bcsv\.(writer|DictWriter)\s*\(")
    found = [f"{path.relative_to(root)}:{n}"
             for folder in ("services", "weintervene", "gateway") for path in (root / folder).rglob("*.py")
             if path.name != "spreadsheets.py"
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1) if writers.search(line)]
    assert not found, f"write CSV with weintervene.spreadsheets: {found}"
