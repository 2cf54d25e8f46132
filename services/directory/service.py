"""directory's entrypoints."""
from services.directory.dependencies import directory_database
from weintervene.observability import EntrypointMetrics, HealthCheck


class DirectoryService(HealthCheck):
    name = "directory"

    db = directory_database()
    metrics = EntrypointMetrics()
