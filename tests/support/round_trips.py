"""Round trips to PostgreSQL, counted through psycopg2's public wait-callback API.

Green (``weintervene.db._green_psycopg2``), psycopg2 sends each query without blocking and
calls the wait callback once to wait for its answer; connecting calls it once too. So the
calls of a callback that wraps the installed one count the exchanges with the server.

Example::

    with RoundTrips() as trips:
        session.execute(text("SELECT 1"))
    assert trips.count == 2  # psycopg2's BEGIN, then the SELECT
"""
from __future__ import annotations

import weakref

from psycopg2 import extensions


class RoundTrips:
    """Counts the waits for PostgreSQL while in the ``with`` block, of every connection or
    only of those passed to :meth:`only` (not those of services running in this process)."""

    def __init__(self):
        self.count = 0
        self._only: weakref.WeakSet | None = None
        self._installed = None

    def only(self, *dbapi_connections) -> RoundTrips:
        self._only = weakref.WeakSet(dbapi_connections)
        return self

    def add(self, dbapi_connection) -> None:
        if self._only is None:
            self._only = weakref.WeakSet()
        self._only.add(dbapi_connection)

    def __enter__(self) -> RoundTrips:
        self._installed = extensions.get_wait_callback()
        assert self._installed is not None, "psycopg2 is not green: no wait callback"
        installed = self._installed

        def counting(conn, timeout=-1):
            if self._only is None or conn in self._only:
                self.count += 1
            return installed(conn)

        extensions.set_wait_callback(counting)
        return self

    def __exit__(self, *exc) -> None:
        extensions.set_wait_callback(self._installed)

    def of(self, run) -> int:
        """How many round trips ``run()`` made (inside the ``with`` block)."""
        before = self.count
        run()
        return self.count - before
