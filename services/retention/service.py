"""retention's entrypoints."""
from services.retention.dependencies import retention_database
from weintervene.observability import EntrypointMetrics, HealthCheck


class RetentionService(HealthCheck):
    name = "retention"

    db = retention_database()
    metrics = EntrypointMetrics()
