"""Reading one CSV file of an import: its encoding found from its bytes, each damaged row
reported on its own line instead of failing (or silently garbling) the whole file.

Encoding, decided from the bytes in this order (:func:`decode`):

1. a byte-order mark: UTF-8 (``EF BB BF``), UTF-16 LE/BE (``FF FE`` / ``FE FF``), UTF-32.
   Excel's "Unicode text" and many Windows tools write UTF-16 with a BOM. A file with a BOM
   that does not decode in that encoding is refused as a whole (:class:`LayoutError`): the
   mark says what it should be, so there is nothing to guess.
2. no BOM but every other byte NUL in the first 4 KiB: UTF-16 without a mark (LE or BE by
   where the NULs are).
3. strict UTF-8. Any file that decodes as UTF-8 is read as UTF-8: bytes of Windows-1252
   text almost never form valid UTF-8 sequences by chance.
4. it does not decode: the invalid bytes are counted against the valid multi-byte UTF-8
   sequences. More valid sequences than invalid bytes: a UTF-8 file with damaged rows (each
   row holding an invalid byte is skipped and reported, the others read as they are).
   Otherwise Windows-1252, the encoding of US Windows exports (a superset of Latin-1 for
   printable text; its five undefined bytes mark a row damaged).

What it cannot know: Windows-1252 and Latin-1/ISO-8859-15/Mac Roman give different
characters for the same bytes and nothing in a CSV says which was meant; we assume
Windows-1252 (the 211 exports we know are US Windows ones). A file mixing encodings row by
row is read in the majority's encoding; the others' rows are skipped with their reason
(a UTF-8 file with a few Windows-1252 rows) or read as mojibake that ftfy repairs later
(``importer.repair_text``, counted). The encoding chosen is in the report per file.

Rows, after decoding: a row with more cells than the header has columns (a stray delimiter
or quote shifted it, even when the cell pushed out is blank), a cell holding a NUL byte or a byte the encoding does not
define, or a cell over the csv module's size limit is skipped with its row number and the
reason; the rows after it are read as usual. Rows shorter than the header are kept, the
missing cells blank (real exports drop trailing empty cells). A header naming one column
twice makes the file unreadable as a table (:class:`LayoutError`).

Example::

    >>> table = read_table(Path("services.csv"))      # written by Excel as "CSV (Windows)"
    >>> table.encoding, table.header[:2], table.problems
    ('windows-1252', ['id', 'name'], [])
"""
from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import re
from pathlib import Path

from services.directory.exceptions import LayoutError
from weintervene import spreadsheets

