"""directory's entrypoints."""
from services.directory.dependencies import directory_database
from weintervene.export import DataExporter
from weintervene.observability import EntrypointMetrics, HealthCheck


class DirectoryService(DataExporter, HealthCheck):
    name = "directory"

    db = directory_database()
    metrics = EntrypointMetrics()
