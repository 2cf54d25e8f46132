"""What a deletion leaves in the database files, and removing it (docs/SECURITY.md,
"Deleted from the files").

A committed DELETE only marks rows dead. Their bytes stay in the files until the space
is reused: SQLite keeps them in the page's free space and in the WAL's older frames;
PostgreSQL keeps the dead tuple in its heap page, and even after a plain VACUUM in the
page's hole (pruning moves the live tuples but never zeroes what they leave), and the
key in the index pages. So after a deletion commits, the service *scrubs* the tables
its deletion marked (:func:`mark_for_scrub`, called by each service's ``delete_for``
for the tables whose deleted rows held personal data):

* SQLite: every connection runs with ``secure_delete=ON`` (``weintervene.db``), which
  zeroes a freed cell when it is freed; the scrub is ``wal_checkpoint(TRUNCATE)``, which
  copies the zeroed pages into the database file and empties the WAL.
* PostgreSQL: ``VACUUM (FULL)`` of each marked table: a rewrite into new files holding
  the live rows only (its TOAST table and every index rebuilt too); the old files are
  truncated at commit. The cheaper ways were measured to leave bytes behind (plain
  VACUUM, ``INDEX_CLEANUP ON``; a REINDEX cleans only the index it rebuilds). The rewrite waits (boundedly) until no transaction older than the deletion
  runs in the cluster, since a snapshot that may still see the rows makes a rewrite
  copy them; and it takes its lock with a short ``lock_timeout``, retried, so it never queues
  for long ahead of the service's own work.

Example::

    # in delete_for, in the deletion's transaction:
    mark_for_scrub(db, "student", "family_contact")
    # DeletionParticipant, after the commit:
    scrub(engine, tables_marked(db))   # -> {"student": 0.012, "family_contact": 0.009}
"""
from __future__ import annotations

import logging
import time

from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

MARKED = "weintervene_scrub_tables"

# PostgreSQL: how long the rewrite may wait for its table lock before it gives way (the
# service's own statements queue behind a waiting ACCESS EXCLUSIVE request), how often it
# tries, and how long it waits for transactions older than the deletion to end.
LOCK_TIMEOUT_MS = 1000
LOCK_ATTEMPTS = 10
# Long: another service's termination (one transaction) may take minutes on a big tenant,
# and this service's confirmation waits for it rather than for retention's re-send.
OLD_SNAPSHOT_WAIT_SECONDS = 300.0
# SQLite: a checkpoint that could not finish (a reader on an older snapshot) is retried.
CHECKPOINT_ATTEMPTS = 3  # each waits up to the busy_timeout (30 s) for readers


def mark_for_scrub(session, *tables: str) -> None:
    """Have the tables ``tables`` rewritten once the deletion in ``session`` commits.

    Example: mark_for_scrub(db, "share")  # a deleted share had a note
    """
    session.info.setdefault(MARKED, set()).update(tables)


def tables_marked(session) -> set[str]:
    """The tables marked in ``session`` since the last call (and forgets them)."""
    return set(session.info.pop(MARKED, ()))


def forget_marks(session) -> None:
    """A rolled back deletion deleted nothing: nothing to scrub."""
    session.info.pop(MARKED, None)


def scrub(engine: Engine, tables, wait_seconds: float = OLD_SNAPSHOT_WAIT_SECONDS) -> dict[str, float]:
    """Remove from the files what the deletion just committed left; returns the seconds
    each table's rewrite took (PostgreSQL), or the checkpoint's (SQLite, as ``"-wal"``).

    Raises on PostgreSQL when a table could not be locked in all attempts: the caller
    does not confirm the deletion then (retention re-sends it, and the repeat scrubs).

    Example: scrub(engine, {"student"}) -> {"student": 0.02}
    """
    if engine.dialect.name == "sqlite":
        return {"-wal": checkpoint_sqlite(engine)}
    if engine.dialect.name != "postgresql" or not tables:
        return {}
    return rewrite_postgresql_tables(engine, sorted(tables), wait_seconds)


