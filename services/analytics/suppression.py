"""Small-count suppression for figures that leave a school.

A report across schools is a table: one row per item (a service, a category,
a channel, a day…), one column per school, a total column (the district or all
consenting schools), and a total row. Every cell or total with
``0 < count < threshold`` is hidden (primary suppression). Then, so that no
hidden figure can be recomputed by subtraction, every additive relation (a row
with its total, a column with its total, the totals with the grand total) that
hides exactly one figure hides one more (complementary suppression): the
smallest positive cell of that relation, else its total, else any cell. This
repeats until no relation hides exactly one figure.

Zero is shown: it identifies nobody, and hiding zeros would hide most of a
sparse table.

Example (threshold 10, two schools)::

    >>> t = suppress({"tutoring": {"A": 3, "B": 20}, "food": {"A": 30, "B": 12}}, ["A", "B"], 10)
    >>> sorted(t.hidden_keys)   # every cell; the totals (23, 42, 33, 32, 65) stay shown
    [('food', 'A'), ('food', 'B'), ('tutoring', 'A'), ('tutoring', 'B')]
    # A's 3 (primary); B's 20, else the row total 23 reveals it; A's 30, else
    # column A's total 33 reveals it; B's 12, else column B's total reveals the 20.
"""
from __future__ import annotations

import dataclasses

TOTAL = "__total__"


@dataclasses.dataclass
class Table:
    """Values of every cell and total, and which of them are hidden."""

    values: dict[tuple, int]
    hidden_keys: set[tuple]

    def value(self, item, column) -> int:
        return self.values.get((item, column), 0)

    def hidden(self, item, column) -> bool:
        return (item, column) in self.hidden_keys

    def shown(self, item, column) -> int | None:
        """The figure to publish: None when hidden."""
        return None if self.hidden(item, column) else self.value(item, column)


def build(matrix: dict, columns: list) -> dict[tuple, int]:
    """All cells, row totals (column TOTAL), column totals (item TOTAL) and the grand total."""
    values: dict[tuple, int] = {}
    for item, row in matrix.items():
        for column in columns:
            values[(item, column)] = int(row.get(column, 0))
        values[(item, TOTAL)] = sum(values[(item, c)] for c in columns)
    for column in [*columns, TOTAL]:
        values[(TOTAL, column)] = sum(values[(item, column)] for item in matrix)
    return values


def relations(items: list, columns: list) -> list[list[tuple]]:
    """Each additive relation as [members..., total]: the members sum to the total."""
    rels = [[*[(i, c) for c in columns], (i, TOTAL)] for i in items]
    rels += [[*[(i, c) for i in items], (TOTAL, c)] for c in columns]
    rels.append([*[(TOTAL, c) for c in columns], (TOTAL, TOTAL)])
    rels.append([*[(i, TOTAL) for i in items], (TOTAL, TOTAL)])
    return rels


def suppress(matrix: dict, columns: list, threshold: int) -> Table:
    """Suppress ``matrix`` ({item: {column: count}}) for publication; see the module doc."""
    values = build(matrix, columns)
    hidden = {key for key, v in values.items() if 0 < v < threshold}
    rels = relations(list(matrix), columns)
    changed = True
    while changed:
        changed = False
        for rel in rels:
            if sum(1 for key in rel if key in hidden) != 1:
                continue
            members, total = rel[:-1], rel[-1]
            visible = [key for key in members if key not in hidden]
            positive = sorted((key for key in visible if values[key] > 0), key=lambda k: (values[k], str(k)))
            if positive:
                choice = positive[0]
            elif total not in hidden:
                choice = total
            else:
                choice = visible[0]
            hidden.add(choice)
            changed = True
    return Table(values, hidden)


def unsuppressed(matrix: dict, columns: list) -> Table:
    """The same table with nothing hidden (a school's own view of itself)."""
    return Table(build(matrix, columns), set())