BOMS = (  # longest first: the UTF-32 LE mark begins with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Bytes not valid in the chosen encoding come through as lone surrogates U+DC80..U+DCFF
# (the ``surrogateescape`` handler), which no validly decoded text contains.
UNDECODED = re.compile("[\udc80-\udcff]")
# A valid multi-byte UTF-8 sequence (for counting evidence of UTF-8 in a file that fails strict decoding).
UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
INVALID_BYTE = re.compile(rb"[\x80-\xff]")
HEADER_PREFIX = 64 * 1024


@dataclasses.dataclass
class CsvTable:
    """One file's header and rows; ``records`` are (row number, cells by column) with the
    header as row 1; ``problems`` the rows skipped before any mapping, (row number, id, reason)."""
    header: list[str]
    records: list[tuple[int, dict]]
    problems: list[tuple[int, str, str]]
    encoding: str

    @property
    def rows(self) -> int:
        """Every record of the file, read or skipped (blank lines are no records)."""
        return len(self.records) + len(self.problems)


def decode(data: bytes, name: str, final: bool = True) -> tuple[str, str]:
    """(text, encoding label) of a file's bytes, following the module's rules; ``final=False``
    for the first bytes of a file only (a character cut at the end is left out, not an error).

    Example: decode(b"\\xff\\xfen\\x00a\\x00", "x.csv") -> ("na", "utf-16-le (BOM)")
    """
    for bom, codec in BOMS:
        if data.startswith(bom):
            try:
                return _decode(data[len(bom):], codec, final), f"{codec} (BOM)"
            except UnicodeDecodeError as exc:
                raise LayoutError(f"{name} starts with a {codec} byte-order mark but is not valid {codec} "
                                  f"(at byte {exc.start + len(bom)}): the file is damaged or mislabelled") from None
    utf16 = _utf16_without_bom(data)
    if utf16:
        try:
            return _decode(data, utf16, final), f"{utf16} (no BOM, told by its NUL bytes)"
        except UnicodeDecodeError:
            pass  # not UTF-16 after all: read it as bytes of a single-byte encoding below
    try:
        return _decode(data, "utf-8", final), "utf-8"
    except UnicodeDecodeError:
        pass
    valid = len(UTF8_SEQUENCE.findall(data))
    invalid = len(INVALID_BYTE.findall(UTF8_SEQUENCE.sub(b"", data)))
    if valid >= invalid:
        return _decode(data, "utf-8", final, "surrogateescape"), "utf-8 (with invalid bytes)"
    return data.decode("cp1252", errors="surrogateescape"), "windows-1252"


def _decode(data: bytes, codec: str, final: bool, errors: str = "strict") -> str:
    return codecs.getincrementaldecoder(codec)(errors).decode(data, final=final)


def _utf16_without_bom(data: bytes) -> str | None:
    sample = data[:4096]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


def _header_of(cells: list[str], name: str) -> list[str]:
    header = [c.strip() for c in cells]
    seen = set()
    for column in header:
        if column and column in seen:
            raise LayoutError(f"{name}: the header names the column {column!r} twice, so its cells cannot be told apart")
        seen.add(column)
    bad = next((c for c in header if UNDECODED.search(c) or "\x00" in c), None)
    if bad is not None:
        raise LayoutError(f"{name}: the header holds bytes that are not text in any encoding we read; not a CSV table")
    return header


def read_table(path: Path) -> CsvTable:
    """Every record of the CSV file at ``path``, damaged ones reported rather than read.

    Example: read_table(Path("phones.csv")).problems -> [(7, "12", "has 9 cells, the header names 6 columns…")]
    """
    path = Path(path)
    text, encoding = decode(path.read_bytes(), path.name)
    lines = io.StringIO(text, newline="")  # splits on \n, \r\n, \r only: U+2028 inside a cell stays there
    reader = csv.reader(lines)
    header: list[str] | None = None
    records, problems = [], []
    number = 1
    while True:
        first_line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a cell over the size limit: this record only, the reader goes on
            if header is None:
                raise LayoutError(f"{path.name} is not a readable CSV file: {exc}") from None
            number += 1
            problems.append((number, "", f"line {first_line}: {exc}"))
            continue
        if not cells or (len(cells) == 1 and not cells[0].strip() and header is not None):
            continue  # a blank line is no record
        if header is None:
            header = _header_of(cells, path.name)
            continue
        number += 1
        raw_id = (cells[header.index("id")].strip() if "id" in header and header.index("id") < len(cells) else "")
        reason = _damage(cells, header, first_line, reader.line_num, encoding)
        if reason:
            problems.append((number, "" if UNDECODED.search(raw_id) else raw_id, reason))
            continue
        record = {column: spreadsheets.unescape(cells[i]) if i < len(cells) else "" for i, column in enumerate(header)}
        records.append((number, record))
    return CsvTable(header=header or [], records=records, problems=problems, encoding=encoding)


def _damage(cells: list[str], header: list[str], first_line: int, last_line: int, encoding: str) -> str | None:
    lines = f"line {first_line}" if first_line == last_line else f"lines {first_line}-{last_line}"
    if len(cells) > len(header):  # even blank extra cells: its cells moved one column or more
        return (f"{lines}: has {len(cells)} cells, the header names {len(header)} columns "
                "(a stray delimiter or quote shifts its cells)")
    for column, cell in zip(header, cells):
        if "\x00" in cell:
            return f"{lines}: {column or 'a cell'} holds a NUL byte"
        undecoded = UNDECODED.search(cell)
        if undecoded:
            byte = ord(undecoded.group()) - 0xDC00
            return f"{lines}: {column or 'a cell'} holds the byte 0x{byte:02X}, which is not text in {encoding.split(' ')[0]}"
    return None


def read_header(path: Path) -> list[str]:
    """The header of the CSV file at ``path`` from its first 64 KiB (for detecting a layout
    without reading a large file whole); ``LayoutError`` when it is no readable CSV header."""
    path = Path(path)
    with path.open("rb") as handle:
        data = handle.read(HEADER_PREFIX)
    text, _ = decode(data, path.name, final=len(data) < HEADER_PREFIX)
    try:
        first = next((cells for cells in csv.reader(io.StringIO(text, newline="")) if cells), [])
    except csv.Error as exc:
        raise LayoutError(f"{path.name} is not a readable CSV file: {exc}") from None
    return _header_of(first, path.name)