def checkpoint_sqlite(engine: Engine) -> float:
    """``PRAGMA wal_checkpoint(TRUNCATE)`` until it completes: every frame copied into
    the database file and the WAL file cut to zero bytes. Returns the seconds it took;
    raises :class:`RowsStillVisible` when readers kept it from completing."""
    started = time.monotonic()
    raw = engine.raw_connection()
    try:
        for attempt in range(1, CHECKPOINT_ATTEMPTS + 1):
            busy, _frames, _copied = raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                break
            if attempt == CHECKPOINT_ATTEMPTS:
                raise RowsStillVisible("the WAL checkpoint after a deletion did not complete (a reader held "
                                       "on); the WAL still holds the deleted rows' pages")
            time.sleep(0.05 * attempt)  # green under eventlet
    finally:
        raw.close()
    return time.monotonic() - started


def rewrite_postgresql_tables(engine: Engine, tables: list[str],
                              wait_seconds: float = OLD_SNAPSHOT_WAIT_SECONDS) -> dict[str, float]:
    """``VACUUM (FULL)`` each table on a connection of ``engine`` in autocommit mode, once
    no transaction that could still see the deleted rows is left (at most ``wait_seconds``)."""
    timings: dict[str, float] = {}
    raw = engine.raw_connection()
    connection = raw.dbapi_connection
    was_autocommit = connection.autocommit
    try:
        if not was_autocommit:
            connection.rollback()  # the pool's liveness ping may have begun a transaction
        connection.autocommit = True  # VACUUM runs outside any transaction
        cursor = raw.cursor()
        _wait_for_older_transactions(cursor, wait_seconds)
        cursor.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")
        try:
            for table in tables:
                timings[table] = _rewrite(cursor, table)
        finally:
            cursor.execute("RESET lock_timeout")  # the connection goes back to the pool
    except BaseException:
        raw.invalidate()  # whatever state it is in, no one else gets it
        raise
    finally:
        if raw.dbapi_connection is not None:
            connection.autocommit = was_autocommit
        raw.close()
    log.info("rewrote %s after a deletion", ", ".join(f"{t} ({s * 1000:.0f} ms)" for t, s in timings.items()))
    return timings


def _rewrite(cursor, table: str) -> float:
    quoted = '"' + table.replace('"', '""') + '"'
    for attempt in range(1, LOCK_ATTEMPTS + 1):
        started = time.monotonic()
        try:
            cursor.execute(f"VACUUM (FULL) {quoted}")
            return time.monotonic() - started
        except Exception as exc:  # noqa: BLE001 - only a lock timeout is retried
            if _sqlstate(exc) != "55P03" or attempt == LOCK_ATTEMPTS:
                raise
            log.info("VACUUM FULL %s gave way to the table's users (attempt %d)", table, attempt)
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


def _wait_for_older_transactions(cursor, wait_seconds: float) -> None:
    """Until no transaction that could still see the deleted rows is left; raises
    :class:`RowsStillVisible` after ``wait_seconds``.

    A rewrite copies every row version some snapshot may still see ("recently dead"),
    and so would copy the deleted rows. A snapshot's horizon is the oldest transaction
    running *anywhere in the cluster* when it was taken (another database's long
    transaction included), so the wait is for both: every transaction id assigned before
    now finished (the oldest running one is newer), and no snapshot of this database
    older than that.
    """
    cursor.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text")
    (horizon,) = cursor.fetchone()  # the first transaction id not yet assigned
    started = time.monotonic()
    deadline = started + wait_seconds
    while True:
        cursor.execute(
            "SELECT pg_snapshot_xmin(pg_current_snapshot()) >= CAST(%s AS xid8), "
            "(SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            " AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL "
            " AND age(backend_xmin) > age(CAST(CAST(%s AS xid8) AS xid)))", (horizon, horizon))
        no_older_transaction, older_snapshots = cursor.fetchone()
        if no_older_transaction and not older_snapshots:
            if time.monotonic() - started > 1.0:
                log.info("the rewrite after a deletion waited %.1f s for older transactions to end",
                         time.monotonic() - started)
            return
        if time.monotonic() > deadline:
            raise RowsStillVisible(
                f"transactions older than the deletion still run after {wait_seconds:.0f} s; "
                "the tables are not rewritten now (the deletion stays unconfirmed and is retried)")
        time.sleep(0.05)


class RowsStillVisible(RuntimeError):
    """A rewrite now would copy the deleted rows (an older transaction may see them)."""


def _sqlstate(exc: BaseException) -> str | None:
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], dict):
        return args[0].get("C")
    return getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
