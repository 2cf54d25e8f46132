"""The raw bytes of a database's files, to look for what a deletion should have removed.

Example::

    files = postgres_database_files(url)            # {"base/16384/16390 (student)": b"...", ...}
    files = sqlite_folder_files(settings.data_dir)   # {"identity.db": b"...", "identity.db-wal": b""}
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text


def postgres_database_files(url: str) -> dict[str, bytes]:
    """Every file in the database's directory (relation files of every kind: heap, TOAST,
    indexes, free-space and visibility maps; files awaiting unlink), after a CHECKPOINT
    has written every page in shared buffers out to them. Read through the server
    (``pg_ls_dir`` / ``pg_read_binary_file``, superuser), so no OS access is needed.
    Each name carries the relation it belongs to, where pg_class knows it."""
    files = {}
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("CHECKPOINT"))
            # A relation's file path is base/<database oid>/<filenode>: the folder of them all.
            folder = conn.scalar(text("SELECT pg_relation_filepath('pg_class')")).rsplit("/", 1)[0]
            relations = dict(conn.execute(text(
                "SELECT pg_relation_filenode(oid)::text, relname FROM pg_class WHERE relfilenode <> 0")).all())
            for name in conn.scalars(text("SELECT pg_ls_dir(:d)"), {"d": folder}):
                path = f"{folder}/{name}"
                data = conn.scalar(text(
                    "SELECT pg_read_binary_file(CAST(:p AS text), 0, (pg_stat_file(CAST(:p AS text), true)).size, true)"),
                    {"p": path})
                relation = relations.get(name.split("_")[0].split(".")[0], "?")
                files[f"{path} ({relation})"] = bytes(data or b"")
    finally:
        engine.dispose()
    return files


def sqlite_folder_files(folder) -> dict[str, bytes]:
    """Every file under ``folder``: the databases, their WAL, shared memory and any journal."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def holding(files: dict[str, bytes], value: str) -> list[str]:
    """The names of the files holding ``value`` (UTF-8, case-blind)."""
    needle = value.lower().encode()
    return [name for name, data in files.items() if needle in data.lower()]
