"""Which source a package is: the name its records' stable ids are derived from.

A record's id is ``uuid5(source, table, foreign id)`` (``ids.stable_id``), so the source
decides whether a re-import updates the records it made before or makes new ones. It comes
from the package itself or from the operator, never from a file or folder name: the same
package imported as a folder, then as its zip, then uploaded as ``export (2).zip`` is the
same source; two packages both unpacked into ``data/`` are not.

In order:

1. an explicit name (``--source NAME``, the API's ``?source=NAME``);
2. the package's ``datapackage.json``: its ``id``, else its ``name``;
3. nothing else: a bare folder of CSVs (or an HSDS JSON file) names no source, and the
   import is refused with :class:`SourceRequired`. A name derived from the content (a hash
   of the organizations' ids, say) would change as soon as the export gains a row, and the
   next import would duplicate everything; asking once is cheaper than undoing that.

Before this rule the source was the folder or file name, so a directory imported as
``weintervene import-directory ../shared/datasets/dc-orservices`` keeps its records when
re-imported with ``--source dc-orservices``: nothing to migrate.

Example::

    >>> package_source(Path("exports/2026-12"), None)        # a descriptor named "miami-211"
    'miami-211'
    >>> package_source(Path("bare-csvs"), "broward-211")
    'broward-211'
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from services.directory.layouts import LayoutError

MAX_LENGTH = 120
# Printable, no path separators: the name appears in reports and job lists.
VALID = re.compile(r"^[^\x00-\x1f/\\]{1,%d}$" % MAX_LENGTH)


class SourceRequired(LayoutError):
    """The package names no source and none was given (the API answers 400 ``source_required``)."""


def descriptor_of(path: Path) -> Path | None:
    """The ``datapackage.json`` that describes ``path`` (the file itself, or one in the folder)."""
    path = Path(path)
    if path.name == "datapackage.json" and path.is_file():
        return path
    if path.is_dir() and (path / "datapackage.json").is_file():
        return path / "datapackage.json"
    return None


def descriptor_source(path: Path) -> str | None:
    """The descriptor's ``id`` or ``name``, or None when there is no descriptor or it names neither."""
    descriptor = descriptor_of(path)
    if descriptor is None:
        return None
    try:
        meta = json.loads(descriptor.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict):
        return None
    for key in ("id", "name"):
        value = meta.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:MAX_LENGTH]
    return None


def check_name(name: str) -> str:
    """An explicit source name, trimmed; ``LayoutError`` when it is empty or unprintable."""
    name = (name or "").strip()
    if not VALID.match(name):
        raise LayoutError(f"the source name must be 1 to {MAX_LENGTH} printable characters without / or \\")
    return name


def package_source(path: Path, explicit: str | None) -> str:
    """The source of the package at ``path`` (a folder, descriptor or JSON file, not a zip:
    unpack it first), or :class:`SourceRequired` saying how to name it."""
    if explicit is not None and str(explicit).strip():
        return check_name(str(explicit))
    named = descriptor_source(path)
    if named:
        return named
    raise SourceRequired(
        f"{Path(path).name} names no source (no datapackage.json with an id or a name): "
        "pass --source NAME (API: ?source=NAME). The source keeps re-imports on the same records; "
        "a directory imported before under its folder name keeps its records with --source <that folder name>")
