"""directory's dependency providers: its database, start-up loading, background imports.

Example::

    class DirectoryService:
        db = directory_database()
        imports = ImportRunner()     # self.imports.start(job_id, path, source, user_id)
"""
from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path

from nameko.extensions import DependencyProvider

from services.directory.models import Base, ImportJob
from weintervene.db import Database, utcnow

log = logging.getLogger(__name__)


def directory_database() -> Database:
    return Database("directory", Base)


def _database(container) -> Database:
    return next(d for d in container.dependencies if isinstance(d, Database))


class TaxonomyAtStart(DependencyProvider):
    """Loads (or corrects) the Open Eligibility taxonomy when the service starts."""

    def start(self):
        from services.directory.taxonomy import load_open_eligibility

        from services.directory.geo import postcode_centroid

        with _database(self.container).session() as session:
            load_open_eligibility(session)
        postcode_centroid("20001")  # builds the ZIP index now, not during a user's first search
        from services.directory.query_terms import synonyms
        from weintervene.config import settings

        # The synonym list (and an operator's extra file) read now: a bad file stops the service
        # at start with its reason, rather than failing every search.
        synonyms(settings().directory_search_synonyms_file)


class ImportRunner(DependencyProvider):
    """Runs imports in a managed thread, with progress readable while they run.

    Progress is kept in memory (the import holds one transaction, so that a
    failed import leaves nothing half written) and written to the job row when
    the import ends.
    """

    def setup(self):
        self.progress: dict[str, tuple[int, int]] = {}
        self.lock = threading.Lock()

    def get_dependency(self, worker_ctx):
        return self

    def start_job(self, job_id: str, path: Path, source: str, user_id: str, cleanup: Path | None = None):
        self.container.spawn_managed_thread(lambda: self._run(job_id, path, source, user_id, cleanup),
                                            identifier=f"directory-import-{job_id}")

    def read_progress(self, job_id: str):
        with self.lock:
            return self.progress.get(job_id)

    def _run(self, job_id, path, source, user_id, cleanup):
        from services.directory.importer import import_path
        from services.directory.layouts import LayoutError

        db = _database(self.container)

        def progress(done, total):
            with self.lock:
                self.progress[job_id] = (done, total)

        with db.session() as session:
            try:
                report = import_path(session, path, source=source, progress=progress, updated_by=user_id or "import")
                status, error = "completed", None
            except LayoutError as exc:
                session.rollback()
                report, status, error = None, "failed", str(exc)
            except Exception as exc:  # noqa: BLE001 - recorded on the job, never lost
                log.exception("import %s failed", job_id)
                session.rollback()
                report, status, error = None, "failed", f"{type(exc).__name__}: {exc}"
            job = session.get(ImportJob, job_id)
            done, total = self.read_progress(job_id) or (0, 0)
            job.status, job.error, job.report = status, error, report
            job.rows_done, job.rows_total = done, total
            job.finished_at = utcnow()
            session.commit()
        with self.lock:
            self.progress.pop(job_id, None)
        if cleanup is not None:
            shutil.rmtree(cleanup, ignore_errors=True)
