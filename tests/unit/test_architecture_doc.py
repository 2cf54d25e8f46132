"""docs/ARCHITECTURE.md says where each invariant is enforced, by file and function: those names
must stay true as the code moves. A renamed function or a moved module fails here until the
table follows.

A cell reads ``path.py: `name`, `Class.method`; other.py: `name` ``; every name after a file must
be written in that file (a ``def``, ``class`` or assignment, or for ``Class.method`` both).

Example::

    | **Least access** | `weintervene/auth.py`: `STUDENT_DATA_ROLES`, `AuthContext.require` |
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
TOKEN = re.compile(r"`([^`]+)`")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def enforcement_rows() -> list[tuple[str, str]]:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    start = text.index("## The invariants, and where each is enforced")
    end = text.index("\n## ", start + 1)
    rows = []
    for line in text[start:end].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("**"):
            rows.append((cells[0], cells[1]))
    return rows


def references(cell: str) -> list[tuple[str, list[str]]]:
    """[(file, [names…])] of one cell; a file given as a pattern (``services/*/…``) is skipped."""
    found = []
    for segment in cell.split(";"):
        tokens = TOKEN.findall(segment)
        if not tokens or not tokens[0].endswith(".py") or "*" in tokens[0]:
            continue
        file, *names = tokens
        found.append((file, [n for n in names if IDENTIFIER.match(n)]))
    return found


def defines(source: str, name: str) -> bool:
    return re.search(rf"^\s*(def|class)\s+{name}\b|^\s*{name}\s*[:=]", source, re.M) is not None


def test_the_table_names_every_invariant():
    names = [name for name, _ in enforcement_rows()]
    for invariant in ("Tenant isolation", "Least access", "De-identified analytics", "Data minimisation",
                      "Deletion complete and recorded", "Nothing lost"):
        assert any(invariant in name for name in names), f"{invariant} is missing from docs/ARCHITECTURE.md"


@pytest.mark.parametrize("invariant,cell", enforcement_rows(), ids=lambda v: v[:30] if isinstance(v, str) else v)
def test_each_place_named_exists(invariant, cell):
    refs = references(cell)
    assert refs, f"{invariant}: no file named"
    for file, names in refs:
        path = ROOT / file
        assert path.is_file(), f"{invariant}: {file} does not exist"
        source = path.read_text(encoding="utf-8")
        for name in names:
            parts = name.split(".")
            assert all(defines(source, part) for part in parts), f"{invariant}: {file} has no {name}"
