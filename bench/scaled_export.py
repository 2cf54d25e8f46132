"""A real export made large: the shared DC directory (HSDS 2.0-style CSVs) copied ``copies``
times under new ids, for import benchmarks (501 services a copy: 8 copies ~ 4,000 services,
200 ~ 100,000).

Every ``id`` and ``*_id`` cell gets the copy's suffix, so each copy is a separate set of
organizations, services, locations… with the same text, hours and taxonomy links; the
taxonomy files are written once (every copy files its services under the same terms, as
the services of one region share one taxonomy).

Example::

    >>> write_scaled_dc(Path("/tmp/dc-4k"), copies=8)
    {'services': 4008, 'rows': 69000, 'bytes': 8300000}
"""
from __future__ import annotations

import csv
from pathlib import Path

SHARED_ONCE = {"taxonomy_terms.csv", "taxonomy_types.csv"}
KEPT_IDS = {"taxonomy_term_id"}  # links into the shared taxonomy keep their ids


def dc_folder() -> Path:
    from tests.support.shared_data import dataset

    return dataset("dc-orservices")


def write_scaled_dc(folder: Path, copies: int, source: Path | None = None) -> dict:
    """Write the scaled package into ``folder``; returns its size (services, rows, bytes)."""
    source = source or dc_folder()
    folder.mkdir(parents=True, exist_ok=True)
    services = rows = 0
    for path in sorted(source.glob("*.csv")):
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader)
            records = list(reader)
        ids = [i for i, column in enumerate(header) if (column == "id" or column.endswith("_id")) and column not in KEPT_IDS]
        with (folder / path.name).open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            for copy in range(1 if path.name in SHARED_ONCE else copies):
                for record in records:
                    record = (list(record) + [""] * len(header))[:max(len(header), len(record))]  # short rows padded (COPY wants every cell)
                    for i in ids:
                        if i < len(record) and record[i].strip():
                            record[i] = f"{record[i].strip()}{copy:04d}"
                    writer.writerow(record)
                    rows += 1
                    services += path.name == "services.csv"
    return {"services": services, "rows": rows, "bytes": sum(p.stat().st_size for p in folder.glob("*.csv"))}
